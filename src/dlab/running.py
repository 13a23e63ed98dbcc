"""Running one program: settings, run folder, lock, targets, metrics.json and record.md.

`run_program` is what `dlab run`, `dlab verify`, studies and tests call (`open_run` and
`close_run` are its two halves, which `dlab.start` uses for a run made step by step). The
public Python API (`dlab.run`, `dlab.start`, ...) is `dlab.lab`; a finished run read back
as an object is `dlab.result.Result`.
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
from dlab.errors import DlabError, RunFailed, UsageError
from dlab.io import (
    atomic_write,
    describe_os_error,
    escape_markup,
    to_jsonable,
    write_json,
)
from dlab.provenance import write_manifest
from dlab.registry import ProgramInfo
from dlab.runs import (
    LOCK_NAME,
    OUTPUT_LOG,
    RESUMABLE,
    Diverged,
    RunContext,
    RunLock,
    check_data_dir,
    check_writable,
    is_locked,
    lock_owner,
    make_folders,
    remove_created,
    resolve_device,
    runs_of,
    seed_everything,
    threads,
)
from dlab.steps import program_code


@dataclass
class RunOutcome:
    program: str
    status: str
    folder: Path
    message: str = ""
    metrics: dict[str, Any] | None = None
    targets: list[dict[str, Any]] | None = None


def _new_folder(root: Path, program_id: str, profile: str, seed: int) -> tuple[Path, list[Path]]:
    """A fresh run folder; also the folders created for it (removed again on bad input)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / program_id / f"{stamp}-{profile}-seed{seed}"
    created = make_folders(base.parent)
    folder, k = base, 1
    while True:
        try:
            folder.mkdir()
            break
        except FileExistsError:
            k += 1
            folder = base.with_name(f"{base.name}-{k}")
    return folder, created + [folder]


def _resumable(root: Path, program_id: str, profile: str | None = None,
               seed: int | None = None) -> tuple[Path, RunLock, str]:
    """The newest run of a program that can be continued (the newest at `profile` and
    `seed` when there is one), locked for this process, and the text of its metrics.json
    (restored if the resumed run stops on bad input)."""
    candidates = [(f, i) for f, i in runs_of(root, program_id) if i["status"] in RESUMABLE]
    if not candidates:
        raise UsageError(f"--resume: no interrupted run of {program_id} under {root}")
    matching = [(f, i) for f, i in candidates
                if i.get("profile") == profile and i.get("seed") == seed]
    folder, info = (matching or candidates)[0]
    if info["status"] == "running" and is_locked(folder):
        raise UsageError(f"--resume: the latest run of {program_id} ({folder}) is still "
                         f"running ({lock_owner(folder) or 'pid unknown'}); wait for it")
    lock = RunLock(folder).acquire()
    for stray in folder.iterdir():  # temporaries of a process killed while writing
        if stray.name.startswith(".") and stray.name != LOCK_NAME and stray.is_file():
            stray.unlink(missing_ok=True)
    try:
        text = (folder / "metrics.json").read_text()
        if json.loads(text).get("status") not in RESUMABLE:  # finished while we looked
            raise UsageError(f"--resume: {folder} was finished by another process")
    except (OSError, ValueError) as exc:
        lock.release()
        raise UsageError(f"--resume: cannot read {folder / 'metrics.json'} ({exc})") from None
    except BaseException:
        lock.release()
        raise
    return folder, lock, text


RESUME_WORDS = {"skip": "already finished at these settings; not run again",
                "busy": "running in another process; left to it"}


def batch_step(root: str | os.PathLike, program: ProgramInfo, profile: str, seed: int,
               sets: dict[str, str] | None = None) -> tuple[str, Path | None]:
    """What `dlab run MANY --resume` does with one program, from its runs under `root` at
    this profile, seed and these settings: ("resume", folder) when the newest of them can
    be continued, ("skip", folder) when it finished (ok or diverged: a rerun would repeat
    it), ("busy", folder) when another process is running it, ("new", None) when there
    is none."""
    impl = program.load()
    want = to_jsonable(configs.to_dict(configs.build(impl.config, impl.profiles, profile,
                                                     sets, program.id)))  # as saved
    for folder, info in runs_of(Path(root), program.id):
        if info.get("profile") != profile or info.get("seed") != seed \
                or info.get("config") != want:
            continue
        if info["status"] == "running" and is_locked(folder):
            return "busy", folder
        if info["status"] in RESUMABLE:
            return "resume", folder
        if info["status"] in ("ok", "diverged"):
            return "skip", folder
    return "new", None


