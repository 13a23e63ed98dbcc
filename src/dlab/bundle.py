"""`dlab handin`: one experiment's hand-in as a single zip file.

The zip holds:

- `handin.json`: what the hand-in claims (format 1): the code that made it (dlab
  version, source SHA-256), the student, the experiment, when it was made, and for each
  program of the experiment its run (folder inside the zip, profile, seed, status, the
  SHA-256 of the run's manifest.json, how the run was chosen) or "not run";
- `record/experiment-NN.html` (and `.md`, `.pdf` when asked): the record `dlab report
  --experiment N` writes, made from the run folders exactly as they are in the zip, so
  its figures are embedded (HTML) or linked to `../runs/...` inside the zip (Markdown);
- `runs/<program>/<run folder>/`: every file of each chosen run folder.

Runs are chosen as the record chooses them (`dlab.report.choose`). A run whose files no
longer match its manifest is refused, so the manifests in the zip hold for the files in
the zip; `dlab verify HANDIN.zip` checks the chain (handin.json -> manifest.json ->
files) and reruns every run. A hash is no signature: it shows that a hand-in is what
`dlab handin` wrote from runs that `dlab run` wrote, and the rerun checks the numbers.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from dlab.errors import DataError, UsageError
from dlab.io import atomic_path
from dlab.provenance import MANIFEST, check_manifest, code_info, sha256_file
from dlab.registry import EXPERIMENTS
from dlab.report.choose import choose
from dlab.report.handin import Student, resolve_student
from dlab.report.record import PAPERS
from dlab.steps import notebook_changes

FORMAT = 1
INFO = "handin.json"
RECORD_DIR = "record"
RUNS_DIR = "runs"
MAX_UNPACKED = 4 << 30  # bytes a hand-in may unpack to (quick runs take well under 10 MB)
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


def record_name(experiment: int, suffix: str = ".html") -> str:
    return f"{RECORD_DIR}/experiment-{experiment:02d}{suffix}"


def default_name(student: Student, experiment: int) -> str:
    """`<student id>-experiment-NN.zip` (`student-...` without an id)."""
    sid = _UNSAFE_ID.sub("-", student.id).strip("-.") or "student"
    return f"{sid}-experiment-{experiment:02d}.zip"


def _experiment(number: int):
    for exp in EXPERIMENTS:
        if exp.number == number:
            return exp
    raise UsageError(f"--experiment {number}: there are experiments 1 to {len(EXPERIMENTS)}")


def _check_out(out: Path, force: bool) -> Path:
    if out.suffix.lower() != ".zip":
        raise UsageError(f"--out {out}: a hand-in is a .zip file, e.g. --out {out}.zip")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give the zip's file name")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist; create it "
                         "or choose another")
    if out.exists() and not force:
        raise UsageError(f"--out {out}: exists; pass --force to replace it, or choose "
                         "another name")
    return out


def _nothing_chosen(experiment: int, runs_dir: Path, skipped: list[str]) -> UsageError:
    if skipped:  # "1.1: only smoke runs ...", "1.2: only smoke runs ..." said once
        why: dict[str, list[str]] = {}
        for line in skipped:
            pid, _, reason = line.partition(": ")
            why.setdefault(reason, []).append(pid)
        return UsageError(f"no run of experiment {experiment} under {runs_dir} to hand in: "
                          + "; ".join(f"{', '.join(pids)}: {reason}"
                                      for reason, pids in why.items()))
    return UsageError(f"no runs of experiment {experiment} under {runs_dir}; run it first, "
                      f"e.g. `dlab run {experiment} --out {runs_dir}`")


def _stage_run(pid: str, folder: Path, root: Path) -> Path:
    """Copy a chosen run folder to root/runs/<pid>/<name> (dot files such as a lock left
    out, as the manifest leaves them out) and check the copy against its manifest."""
    staged = root / RUNS_DIR / pid / folder.name
    try:
        shutil.copytree(folder, staged, ignore=shutil.ignore_patterns(".*"))
    except (OSError, shutil.Error) as exc:
        raise UsageError(f"{pid}: cannot read the run folder {folder} ({exc})") from None
    problems = check_manifest(staged)
    if problems is None:
        raise UsageError(f"{pid}: the run folder {folder} has no {MANIFEST} (the run never "
                         "finished, or was made before dlab wrote one); run it again or "
                         f"choose another with --pick {pid}=RUN_FOLDER")
    if problems:
        raise UsageError(f"{pid}: the run folder {folder} does not match its {MANIFEST}: "
                         + "; ".join(problems) + f"; run it again or choose another with "
                         f"--pick {pid}=RUN_FOLDER")
    return staged


def write_record(root: Path, out_html: Path, experiment: int, student: Student,
                 picked: list[str], allow_smoke: bool, paper: str, pdf: bool = False,
                 warn: Callable[[str], None] | None = None) -> dict[str, Path]:
    """The experiment's record from the runs under root/runs (one per program), as
    `dlab report --experiment N` writes it; `picked` programs say "picked by hand"."""
    from dlab.report.lab import write_report

    runs = root / RUNS_DIR
    picks = {pid: next(p for p in sorted((runs / pid).iterdir()) if p.is_dir())
             for pid in picked}
    return write_report(runs, out_html, pdf=pdf, student=student, experiment=experiment,
                        picks=picks, allow_smoke=allow_smoke, paper=paper,
                        warn=warn or (lambda _line: None))


def make_handin(runs_dir: str | Path, experiment: int, out: str | Path | None = None,
                picks: dict[str, Path] | None = None, allow_smoke: bool = False,
                student: Student | None = None, paper: str = "a4", pdf: bool = False,
                force: bool = False, warn: Callable[[str], None] | None = None) -> Path:
    """Write the hand-in zip of one experiment; return its path (see the module doc).

    `picks` ({"5.1": folder}) and `allow_smoke` choose runs as `dlab report` does;
    `student` defaults to the environment or student.toml (`resolve_student`). UsageError
    (one line) when there is nothing to hand in, a chosen run was changed after it ran,
    or `out` exists (without `force`) or lies in a folder that does not exist.
    """
    runs_dir = Path(runs_dir)
    exp = _experiment(experiment)
    if paper not in PAPERS:
        raise UsageError(f"--paper {paper}: use a4 or letter")
    student = student if student is not None else resolve_student(runs_dir=runs_dir)
    out = _check_out(Path(out) if out else Path(default_name(student, experiment)), force)
    if not runs_dir.is_dir():
        raise UsageError(f"no runs folder at {runs_dir}; run the experiment first, e.g. "
                         f"`dlab run {experiment} --out {runs_dir}`")
    ids = [p.id for p in exp.programs]
    stray = sorted(set(picks or {}) - set(ids))
    if stray:
        raise UsageError(f"--pick {stray[0]}: not a program of experiment {experiment} "
                         f"(its programs: {', '.join(ids)})")
    chosen, skipped = choose(runs_dir, ids, picks, allow_smoke, warn)
    if not chosen:
        raise _nothing_chosen(experiment, runs_dir, skipped)
    say = warn or (lambda _line: None)
    for line in skipped:
        say(f"left out {line}")
    with tempfile.TemporaryDirectory(prefix="dlab-handin-") as tmp:
        root = Path(tmp)
        entries = []
        for pid in ids:
            if pid not in chosen:
                why = next((s.split(": ", 1)[1] for s in skipped if s.startswith(f"{pid}:")),
                           "no run")
                entries.append({"program": pid, "status": "not run", "note": why})
                continue
            c = chosen[pid]
            staged = _stage_run(pid, c.folder, root)
            summary = json.loads((staged / "metrics.json").read_text(encoding="utf-8"))
            made = (summary.get("code") or {}).get("source_sha256")
            if made != code_info()["source_sha256"]:
                say(f"{pid}: {c.folder} was made by other code than this dlab (source "
                     f"{str(made)[:12]}); `dlab verify` needs that code to rerun it")
            if (summary.get("notebook") or {}).get("modified"):
                say(f"{pid}: {c.folder} ran steps changed in a notebook ("
                    f"{notebook_changes(summary['notebook'])}); its record says so and "
                    "`dlab verify` reports it modified")
            entries.append({
                "program": pid, "run": staged.relative_to(root).as_posix(),
                "profile": summary.get("profile"), "seed": summary.get("seed"),
                "status": summary.get("status"),
                "manifest_sha256": sha256_file(staged / MANIFEST),
                "picked_by_hand": pid in (picks or {}), "chosen": c.note})
        written = write_record(root, root / record_name(experiment), experiment, student,
                               [pid for pid in chosen if pid in (picks or {})], allow_smoke,
                               paper, pdf)
        code = code_info()
        info = {
            "format": FORMAT, "kind": "dlab hand-in",
            "dlab": {"version": code["version"], "source_sha256": code["source_sha256"]},
            "student": {"name": student.name, "id": student.id},
            "experiment": experiment, "title": exp.title,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "paper": paper, "allow_smoke": allow_smoke,
            "record": {kind: p.relative_to(root).as_posix() for kind, p in written.items()},
            "programs": entries}
        (root / INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        _zip(root, out)
    return out


def _zip(root: Path, out: Path) -> None:
    """Zip every file under root (handin.json first) to `out` through a temporary file:
    a failure leaves `out` as it was and no partial zip beside it."""
    files = [root / INFO] + sorted(p for p in root.rglob("*")
                                   if p.is_file() and p != root / INFO)
    try:
        with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in files:
                zf.write(p, p.relative_to(root).as_posix())
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write the hand-in ({exc.strerror or exc}); "
                         "nothing was written") from None


# ------------------------------------------------------------------------ reading


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    parts = PurePosixPath(name).parts
    if name.startswith("/") or "\\" in name or re.match(r"^[A-Za-z]:", name):
        return f"member {name!r} has an absolute or non-portable path"
    if ".." in parts:
        return f"member {name!r} points outside the hand-in ('..')"
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        return f"member {name!r} is a symbolic link"
    return None


def _check_info(info: Any, where: str) -> dict[str, Any]:
    """handin.json's fields that readers rely on; DataError names the first bad one."""
    if not isinstance(info, dict):
        raise DataError(f"{where}: {INFO} holds no JSON object; not a dlab hand-in")
    if info.get("format") != FORMAT:
        raise DataError(f"{where}: {INFO} is format {info.get('format')!r}; this dlab reads "
                        f"format {FORMAT} (made by another dlab version?)")
    if not isinstance(info.get("experiment"), int) or not isinstance(info.get("programs"),
                                                                     list):
        raise DataError(f"{where}: {INFO} lacks 'experiment' or 'programs'")
    for entry in info["programs"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("program"), str):
            raise DataError(f"{where}: {INFO} has a program entry without a program id")
        if "run" in entry:
            run = entry["run"]
            if (not isinstance(run, str) or not isinstance(entry.get("manifest_sha256"), str)
                    or PurePosixPath(run).parts[:1] != (RUNS_DIR,) or ".." in run.split("/")):
                raise DataError(f"{where}: {INFO}: program {entry['program']}'s run {run!r} "
                                f"is not a folder under {RUNS_DIR}/ with a manifest_sha256")
    record = info.get("record")
    if not isinstance(record, dict) or not isinstance(record.get("html"), str):
        raise DataError(f"{where}: {INFO} lacks 'record'")
    return info


