"""`dlab verify`: rerun a finished run from what its folder records and compare.

For each run folder: the manifest must match its files (else **modified**), a run made
step by step in a notebook must have run the package's steps unchanged (else
**modified**: edited, repeated, skipped or reordered steps are named), the run
must have ended ok and been made by the same code as this installation (same source
hash; else **cannot verify**, with why). The program is then run again with the
recorded profile, seed and every recorded setting, on the CPU, into a scratch folder,
and every number in its metrics and every target's verdict is compared with the
recorded ones:

- **verified**: every number equal bit for bit, or within the tolerance below, and every
  verdict the same;
- **differs**: which numbers, recorded and rerun, by how much.

A hand-in zip (`dlab handin`) is extracted to a temporary folder and checked first:
every run its handin.json lists is in the zip with the manifest.json whose SHA-256 it
lists, no other run folder is there, the record files are there, and (runs intact, same
code) the record made again from the zip's runs equals the one in the zip (the PDF is
not compared). Each run is then verified as above; every line names its hand-in.

The rerun uses as many torch threads as the run recorded (`threads` in metrics.json;
`dlab run --jobs N` runs every program on one): on the same machine and thread count a
program's numbers come back bit for bit, while another thread count changes the order of
floating-point sums in some kernels, and training can carry that far past the last digit.
Tolerance: |a - b| <= ABS_TOL + REL_TOL * |b|. Measured times, folder
names and other facts of the machine are not compared (`SKIPPED`).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlab.config import as_set_text
from dlab.errors import DlabError
from dlab.provenance import MANIFEST, check_manifest, code_info
from dlab.registry import PROGRAMS
from dlab.running import run_program
from dlab.steps import notebook_changes

REL_TOL = 1e-6
ABS_TOL = 1e-9
# keys of measured time, throughput and places, which legitimately differ between runs
SKIPPED = re.compile(r"(second|time|_s$|per_s|throughput|speed|folder|path|host|storage"
                     r"|started|finished|elapsed|wall|pid)", re.IGNORECASE)

VERIFIED, DIFFERS, MODIFIED, CANNOT = "verified", "differs", "modified", "cannot verify"
EXIT = {VERIFIED: 0, DIFFERS: 1, MODIFIED: 1, CANNOT: 2}
HANDIN = "hand-in"  # the program of a verdict on a hand-in as a whole


@dataclass
class Verdict:
    folder: Path
    program: str
    status: str  # VERIFIED, DIFFERS, MODIFIED or CANNOT
    details: list[str] = field(default_factory=list)
    compared: int = 0  # numbers compared
    exact: int = 0  # of those, equal bit for bit
    seconds: float = 0.0
    handin: Path | None = None  # the hand-in zip the run came in (folder: inside it)

    def line(self) -> str:
        where = f"{self.handin}: " if self.handin is not None else ""
        head = (f"{where}{self.program}: {self.status}" if self.program == HANDIN else
                f"{where}{self.program} {self.folder}: {self.status}")
        if self.status == VERIFIED:
            same = (f"all {self.compared} numbers bit for bit" if self.exact == self.compared
                    else f"{self.exact} of {self.compared} numbers bit for bit, "
                         f"{self.compared - self.exact} within tolerance")
            return f"{head} ({same}; rerun {self.seconds:.1f} s)"
        return f"{head}: " + "; ".join(self.details)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as {"a.b.0": leaf}."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = ((str(i), v) for i, v in enumerate(obj))
    else:
        return {prefix: obj}
    out: dict[str, Any] = {}
    for k, v in items:
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str) and v in ("nan", "inf", "-inf", "NaN", "Infinity", "-Infinity"):
        return float(v)
    return None


def compare_metrics(recorded: dict[str, Any], rerun: dict[str, Any]) -> tuple[list[str], int, int]:
    """(differences, numbers compared, numbers equal bit for bit) of two metrics dicts."""
    a, b = flatten(recorded), flatten(rerun)
    diffs, compared, exact = [], 0, 0
    for key in sorted(set(a) | set(b)):
        if SKIPPED.search(key):
            continue
        if key not in b:
            diffs.append(f"{key} recorded {a[key]!r}, not produced by the rerun")
            continue
        if key not in a:
            diffs.append(f"{key} produced by the rerun ({b[key]!r}), not recorded")
            continue
        x, y = _number(a[key]), _number(b[key])
        if x is None or y is None:
            if a[key] != b[key]:
                diffs.append(f"{key} recorded {a[key]!r}, rerun {b[key]!r}")
            continue
        compared += 1
        if x == y or (math.isnan(x) and math.isnan(y)):
            exact += 1
        elif not abs(x - y) <= ABS_TOL + REL_TOL * abs(y):
            diffs.append(f"{key} recorded {x:.10g}, rerun {y:.10g} (by {abs(x - y):.3g})")
    return diffs, compared, exact


def _targets(targets: list[dict[str, Any]]) -> dict[str, Any]:
    return {t.get("rule", t.get("name")): t.get("met") for t in targets or []}


def check_folder(folder: Path) -> tuple[dict[str, Any] | None, Verdict | None]:
    """The recorded summary, or the verdict that stops verification before any rerun."""
    folder = Path(folder)
    try:
        saved = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        pid = str(saved["program"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, Verdict(folder, "?", CANNOT, [f"no readable metrics.json ({exc})"])
    changed = check_manifest(folder)
    if changed is None:
        return None, Verdict(folder, pid, CANNOT, [f"no {MANIFEST} (written before dlab "
                                                   "recorded one, or the run never finished)"])
    if changed:
        return None, Verdict(folder, pid, MODIFIED, changed)
    if saved.get("status") != "ok":
        return None, Verdict(folder, pid, CANNOT, [f"the run ended {saved.get('status')}"])
    if pid not in PROGRAMS:
        return None, Verdict(folder, pid, CANNOT, [f"no program {pid} in this dlab"])
    nb = saved.get("notebook") or {}
    if nb.get("modified"):
        return None, Verdict(folder, pid, MODIFIED, [
            f"its steps were changed in a notebook ({notebook_changes(nb)}); the package's "
            "program, which a rerun would run, is not what it ran"])
    recorded = (saved.get("code") or {}).get("source_sha256")
    here = code_info()["source_sha256"]
    if recorded != here:
        made = (saved.get("code") or {}).get("version", "?")
        return None, Verdict(folder, pid, CANNOT, [
            f"made by other code (dlab {made}, source {str(recorded)[:12]}; this is "
            f"{code_info()['version']}, source {here[:12]}): install that version to verify"])
    return saved, None


@contextmanager
def _threads(n: Any) -> Iterator[None]:
    """Rerun on as many torch threads as the run used (`dlab run --jobs 2` runs each
    program on one): summation order, and so the last digits, depend on it."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        yield  # a run from before dlab recorded its threads: the default for the program
        return
    before = os.environ.get("DLAB_THREADS")
    os.environ["DLAB_THREADS"] = str(n)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DLAB_THREADS", None)
        else:
            os.environ["DLAB_THREADS"] = before


