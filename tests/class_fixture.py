"""A class of 60 students for `dlab class`, made from a few real runs.

`real_runs(folder)` runs experiments 1 and 5 (seconds each) once:

- A: quick runs of 1.1, 1.2, 5.1 and 5.2 at the default settings (every target met);
- B: a second, separate quick run of 1.1 and 1.2 at the same seed (the same numbers,
  another start: what two honest students who ran the same command hand in);
- C: 5.1 at quick with `epochs=2` (misses `mean_good_final_loss <= 0.15`);
- S: smoke runs of the four programs.

`make_class(runs, folder)` gives each student copies of these runs made "at another
time" (`relive`): the run folder is copied with its start and finish moved on by the
student's number of minutes, and its manifest written again, as if that student had run
the same command then. The numbers stay what the seed makes them, so every honest
student has the same numbers as the others, as in a real class that ran the defaults;
no two honest students share a run's files. Then `dlab handin` (`make_handin`) makes
each student's zips, or the runs stay as a runs folder `DIR/<id>/`, and some hand-ins
are spoiled after the fact (a number edited, a file dropped, the zip cut short, a
handin.json of another format). `KINDS` says which students are which and what each
student's experiments 1 and 5 should show.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from dlab.bundle import make_handin
from dlab.io import write_json
from dlab.provenance import write_manifest
from dlab.registry import PROGRAMS
from dlab.report.handin import Student
from dlab.running import run_program

PIDS = ("1.1", "1.2", "5.1", "5.2")

# kind -> (students, verdicts of 1.1, 1.2, 5.1, 5.2). Everything else is "not run".
KINDS: dict[str, tuple[int, tuple[str, str, str, str]]] = {
    "good": (30, ("met", "met", "met", "met")),  # zips of experiments 1 and 5
    "runs": (6, ("met", "met", "met", "met")),  # a runs folder; 1.x from the B runs
    "missed": (4, ("met", "met", "missed", "met")),  # 5.1 with epochs=2
    "edited": (4, ("met", "met", "does not verify", "met")),  # 5.1's number edited in the zip
    "dropped": (1, ("met", "met", "does not verify", "met")),  # 5.1's history.csv left out
    "notebook": (3, ("met", "met", "met", "modified")),  # 5.2 changed in a notebook
    "smoke zip": (2, ("smoke only",) * 4),  # hand-ins made with --allow-smoke
    "smoke runs": (2, ("smoke only",) * 4),  # a runs folder of smoke runs only
    "corrupt": (2, ("met", "met", "cannot read", "cannot read")),  # experiment 5 zip cut
    "format": (1, ("met", "met", "cannot read", "cannot read")),  # handin.json format 2
    "copier": (2, ("met", "met", "met", "met")),  # the second hands in the first's runs
    "partial": (3, ("met", "met", "not run", "not run")),  # only experiment 1
}


@dataclass
class RealRuns:
    a: dict[str, Path]
    b: dict[str, Path]
    crippled: Path
    smoke: dict[str, Path]


def _only_run(out: Path, pid: str) -> Path:
    (folder,) = (p for p in (out / pid).iterdir() if p.is_dir())
    return folder


def real_runs(folder: Path) -> RealRuns:
    """The runs every student's are copied from (about 20 s on a laptop CPU)."""
    def run(pids, out, profile="quick", sets=None):
        for pid in pids:
            outcome = run_program(PROGRAMS[pid], profile=profile, sets=sets, out=out,
                                  quiet=True, device="cpu")
            assert outcome.status == "ok", outcome.message
        return {pid: _only_run(out, pid) for pid in pids}

    return RealRuns(a=run(PIDS, folder / "a"), b=run(("1.1", "1.2"), folder / "b"),
                    crippled=run(("5.1",), folder / "c", sets={"epochs": "2"})["5.1"],
                    smoke=run(PIDS, folder / "s", profile="smoke"))


def relive(run: Path, runs_dir: Path, minutes: int, change=None) -> Path:
    """Copy a run folder into `runs_dir` as if it had started `minutes` later; `change`
    (summary) edits metrics.json before the manifest is written again."""
    summary = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    t = summary["timings"]
    for key in ("started", "finished"):
        t[key] = (datetime.fromisoformat(t[key]) + timedelta(minutes=minutes)).isoformat(
            timespec="seconds")
    stamp, rest = run.name[:15], run.name[15:]
    new = (datetime.strptime(stamp, "%Y%m%d-%H%M%S") + timedelta(minutes=minutes))
    dest = runs_dir / summary["program"] / (new.strftime("%Y%m%d-%H%M%S") + rest)
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns(".*", "manifest.json"))
    if change is not None:
        change(summary)
    write_json(dest / "metrics.json", summary)
    write_manifest(dest)
    return dest


