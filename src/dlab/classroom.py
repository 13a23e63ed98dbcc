"""`dlab class DIR`: the instructor's desk, one table of the whole class from its hand-ins.

DIR holds, for each student, hand-in zips made by `dlab handin`
(`<student id>-experiment-NN.zip`, any number, in DIR itself or one folder down, as an
LMS download leaves them), or a runs folder `DIR/<student id>/` as `dlab run` writes it
(`<id>/5.1/<run>/metrics.json`; each program's run is the one the record would show,
`dlab.report.choose`). A zip belongs to the student its handin.json names, else to the
one its file name names. Of two hand-ins of one experiment by one student the table
shows the latest readable one and says so.

Every student x program gets one verdict (`VERDICTS`, worst first in `RANK`):

- **met** / **missed**: the run ended ok at the quick or full profile and met every
  applicable target / missed one (a run that did not end ok is missed, with its status);
- **no target**: it ended ok but no target applies to it (a profile or condition a target
  is not for);
- **smoke only**: the only run is a smoke run (seconds-long check of the code, no result);
- **modified**: its steps were changed in a notebook (`metrics.json` "notebook");
- **does not verify**: its files do not match its manifest.json, the manifest is missing,
  or the hand-in's handin.json lists another manifest or a run the zip lacks;
- **cannot read**: a zip that is damaged or truncated, not a hand-in, from a handin.json
  format this dlab does not read, or a metrics.json that is not a run summary;
- **not run**: nothing handed in for it.

Nothing is rerun unless asked: the table reads what the runs recorded and checks their
files against their manifests. `rerun=N` reruns a sample of N runs per student
(`random.Random(seed)`, among the runs that can be rerun: ended ok, intact, made by this
dlab's code) with `dlab.verify.verify_run`, `jobs` at a time in separate processes, and
adds verified / differs to those cells. One bad hand-in never stops the table: it is a
cell or row saying why, and one line of output.

Copies. The same seed, profile and settings give the same numbers, bit for bit on the
CPU, so two students who each ran the default command have identical metrics: that is
expected and never flagged (the output counts it). A run is flagged as a copy only when
another student's run of the same program is the same files:

1. the same manifest.json (its SHA-256): the manifest lists every file's hash, and
   metrics.json holds the run's start and finish to the second and its durations to the
   millisecond, so two runs made apart never share one; or
2. identical numbers and identical timings (start, finish and every measured duration),
   which catches a copy whose manifest was written again after a file was touched.

Separately, two hand-ins of one experiment whose records (record/*.md) are the same text
apart from the student lines at the top are flagged: a record quotes each run's folder,
start time and duration, so it is the same runs handed in twice. Flags are for the
instructor to look at; they are evidence of the same files, not a verdict on anyone.

Outputs (`write_class`): class.html (self-contained; a sortable table, one row per
student, details per student below it; prints on A4 landscape), class.csv (one row per
student x program with every field), gradebook.csv (suggested scores, `Rubric`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomllib

from dlab.errors import DlabError, UsageError
from dlab.io import atomic_write
from dlab.provenance import MANIFEST, check_manifest, code_info, sha256_file
from dlab.registry import EXPERIMENTS, PROGRAMS
from dlab.runs import read_summary

MET, MISSED, NO_TARGET, SMOKE = "met", "missed", "no target", "smoke only"
MODIFIED, UNVERIFIED, UNREADABLE, NOT_RUN = ("modified", "does not verify", "cannot read",
                                             "not run")
VERDICTS = (MET, MISSED, NO_TARGET, SMOKE, MODIFIED, UNVERIFIED, UNREADABLE, NOT_RUN)
RANK = {v: i for i, v in enumerate(VERDICTS)}  # the order of the legend and of sorting
REAL = ("quick", "full")
_ZIP_NAME = re.compile(r"^(?P<id>.+)-experiment-(?P<n>\d{1,2})$", re.IGNORECASE)
_HEADER_LINE = re.compile(r"^\|\s*(Experiment #|Date)\s*\|.*\|\s*Student (ID|Name)\s*\|")
Say = Callable[[str], None]


# ------------------------------------------------------------------------ the rubric

DEFAULT_RUBRIC = """\
# dlab class: how the suggested score of each experiment is made (gradebook.csv).
out_of = 50  # the "marks ___ out of 50" box on every sheet
viva = 20    # the evaluator's viva-voce marks: never suggested, left to the evaluator