def read_handin(zip_path: str | Path, dest: str | Path) -> tuple[dict[str, Any], Path]:
    """Extract a hand-in into the empty or new folder `dest`; return (handin.json, dest).

    DataError (one line) for a file that is not a readable zip (truncated, damaged), a
    member that would land outside `dest` (absolute path, '..', a link), a zip without
    handin.json, or a handin.json this dlab cannot read.
    """
    zip_path, dest = Path(zip_path), Path(dest)
    if not zip_path.is_file():
        raise UsageError(f"{zip_path}: no such file")
    if zip_path.suffix.lower() != ".zip" and not zipfile.is_zipfile(zip_path):
        raise UsageError(f"{zip_path}: neither a run folder nor a hand-in zip; give a run "
                         "folder, a runs folder or a .zip made by `dlab handin`")
    damaged = (f"{zip_path}: not a readable zip file (truncated or damaged?); make it again "
               "with `dlab handin`")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            for m in members:
                problem = _member_problem(m)
                if problem:
                    raise DataError(f"{zip_path}: {problem}; not extracted")
            names = [m.filename for m in members]
            if len(set(names)) != len(names):
                raise DataError(f"{zip_path}: a member appears twice; not extracted")
            if INFO not in names:
                raise DataError(f"{zip_path}: no {INFO} in the zip; not a hand-in made by "
                                "`dlab handin`")
            if sum(m.file_size for m in members) > MAX_UNPACKED:
                raise DataError(f"{zip_path}: unpacks to more than {MAX_UNPACKED >> 30} GiB; "
                                "not extracted")
            dest.mkdir(parents=True, exist_ok=True)
            for m in members:
                target = dest / m.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DataError(f"{damaged} ({' '.join(str(exc).split())})") from None
    except OSError as exc:
        raise DataError(f"{zip_path}: cannot extract ({exc.strerror or exc})") from None
    try:
        info = json.loads((dest / INFO).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{zip_path}: {INFO} is not valid JSON ({exc})") from None
    return _check_info(info, str(zip_path)), dest


@contextmanager
def open_handin(zip_path: str | Path) -> Iterator[tuple[dict[str, Any], Path]]:
    """`read_handin` into a temporary folder removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix="dlab-handin-") as tmp:
        yield read_handin(zip_path, Path(tmp) / "handin")


def handin_info(zip_path: str | Path) -> dict[str, Any]:
    """handin.json of a hand-in, read without extracting the rest."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            info = json.loads(zf.read(INFO).decode("utf-8"))
    except KeyError:
        raise DataError(f"{zip_path}: no {INFO} in the zip; not a hand-in made by "
                        "`dlab handin`") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{zip_path}: cannot read {INFO} ({exc})") from None
    return _check_info(info, str(zip_path))


def handin_problems(info: dict[str, Any], root: Path) -> list[str]:
    """What in an extracted hand-in disagrees with its handin.json, beyond the runs
    (checked one by one by `run_problem`): a missing record file, a run folder in the
    zip that handin.json does not list."""
    problems = [f"{path} is listed in {INFO} but not in the zip"
                for path in info["record"].values()
                if isinstance(path, str) and not (root / path).is_file()]
    listed = {e["run"] for e in info["programs"] if "run" in e}
    present = {m.parent.relative_to(root).as_posix()
               for m in (root / RUNS_DIR).glob("*/*/metrics.json")}
    problems += [f"{run} is in the zip but not listed in {INFO}"
                 for run in sorted(present - listed)]
    return problems


def run_problem(entry: dict[str, Any], root: Path) -> str | None:
    """Why a run listed in handin.json does not match the zip (None when it does)."""
    folder = root / entry["run"]
    if not (folder / "metrics.json").is_file():
        return f"listed in {INFO} but not in the zip"
    if not (folder / MANIFEST).is_file():
        return f"its {MANIFEST} is missing"
    if sha256_file(folder / MANIFEST) != entry["manifest_sha256"]:
        return f"its {MANIFEST} is not the one {INFO} lists (SHA-256 differs)"
    try:
        saved = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # check_manifest names the damaged file
    for key in ("program", "profile", "seed"):
        if key in entry and isinstance(saved, dict) and saved.get(key) != entry[key]:
            return (f"{INFO} says {key} {entry[key]!r}, its metrics.json "
                    f"{saved.get(key)!r}")
    return None