def notebook_modified(summary: dict) -> None:
    """What a run made step by step in a notebook with an edited step records."""
    summary["notebook"] = {
        "compared": True, "cells": [], "edited": ["3. train: fit the network"],
        "repeated": [], "skipped": [], "out_of_order": False, "modified": True}


def rewrite_zip(src: Path, change) -> None:
    """Rewrite a zip member by member in place; change(name, data) -> bytes or None."""
    tmp = src.with_suffix(".tmp")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for m in zin.infolist():
            data = change(m.filename, zin.read(m))
            if data is not None:
                zout.writestr(m.filename, data)
    tmp.replace(src)


def _bump(name: str, data: bytes) -> bytes:
    if name.startswith("runs/5.1/") and name.endswith("/metrics.json"):
        saved = json.loads(data)
        saved["metrics"]["best_lr"] = saved["metrics"]["best_lr"] * 2
        return json.dumps(saved).encode()
    return data


def _format_2(name: str, data: bytes) -> bytes:
    if name == "handin.json":
        return json.dumps({**json.loads(data), "format": 2}).encode()
    return data


def _runs_of(real: RealRuns, kind: str, k: int, where: Path) -> Path:
    """A student's runs folder: the kind's runs relived `k` minutes on."""
    if kind.startswith("smoke"):
        for pid in PIDS:
            relive(real.smoke[pid], where, k)
        return where
    for pid in PIDS:
        src = real.b[pid] if kind == "runs" and pid in real.b else real.a[pid]
        if kind == "missed" and pid == "5.1":
            src = real.crippled
        relive(src, where, k, notebook_modified if kind == "notebook" and pid == "5.2"
               else None)
    if kind == "runs":  # an older smoke run beside the quick one: the record takes quick
        relive(real.smoke["5.1"], where, k - 600)
    return where


@dataclass
class ClassFolder:
    folder: Path
    ids: dict[str, list[str]]  # kind -> student ids
    expected: dict[str, dict[str, str]]  # student id -> program -> verdict


def make_class(real: RealRuns, folder: Path, scratch: Path) -> ClassFolder:
    """The 60 students' hand-ins in `folder` (see the module doc)."""
    folder.mkdir(parents=True)
    ids: dict[str, list[str]] = {}
    expected: dict[str, dict[str, str]] = {}
    n = 0
    for kind, (count, verdicts) in KINDS.items():
        for _ in range(count):
            n += 1
            sid = f"S{n:03d}"
            ids.setdefault(kind, []).append(sid)
            expected[sid] = dict(zip(PIDS, verdicts, strict=True))
            first = ids[kind][0]
            _student(real, kind, sid, n, folder, scratch,
                     copy_from=first if kind == "copier" and first != sid else None)
    return ClassFolder(folder, ids, expected)


def _student(real: RealRuns, kind: str, sid: str, k: int, folder: Path, scratch: Path,
             copy_from: str | None = None) -> None:
    student = Student(f"Student {sid[1:]}", sid)
    if kind in ("runs", "smoke runs"):
        _runs_of(real, kind, k, folder / sid)
        return
    runs = _runs_of(real, kind, k, scratch / sid)
    smoke = kind == "smoke zip"
    for exp in (1,) if kind == "partial" else (1, 5):
        source = runs
        if copy_from and exp == 5:
            source = scratch / copy_from  # the other copier's runs, handed in as this student's
        zip_path = make_handin(source, exp, folder / f"{sid}-experiment-{exp:02d}.zip",
                               allow_smoke=smoke, student=student)
        if exp == 5:
            _spoil(kind, zip_path)


def _spoil(kind: str, zip_path: Path) -> None:
    if kind == "edited":
        rewrite_zip(zip_path, _bump)
    elif kind == "dropped":
        rewrite_zip(zip_path, lambda name, data: None if name.startswith("runs/5.1/")
                    and name.endswith("/history.csv") else data)
    elif kind == "corrupt":
        zip_path.write_bytes(zip_path.read_bytes()[: zip_path.stat().st_size // 2])
    elif kind == "format":
        rewrite_zip(zip_path, _format_2)
