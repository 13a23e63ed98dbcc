"""The public Python API, for notebooks and scripts. The command line calls the same
functions underneath (`dlab.running.run_program`, `dlab.report.lab.write_report`).

    import dlab
    dlab.list_programs()                      # [{"id": "1.1", "title": ..., "built": True}, ...]
    dlab.show("5.1")                          # aim, defect, settings, the manual compared
    r = dlab.run("5.1", profile="smoke", lrs=(0.01, 0.5, 30.0))   # -> Result
    r.verdict, r.metrics["best_lr"], r.figures
    dlab.load_run(r.folder)                   # the same Result, read back
    dlab.report("runs")                       # {"markdown": ..., "html": ...}

    lab = dlab.start("5.1", profile="smoke")  # the same run, one step at a time:
    cfg, ctx = lab.config, lab.ctx            # run the program's steps (see dlab.steps)
    ...                                       # with cfg and ctx, lab.look() after each,
    r = lab.finish()                          # then check the targets -> Result

Settings are keyword arguments with the names `dlab show` lists; they are checked exactly
as `--set` values are (wrong names, types and ranges raise `dlab.errors.UsageError`).
"""

from __future__ import annotations

import dataclasses
import linecache
import os
import re
import sys
from pathlib import Path
from typing import Any

from dlab.errors import DlabError, UsageError
from dlab.result import Result, load_run

__all__ = ["ProgramRun", "Result", "list_programs", "load_run", "report", "run", "show",
           "start"]


def list_programs() -> list[dict[str, Any]]:
    """Every program: id, experiment, title and whether it is built."""
    from dlab.registry import PROGRAMS

    return [{"id": p.id, "experiment": p.experiment, "title": p.title,
             "built": p.implemented} for p in PROGRAMS.values()]


@dataclasses.dataclass
class ProgramView:
    """What `dlab.show(id)` returns: the program's aim, the manual's defect, its settings
    at each profile, and the manual's program against dlab's, aspect by aspect
    (`manual`: "network: as in the manual (...)" or "...; changed because ...")."""

    id: str
    title: str
    aim: str
    defect: str | None
    target: str | None
    settings: dict[str, dict[str, Any]]  # {setting: {"smoke": v, "quick": v, "full": v}}
    manual: list[str] = dataclasses.field(default_factory=list)

    def manual_text(self) -> str:
        """The comparison with the manual's program as plain text, for the command line."""
        return "\n".join(["The manual's program against dlab's:",
                          *(f"  {line}" for line in self.manual)])

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.id} {self.title}**", "", f"*Aim.* {self.aim}"]
        if self.defect:
            lines += ["", f"*The manual.* {self.defect}"]
        if self.target:
            lines += ["", f"*Target.* {self.target}"]
        if self.manual:
            lines += ["", "*The manual's program against dlab's.*", ""]
            lines += [f"- {line}" for line in self.manual]
        lines += ["", "| setting | smoke | quick (default) | full |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['smoke']} | {v['quick']} | {v['full']} |"
                  for k, v in self.settings.items()]
        return "\n".join(lines)


def show(program_id: str) -> ProgramView:
    """The aim, the manual's defect, the target, the settings of one program and how
    it compares with the manual's program."""
    from dlab.manual import fidelity

    program = _one(program_id)
    impl = program.load()
    settings = {}
    for f in dataclasses.fields(impl.config):
        default = getattr(impl.config(), f.name)
        settings[f.name] = {prof: impl.profiles.get(prof, {}).get(f.name, default)
                            for prof in ("smoke", "full")}
        settings[f.name]["quick"] = default
    return ProgramView(program.id, program.title, program.aim, program.defect,
                       program.target, settings, fidelity(program.id).lines())



def _one(program_id: str):
    from dlab.registry import resolve

    programs = resolve([str(program_id)])
    if len(programs) != 1:
        raise UsageError(f"{program_id!r} names {len(programs)} programs; give one, e.g. "
                         f"{programs[0].id}")
    return programs[0]


