"""The public Python API, for notebooks and scripts. The command line calls the same
functions underneath (`dlab.api.run_program`, `dlab.report.lab.write_report`).

    import dlab
    dlab.list_programs()                      # [{"id": "1.1", "title": ..., "built": True}, ...]
    dlab.show("5.1")                          # aim, the manual's defect, settings per profile
    r = dlab.run("5.1", profile="smoke", lrs=(0.01, 0.5, 30.0))   # -> Result
    r.verdict, r.metrics["best_lr"], r.figures
    dlab.load_run(r.folder)                   # the same Result, read back
    dlab.report("runs")                       # {"markdown": ..., "html": ...}

Settings are keyword arguments with the names `dlab show` lists; they are checked exactly
as `--set` values are (wrong names, types and ranges raise `dlab.errors.UsageError`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from dlab.errors import UsageError
from dlab.result import Result, load_run

__all__ = ["Result", "list_programs", "load_run", "report", "run", "show"]


def list_programs() -> list[dict[str, Any]]:
    """Every program: id, experiment, title and whether it is built."""
    from dlab.registry import PROGRAMS

    return [{"id": p.id, "experiment": p.experiment, "title": p.title,
             "built": p.implemented} for p in PROGRAMS.values()]


@dataclasses.dataclass
class ProgramView:
    """What `dlab.show(id)` returns: the program's aim, the manual's defect and its
    settings at each profile."""

    id: str
    title: str
    aim: str
    defect: str | None
    target: str | None
    settings: dict[str, dict[str, Any]]  # {setting: {"smoke": v, "quick": v, "full": v}}

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.id} {self.title}**", "", f"*Aim.* {self.aim}"]
        if self.defect:
            lines += ["", f"*The manual.* {self.defect}"]
        if self.target:
            lines += ["", f"*Target.* {self.target}"]
        lines += ["", "| setting | smoke | quick (default) | full |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['smoke']} | {v['quick']} | {v['full']} |"
                  for k, v in self.settings.items()]
        return "\n".join(lines)


def show(program_id: str) -> ProgramView:
    """The aim, the manual's defect, the target and the settings of one program."""
    program = _one(program_id)
    impl = program.load()
    settings = {}
    for f in dataclasses.fields(impl.config):
        default = getattr(impl.config(), f.name)
        settings[f.name] = {prof: impl.profiles.get(prof, {}).get(f.name, default)
                            for prof in ("smoke", "full")}
        settings[f.name]["quick"] = default
    return ProgramView(program.id, program.title, program.aim, program.defect,
                       program.target, settings)


def _one(program_id: str):
    from dlab.registry import resolve

    programs = resolve([str(program_id)])
    if len(programs) != 1:
        raise UsageError(f"{program_id!r} names {len(programs)} programs; give one, e.g. "
                         f"{programs[0].id}")
    return programs[0]


def as_setting_text(value: Any) -> str:
    """A Python value as the text `--set` takes: True -> "true", (1, 2) -> "1,2"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(as_setting_text(v) for v in value)
    if value is None:
        return "none"
    return str(value)


def run(program_id: str, profile: str = "quick", seed: int = 0, device: str = "auto",
        out: str | os.PathLike = "runs", *, data_dir: str | os.PathLike | None = None,
        quiet: bool = False, resume: bool = False, **settings: Any) -> Result:
    """Run one program (e.g. "12.1") and return its Result; the run folder is under `out`.

    A run that diverges or fails returns a Result with that status; bad input raises a
    `dlab.errors.DlabError`; Ctrl-C (KeyboardInterrupt) marks the folder interrupted.
    """
    from dlab.api import run_program

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a whole number >= 0, got {seed!r}")
    program = _one(program_id)
    sets = {k: as_setting_text(v) for k, v in settings.items()}
    outcome = run_program(program, profile=profile, seed=seed, device=device, sets=sets,
                          out=out, quiet=quiet, data_dir=data_dir, resume=resume)
    return load_run(outcome.folder)


def report(runs: str | os.PathLike = "runs", out: str | os.PathLike | None = None,
           **options: Any) -> dict[str, Path]:
    """Write the lab record (HTML and Markdown, optional PDF) from the latest runs under
    `runs`; return the paths written. Options are those of `dlab report`."""
    from dlab.report.lab import write_report

    return write_report(runs, out, **options)
