"""Run folders: seeding, device choice, progress, and atomic writes.

A run of one program lives in `OUT/<program id>/<timestamp>-<profile>-seed<seed>/` and
holds `metrics.json` (status, config, seed, versions, timings, metrics and the record's
content), `history.csv` where something was trained, figures as PNG, `record.md`, and
`model.pt` where a model was trained. Every file is written to a temporary name and
renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlab import config as configs
from dlab.errors import DeviceError, UsageError
from dlab.io import atomic_path, save_torch, to_jsonable, write_csv, write_json
from dlab.provenance import code_info
from dlab.registry import ProgramInfo
from dlab.uncertainty import Difference
from dlab.verdicts import compare, judge, overall
from dlab.version import __version__

STATUSES = ("ok", "diverged", "interrupted", "failed", "running")
RESUMABLE = ("interrupted", "running", "failed")  # "running": only when its process is gone
LOCK_NAME = ".lock"
OUTPUT_LOG = "output.log"  # every line the run logged
OUTPUT_TAIL = 25  # lines of it the record shows
HISTORY_EVERY_S = 2.0  # history.csv is rewritten at most this often during training
EPOCH_LINES = 10  # a model trained longer prints about this many epoch lines (all in
#                   history.csv) ...
EPOCH_LINE_EVERY_S = 10.0  # ... and one at least this often, so a slow run shows progress
CHECKPOINT_EVERY_S = 10.0  # checkpoints are saved at most this often (and at the end)


class Diverged(Exception):
    """Training produced a loss that is NaN or infinite."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _missing_parents(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, outermost first."""
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing[::-1]


def check_writable(folder: str | os.PathLike, option: str = "--out") -> Path:
    """Check that run folders can be written under `folder` without leaving anything:
    folders created for the check are removed again. UsageError (one line) if not."""
    if str(folder).strip() == "":
        raise UsageError(f"{option} is empty; give a folder, e.g. {option} runs")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder}: exists and is not a folder; choose another with "
                         f"{option}")
    created = _missing_parents(folder)
    try:
        try:
            for p in created:
                p.mkdir()
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".dlab-write-test-"):
                pass
        finally:
            remove_created(created)
    except OSError as exc:
        what = "output folder" if option == "--out" else "data folder"
        raise UsageError(
            f"cannot write to {what} {folder} ({exc.strerror or exc}); "
            f"choose another with {option}"
        ) from None
    return folder


def check_data_dir(data_dir: str | os.PathLike | None, option: str = "--data-dir") -> None:
    """A data folder that is given must not be a file (or an empty name)."""
    if data_dir is None:
        return
    if str(data_dir) == "":
        raise UsageError(f"{option} is empty; give the data folder, e.g. {option} ~/data")
    path = Path(data_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {data_dir}: is a file, not a folder; give the folder "
                         "that holds the data sets (e.g. MNIST/raw/), or leave it out")


