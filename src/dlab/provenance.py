"""Which code produced a run, and whether its folder is still as the run left it.

- `code_info()`: dlab's version, a SHA-256 over the package's own source files (every
  .py and .toml under `dlab/`, by relative path and content, so the same code gives the
  same hash on any machine), and, when the package runs from a git checkout, the commit
  and a hash of the uncommitted diff of the package's sources.
- `write_manifest(folder)`: `manifest.json`, the SHA-256 of every file in a run folder,
  written last. `check_manifest(folder)` lists what changed since: an edited number in
  metrics.json, a replaced figure, a deleted or added file.

A hash is no signature: whoever edits a file can rewrite the manifest too. What it
gives is a one-line answer to "is this folder what `dlab run` wrote?", and `dlab
verify` reruns the program to check the numbers themselves.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from dlab.io import write_json
from dlab.version import __version__

MANIFEST = "manifest.json"
SOURCE_SUFFIXES = (".py", ".toml")
SKIPPED = (MANIFEST, ".lock")  # the manifest itself; a live run's lock file


def package_root() -> Path:
    return Path(__file__).resolve().parent


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_files(root: Path | None = None) -> list[Path]:
    """The package's source files in a fixed order (no caches, no data files)."""
    root = root or package_root()
    return sorted((p for p in root.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file()
                   and "__pycache__" not in p.parts), key=lambda p: p.relative_to(root).as_posix())


def source_hash(root: Path | None = None) -> str:
    """SHA-256 over (relative path, content) of every source file of the package."""
    root = root or package_root()
    h = hashlib.sha256()
    for p in source_files(root):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None


def git_state(root: Path | None = None) -> dict[str, str] | None:
    """{"commit", "diff_sha256", "dirty"} when the package sits in a git checkout."""
    root = root or package_root()
    commit = _git(["rev-parse", "HEAD"], root)
    if not commit:
        return None
    diff = _git(["diff", "HEAD", "--", "."], root) or ""
    return {"commit": commit.strip(), "dirty": bool(diff),
            "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else ""}


@functools.lru_cache(maxsize=1)
def code_info() -> dict[str, Any]:
    """The code a run in this process uses (computed once per process)."""
    info: dict[str, Any] = {"version": __version__, "source_sha256": source_hash()}
    git = git_state()
    if git:
        info["git"] = git
    return info


def write_manifest(folder: Path) -> Path:
    """Write manifest.json: the SHA-256 of every file in `folder` (recursively)."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): sha256_file(p)
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in SKIPPED
             and not p.name.startswith(".")}
    return write_json(folder / MANIFEST, {"algorithm": "sha256", "files": files})


def check_manifest(folder: Path) -> list[str] | None:
    """What differs from the manifest, one short phrase each ([] when intact); None when
    the folder has no manifest (written before manifests existed, or never finished)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return ["manifest.json is unreadable"]
    problems = []
    for name, digest in sorted(recorded.items()):
        p = folder / name
        if not p.is_file():
            problems.append(f"{name} is missing")
        elif sha256_file(p) != digest:
            problems.append(f"{name} changed")
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and p.name not in SKIPPED and not p.name.startswith(".") \
                and rel not in recorded:
            problems.append(f"{rel} was added")
    return problems