def resume_batch(root: str | os.PathLike, programs: list[ProgramInfo], profile: str,
                 seed: int, sets: dict[str, str] | None,
                 say) -> list[tuple[ProgramInfo, bool]]:
    """`dlab run MANY --resume`: the programs still to run, each with whether it continues
    an interrupted run (`batch_step`); one line through `say` for each left out."""
    todo = []
    for p in programs:
        step, folder = batch_step(root, p, profile, seed, sets)
        if step in RESUME_WORDS:
            say(f"{p.id}: {RESUME_WORDS[step]} ({folder})")
        else:
            todo.append((p, step == "resume"))
    return todo


@dataclass
class OpenRun:
    """A run folder made, locked and marked "running", with the program's settings and
    context: what `run_program` runs the program in, and what `dlab.start` hands to a
    notebook to run the program step by step."""

    impl: Any
    program: ProgramInfo
    ctx: RunContext
    lock: RunLock
    created: list[Path]
    previous: str


def run_program(program: ProgramInfo, *, profile: str = "quick", seed: int = 0,
                device: str = "auto", sets: dict[str, str] | None = None,
                out: str | os.PathLike = "runs", quiet: bool = False,
                data_dir: str | os.PathLike | None = None, resume: bool = False,
                command: str = "", stream=None) -> RunOutcome:
    """Run one program and leave a complete run folder.

    Raises DlabError for bad input (nothing is left behind: no folder is created
    before the settings, device and output are known to be good; a resumed folder
    gets its metrics.json back), RunFailed when writing the run folder fails mid-way
    (the folder is marked "failed" where it can still be written), and re-raises
    KeyboardInterrupt after marking the folder "interrupted".

    metrics.json says "running" from the start, and the folder is locked (`.lock`,
    with the PID) while this process writes it: a run killed without warning is
    continued by `resume=True`, and two processes never write one folder.
    """
    opened = open_run(program, profile=profile, seed=seed, device=device, sets=sets, out=out,
                      quiet=quiet, data_dir=data_dir, resume=resume, command=command,
                      stream=stream)
    try:
        return close_run(opened, lambda: opened.impl.run(opened.ctx.config, opened.ctx))
    finally:
        opened.lock.release()


def open_run(program: ProgramInfo, *, profile: str = "quick", seed: int = 0,
             device: str = "auto", sets: dict[str, str] | None = None,
             out: str | os.PathLike = "runs", quiet: bool = False,
             data_dir: str | os.PathLike | None = None, resume: bool = False,
             command: str = "", stream=None) -> OpenRun:
    """Check the settings, make and lock the run folder and mark it "running"; raise
    DlabError (leaving nothing behind) on bad input. The caller releases `lock`."""
    impl = program.load()
    root = check_writable(out)
    check_data_dir(data_dir)
    folder: Path | None = None
    lock: RunLock | None = None
    previous = ""
    if resume:
        folder, lock, previous = _resumable(root, program.id, profile, seed)
        try:
            saved = json.loads(previous)
            profile, seed = saved["profile"], saved["seed"]
            config = configs.from_dict(impl.config, saved["config"])
            configs.check(config, program.id)
        except (TypeError, KeyError, ValueError) as exc:
            lock.release()
            raise UsageError(f"--resume: {folder / 'metrics.json'} does not hold settings of "
                             f"{program.id} ({exc}); start a new run without --resume") from None
        except BaseException:
            lock.release()
            raise
    try:
        if not resume:
            configs.check_seed(seed)
            config = configs.build(impl.config, impl.profiles, profile, sets, program.id)
        dev = resolve_device(device)
    except BaseException:
        if lock is not None:
            lock.release()
        raise

    import torch

    seed_everything(seed)
    torch.set_num_threads(threads(program.id))
    created: list[Path] = []
    if folder is None:
        try:
            folder, created = _new_folder(root, program.id, profile, seed)
            lock = RunLock(folder).acquire()
        except OSError as exc:
            remove_created(created)
            raise UsageError(f"cannot write to output folder {root} ({exc.strerror or exc}); "
                             "choose another with --out") from None
    assert lock is not None
    if not command:
        command = f"dlab run {program.id} --profile {profile} --seed {seed}"
        command += "".join(f" --set {k}={v}" for k, v in (sets or {}).items())
    ctx = RunContext(program, config, folder, profile=profile, seed=seed, device=dev,
                     quiet=quiet, data_dir=data_dir, command=command, resume=resume,
                     stream=stream)
    ctx.program_code = program_code(impl.run)
    ctx.threads = torch.get_num_threads()
    try:
        ctx.start()
    except OSError as exc:
        _undo(ctx, created, previous)
        lock.release()
        raise UsageError(f"cannot write to run folder {folder} ({describe_os_error(exc)}); "
                         "free some space or choose another folder with --out") from None
    except BaseException:
        lock.release()
        raise
    ctx.log(f"{program.title} — profile {ctx.profile}, seed {ctx.seed}, device {ctx.device}")
    return OpenRun(impl, program, ctx, lock, created, previous)