[program]    # points for each program of the experiment (every experiment has two)
quick = 5    # its run ended ok at the quick profile
full = 7     # its run ended ok at the full profile (instead of quick's points)
smoke = 0    # only a smoke run: a seconds-long check of the code, not a result
targets = 6  # times the share of its applicable targets met (quick or full runs)
intact = 2   # its files match their manifest and it ran the package's steps unchanged
"""


@dataclass(frozen=True)
class Rubric:
    """Points of the suggested score (see `DEFAULT_RUBRIC` for what each means).

    An experiment's suggestion is the sum over its programs, at most `out_of - viva`:
    the viva-voce marks are the evaluator's and never part of it. A program that does
    not verify, cannot be read or was not run gets nothing; a notebook-modified one
    gets its profile and target points but not `intact`. Reruns (`rerun=N`) are shown,
    not scored: only a sample is rerun, and scoring it would treat students unequally.
    """

    out_of: float = 50
    viva: float = 20
    quick: float = 5
    full: float = 7
    smoke: float = 0
    targets: float = 6
    intact: float = 2
    text: str = DEFAULT_RUBRIC  # the TOML it came from, shown in class.html

    @property
    def suggested_max(self) -> float:
        return self.out_of - self.viva

    def program_max(self) -> float:
        return max(max(self.quick, self.full) + self.targets + self.intact, self.smoke)


def _rubric_values(data: dict[str, Any], where: str) -> dict[str, float]:
    allowed_top, allowed_program = {"out_of", "viva", "program"}, {
        "quick", "full", "smoke", "targets", "intact"}
    extra = set(data) - allowed_top
    program = data.get("program", {})
    if not isinstance(program, dict):
        raise UsageError(f"{where}: `program` must be a table ([program])")
    extra |= {f"program.{k}" for k in set(program) - allowed_program}
    if extra:
        raise UsageError(f"{where}: unknown key `{sorted(extra)[0]}` (keys: out_of, viva, "
                         "and under [program]: quick, full, smoke, targets, intact)")
    flat = {k: v for k, v in data.items() if k != "program"} | program
    for key, value in flat.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise UsageError(f"{where}: `{key}` must be a number of points >= 0, got "
                             f"{value!r}")
    return {k: float(v) for k, v in flat.items()}


def load_rubric(path: str | Path | None = None) -> Rubric:
    """The built-in rubric, with any key a TOML file sets replaced; UsageError (one line)
    for a file that is missing, not TOML, has an unknown key or a negative value, or
    whose points exceed the marks box."""
    values = _rubric_values(tomllib.loads(DEFAULT_RUBRIC), "built-in rubric")
    text = DEFAULT_RUBRIC
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except FileNotFoundError:
            raise UsageError(f"--rubric {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--rubric {path}: cannot be read ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"--rubric {path}: not valid TOML ({exc})") from None
        values |= _rubric_values(data, f"--rubric {path}")
    rubric = Rubric(**values, text=text)
    most = max(len(exp.programs) for exp in EXPERIMENTS) * rubric.program_max()
    if rubric.viva > rubric.out_of or most > rubric.suggested_max + 1e-9:
        where = f"--rubric {path}" if path is not None else "built-in rubric"
        raise UsageError(f"{where}: up to {most:g} points for the programs plus viva "
                         f"{rubric.viva:g} is more than out_of {rubric.out_of:g}; lower the "
                         "points or raise out_of")
    return rubric


# ------------------------------------------------------------------------ the table


@dataclass
class Cell:
    """One student's one program."""

    program: str
    verdict: str = NOT_RUN
    note: str = ""  # why not run, or how the run was chosen
    status: str = ""  # the run's status: ok, diverged, interrupted, ...
    run_verdict: str = ""  # what metrics.json says: met, missed, n/a
    targets: list[dict[str, Any]] = field(default_factory=list)
    profile: str = ""
    seed: int | None = None
    started: str = ""
    manifest: str = ""  # intact, changed, missing
    same_code: bool | None = None  # made by this dlab's source
    notebook: str = ""  # a notebook's changes, in words
    source: str = ""  # the hand-in zip or runs folder, relative to DIR
    run: str = ""  # the run folder (inside the zip, or under the runs folder)
    problems: list[str] = field(default_factory=list)
    rerun: str = ""  # verified, differs, modified, cannot verify (rerun=N only)
    rerun_details: str = ""
    copies: list[str] = field(default_factory=list)  # students with the same run files
    copy_why: str = ""
    record_copies: list[str] = field(default_factory=list)
    same_numbers: int = 0  # other students with identical numbers (expected at a seed)
    points: float = 0.0
    # what finding copies and rerunning need; not written out
    numbers: str = ""
    timings: str = ""
    manifest_sha: str = ""
    zip_path: Path | None = None
    folder: Path | None = None

    @property
    def targets_met(self) -> int:
        return sum(t.get("met") is True for t in self.targets)

    @property
    def targets_applicable(self) -> int:
        return sum(t.get("met") is True or t.get("met") is False for t in self.targets)

    @property
    def rerunnable(self) -> bool:
        return (self.verdict in (MET, MISSED, NO_TARGET, SMOKE) and self.status == "ok"
                and self.same_code is True and self.program in PROGRAMS)


@dataclass
class Student:
    id: str
    name: str = ""
    sources: list[str] = field(default_factory=list)  # zips and runs folders read
    problems: list[str] = field(default_factory=list)  # about the student's hand-ins
    cells: dict[str, Cell] = field(default_factory=dict)
    record_keys: dict[int, str] = field(default_factory=dict)  # experiment -> record hash
    record_copies: dict[int, list[str]] = field(default_factory=dict)  # experiment -> ids
    scores: dict[int, float | None] = field(default_factory=dict)  # experiment -> score

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for c in self.cells.values())


