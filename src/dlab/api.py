"""The library's front door: run a program and leave a complete run folder.

`run_program` is what `dlab run`, studies and tests call; it builds the settings, makes
the run folder, runs the program, checks its targets and writes metrics.json and the
program's record.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlab import config as configs
from dlab.errors import DlabError, UsageError
from dlab.io import atomic_write
from dlab.registry import ProgramInfo
from dlab.runs import (
    Diverged,
    RunContext,
    check_writable,
    latest_run,
    resolve_device,
    seed_everything,
    threads,
)


@dataclass
class RunOutcome:
    program: str
    status: str
    folder: Path
    message: str = ""
    metrics: dict[str, Any] | None = None
    targets: list[dict[str, Any]] | None = None


def _new_folder(root: Path, program_id: str, profile: str, seed: int) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / program_id / f"{stamp}-{profile}-seed{seed}"
    folder, k = base, 1
    while folder.exists():
        k += 1
        folder = base.with_name(f"{base.name}-{k}")
    folder.mkdir(parents=True)
    return folder


def run_program(program: ProgramInfo, *, profile: str = "quick", seed: int = 0,
                device: str = "auto", sets: dict[str, str] | None = None,
                out: str | os.PathLike = "runs", quiet: bool = False,
                data_dir: str | os.PathLike | None = None, resume: bool = False,
                command: str = "", stream=None) -> RunOutcome:
    """Run one program and leave a complete run folder.

    Raises DlabError for bad input (nothing is left behind) and re-raises
    KeyboardInterrupt after marking the folder "interrupted".
    """
    impl = program.load()
    root = check_writable(out)
    folder: Path | None = None
    if resume:
        folder = latest_run(root, program.id, status="interrupted")
        if folder is None:
            raise UsageError(f"--resume: no interrupted run of {program.id} under {root}")
        saved = json.loads((folder / "metrics.json").read_text())
        profile, seed = saved["profile"], saved["seed"]
        config = configs.from_dict(impl.config, saved["config"])
        configs.check(config, program.id)
    else:
        config = configs.build(impl.config, impl.profiles, profile, sets, program.id)
    dev = resolve_device(device)

    import torch

    seed_everything(seed)
    torch.set_num_threads(threads())
    if folder is None:
        folder = _new_folder(root, program.id, profile, seed)
    if not command:
        command = f"dlab run {program.id} --profile {profile} --seed {seed}"
        command += "".join(f" --set {k}={v}" for k, v in (sets or {}).items())
    ctx = RunContext(program, config, folder, profile=profile, seed=seed, device=dev,
                     quiet=quiet, data_dir=data_dir, command=command, resume=resume,
                     stream=stream)
    ctx.log(f"{program.title} — profile {profile}, seed {seed}, device {dev}")
    try:
        impl.run(config, ctx)
    except Diverged as exc:
        _finish(ctx, "diverged", exc.message)
        return RunOutcome(program.id, "diverged", folder, exc.message, ctx.metrics)
    except KeyboardInterrupt:
        _finish(ctx, "interrupted", "stopped by the user (Ctrl-C); continue with --resume")
        raise
    except DlabError:
        if not resume:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    except Exception as exc:
        _finish(ctx, "failed", f"{type(exc).__name__}: {exc}")
        raise
    ctx.judge(impl.targets)
    summary = _finish(ctx, "ok")
    from dlab.verdicts import verdict_line

    ctx.log(f"target {verdict_line(ctx.targets)}")
    ctx.log(f"done in {summary['timings']['seconds']:.1f}s -> {folder}")
    return RunOutcome(program.id, "ok", folder, "", ctx.metrics, ctx.targets)


def _finish(ctx: RunContext, status: str, message: str = "") -> dict[str, Any]:
    """metrics.json, then record.md rendered from it."""
    from dlab.report.record import program_record

    summary = ctx.finish(status, message)
    atomic_write(ctx.folder / "record.md", program_record(summary, ctx.program))
    return summary
