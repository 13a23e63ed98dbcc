"""Running a study: `execute` (open or continue it, run its trials, gather the result)
and `run_study` (`dlab study ID`)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from dlab.errors import UsageError
from dlab.studies.plan import Plan, _enqueue_missing, _progress, make_plan
from dlab.studies.recording import _write_outputs
from dlab.studies.results import StudyNotFinished, StudyResult, _rows, _trial_rows
from dlab.studies.storage import check_storage_url, fail_stale, masked, open_storage, storage_lock
from dlab.studies.study import Study, StudySettings
from dlab.studies.workers import _Job, _run_workers, _say

COURSE_STUDIES = ("12.2", "13.2", "14.2", "15.2", "16.2")


def _options(ctx: Any) -> tuple[int, int, bool]:
    """heartbeat, grace and report_only from the study program's settings."""
    cfg = getattr(ctx, "config", None)
    return (int(getattr(cfg, "heartbeat", 10)), int(getattr(cfg, "grace", 30)),
            bool(getattr(cfg, "report_only", False)))


def _report_command(ctx: Any, storage: str | None) -> str:
    where = f"--storage {masked(storage)}" if storage else f"--out {ctx.folder.parent.parent}"
    return (f"dlab study {ctx.program.id} --profile {ctx.profile} --seed {ctx.seed} --report "
            f"{where}")


def _open_study(job: _Job, study: Study, plan: Plan, report_only: bool) -> tuple[Any, int]:
    """Create or load the study and queue its missing trials, under the storage lock so
    that workers started together on a fresh database do not collide. Returns the
    study and how many trials were queued."""
    import optuna

    with storage_lock(job.url):
        opened = open_storage(job.url, job.heartbeat, job.grace,
                              say=lambda m: _say(job, m))
        if report_only:
            try:
                return optuna.load_study(study_name=job.name, storage=opened), 0
            except KeyError:
                others = [n for n in optuna.get_all_study_names(opened)
                          if n.startswith(f"dlab-{job.prefix}-")]
                hint = (f"; it holds {', '.join(others)} (give the same --profile and --seed)"
                        if others else "")
                raise UsageError(f"--report: storage {masked(job.url)} has no study "
                                 f"{job.name}{hint}") from None
        st = optuna.create_study(study_name=job.name, storage=opened,
                                 direction=study.direction, load_if_exists=True)
        fail_stale(st)
        return st, (_enqueue_missing(st, plan.points) if study.mode != "sampled" else 0)


def _take_record(job: _Job, st: Any, plan: Plan, ctx: Any, report: str) -> None:
    """Decide, under the storage lock, whether this process writes the study's record:
    only when the study is finished and no other process has recorded this same state
    of it. Otherwise raise StudyNotFinished with one line saying why."""
    import datetime as dt

    with storage_lock(job.url):
        trials = st.get_trials(deepcopy=False)
        progress = _progress(trials, plan, job.study)
        if not progress.finished:
            raise StudyNotFinished(f"study {job.name}: {progress.text()}; the record is "
                                   "written when the last one finishes, or by "
                                   f"`{report}`")
        mark = {"trials": len(trials), "host": socket.gethostname(), "pid": os.getpid(),
                "folder": str(ctx.folder), "at": dt.datetime.now(dt.UTC).isoformat()}
        taken = st.user_attrs.get("dlab_record")
        if isinstance(taken, dict) and taken.get("trials") == len(trials):
            raise StudyNotFinished(f"study {job.name}: finished ({progress.done} of "
                                   f"{progress.total} trials done); its record was written "
                                   f"by the worker on host {taken.get('host')} into "
                                   f"{taken.get('folder')}; `{report}` writes it here")
        st.set_user_attr("dlab_record", mark)