def verify_run(folder: Path, scratch: Path, data_dir: str | None = None) -> Verdict:
    """Rerun one finished run into `scratch` and compare (see the module docstring)."""
    saved, stop = check_folder(folder)
    if stop is not None:
        return stop
    pid = saved["program"]
    sets = {k: as_set_text(v) for k, v in (saved.get("config") or {}).items()}
    t0 = time.perf_counter()
    with _threads(saved.get("threads")):
        outcome = run_program(PROGRAMS[pid], profile=saved["profile"],
                              seed=int(saved["seed"]), device="cpu", sets=sets, out=scratch,
                              quiet=True, data_dir=data_dir)
    seconds = time.perf_counter() - t0
    if outcome.status != "ok":
        return Verdict(Path(folder), pid, DIFFERS, [f"the rerun ended {outcome.status}: "
                                                    f"{outcome.message}"], seconds=seconds)
    diffs, compared, exact = compare_metrics(saved.get("metrics", {}), outcome.metrics or {})
    was, now = _targets(saved.get("targets")), _targets(outcome.targets)
    diffs += [f"target {k}: recorded {was.get(k)!r}, rerun {now.get(k)!r}"
              for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)]
    return Verdict(Path(folder), pid, DIFFERS if diffs else VERIFIED, diffs, compared, exact,
                   seconds)