def close_run(opened: OpenRun, body) -> RunOutcome:
    """Run `body()` (the program, or nothing when a notebook ran its steps already), check
    the targets and write metrics.json and record.md with the status that came out."""
    impl, program, ctx = opened.impl, opened.program, opened.ctx
    created, previous, folder = opened.created, opened.previous, ctx.folder
    try:
        body()
        ctx.judge(impl.targets)
        summary = _finish(ctx, "ok")
    except Diverged as exc:
        try:
            _finish(ctx, "diverged", exc.message)
        except OSError as err:
            raise _failed(ctx, err) from None
        return RunOutcome(program.id, "diverged", folder, exc.message, ctx.metrics)
    except KeyboardInterrupt:
        try:
            _finish(ctx, "interrupted", "stopped by the user (Ctrl-C); continue with --resume")
        except OSError:
            _mark(ctx, "interrupted", "stopped by the user (Ctrl-C); continue with --resume")
        raise
    except DlabError:
        _undo(ctx, created, previous)
        raise
    except OSError as exc:
        raise _failed(ctx, exc) from None
    except Exception as exc:
        _mark(ctx, "failed", f"{type(exc).__name__}: {exc}")
        raise
    from dlab.verdicts import verdict_line

    ctx.log(f"target {verdict_line(ctx.targets)}")
    ctx.log(f"done in {summary['timings']['seconds']:.1f}s -> {folder}")
    return RunOutcome(program.id, "ok", folder, "", ctx.metrics, ctx.targets)


def _undo(ctx: RunContext, created: list[Path], previous: str) -> None:
    """Bad input found once the program ran: a new folder goes (with the folders made for
    it); a resumed folder gets its metrics.json back."""
    if previous:
        try:
            atomic_write(ctx.folder / "metrics.json", previous)
        except OSError:
            pass
        return
    shutil.rmtree(ctx.folder, ignore_errors=True)
    remove_created(created)


def _failed(ctx: RunContext, exc: OSError) -> RunFailed:
    """Mark the folder failed (if it can still be written) after a write error."""
    cause = describe_os_error(exc)
    marked = _mark(ctx, "failed", f"writing the run folder failed: {cause}; free some space "
                                  f"or fix the permissions, then continue with --resume")
    where = f"its folder {ctx.folder} is marked failed" if marked else \
        f"its folder {ctx.folder} could not be marked failed either"
    return RunFailed(f"run {ctx.program.id} failed: cannot write {cause}; {where}")


def _mark(ctx: RunContext, status: str, message: str) -> bool:
    """Write metrics.json with `status`, as fully as the disk allows; True if written."""
    try:
        _finish(ctx, status, message)
        return True
    except OSError:
        pass
    summary = to_jsonable(ctx.summary(status, message))
    summary["record"] = {}
    try:  # a short summary without the record's content
        write_json(ctx.folder / "metrics.json", summary)
        return True
    except OSError:
        pass
    # A full disk: rewrite the existing metrics.json in place, in the space it already has
    # (a failure here leaves the "running" file, which --resume and report also handle).
    path = ctx.folder / "metrics.json"
    data = json.dumps(summary, separators=(",", ":")).encode()
    try:
        if len(data) > max(path.stat().st_size, 4096):
            return False
        with open(path, "r+b") as fh:
            fh.write(data)
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())
        return True
    except OSError:
        return False


CODE_KEYS = ("file", "program", "output_tail")  # shown in code fences: kept as they are


def _finish(ctx: RunContext, status: str, message: str = "") -> dict[str, Any]:
    """history.csv, record.md, then metrics.json (written last: a folder whose
    metrics.json says finished has every other file)."""
    from dlab.report.record import program_record

    ctx._flush_history()
    if ctx.output:
        atomic_write(ctx.folder / OUTPUT_LOG, "\n".join(ctx.output) + "\n")
    summary = to_jsonable(ctx.summary(status, message))
    atomic_write(ctx.folder / "record.md", program_record(escape_markup(summary, CODE_KEYS), ctx.program))
    write_json(ctx.folder / "metrics.json", summary)
    write_manifest(ctx.folder)
    return summary