@dataclass
class ClassTable:
    folder: Path
    students: list[Student]
    programs: list[str]
    rubric: Rubric
    lines: list[str] = field(default_factory=list)  # what the reading said, one line each
    copies: list[str] = field(default_factory=list)  # one line per copy flagged
    same_numbers: tuple[int, int] = (0, 0)  # groups of runs of one program with identical
    #                                         numbers by several students; most in a group
    reran: list[str] = field(default_factory=list)
    seconds: float = 0.0
    made: str = ""

    def counts(self) -> dict[str, int]:
        return {v: sum(s.count(v) for s in self.students) for v in VERDICTS}


# ------------------------------------------------------------------------ reading runs


def _numbers_key(metrics: Any) -> str:
    """A hash of every number (and other value) of a run's metrics but its times."""
    from dlab.verify import SKIPPED, flatten  # times, as `dlab verify` leaves them out

    flat = {k: v for k, v in flatten(metrics if isinstance(metrics, dict) else {}).items()
            if not SKIPPED.search(k)}
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()


def _describe(cell: Cell, summary: dict[str, Any]) -> None:
    """The fields a readable metrics.json gives, and the verdict they make."""
    from dlab.steps import notebook_changes

    cell.status = str(summary.get("status"))
    cell.run_verdict = str(summary.get("verdict", ""))
    cell.targets = [t for t in summary.get("targets") or [] if isinstance(t, dict)]
    cell.profile, cell.seed = summary["profile"], summary["seed"]
    cell.started = summary["timings"]["started"]
    code = summary.get("code") if isinstance(summary.get("code"), dict) else {}
    cell.same_code = code.get("source_sha256") == code_info()["source_sha256"]
    cell.numbers = _numbers_key(summary.get("metrics"))
    cell.timings = json.dumps(summary["timings"], sort_keys=True, default=str)
    nb = summary.get("notebook") if isinstance(summary.get("notebook"), dict) else {}
    if nb.get("modified"):
        cell.notebook = notebook_changes(nb) or "changed in a notebook"
    if cell.verdict == UNVERIFIED:
        return
    if nb.get("modified"):
        cell.verdict = MODIFIED
        cell.problems.append(f"its steps were changed in a notebook ({cell.notebook})")
    elif cell.profile not in REAL:
        cell.verdict = SMOKE
    elif cell.status != "ok":
        cell.verdict = MISSED
        cell.problems.append(f"the run ended {cell.status}"
                             + (f": {summary.get('message')}" if summary.get("message") else ""))
    else:
        cell.verdict = {"met": MET, "missed": MISSED}.get(cell.run_verdict, NO_TARGET)


def _read_run(cell: Cell, folder: Path, problem: str | None = None) -> None:
    """Fill a cell from a run folder: its manifest first, then its metrics.json."""
    changed = check_manifest(folder)
    if (folder / MANIFEST).is_file():
        cell.manifest_sha = sha256_file(folder / MANIFEST)
    cell.manifest = "missing" if changed is None else ("changed" if changed else "intact")
    if problem or changed is None or changed:
        cell.verdict = UNVERIFIED
        cell.problems += ([problem] if problem else []) + (
            [f"no {MANIFEST} (the run never finished, or was made before dlab wrote one)"]
            if changed is None else changed)
    try:
        summary = read_summary(folder / "metrics.json")
    except ValueError as exc:
        if cell.verdict != UNVERIFIED:
            cell.verdict = UNREADABLE
        cell.problems.append(f"metrics.json: {exc}")
        return
    _describe(cell, summary)


def _name_parts(path: Path, base: Path) -> tuple[str, int | None]:
    """(student id, experiment) as a zip's file name (or its folder) gives them."""
    m = _ZIP_NAME.match(path.stem)
    if m:
        return m["id"], int(m["n"])
    return (path.parent.name if path.parent != base else path.stem), None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@dataclass
class Handin:
    path: Path
    student: str
    name: str = ""
    experiment: int | None = None
    created: str = ""
    readable: bool = True
    cells: dict[str, Cell] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    record_key: str = ""


def _record_key(root: Path, info: dict[str, Any]) -> str:
    """The record's Markdown without the student lines at the top, hashed ("" if none)."""
    rel = (info.get("record") or {}).get("markdown")
    if not isinstance(rel, str) or not (root / rel).is_file():
        return ""
    text = (root / rel).read_text(encoding="utf-8", errors="replace")
    kept = [line for line in text.splitlines() if not _HEADER_LINE.match(line)]
    return hashlib.sha256("\n".join(kept).encode()).hexdigest()


def _unreadable(h: Handin, why: str) -> Handin:
    h.readable = False
    h.problems.append(why)
    exp = next((e for e in EXPERIMENTS if e.number == h.experiment), None)
    for p in exp.programs if exp else []:
        h.cells[p.id] = Cell(p.id, UNREADABLE, problems=[why], source=h.path.name,
                             zip_path=h.path)
    return h