def _checked(program_id: str, seed: Any, settings: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """The one program `program_id` names and its settings as `--set` text; a seed that is
    not a whole number >= 0 is refused (the settings are checked when the run opens)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a whole number >= 0, got {seed!r}")
    return _one(program_id), {k: as_setting_text(v) for k, v in settings.items()}


PYTHON_WORDS = [  # the command line's words in an error, as the Python API spells them
    (re.compile(r"--set (\w+)"), r"\1"), (re.compile(r"--resume\b"), "resume=True"),
    (re.compile(r"--(out|device|profile|seed) "), r"\1="),
    (re.compile(r"--(out|device|profile|seed)\b"), r"\1=..."),
]


def _in_python_words(exc: DlabError) -> DlabError:
    """The same error with `--set lr=fast` written `lr=fast`, `--resume` `resume=True`."""
    text = str(exc)
    for pattern, words in PYTHON_WORDS:
        text = pattern.sub(words, text)
    exc.args = (text, *exc.args[1:])
    return exc


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
    from dlab.running import run_program

    program, sets = _checked(program_id, seed, settings)
    try:
        outcome = run_program(program, profile=profile, seed=seed, device=device, sets=sets,
                              out=out, quiet=quiet, data_dir=data_dir, resume=resume)
    except DlabError as exc:
        raise _in_python_words(exc) from None
    return load_run(outcome.folder)


def report(runs: str | os.PathLike = "runs", out: str | os.PathLike | None = None,
           **options: Any) -> dict[str, Path]:
    """Write the lab record (HTML and Markdown, optional PDF) from the latest runs under
    `runs`; return the paths written. Options are those of `dlab report`."""
    from dlab.report.lab import write_report

    return write_report(runs, out, **options)


def start(program_id: str, profile: str = "quick", seed: int = 0, device: str = "auto",
          out: str | os.PathLike = "runs", *, data_dir: str | os.PathLike | None = None,
          **settings: Any) -> ProgramRun:
    """Open a run of one program to be carried out step by step, as a notebook does: the
    run folder is made and marked running, `config` and `ctx` are what the program's
    `run(cfg, ctx)` receives. Run its steps (`dlab.steps.steps`), then `finish()`."""
    from dlab.running import open_run

    program, sets = _checked(program_id, seed, settings)
    try:
        opened = open_run(program, profile=profile, seed=seed, device=device, sets=sets,
                          out=out, data_dir=data_dir)
    except DlabError as exc:
        raise _in_python_words(exc) from None
    return ProgramRun(opened)


class ProgramRun:
    """A run opened by `dlab.start`: `config` and `ctx` for the program's steps, `look()`
    to show what the last step added (data, models, tables, sentences, measured values,
    figures), `finish()` to check the targets and write the run folder."""

    def __init__(self, opened: Any):
        from dlab.steps import steps

        self._opened = opened
        self.config = opened.ctx.config
        self.ctx = opened.ctx
        self.steps = steps(opened.impl.run)
        self.looked = 0
        self._cells: list[str] = []  # the source of each notebook cell that looked
        self._scripts: list[str] = []  # files (not cells) that called look()
        self._seen = {"data": 0, "tables": 0, "analysis": 0, "figures": 0, "metrics": set()}
        self.result: Result | None = None

    def __repr__(self) -> str:
        return (f"ProgramRun({self.ctx.program.id}, profile {self.ctx.profile}, seed "
                f"{self.ctx.seed}, {self.looked} of {len(self.steps)} steps looked at, "
                f"folder {self.ctx.folder})")

    def look(self, *objects: Any, **named: Any) -> None:
        """Show `objects` and `named` ones (models: their layers, parameter count and the
        file of their class) and what the run gained since the last look."""
        from dlab.report.record import md_table

        ctx, seen = self.ctx, self._seen
        self.looked += 1
        source, where = _calling_cell(sys._getframe(1))
        if source is None:
            self._scripts.append(where)
        else:
            self._cells.append(source)
        parts: list[str] = [describe(obj) for obj in objects if obj is not None]
        parts += [f"**{name}**: none with these settings" if obj is None else
                  f"**{name}**\n\n{describe(obj)}" for name, obj in named.items()]
        new_data = ctx.data_lines[seen["data"]:]
        parts += [f"- {line}" for line in new_data]
        for t in ctx.tables[seen["tables"]:]:
            parts += ["", f"**{t.title}**", "", md_table(t.columns, t.rows)]
        new_metrics = [k for k in ctx.metrics if k not in seen["metrics"]]
        scalars = [k for k in new_metrics if isinstance(ctx.metrics[k], int | float | str)]
        if scalars:
            parts += ["", md_table(["measured", "value"], [[k, ctx.metrics[k]] for k in scalars])]
        if len(scalars) < len(new_metrics):
            parts += ["", "Also measured (lists and tables, in `ctx.metrics`): "
                      + ", ".join(k for k in new_metrics if k not in scalars)]
        parts += [f"- {line}" for line in ctx.analysis[seen["analysis"]:]]
        figures = ctx.figures[seen["figures"]:]
        seen.update(data=len(ctx.data_lines), tables=len(ctx.tables),
                    analysis=len(ctx.analysis), figures=len(ctx.figures))
        seen["metrics"] |= set(new_metrics)
        _show("\n".join(parts), [(ctx.folder / f["file"], f.get("caption", ""))
                                 for f in figures])

    def finish(self) -> Result:
        """Check the targets, write metrics.json and record.md, and return the Result.
        Refused until every step has run (each step's cell ends with `look()`)."""
        if self.result is not None:
            return self.result
        if self.looked < len(self.steps):
            raise UsageError(f"{self.looked} of the {len(self.steps)} steps of "
                             f"{self.ctx.program.id} have run; run the cells above first")
        from dlab.running import close_run

        self.ctx.notebook = self.provenance()
        if self.ctx.notebook.get("compared"):
            where = {k: self.ctx.program_code[0][k] for k in ("module", "function")} \
                if self.ctx.program_code else {}
            self.ctx.program_code = [{**where, **cell} for cell in self.ctx.notebook["cells"]]
        try:
            outcome = close_run(self._opened, lambda: None)
        finally:
            self._opened.lock.release()
        self.result = load_run(outcome.folder)
        return self.result


    def provenance(self) -> dict[str, Any]:
        """What ran, against the package's steps (`dlab.steps.compare_cells`); for steps
        run from a script rather than notebook cells, only where they came from."""
        from dlab.steps import compare_cells

        if self._scripts:
            return {"compared": False, "where": sorted(set(self._scripts)),
                    "modified": None}
        return compare_cells(self.steps, self._cells)


def _calling_cell(frame: Any) -> tuple[str | None, str]:
    """(source, filename) of the notebook cell that `frame` runs, or (None, filename) when
    it runs a file on disk. IPython keeps each cell's source in `linecache` under a name
    that is no file (ipykernel's `.../ipykernel_<pid>/<hash>.py`, `<ipython-input-...>`)."""
    name = frame.f_code.co_filename
    cell = name.startswith("<") or "ipykernel_" in name or not os.path.isfile(name)
    lines = linecache.getlines(name) if cell else []
    return ("".join(lines) if lines else None), name


def describe(obj: Any) -> str:
    """A model in words: its layers, its parameter count and where its class is written."""
    if isinstance(obj, dict):
        return "\n\n".join(f"**{k}**\n\n{describe(v)}" for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return "\n\n".join(describe(v) for v in obj)
    text = repr(obj)
    count = ""
    try:
        import torch

        if callable(getattr(obj, "count_params", None)):  # dlab.scratch and Keras models
            count = f", {int(obj.count_params()):,} parameters"  # (Keras on torch is also
            text = _summary_text(obj) or text                  # an nn.Module: ask it first)
        elif isinstance(obj, torch.nn.Module):
            from dlab.models import count_parameters

            count = f", {count_parameters(obj):,} parameters"
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    except (ValueError, AttributeError, RuntimeError):  # a Keras model not built yet
        pass
    where = _written_in(type(obj))
    if where:
        where = f", written in `{where}`"
    elif hasattr(obj, "modules"):  # a container (ModuleDict, Sequential) of dlab models
        found = dict.fromkeys(w for m in obj.modules() if (w := _written_in(type(m))))
        where = f", its parts written in `{'`, `'.join(found)}`" if found else ""
    head = f"`{type(obj).__name__}`{count}{where}"
    return f"{head}\n\n```\n{text}\n```"


def _written_in(cls: type) -> str:
    """The file of a class of this package, as src/dlab/...; "" for other classes."""
    import inspect

    try:
        source = Path(inspect.getsourcefile(cls) or "").resolve()
        return f"src/dlab/{source.relative_to(Path(__file__).resolve().parent).as_posix()}"
    except (TypeError, ValueError):
        return ""


def _summary_text(model: Any) -> str:
    """The layer table of a dlab.scratch model (returned) or a Keras model (printed)."""
    lines: list[str] = []
    try:
        out = model.summary(print_fn=lambda line, *a, **k: lines.append(line))
    except TypeError:  # dlab.scratch: summary() returns the text
        out = model.summary()
    return out if isinstance(out, str) else "\n".join(lines)


def _show(markdown: str, figures: list[tuple[Path, str]]) -> None:
    """Markdown and figures in a notebook's output; plain text elsewhere."""
    from dlab.runs import in_jupyter

    if in_jupyter():
        from IPython.display import Image, Markdown, display

        if markdown.strip():
            display(Markdown(markdown))
        for path, caption in figures:
            display(Image(filename=str(path)))
            display(Markdown(f"*{caption}*"))
        return
    if markdown.strip():
        print(markdown)
    for path, caption in figures:
        print(f"figure {path}: {caption}")