def make_folders(folder: Path) -> list[Path]:
    """mkdir -p `folder`; return the folders it created (outermost first)."""
    created = _missing_parents(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return created


def remove_created(created: list[Path]) -> None:
    """Remove folders `make_folders` created, innermost first, where they are empty."""
    for p in reversed(created):
        try:
            p.rmdir()
        except OSError:
            pass


# ------------------------------------------------------------------ run lock


class RunLock:
    """An exclusive lock on a run folder: `.lock` holds the writer's PID and is locked
    with flock, which the system releases when the process ends in any way (kill -9
    included), so a lock left by a dead process never blocks `--resume`."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl

        for _ in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise UsageError(f"{self.path.parent}: in use by another dlab process "
                                 f"({lock_owner(self.path.parent) or 'pid unknown'}); wait "
                                 "for it to finish") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed it as we opened it: take the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {platform.node()}\n".encode())
            self.fd = fd
            return self
        raise UsageError(f"{self.path.parent}: could not lock the run folder; try again")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def is_locked(folder: Path) -> bool:
    """Whether a live process holds the run folder's lock."""
    import fcntl

    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def lock_owner(folder: Path) -> str:
    try:
        return (Path(folder) / LOCK_NAME).read_text().strip()
    except OSError:
        return ""


# ----------------------------------------------------------------- machine set-up


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# Programs whose quick run took over 5% longer on two torch threads than on one, on the
# idle 2-core machine (`bench/threads.py`; README, "Threads"): small layers and recurrent
# steps, where waking a second thread for every operation costs more than it saves (up to
# 4x for 10.2's RNNs). A study's trials follow their base program (12.2, 15.2 and 16.2 run
# 12.1, 15.1 and 16.1). Every other program uses every core.
ONE_THREAD: frozenset[str] = frozenset({
    "2.2", "3.1", "3.2", "4.1", "4.2", "5.2", "6.2", "10.1", "10.2", "11.1", "11.2",
    "12.1", "15.1", "16.1"})


def threads(program_id: str | None = None) -> int:
    """Threads for torch, chosen here only: $DLAB_THREADS when set (e.g. 1 on a shared
    machine); else one for the programs in ONE_THREAD; else one per core available."""
    value = os.environ.get("DLAB_THREADS", "")
    if value.strip():
        try:
            return max(1, int(value))
        except ValueError:
            raise UsageError(f"DLAB_THREADS={value!r}: expected a whole number") from None
    return 1 if program_id in ONE_THREAD else cpu_count()


def resolve_device(name: str) -> str:
    """'cpu', 'cuda' or 'auto' (CUDA when present) -> 'cpu' or 'cuda'."""
    import torch

    name = (name or "auto").lower()
    if name not in ("auto", "cpu", "cuda"):
        raise UsageError(f"unknown device {name!r}; use cpu, cuda or auto")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA device is visible here; use --device cpu or auto")
    return name


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's legacy global and torch (for libraries that use globals).

    dlab's own code takes explicit generators from the RunContext instead.
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def versions() -> dict[str, str]:
    out = {"dlab": __version__, "python": platform.python_version()}
    for mod in ("numpy", "torch", "keras", "sklearn", "matplotlib"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", "?")
    return out


# ----------------------------------------------------------------------- context


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (rich's test: an IPython kernel shell is running)."""
    from rich.console import Console

    return Console().is_jupyter


class RunContext:
    """Everything a program needs to run and to leave a complete record.

    A program receives `(config, ctx)` and uses:
      ctx.device, ctx.seed, ctx.rng (NumPy Generator), ctx.torch_generator(k),
      ctx.data_dir, ctx.log(...), ctx.progress(...),
      ctx.metrics[...] = value, ctx.data(...), ctx.table(...), ctx.figure(...),
      ctx.infer(...), ctx.claim(...), ctx.compare(...), ctx.note(...),
      ctx.save_model(...), ctx.checkpoint_path(name).

    `infer` states a measured value; a sentence that compares or explains goes through
    `claim` or `compare`, so that what is written follows from the numbers.
    """

    def __init__(self, program: ProgramInfo, config: Any, folder: Path, *, profile: str,
                 seed: int, device: str, quiet: bool = False,
                 data_dir: str | os.PathLike | None = None, command: str = "",
                 resume: bool = False, stream=None):
        import numpy as np

        self.program = program
        self.config = config
        self.folder = Path(folder)
        self.profile = profile
        self.seed = seed
        self.device = device
        self.quiet = quiet
        self.data_dir = Path(data_dir) if data_dir else None
        self.command = command
        self.resume = resume
        self.stream = stream or sys.stdout
        self.rng = np.random.default_rng(seed)
        self.metrics: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.figures: list[dict[str, str]] = []
        self.tables: list[Table] = []
        self.data_lines: list[str] = []
        self.analysis: list[str] = []
        self.notes: list[str] = []
        self.backgrounds: list[dict[str, str]] = []
        self.program_code: list[dict[str, str]] = []  # the run function's steps (record)
        self.notebook: dict[str, Any] | None = None  # what a step-by-step run ran (dlab.lab)
        self.threads: int | None = None  # torch's CPU threads (dlab verify reruns with them)
        self.output: list[str] = []  # every line logged (output.log)
        self.claims: list[dict[str, Any]] = []
        self.targets: list[dict[str, Any]] = []
        self._jupyter: bool | None = None  # found on first use (needs rich)
        self._bars: _NotebookBars | None = None
        self.stand_in: str | None = None
        self.started = dt.datetime.now(dt.UTC)
        self._t0 = time.perf_counter()
        self._history_written = -math.inf
        self._epoch_line_at = -math.inf
        self.timings: dict[str, float] = {}

    # -- randomness
    def torch_generator(self, offset: int = 0, device: str = "cpu"):
        import torch

        g = torch.Generator(device=device)
        g.manual_seed(self.seed * 1_000_003 + offset)
        return g

    # -- output
    @property
    def interactive(self) -> bool:
        return not self.quiet and hasattr(self.stream, "isatty") and self.stream.isatty()

    @property
    def jupyter(self) -> bool:
        """True in a Jupyter kernel: epochs advance one bar instead of printing a line."""
        if self.quiet:
            return False
        if self._jupyter is None:
            self._jupyter = in_jupyter()
        return self._jupyter

    def log(self, message: str) -> None:
        """A line of the run's output: printed unless quiet, and always kept for
        output.log and the record's Output section."""
        self.output.append(message)
        if not self.quiet:
            print(f"[{self.program.id}] {message}", file=self.stream, flush=True)

    def epoch(self, name: str, epoch: int, epochs: int, line: str, info: str = "") -> None:
        """One finished epoch: a line on a terminal or in a log; in Jupyter, one bar per
        trained model that advances in place instead."""
        if not self.jupyter:
            now = time.perf_counter()
            if epochs <= EPOCH_LINES or epoch in (1, epochs) \
                    or epoch % math.ceil(epochs / EPOCH_LINES) == 0 \
                    or now - self._epoch_line_at >= EPOCH_LINE_EVERY_S:
                self.log(line)
                self._epoch_line_at = now
            return
        if self._bars is None:
            self._bars = _NotebookBars(self.program.id)
        self._bars.update(name, epoch, epochs, info)

    def close_bars(self) -> None:
        self._bars = None

    @contextmanager
    def progress(self, total: int | None, description: str) -> Iterator[Any]:
        """A rich progress bar on a terminal; nothing otherwise (callers log per epoch).

        Yields an object with `advance(n=1, **fields)`; fields show after the bar.
        """
        if not self.interactive or self.jupyter:  # Jupyter: epochs advance one bar
            yield _NullBar()
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = [TextColumn(f"[{self.program.id}] {description}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                   TextColumn("{task.fields[info]}")]
        with Progress(*columns, transient=True) as prog:
            task = prog.add_task(description, total=total, info="")
            yield _RichBar(prog, task)

    # -- record content
    def data(self, line: str) -> None:
        """A line for the record's Data section (provenance, sizes, splits)."""
        self.data_lines.append(" ".join(line.split()))

    def use_stand_in(self, text: str) -> None:
        """Name a stand-in data set; it becomes the record's first line."""
        self.stand_in = " ".join(text.split())

    def table(self, title: str, columns: list[str], rows: Iterable[Iterable[Any]]) -> None:
        self.tables.append(Table(title, list(columns), [list(r) for r in rows]))

    def infer(self, sentence: str) -> None:
        """A sentence for Analysis and Inferences that states measured values (no
        comparison, no cause: use `claim` or `compare` for those)."""
        self.analysis.append(" ".join(sentence.split()))

    def claim(self, text: str, holds: bool, otherwise: str | None = None,
              **evidence: Any) -> bool:
        """A comparative or causal sentence written only when `holds` is true.

        When it is false the `otherwise` sentence (its negated, measured form) is
        written instead, or nothing. `evidence` (the numbers the condition used) is
        kept in metrics.json beside the sentence. Returns `holds`.
        """
        holds = bool(holds)
        written = text if holds else otherwise
        self.claims.append({"claim": " ".join(text.split()), "holds": holds,
                            "written": " ".join(written.split()) if written else None,
                            "evidence": evidence})
        if written:
            self.analysis.append(" ".join(written.split()))
        return holds

    def compare(self, quantity: str, a_label: str, a: float, b_label: str, b: float, *,
                diff: Difference, better: str = "lower", digits: int = 4, unit: str = "",
                then: str = "") -> bool:
        """Write "A's <quantity> (x) against B's (y): difference d (95% CI ...): better /
        worse / not distinguishable", decided by `diff` (the measured Difference a - b);
        `then` is appended only when A is distinguishably better. Returns that."""
        sentence, word = compare(quantity, a_label, a, b_label, b, diff=diff, better=better,
                                 digits=digits, unit=unit)
        a_better = word == "better"
        if a_better and then:
            sentence = f"{sentence} {then}"
        self.claims.append({"claim": f"{a_label} has a {better} {quantity} than {b_label}",
                            "holds": a_better, "verdict": word, "written": sentence,
                            "evidence": {a_label: a, b_label: b,
                                         "difference": diff.as_dict()}})
        self.analysis.append(sentence)
        return a_better

    def background(self, sentence: str, source: str) -> None:
        """A sentence this run did not measure (a cause, a known result), kept apart in
        the record's Background paragraph with its source, never worded as a finding."""
        self.backgrounds.append({"text": " ".join(sentence.split()),
                                 "source": " ".join(source.split())})

    def judge(self, targets: tuple[Any, ...] | list[Any]) -> list[dict[str, Any]]:
        """Check the program's targets against the metrics measured so far."""
        self.targets = judge(targets, self.metrics, self.profile)
        return self.targets

    def note(self, sentence: str) -> None:
        self.notes.append(" ".join(sentence.split()))

    def path(self, name: str) -> Path:
        return self.folder / name

    def figure(self, fig: Any, name: str, caption: str) -> Path:
        """Save a matplotlib figure as PNG in the run folder (atomically) and close it."""
        import matplotlib.pyplot as plt

        if not name.endswith(".png"):
            name += ".png"
        with atomic_path(self.folder / name) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        plt.close(fig)
        self.figures = [f for f in self.figures if f["file"] != name]
        self.figures.append({"file": name, "caption": " ".join(caption.split())})
        return self.folder / name

    def add_history(self, rows: list[dict[str, Any]], flush: bool = False) -> None:
        """Append per-epoch rows; history.csv is rewritten at most every few seconds
        (and always when the run finishes), so thousands of short epochs stay cheap."""
        self.history.extend(rows)
        now = time.perf_counter()
        if flush or now - self._history_written >= HISTORY_EVERY_S:
            self._flush_history()
            self._history_written = now

    def _flush_history(self) -> None:
        if self.history:
            write_csv(self.folder / "history.csv", self.history)

    def save_model(self, model: Any, name: str = "model.pt", **extra: Any) -> Path:
        """Save a torch state_dict (loadable with weights_only=True) and its metadata."""
        save_torch(model.state_dict(), self.folder / name)
        if extra:
            write_json(self.folder / (Path(name).stem + ".json"), extra)
        return self.folder / name

    def checkpoint_path(self, name: str) -> Path:
        return self.folder / f"checkpoint-{name}.pt"

    # -- finishing
    def summary(self, status: str, message: str = "") -> dict[str, Any]:
        seconds = time.perf_counter() - self._t0
        return {
            "program": self.program.id,
            "title": self.program.title,
            "status": status,
            "message": message,
            "profile": self.profile,
            "seed": self.seed,
            "device": self.device,
            "threads": self.threads,
            "command": self.command,
            "config": configs.to_dict(self.config),
            "versions": versions(),
            "code": code_info(),
            "notebook": self.notebook,
            "timings": {
                "started": self.started.isoformat(timespec="seconds"),
                "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "seconds": round(seconds, 3),
                **{k: round(v, 4) for k, v in self.timings.items()},
            },
            "metrics": self.metrics,
            "targets": self.targets,
            "verdict": overall(self.targets) if status == "ok" else "n/a",
            "record": {
                "stand_in": self.stand_in,
                "program": self.program_code,
                "output_tail": self.output[-OUTPUT_TAIL:],
                "data": self.data_lines,
                "tables": [vars(t) for t in self.tables],
                "figures": self.figures,
                "analysis": self.analysis,
                "claims": self.claims,
                "background": self.backgrounds,
                "notes": self.notes,
            },
        }

    def start(self) -> dict[str, Any]:
        """metrics.json with status "running" (written atomically before the program
        starts), so a run killed without warning is recognisable and resumable."""
        message = (f"started by pid {os.getpid()} on {platform.node()}; if it did not "
                   f"finish, continue with `dlab run {self.program.id} --resume`")
        summary = to_jsonable(self.summary("running", message))
        write_json(self.folder / "metrics.json", summary)
        return summary

    def finish(self, status: str, message: str = "") -> dict[str, Any]:
        """Write history.csv and metrics.json; return the summary (the record is
        rendered from it by `dlab.running`)."""
        assert status in STATUSES, status
        self.close_bars()
        self._flush_history()
        summary = to_jsonable(self.summary(status, message))
        write_json(self.folder / "metrics.json", summary)
        return summary


class _NotebookBars:
    """Progress bars in a Jupyter output cell: one updating display per trained model
    (IPython display handles, so any notebook front end shows them; no widgets)."""

    WIDTH = 30

    def __init__(self, program: str):
        self.program = program
        self.handles: dict[str, Any] = {}
        self.started: dict[str, float] = {}

    def update(self, name: str, epoch: int, epochs: int, info: str) -> None:
        from IPython.display import HTML, display

        self.started.setdefault(name, time.perf_counter())
        done = max(0, min(self.WIDTH, round(self.WIDTH * epoch / max(epochs, 1))))
        bar = "\u2588" * done + "\u2591" * (self.WIDTH - done)
        seconds = time.perf_counter() - self.started[name]
        text = f"[{self.program}] {name} {bar} {epoch}/{epochs} epochs  {info}  {seconds:.0f} s"
        html_text = html.escape(text)
        page = HTML(f'<pre style="margin:0">{html_text}</pre>')
        if name in self.handles:
            self.handles[name].update(page)
        else:
            self.handles[name] = display(page, display_id=True)


class _NullBar:
    def advance(self, n: int = 1, **fields: Any) -> None:
        pass


class _RichBar:
    def __init__(self, prog: Any, task: Any):
        self.prog, self.task = prog, task

    def advance(self, n: int = 1, **fields: Any) -> None:
        if fields:
            info = "  ".join(f"{k} {v}" for k, v in fields.items())
            self.prog.update(self.task, advance=n, info=info)
        else:
            self.prog.update(self.task, advance=n)


# --------------------------------------------------------------------- running


def read_summary(meta: Path) -> dict[str, Any]:
    """A run's metrics.json, checked for the fields readers rely on; ValueError (its
    message says what is wrong) for a file that is not a run summary."""
    try:
        info = json.loads(Path(meta).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"unreadable ({getattr(exc, 'strerror', None) or exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(info, dict):
        raise ValueError(f"holds a JSON {type(info).__name__}, not a run summary")
    if info.get("status") not in STATUSES:
        raise ValueError(f"status {info.get('status')!r} is not one of {', '.join(STATUSES)}")
    expected = {"timings": dict, "config": dict, "metrics": dict, "profile": str,
                "seed": int, "device": str}
    for key, tp in expected.items():
        if not isinstance(info.get(key), tp) or isinstance(info.get(key), bool):
            raise ValueError(f"'{key}' is missing or not a {tp.__name__}")
    t = info["timings"]
    if not isinstance(t.get("started"), str) or not isinstance(t.get("seconds"), int | float):
        raise ValueError("'timings' lacks 'started' or 'seconds'")
    for key, tp in (("targets", list), ("record", dict), ("versions", dict),
                    ("message", str), ("command", str)):
        if key in info and info[key] is not None and not isinstance(info[key], tp):
            raise ValueError(f"'{key}' is not a {tp.__name__}")
    if any(not isinstance(x, dict) for x in info.get("targets") or []):
        raise ValueError("'targets' holds something other than objects")
    rec = info.get("record") or {}
    for key in ("data", "tables", "figures", "analysis", "background", "notes"):
        if key in rec and not isinstance(rec[key], list):
            raise ValueError(f"'record.{key}' is not a list")
    return info


def runs_of(root: Path, program_id: str, warn=None) -> list[tuple[Path, dict[str, Any]]]:
    """Every run folder of a program under `root` with its summary, newest first;
    folders whose metrics.json is not a run summary are passed to `warn` and skipped."""
    found = []
    for meta in (Path(root) / program_id).glob("*/metrics.json"):
        try:
            info = read_summary(meta)
        except ValueError as exc:
            if warn is not None:
                warn(f"{meta}: skipped: {exc}")
            continue
        found.append(((info["timings"]["started"], meta.parent.name), meta.parent, info))
    found.sort(key=lambda t: t[0], reverse=True)
    return [(folder, info) for _, folder, info in found]


def latest_run(root: Path, program_id: str, status: str | tuple[str, ...] | None = None,
               warn=None) -> Path | None:
    """The most recently started run folder of a program under `root` (with one of the
    given statuses)."""
    wanted = (status,) if isinstance(status, str) else status
    for folder, info in runs_of(root, program_id, warn):
        if not wanted or info["status"] in wanted:
            return folder
    return None