def execute(study: Study, ctx: Any, *, workers: int = 1, storage: str | None = None
            ) -> StudyResult:
    """Run (or continue) `study` for the study program whose RunContext is `ctx`.

    Trials run with ctx.seed, ctx.device and ctx.data_dir; heartbeat, grace and
    report_only come from ctx.config (a StudySettings). Returns the rows in plan order
    after writing trials.csv, table.md and the plots into the study folder. Raises
    StudyNotFinished in a process that should write no record (see the package docstring).
    """
    import optuna

    heartbeat, grace, report_only = _options(ctx)
    plan = make_plan(study, ctx.seed)
    tag = f"{ctx.profile}-seed{ctx.seed}-{plan.key}"
    folder = ctx.folder.parent / f"study-{tag}"
    if storage:
        try:
            check_storage_url(storage)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    elif report_only and not (folder / "study.db").is_file():
        raise UsageError(f"--report: no study under {folder}; give the --storage URL it ran "
                         "with, or the same --out, --profile and --seed")
    folder.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    name = f"dlab-{ctx.program.id}-{tag}"
    job = _Job(study, plan.choices, name, url, folder, ctx.seed, ctx.device,
               ctx.data_dir, ctx.quiet, ctx.program.id, heartbeat, grace)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st, queued = _open_study(job, study, plan, report_only)
    at_start = _progress(st.get_trials(deepcopy=False), plan, study)  # states right now
    ctx.log(f"study {name}: {len(plan.points) or study.n_trials} settings; "
            f"{at_start.start_text(queued)}; "
            f"{'report only' if report_only else f'{workers} worker(s)'}; heartbeat "
            f"{heartbeat} s, grace {grace} s; storage {masked(url)}")

    t0 = time.perf_counter()
    before = {t.number for t in st.get_trials(deepcopy=False) if t.state.is_finished()}
    pids: set[int] = set()
    if not report_only and not (at_start.finished and at_start.done >= at_start.total):
        pids = _run_workers(job, workers)
        _take_record(job, st, plan, ctx, _report_command(ctx, storage))
    seconds = time.perf_counter() - t0

    trials = st.get_trials(deepcopy=False)
    host = socket.gethostname()
    ran = sum(1 for t in trials if t.number not in before and t.state.is_finished()
              and t.user_attrs.get("host") == host and t.user_attrs.get("pid") in pids
              and t.user_attrs.get("status") != "duplicate")
    every = _trial_rows(trials, study)
    result = StudyResult(study, name, folder, masked(url), plan,
                         _rows(trials, plan, study, every), every, ran, seconds, workers,
                         progress=_progress(trials, plan, study), heartbeat=heartbeat,
                         grace=grace)
    _write_outputs(result)
    return result


def run_study(program_id: str, *, profile: str = "quick", seed: int = 0,
              storage: str | None = None, workers: int = 1, out: str | os.PathLike = "runs",
              quiet: bool = False, data_dir: str | os.PathLike | None = None,
              device: str = "auto", report: bool = False, heartbeat: int | None = None,
              grace: int | None = None) -> Path:
    """`dlab study ID`: run the study program ID (12.2, or 12 for its experiment's study).

    The same as `dlab run ID --set workers=N --set storage=URL`; returns the study
    program's run folder (its study folder is beside it; see the package docstring).
    `report=True` runs no trials: it writes the record from the storage as it stands.
    Raises StudyNotFinished when this process should not write the record.
    """
    from dlab.registry import resolve
    from dlab.running import run_program

    candidates = [p for p in resolve([program_id]) if p.implemented]
    chosen = [p for p in candidates if issubclass(p.load().config, StudySettings)]
    if not chosen:
        raise UsageError(f"{program_id} is not a built hyperparameter study; `dlab study` runs "
                         f"{', '.join(COURSE_STUDIES)} (those that `dlab list` shows as built)")
    if len(chosen) > 1:
        raise UsageError(f"{program_id} names several studies; give one id")
    info = chosen[0]
    sets = {"workers": str(workers)}
    if storage:
        sets["storage"] = storage
    if report:
        sets["report_only"] = "true"
    timing = {k: v for k, v in (("heartbeat", heartbeat), ("grace", grace)) if v is not None}
    sets.update({k: str(v) for k, v in timing.items()})
    command = f"dlab study {info.id} --profile {profile} --seed {seed} --workers {workers}"
    if storage:
        command += f" --storage {masked(storage)}"
    command += "".join(f" --{k} {v}" for k, v in timing.items())
    if report:
        command += " --report"
    outcome = run_program(info, profile=profile, seed=seed, device=device, sets=sets, out=out,
                          quiet=quiet, data_dir=data_dir, command=command)
    return outcome.folder