def run_folders(paths: list[Path]) -> list[Path]:
    """Run folders named directly, or found under a runs folder or a program's folder."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "metrics.json").is_file():
            found.append(p)
        else:  # a runs folder (runs/ holding 5.1/<run>/) or one program's (runs/5.1/)
            found += sorted(m.parent for m in [*p.glob("*/*/metrics.json"),
                                               *p.glob("*/metrics.json")])
    return found


def _record_problems(info: dict[str, Any], root: Path) -> list[str]:
    """The record made again from the hand-in's runs, compared with the one in it."""
    from dlab.bundle import write_record
    from dlab.report.handin import Student

    if (info.get("dlab") or {}).get("source_sha256") != code_info()["source_sha256"]:
        return []  # made by other code: its runs say so, and why they cannot be verified
    student = info.get("student") if isinstance(info.get("student"), dict) else {}
    name, sid = (student.get(k) for k in ("name", "id"))
    picked = [e["program"] for e in info["programs"] if "run" in e and e.get("picked_by_hand")]
    check = root / "record-check"
    html = info["record"]["html"]
    try:
        again = write_record(root, check / Path(html).name, int(info["experiment"]),
                             Student(name if isinstance(name, str) else "",
                                     sid if isinstance(sid, str) else ""),
                             picked, bool(info.get("allow_smoke")), str(info.get("paper", "a4")))
    except DlabError as exc:
        return [f"its record cannot be made again from its runs ({exc})"]
    problems = []
    for kind, path in again.items():
        kept = info["record"].get(kind)
        if isinstance(kept, str) and (root / kept).is_file() \
                and (root / kept).read_bytes() != path.read_bytes():
            problems.append(f"{kept} is not the record its runs give (edited after "
                            "`dlab handin`?)")
    return problems


def verify_handin(zip_path: Path, info: dict[str, Any], root: Path, scratch: Path,
                  data_dir: str | None = None, say=print) -> list[Verdict]:
    """Check an extracted hand-in against its handin.json, then verify each run."""
    from dlab.bundle import handin_problems, run_problem

    listed = [e for e in info["programs"] if "run" in e]
    student = info.get("student") if isinstance(info.get("student"), dict) else {}
    who = ", ".join(str(student.get(k)) for k in ("name", "id") if student.get(k)) \
        or "no student named"
    say(f"{zip_path}: hand-in of experiment {info['experiment']} ({who}), made "
        f"{info.get('created', '?')} by dlab {(info.get('dlab') or {}).get('version', '?')}, "
        f"{len(listed)} runs")
    verdicts, todo, intact = [], [], True
    for entry in listed:
        problem = run_problem(entry, root)
        if problem:
            verdicts.append(Verdict(Path(entry["run"]), entry["program"], MODIFIED, [problem],
                                    handin=zip_path))
            intact = False
        else:
            todo.append(entry)
            intact = intact and check_manifest(root / entry["run"]) == []
    problems = handin_problems(info, root)
    if not listed:
        problems.append("its handin.json lists no run")
    if intact and listed and not problems:
        problems += _record_problems(info, root)
    if problems:
        verdicts.insert(0, Verdict(zip_path, HANDIN, MODIFIED, problems, handin=zip_path))
    for v in verdicts:
        say(v.line())
    for i, entry in enumerate(todo, 1):
        v = verify_run(root / entry["run"], scratch / str(i), data_dir)
        v.folder, v.handin = Path(entry["run"]), zip_path
        say(v.line())
        verdicts.append(v)
    return verdicts


def verify(paths: list[Path], data_dir: str | None = None, say=print) -> int:
    """Verify every run under `paths` (run folders, runs folders, hand-in zips); print one
    line each; return the exit status (0 all verified, 1 any differs or modified, 2 any
    cannot be verified and none differs). A file that is not a readable hand-in raises
    DataError before anything is rerun."""
    from dlab.bundle import read_handin

    paths = [Path(p) for p in paths]
    zips = [p for p in paths if p.is_file()]
    folders = run_folders([p for p in paths if not p.is_file()])
    if not folders and not zips:
        say("dlab verify: no run folders (with a metrics.json) under "
            + ", ".join(map(str, paths)))
        return 2
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="dlab-verify-") as tmp:
        scratch = Path(tmp)
        handins = [(z, *read_handin(z, scratch / f"handin-{i}")) for i, z in enumerate(zips, 1)]
        for i, folder in enumerate(folders, 1):
            v = verify_run(folder, scratch / str(i), data_dir)
            say(v.line())
            verdicts.append(v)
        for i, (z, info, root) in enumerate(handins, 1):
            verdicts += verify_handin(z, info, root, scratch / f"rerun-{i}", data_dir, say)
    runs = [v for v in verdicts if v.program != HANDIN]
    counts = {s: sum(v.status == s for v in runs) for s in EXIT}
    bad = sum(v.program == HANDIN for v in verdicts)
    exact = sum(v.status == VERIFIED and v.exact == v.compared for v in runs)
    say((", ".join(f"{n} {s}" for s, n in counts.items() if n) or "0 verified")
        + f" of {len(runs)} runs"
        + (f" ({exact} bit for bit in every number, {counts[VERIFIED] - exact} within "
           "tolerance)" if counts[VERIFIED] else "")
        + (f"; {bad} hand-in(s) modified" if bad else ""))
    worst = max((EXIT[v.status] for v in verdicts if v.status != CANNOT), default=0)
    return worst if worst else (2 if any(v.status == CANNOT for v in verdicts) else 0)
