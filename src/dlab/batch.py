"""Many programs at once: `dlab run ID... --jobs N`.

Each program runs in a process of its own (`python -m dlab run ID ...`) on one thread
(torch, OpenMP and BLAS), at most N at a time. One thread per program whatever N is, so
`--jobs 1` and `--jobs 2` give the same numbers; on a two-core machine two small models on
one thread each finish sooner than one after the other on two threads.

On a terminal a live table shows one line per program (queued, running with its latest
output line, or finished); otherwise one line is printed per finished program. Each
program's full output goes to `OUT/logs/<id>.log`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlab.registry import ProgramInfo

EXIT_WORDS = {0: "ok", 1: "failed", 2: "bad input", 130: "interrupted"}


@dataclass
class Job:
    program: ProgramInfo
    command: list[str]
    log: Path
    proc: subprocess.Popen | None = None
    started: float = 0.0
    ended: float = 0.0
    last_line: str = ""
    code: int | None = None
    summary: dict[str, Any] | None = None
    folder: Path | None = None

    @property
    def state(self) -> str:
        if self.proc is None:
            return "queued"
        if self.code is None:
            return "running"
        if self.summary is not None:
            return self.summary.get("status", "?")
        return EXIT_WORDS.get(self.code, f"exit {self.code}")


def child_env() -> dict[str, str]:
    """The environment of a program's process: one thread for torch, OpenMP and BLAS
    (unless DLAB_THREADS is set by the user), and no colour codes in its log."""
    env = dict(os.environ)
    threads = env.get("DLAB_THREADS", "").strip() or "1"
    env.update({"DLAB_THREADS": threads, "OMP_NUM_THREADS": threads,
                "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
                "NO_COLOR": "1", "TERM": "dumb"})
    return env


def build_jobs(programs: Sequence[ProgramInfo], *, out: Path, options: list[str],
               extra: dict[str, list[str]] | None = None) -> list[Job]:
    """A job per program: `dlab run ID --out OUT OPTIONS` (+ `extra[ID]`), logged."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    extra = extra or {}
    return [Job(p, [sys.executable, "-m", "dlab", "run", p.id, "--out", str(out), *options,
                    *extra.get(p.id, [])], logs / f"{p.id}.log") for p in programs]


def _pump(job: Job) -> None:
    """Copy the child's output into its log, keeping the latest line for the display."""
    assert job.proc is not None and job.proc.stdout is not None
    with open(job.log, "w", encoding="utf-8") as fh:
        for line in job.proc.stdout:
            fh.write(line)
            fh.flush()
            text = line.strip()
            if text:
                job.last_line = text


def _start(job: Job) -> threading.Thread:
    job.started = time.perf_counter()
    job.proc = subprocess.Popen(job.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, env=child_env(),
                                start_new_session=True)
    pump = threading.Thread(target=_pump, args=(job,), daemon=True)
    pump.start()
    return pump


def _finish(job: Job, out: Path, since: float) -> None:
    """Read the run folder the child made (the newest of its program started after
    `since`)."""
    job.ended = time.perf_counter()
    newest: tuple[float, Path] | None = None
    for meta in (out / job.program.id).glob("*/metrics.json"):
        mtime = meta.stat().st_mtime
        if mtime >= since and (newest is None or mtime > newest[0]):
            newest = (mtime, meta)
    if newest is not None:
        try:
            job.summary = json.loads(newest[1].read_text())
            job.folder = newest[1].parent
        except (OSError, json.JSONDecodeError):
            job.summary = None


