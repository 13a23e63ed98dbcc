"""`dlab report`: the latest run of each program, collected into one record."""

from __future__ import annotations

from pathlib import Path

from dlab.errors import UsageError
from dlab.registry import PROGRAMS
from dlab.report.record import lab_record
from dlab.runs import atomic_write, latest_run


def write_report(runs_dir: str | Path = "runs", out: str | Path | None = None) -> Path:
    """Write `lab-record.md` (in `runs_dir` unless `out` is given) and return its path."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UsageError(f"no runs folder at {runs_dir}; run programs first, e.g. `dlab run 1`")
    latest = {}
    for pid in PROGRAMS:
        folder = latest_run(runs_dir, pid)
        if folder is not None:
            latest[pid] = folder
    if not latest:
        raise UsageError(f"no finished runs under {runs_dir}; run programs first, e.g. `dlab run 1`")
    target = Path(out) if out else runs_dir / "lab-record.md"
    if target.parent.resolve() != runs_dir.resolve():
        # figure links are relative to the runs folder
        raise UsageError("--out must be a file inside the runs folder, so figure links resolve")
    atomic_write(target, lab_record(runs_dir, latest))
    return target