def _from_info(h: Handin, info: dict[str, Any], root: Path) -> Handin:
    from dlab.bundle import handin_problems, run_problem

    student = info.get("student") if isinstance(info.get("student"), dict) else {}
    named = h.student
    if isinstance(student.get("id"), str) and student["id"].strip():
        h.student = student["id"].strip()
        if _ZIP_NAME.match(h.path.stem) and named != h.student:
            h.problems.append(f"{h.path.name} is named for {named} but its handin.json "
                              f"names {h.student}")
    h.name = student.get("name") if isinstance(student.get("name"), str) else ""
    if h.experiment is not None and h.experiment != info["experiment"]:
        h.problems.append(f"{h.path.name} is named for experiment {h.experiment} but holds "
                          f"experiment {info['experiment']}")
    h.experiment, h.created = info["experiment"], str(info.get("created", ""))
    exp = next((e for e in EXPERIMENTS if e.number == h.experiment), None)
    if exp is None:
        return _unreadable(h, f"{h.path.name}: handin.json names experiment {h.experiment}, "
                              f"not one of 1-{len(EXPERIMENTS)}")
    entries = {e["program"]: e for e in info["programs"]}
    h.problems += [f"{h.path.name}: handin.json lists {pid}, not a program of experiment "
                   f"{h.experiment}" for pid in entries if pid not in {p.id for p in exp.programs}]
    h.problems += [f"{h.path.name}: {p}" for p in handin_problems(info, root)]
    for p in exp.programs:
        cell = h.cells[p.id] = Cell(p.id, source=h.path.name, zip_path=h.path)
        entry = entries.get(p.id)
        if entry is None or "run" not in entry:
            cell.note = (entry or {}).get("note") or "not in the hand-in"
            continue
        cell.run, cell.note = entry["run"], str(entry.get("chosen", ""))
        _read_run(cell, root / entry["run"], run_problem(entry, root))
    h.record_key = _record_key(root, info)
    return h