def run_batch(programs: Sequence[ProgramInfo], *, jobs: int, out: Path, options: list[str],
              interactive: bool, stream=None,
              extra: dict[str, list[str]] | None = None) -> list[Job]:
    """Run every program in its own process, `jobs` at a time; return the jobs (each with
    its exit code and, when the run folder was written, its summary)."""
    stream = stream or sys.stdout
    queue = build_jobs(programs, out=out, options=options, extra=extra)
    since = time.time() - 1.0
    pending, running, done = list(queue), [], []
    pumps: dict[str, threading.Thread] = {}
    view = _LiveView(queue) if interactive else None
    try:
        if view is not None:
            view.start()
        while pending or running:
            while pending and len(running) < jobs:
                job = pending.pop(0)
                pumps[job.program.id] = _start(job)
                running.append(job)
            for job in list(running):
                code = job.proc.poll()
                if code is None:
                    continue
                pumps[job.program.id].join(timeout=5)
                job.code = code
                _finish(job, out, since)
                running.remove(job)
                done.append(job)
                if view is None:
                    print(line_for(job), file=stream, flush=True)
            if view is not None:
                view.update()
            time.sleep(0.2)
    except KeyboardInterrupt:
        for job in running:
            if job.proc is not None and job.proc.poll() is None:
                os.killpg(job.proc.pid, signal.SIGINT)
        for job in running:
            job.code = job.proc.wait() if job.proc is not None else 130
            _finish(job, out, since)
        raise
    finally:
        if view is not None:
            view.stop()
    return queue


def headline_of(job: Job) -> str:
    from dlab.report.record import headline

    return headline(job.program, job.summary) if job.summary else ""


def verdict_of(job: Job) -> str:
    from dlab.report.record import verdict_of as verdict

    return verdict(job.summary) if job.summary else "n/a"


def seconds_of(job: Job) -> float:
    if job.summary:
        return float(job.summary.get("timings", {}).get("seconds", 0.0))
    return job.ended - job.started if job.ended else 0.0


def line_for(job: Job) -> str:
    """One line for a finished program: id, status, verdict, headline, seconds."""
    text = f"{job.program.id:<5} {job.state:<11} {verdict_of(job):<7} {seconds_of(job):7.1f} s"
    head = headline_of(job)
    if head:
        text += f"  {head}"
    if job.summary is None or job.state not in ("ok",):
        tail = (job.summary or {}).get("message") or job.last_line
        if tail:
            text += f"  ({tail}; log: {job.log})"
    return text


class _LiveView:
    """A rich Live table: one row per program, refreshed a few times a second."""

    def __init__(self, jobs: list[Job]):
        from rich.console import Console
        from rich.live import Live

        self.jobs = jobs
        self.console = Console()
        self.live = Live(self._table(), console=self.console, refresh_per_second=4,
                         transient=False)

    def _table(self) -> Any:
        from rich.table import Table

        table = Table("id", "state", "verdict", "seconds", "latest", box=None, pad_edge=False)
        width = max(20, self.console.width - 40)
        for job in self.jobs:
            state = job.state
            if state == "running":
                seconds = time.perf_counter() - job.started
                latest = job.last_line.split("] ", 1)[-1][:width]
                table.add_row(job.program.id, "[yellow]running[/]", "", f"{seconds:.0f}",
                              latest)
            elif state == "queued":
                table.add_row(job.program.id, "[dim]queued[/]", "", "", "")
            else:
                colour = "green" if state == "ok" else "red"
                verdict = verdict_of(job)
                vcol = {"met": "green", "missed": "bold red"}.get(verdict, "dim")
                table.add_row(job.program.id, f"[{colour}]{state}[/]",
                              f"[{vcol}]{verdict}[/]", f"{seconds_of(job):.1f}",
                              headline_of(job)[:width])
        return table

    def start(self) -> None:
        self.live.start()

    def update(self) -> None:
        self.live.update(self._table())

    def stop(self) -> None:
        self.update()
        self.live.stop()


def earlier_seconds(root: Path, program: ProgramInfo, profile: str) -> float | None:
    """Seconds the newest finished run of `program` at `profile` under `root` took, or
    None where there is none."""
    newest: tuple[str, float] | None = None
    for meta in (root / program.id).glob(f"*-{profile}-seed*/metrics.json"):
        try:
            data = json.loads(meta.read_text())
            if data.get("status") != "ok":
                continue
            key = (data["timings"]["finished"], float(data["timings"]["seconds"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if newest is None or key[0] > newest[0]:
            newest = key
    return None if newest is None else newest[1]


def longest_first(programs: list[ProgramInfo], root: Path, profile: str
                  ) -> list[ProgramInfo]:
    """The order a batch of several jobs starts its programs in: programs never run at
    this profile under `root` first, in the order given (their time is unknown), then the
    others by their newest earlier run's time, longest first, so that a long program does
    not start last and leave the other slots idle. With the full profile's measured and
    projected times of all 32 programs, `bench/full_profile.py`'s model of `--jobs 2` gives
    4.05 h in this order against 4.36 h in the registry's."""
    known = {p.id: earlier_seconds(root, p, profile) for p in programs}
    unknown = [p for p in programs if known[p.id] is None]
    rest = sorted((p for p in programs if known[p.id] is not None),
                  key=lambda p: -known[p.id])  # stable: ties keep the given order
    return unknown + rest


def run_many(programs: Sequence[ProgramInfo], *, jobs: int, profile: str, seed: int,
             device: str, sets: dict[str, str], out: Path, data_dir: Path | None,
             resume: bool, stream=None) -> int:
    """`dlab run ... --jobs N`: check every program's settings first (bad input stops
    everything before any process starts), run them, print the table; return the exit
    status (0 all ok, 1 any run not ok, 130 interrupted)."""
    from dlab import config as configs
    from dlab.errors import UsageError
    from dlab.runs import check_writable, resolve_device

    stream = stream or sys.stdout
    if jobs < 1:
        raise UsageError(f"--jobs must be 1 or more, got {jobs}")
    resolve_device(device)
    built = []
    for p in programs:
        if not p.implemented:
            print(f"skip {p.id} {p.title}: not built yet", file=stream)
            continue
        impl = p.load()
        configs.build(impl.config, impl.profiles, profile, sets, p.id)
        built.append(p)
    if not built:
        return 0
    root = check_writable(out)
    options = ["--profile", profile, "--seed", str(seed), "--device", device]
    options += [f"--set={k}={v}" for k, v in sets.items()]
    if data_dir is not None:
        options += ["--data-dir", str(data_dir)]
    extra: dict[str, list[str]] = {}
    if resume:  # continue what was interrupted, skip what finished, start the rest
        from dlab.running import resume_batch

        plan = resume_batch(root, built, profile, seed, sets,
                            say=lambda line: print(line, file=stream, flush=True))
        built = [p for p, _ in plan]
        extra = {p.id: ["--resume"] for p, again in plan if again}
        if not built:
            return 0
    if jobs > 1:
        built = longest_first(built, root, profile)
    interactive = hasattr(stream, "isatty") and stream.isatty()
    t0 = time.perf_counter()
    try:
        done = run_batch(built, jobs=jobs, out=root, options=options,
                         interactive=interactive, stream=stream, extra=extra)
    except KeyboardInterrupt:
        print("interrupted; unfinished runs are marked so: continue with "
              "`dlab run ID --resume`", file=stream)
        return 130
    wall = time.perf_counter() - t0
    _final_table(done, stream, interactive)
    verdicts = [verdict_of(j) for j in done]
    ok = sum(j.state == "ok" for j in done)
    print(f"{len(done)} programs in {wall:.0f} s wall ({jobs} at a time, one thread each): "
          f"{ok} ok, {len(done) - ok} not ok; targets met {verdicts.count('met')}, "
          f"missed {verdicts.count('missed')}, n/a {verdicts.count('n/a')}", file=stream)
    return 0 if ok == len(done) else 1


def _final_table(done: list[Job], stream, interactive: bool) -> None:
    if not interactive:
        return  # the lines were printed as each program finished
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "status", "verdict", "headline", "seconds", box=None)
    for job in done:
        table.add_row(job.program.id, job.state, verdict_of(job), headline_of(job),
                      f"{seconds_of(job):.1f}")
    Console(file=stream).print(table)