def read_zip(path: Path, scratch: Path, base: Path) -> Handin:
    """One hand-in zip read into cells; never raises for a bad zip (a cell says why).
    `scratch` (a new folder) is removed again before returning."""
    from dlab.bundle import read_handin

    sid, exp = _name_parts(path, base)
    h = Handin(path, sid, experiment=exp)
    try:
        info, root = read_handin(path, scratch)
        return _from_info(h, info, root)
    except (DlabError, OSError, ValueError, KeyError, TypeError) as exc:
        h.cells.clear()
        why = _one_line(exc).removeprefix(f"{path}: ").removeprefix(f"{path}")
        return _unreadable(h, f"{path.name}: cannot read: {why}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def read_runs_folder(folder: Path, base: Path) -> tuple[dict[str, Cell], list[str]]:
    """The cells of a student's runs folder, each program's run chosen as the record
    chooses it (smoke runs only where nothing else ran); also lines on what was skipped."""
    from dlab.report.choose import choose

    warned: list[str] = []
    source = folder.relative_to(base).as_posix()
    pids = list(PROGRAMS)
    try:
        chosen, skipped = choose(folder, pids, None, False, warned.append)
        smoke = [line.split(":", 1)[0] for line in skipped]
        chosen |= choose(folder, smoke, None, True, None)[0] if smoke else {}
    except (DlabError, OSError, ValueError, KeyError, TypeError) as exc:
        why = f"{source}: cannot read the runs ({_one_line(exc)})"
        return {pid: Cell(pid, UNREADABLE, problems=[why], source=source) for pid in pids}, [
            why]
    cells = {}
    for pid in pids:
        cell = cells[pid] = Cell(pid)
        if pid in chosen:
            c = chosen[pid]
            cell.folder, cell.note, cell.source = c.folder, c.note, source
            cell.run = c.folder.relative_to(folder).as_posix()
            _read_run(cell, c.folder)
        else:
            bad = [w for w in warned if f"/{pid}/" in w.replace("\\", "/")]
            if bad:
                cell.verdict, cell.problems, cell.source = UNREADABLE, bad, source
    return cells, warned


# ------------------------------------------------------------------------ the folder


def _natural(text: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _has_runs(folder: Path) -> bool:
    return any(any((folder / pid).glob("*/metrics.json")) for pid in PROGRAMS
               if (folder / pid).is_dir())


def find_sources(folder: Path) -> tuple[list[Path], list[Path], list[str]]:
    """(hand-in zips, students' runs folders, lines on folders skipped) under `folder`."""
    if not folder.exists():
        raise UsageError(f"{folder}: no such folder; give the folder of the class's hand-in "
                         "zips or of the students' runs folders")
    if not folder.is_dir():
        raise UsageError(f"{folder}: is a file, not a folder; give the folder that holds the "
                         "hand-in zips (or one runs folder per student)")
    zips, runs, skipped = [], [], []
    for p in sorted(folder.iterdir(), key=lambda p: _natural(p.name)):
        if p.name.startswith("."):
            continue
        if p.is_file() and p.suffix.lower() == ".zip":
            zips.append(p)
        elif p.is_dir() and not (p / "class.html").is_file():  # not a table written here
            inner = sorted((q for q in p.iterdir() if q.is_file()
                            and q.suffix.lower() == ".zip"), key=lambda q: _natural(q.name))
            zips += inner
            if _has_runs(p):
                runs.append(p)
            elif not inner:
                skipped.append(f"{p.name}/: neither hand-in zips nor runs; skipped")
    if not zips and not runs:
        raise UsageError(f"{folder}: no hand-in zips (<id>-experiment-NN.zip) and no runs "
                         "folders (<id>/5.1/<run>/metrics.json) in it; give the folder of the "
                         "class's hand-ins")
    return zips, runs, skipped


Step = Callable[[list[str]], None]


@contextmanager
def _progress(total: int, label: str, say: Say) -> Iterator[Step]:
    """A step function taking the step's lines (each said on its own): a rich bar in a
    terminal with the lines printed above it, else the lines alone."""
    if not (say is print and sys.stdout.isatty()) or total == 0:
        def plain(lines: list[str]) -> None:
            for line in lines:
                say(line)

        yield plain
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn()) as prog:
        task = prog.add_task(label, total=total)

        def step(lines: list[str]) -> None:
            for line in lines:
                prog.console.print(line, markup=False, highlight=False, soft_wrap=True)
            prog.advance(task)

        yield step


def _pick(handins: list[Handin]) -> tuple[Handin, str | None]:
    """The hand-in a student's experiment shows (readable, then latest), and a line when
    there were several."""
    best = max(handins, key=lambda h: (h.readable, h.created, h.path.stat().st_mtime))
    if len(handins) == 1:
        return best, None
    names = ", ".join(h.path.name for h in handins)
    return best, (f"{len(handins)} hand-ins of experiment {best.experiment} ({names}); the "
                  f"table shows {best.path.name}" + (f", made {best.created}"
                                                     if best.created else ""))


def _student(students: dict[str, Student], sid: str) -> Student:
    if sid not in students:
        students[sid] = Student(sid, cells={pid: Cell(pid) for pid in PROGRAMS})
    return students[sid]


def _add_handins(students: dict[str, Student], handins: list[Handin], say: Say) -> None:
    groups: dict[tuple[str, int | None], list[Handin]] = defaultdict(list)
    for h in handins:
        groups[(h.student, h.experiment if h.readable or h.cells else None)].append(h)
    for (sid, exp), group in groups.items():
        s = _student(students, sid)
        s.sources += [h.path.name for h in group]
        if exp is None:  # unreadable, and its name says no experiment
            s.problems += [p for h in group for p in h.problems]
            continue
        best, line = _pick(group)
        if line:
            s.problems.append(line)
            say(f"{sid}: {line}")
        s.name = s.name or best.name
        s.problems += best.problems
        s.cells.update(best.cells)
        if best.record_key:
            s.record_keys[exp] = best.record_key


def _add_runs(students: dict[str, Student], folder: Path, base: Path, say: Say) -> None:
    from dlab.report.handin import read_student_file

    s = _student(students, folder.name)
    s.sources.append(folder.name + "/")
    if (folder / "student.toml").is_file():
        try:
            s.name = s.name or read_student_file(folder / "student.toml").get("name", "")
        except UsageError as exc:
            s.problems.append(_one_line(exc))
    cells, warned = read_runs_folder(folder, base)
    for line in warned:
        say(line)
    handed = {pid for pid, c in s.cells.items() if c.zip_path is not None}
    for pid, cell in cells.items():
        if pid in handed:
            if cell.verdict != NOT_RUN:
                s.problems.append(f"{pid}: the hand-in's run is shown, not the runs "
                                  f"folder's {cell.run}")
        else:
            s.cells[pid] = cell


def _fill_missing(s: Student) -> None:
    """Cells left "not run" say whether the experiment was handed in at all."""
    for exp in EXPERIMENTS:
        cells = [s.cells[p.id] for p in exp.programs]
        if all(c.verdict == NOT_RUN and not c.source for c in cells):
            for c in cells:
                c.note = c.note or f"no hand-in or run of experiment {exp.number}"


# ------------------------------------------------------------------------ copies


COPY_WHY = {
    "manifest": "the same manifest.json (the same files)",
    "timings": "identical numbers and identical timings (start, finish, every duration)"}


def find_copies(students: list[Student]) -> tuple[list[str], tuple[int, int]]:
    """Flag runs that are the same files as another student's (see the module doc);
    return a line per flagged program and group of students, and (groups of runs of one
    program with identical numbers by several students, the most students in one):
    expected at the same seed, and not flagged."""
    cells = [(s.id, c) for s in students for c in s.cells.values() if c.numbers]
    groups: dict[tuple[str, ...], list[tuple[str, Cell]]] = defaultdict(list)
    for sid, c in cells:
        if c.manifest_sha:
            groups[("manifest", c.program, c.manifest_sha)].append((sid, c))
        groups[("timings", c.program, c.numbers, c.timings)].append((sid, c))
    flagged: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (kind, pid, *_), members in groups.items():
        ids = tuple(sorted({sid for sid, _ in members}, key=_natural))
        if len(ids) < 2:
            continue
        flagged.setdefault((pid, ids), []).append(COPY_WHY[kind])
        for sid, c in members:
            c.copies = sorted(set(c.copies) | set(ids) - {sid}, key=_natural)
            c.copy_why = "; ".join(dict.fromkeys([*filter(None, [c.copy_why]),
                                                  COPY_WHY[kind]]))
    lines = [f"copy: {pid} of {', '.join(ids)}: {'; '.join(whys)}"
             for (pid, ids), whys in flagged.items()]
    same: dict[tuple[str, str], set[str]] = defaultdict(set)
    for sid, c in cells:
        same[(c.program, c.numbers)].add(sid)
    for sid, c in cells:
        c.same_numbers = len(same[(c.program, c.numbers)] - {sid})
    lines += _record_copies(students)
    shared = [len(ids) for ids in same.values() if len(ids) > 1]
    return lines, (len(shared), max(shared, default=0))


def _record_copies(students: list[Student]) -> list[str]:
    by_key: dict[tuple[int, str], set[str]] = defaultdict(set)
    for s in students:
        for exp, key in s.record_keys.items():
            by_key[(exp, key)].add(s.id)
    lines = []
    for (exp, _), ids in sorted(by_key.items()):
        if len(ids) < 2:
            continue
        ordered = sorted(ids, key=_natural)
        for s in students:
            if s.id in ids:
                s.record_copies[exp] = [i for i in ordered if i != s.id]
                for p in next(e for e in EXPERIMENTS if e.number == exp).programs:
                    s.cells[p.id].record_copies = s.record_copies[exp]
        lines.append(f"copy: the record of experiment {exp} of {', '.join(ordered)} is the "
                     "same text apart from the student lines")
    return lines


# ------------------------------------------------------------------------ scores


def score_cell(cell: Cell, rubric: Rubric) -> float:
    """A program's points under the rubric (see `Rubric`)."""
    if cell.verdict in (UNVERIFIED, UNREADABLE, NOT_RUN) or cell.status != "ok":
        return 0.0
    if cell.profile not in REAL:
        return rubric.smoke
    points = rubric.full if cell.profile == "full" else rubric.quick
    if cell.targets_applicable:
        points += rubric.targets * cell.targets_met / cell.targets_applicable
    if cell.verdict != MODIFIED:
        points += rubric.intact
    return points


def score(s: Student, rubric: Rubric) -> None:
    """Each experiment's suggestion: None (blank) when nothing of it was handed in or a
    part of it cannot be read, which the instructor has to look at."""
    for exp in EXPERIMENTS:
        cells = [s.cells[p.id] for p in exp.programs]
        for c in cells:
            c.points = round(score_cell(c, rubric), 2)
        if any(c.verdict == UNREADABLE for c in cells) or all(
                c.verdict == NOT_RUN and not c.source for c in cells):
            s.scores[exp.number] = None
        else:
            s.scores[exp.number] = round(min(sum(c.points for c in cells),
                                             rubric.suggested_max), 1)


# ------------------------------------------------------------------------ reruns


def _rerun_one(folder: str, scratch: str) -> Any:
    """One rerun in a worker process (module level, so a spawned process can import it)."""
    from dlab.verify import verify_run

    return verify_run(Path(folder), Path(scratch))


def sample_runs(students: list[Student], n: int, seed: int) -> list[tuple[Student, Cell]]:
    """`n` runs of each student (fewer where fewer can be rerun), drawn with
    `random.Random(seed)` from the student's rerunnable cells in program order."""
    rng = random.Random(seed)
    picks = []
    for s in students:
        candidates = [c for pid, c in s.cells.items() if c.rerunnable]
        picks += [(s, c) for c in rng.sample(candidates, min(n, len(candidates)))]
    return picks


def _rerun_folders(picks: list[tuple[Student, Cell]], tmp: Path) -> list[Path | str]:
    """Each picked run's folder (a zip's extracted again), or why it cannot be had."""
    from dlab.bundle import read_handin

    roots: dict[Path, Path | str] = {}
    out: list[Path | str] = []
    for _, c in picks:
        if c.zip_path is None:
            out.append(c.folder)
            continue
        if c.zip_path not in roots:
            try:
                roots[c.zip_path] = read_handin(c.zip_path, tmp / f"handin-{len(roots)}")[1]
            except DlabError as exc:
                roots[c.zip_path] = _one_line(exc)
        root = roots[c.zip_path]
        out.append(root / c.run if isinstance(root, Path) else root)
    return out


def rerun_sample(table: ClassTable, n: int, jobs: int, seed: int, say: Say) -> None:
    """Rerun `n` sampled runs per student (`verify_run`, `jobs` processes at a time)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from dlab.verify import CANNOT

    picks = sample_runs(table.students, n, seed)
    counts: dict[str, int] = defaultdict(int)
    with tempfile.TemporaryDirectory(prefix="dlab-class-") as tmp:
        folders = _rerun_folders(picks, Path(tmp))

        def done(k: int, status: str, details: str, step: Step) -> None:
            s, c = picks[k]
            c.rerun, c.rerun_details = status, details
            counts[status] += 1
            step([f"rerun {sum(counts.values())}/{len(picks)}: {s.id} {c.program}: {status}"
                  + (f" ({details})" if details else "")])

        with _progress(len(picks), "rerunning", say) as step:
            todo = [(k, f) for k, f in enumerate(folders) if isinstance(f, Path)]
            for k, f in enumerate(folders):
                if not isinstance(f, Path):
                    done(k, CANNOT, f, step)
            if jobs <= 1:
                for k, f in todo:
                    v = _rerun_one(str(f), str(Path(tmp) / f"rerun-{k}"))
                    done(k, v.status, _rerun_text(v), step)
            else:
                spawn = get_context("spawn")  # no fork of a process that loaded torch
                with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
                    futures = {pool.submit(_rerun_one, str(f), str(Path(tmp) / f"rerun-{k}")):
                               k for k, f in todo}
                    for fut in as_completed(futures):
                        try:
                            v = fut.result()
                            done(futures[fut], v.status, _rerun_text(v), step)
                        except Exception as exc:  # a worker that died: that run's cell says so
                            done(futures[fut], CANNOT, f"the rerun failed: {_one_line(exc)}",
                                 step)
    none = sum(not any(c.rerunnable for c in s.cells.values()) for s in table.students)
    table.reran = [f"reran {len(picks)} runs ({n} per student where possible, sample seed "
                   f"{seed}): " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                                   or "none")
                   + (f"; {none} student(s) have no run that can be rerun (none ended ok "
                      "intact and made by this dlab's code)" if none else "")]


def _rerun_text(v: Any) -> str:
    if v.status == "verified":
        return (f"{v.exact} of {v.compared} numbers bit for bit, the rest within tolerance; "
                f"rerun {v.seconds:.1f} s" if v.exact != v.compared else
                f"all {v.compared} numbers bit for bit; rerun {v.seconds:.1f} s")
    return "; ".join(v.details)


# ------------------------------------------------------------------------ building


def class_table(dir: str | Path, rerun: int = 0, jobs: int = 1,
                rubric: Rubric | str | Path | None = None, seed: int = 0,
                say: Say = print) -> ClassTable:
    """Read every hand-in under `dir` into one table (see the module doc).

    `rerun` runs per student are rerun (a sample seeded by `seed`), `jobs` at a time;
    `rubric` is a `Rubric`, a TOML file, or None for the built-in one. UsageError (one
    line) for a folder that does not exist, is a file or holds nothing to read.
    """
    t0 = time.perf_counter()
    folder = Path(dir)
    if rerun < 0 or jobs < 1:
        raise UsageError(f"--rerun {rerun} / --jobs {jobs}: rerun is 0 or more, jobs 1 or "
                         "more")
    rules = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    zips, runs, skipped = find_sources(folder)
    lines: list[str] = []

    def tell(line: str) -> None:
        lines.append(line)
        say(line)

    for line in skipped:
        tell(line)
    students: dict[str, Student] = {}
    handins = []
    with tempfile.TemporaryDirectory(prefix="dlab-class-") as tmp, \
            _progress(len(zips), "reading hand-ins", say) as step:
        for k, z in enumerate(zips):
            h = read_zip(z, Path(tmp) / str(k), folder)
            handins.append(h)
            lines.extend(h.problems)
            step(h.problems)
    _add_handins(students, handins, tell)
    for r in runs:
        _add_runs(students, r, folder, tell)
    ordered = sorted(students.values(), key=lambda s: _natural(s.id))
    for s in ordered:
        _fill_missing(s)
    table = ClassTable(folder, ordered, list(PROGRAMS), rules, lines=lines)
    table.copies, table.same_numbers = find_copies(ordered)
    if rerun:
        rerun_sample(table, rerun, jobs, seed, say)
    for s in ordered:
        score(s, rules)
    table.seconds = time.perf_counter() - t0
    table.made = datetime.now(UTC).isoformat(timespec="seconds")
    for line in summary_lines(table):
        say(line)
    return table


def summary_lines(table: ClassTable) -> list[str]:
    counts = table.counts()
    lines = [f"{len(table.students)} students x {len(table.programs)} programs: "
             + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
             + f" ({table.seconds:.1f} s)"]
    lines += table.copies or ["copies: none (no two students' runs are the same files)"]
    other = sum(c.same_code is False for s in table.students for c in s.cells.values())
    if other:
        lines.append(f"{other} run(s) were made by other code than this dlab (another version "
                     "or changed sources): the table reads them, but only that code can rerun "
                     "them (`dlab verify`)")
    groups, most = table.same_numbers
    if groups:
        lines.append(f"identical numbers at the same seed: {groups} group(s) of runs of one "
                     f"program with the same numbers (up to {most} students each); expected "
                     "(the same seed, profile and settings give the same numbers) and not "
                     "flagged")
    return lines + table.reran


# ------------------------------------------------------------------------ writing

CSV_FIELDS = ("student_id", "student_name", "experiment", "program", "verdict", "run_verdict",
              "status", "targets_met", "targets_applicable", "targets", "profile", "seed",
              "run_started", "manifest", "same_code", "notebook", "chosen", "rerun",
              "rerun_details", "copy_of", "copy_why", "record_same_as", "same_numbers",
              "points", "source", "run", "problems", "student_problems")


def target_text(t: dict[str, Any]) -> str:
    met = t.get("met")
    word = ("not shown" if t.get("shown") is False else
            {True: "met", False: "missed"}.get(met, "n/a"))
    value = t.get("value")
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{word}: {t.get('rule', t.get('name'))} (value {shown})"


def csv_rows(table: ClassTable) -> list[dict[str, Any]]:
    rows = []
    for s in table.students:
        for pid in table.programs:
            c = s.cells[pid]
            rows.append({
                "student_id": s.id, "student_name": s.name, "experiment": pid.split(".")[0],
                "program": pid, "verdict": c.verdict, "run_verdict": c.run_verdict,
                "status": c.status, "targets_met": c.targets_met if c.targets else "",
                "targets_applicable": c.targets_applicable if c.targets else "",
                "targets": "; ".join(target_text(t) for t in c.targets),
                "profile": c.profile, "seed": "" if c.seed is None else c.seed,
                "run_started": c.started, "manifest": c.manifest,
                "same_code": {True: "yes", False: "no"}.get(c.same_code, ""),
                "notebook": c.notebook, "chosen": c.note, "rerun": c.rerun,
                "rerun_details": c.rerun_details, "copy_of": " ".join(c.copies),
                "copy_why": c.copy_why if c.copies else "",
                "record_same_as": " ".join(c.record_copies),
                "same_numbers": c.same_numbers if c.numbers else "", "points": f"{c.points:g}",
                "source": c.source, "run": c.run, "problems": "; ".join(c.problems),
                "student_problems": "; ".join(s.problems)})
    return rows


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


GRADEBOOK_ID = "ID number"


def gradebook_csv(table: ClassTable) -> str:
    """Suggested scores for an LMS: "ID number" then "Experiment 1" ... "Experiment 16".

    Moodle (Grades > Import > CSV file): map from "ID number" to the user's ID number
    (`useridnumber`), and each "Experiment N" column to its grade item. Canvas (Grades >
    Import): it wants the columns Student, ID, SIS User ID, SIS Login ID and Section and
    matches assignment columns by name; rename "ID number" to "SIS User ID" (where the
    student ids are the SIS ids), add the other columns empty, and each "Experiment N"
    column fills (or creates) the assignment of that name. A blank cell suggests nothing:
    nothing of the experiment was handed in, or a part of it cannot be read. The scores
    leave out the viva-voce marks (`Rubric.viva`), which are the evaluator's.
    """
    header = [GRADEBOOK_ID] + [f"Experiment {e.number}" for e in EXPERIMENTS]
    rows = [[s.id] + ["" if s.scores.get(e.number) is None else f"{s.scores[e.number]:g}"
                      for e in EXPERIMENTS] for s in table.students]
    return _csv(header, rows)


def write_class(table: ClassTable, out_dir: str | Path) -> dict[str, Path]:
    """class.html, class.csv and gradebook.csv in `out_dir`, each written atomically."""
    from dlab.classroom_page import class_page

    out_dir = Path(out_dir)
    rows = csv_rows(table)
    written = {
        "class.csv": atomic_write(out_dir / "class.csv", _csv(
            list(CSV_FIELDS), [[r[k] for k in CSV_FIELDS] for r in rows])),
        "gradebook.csv": atomic_write(out_dir / "gradebook.csv", gradebook_csv(table)),
        "class.html": atomic_write(out_dir / "class.html", class_page(table)),
    }
    return written


def main(dir: str | Path, out: str | Path | None = None, rerun: int = 0, jobs: int = 1,
         rubric: str | Path | None = None, seed: int = 0) -> int:
    """`dlab class DIR`: read the class, write the three files to `out` (default ./class),
    print where; 0 once written. Bad input raises UsageError (one line), before anything
    is written."""
    from dlab.runs import check_writable

    rules = load_rubric(rubric)
    find_sources(Path(dir))  # a missing or empty folder says so before anything runs
    out_dir = check_writable(out if out is not None else "class", "--out")
    table = class_table(dir, rerun=rerun, jobs=jobs, rubric=rules, seed=seed, say=print)
    for name, path in write_class(table, out_dir).items():
        print(f"{name}: {path}")
    print(f"gradebook.csv: suggested scores out of {rules.out_of:g} without the viva-voce "
          f"marks ({rules.viva:g}, the evaluator's); import it with the column "
          f"'{GRADEBOOK_ID}' as the student's ID number")
    return 0
