"""Running a study's trials: a worker claims a queued trial (RUNNING), records heartbeats
while the base program runs, stores the outcome, and pulls the next until none is left;
`_run_workers` starts the worker processes."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlab.errors import DlabError
from dlab.studies.plan import _settles
from dlab.studies.storage import fail_stale, open_storage, storage_lock
from dlab.studies.study import Study, Value, as_text, encode


@dataclass(frozen=True)
class _Job:
    """Everything a worker process needs (pickled for spawn)."""

    study: Study
    choices: dict[str, list[Value]]
    name: str
    url: str
    folder: Path
    seed: int
    device: str
    data_dir: Path | None
    quiet: bool
    prefix: str
    heartbeat: int = 10  # seconds between heartbeats of a running trial
    grace: int = 30  # seconds of silence before a trial counts as lost


def _say(job: _Job, message: str) -> None:
    if not job.quiet:
        print(f"[{job.prefix}] {message}", flush=True)


def _start(trial: Any, storage: Any) -> None:
    """Mark a trial as this process's and record its first heartbeat at once."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    storage.record_heartbeat(trial._trial_id)


def _claim(job: _Job, st: Any, storage: Any) -> Any:
    """Move one WAITING trial to RUNNING and return it as an optuna Trial, or None."""
    import optuna
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(job.name)
    # SQLite has no row locks; a database server locks the row in set_trial_state_values
    lock = storage_lock(job.url) if job.url.startswith("sqlite") else contextlib.nullcontext()
    with lock:
        for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
            tid = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            try:
                if storage.set_trial_state_values(tid, state=TrialState.RUNNING):
                    trial = optuna.trial.Trial(st, tid)
                    _start(trial, storage)
                    return trial
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
    return None


def _duplicate_of(st: Any, trial: Any) -> int | None:
    """Number of another trial that already covers this trial's setting, if any."""
    from optuna.trial import TrialState

    key = trial.user_attrs.get("key")
    for t in st.get_trials(deepcopy=False):
        if t.number == trial.number or t.user_attrs.get("key") != key:
            continue
        if _settles(t) or (t.state == TrialState.RUNNING and t.number < trial.number):
            return t.number
    return None


@contextlib.contextmanager
def _heartbeat(storage: Any, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every interval from a thread while the body runs."""
    stop = threading.Event()
    interval = storage.get_heartbeat_interval()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                storage.record_heartbeat(trial_id)
            except Exception:  # noqa: BLE001 - a dropped connection: try again next beat
                continue

    thread = threading.Thread(target=beat, name=f"dlab-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _run_trial(job: _Job, st: Any, trial: Any) -> None:
    """Run the base program with the trial's settings and tell Optuna the outcome."""
    import optuna
    from optuna.trial import TrialState

    from dlab.running import run_program

    study = job.study
    params = {f: trial.suggest_categorical(f, job.choices[f]) for f in study.space}
    sets = {**{k: as_text(encode(v, k)) for k, v in study.base.items()},
            **{k: as_text(v) for k, v in params.items()}}
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    out = Path(os.path.abspath(job.folder / "trials" / f"{trial.number:04d}"))
    trial.set_user_attr("run_folder", str(out))  # where it runs, named while it runs
    seed = job.seed + int(trial.user_attrs.get("seed_offset", 0))
    command = (f"dlab run {study.info.id} --profile {study.base_profile} --seed {seed}"
               + "".join(f" --set {k}={v}" for k, v in sets.items()))

    def store(attrs: dict[str, Any], value: float | None = None) -> bool:
        """Save the outcome; False when the trial was meanwhile given up as lost."""
        try:
            for k, v in attrs.items():
                trial.set_user_attr(k, v)
            if value is None:
                st.tell(trial, state=TrialState.FAIL)
            else:
                st.tell(trial, value)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            _say(job, f"trial {trial.number} ({shown}): the study gave it up as lost while "
                      f"it ran here (no heartbeat reached the storage for {job.grace} s) and "
                      "queued it again; this result is not stored")
            return False
        return True

    attrs: dict[str, Any] = {}

    def fail(status: str, reason: str, interrupted: bool = False) -> None:
        attrs.update(status=status, reason=" ".join(reason.split())[:500],
                     seconds=time.perf_counter() - t0)
        attrs.setdefault("run_folder", str(out) if out.exists() else "")  # none was made
        if interrupted:
            attrs["interrupted"] = True
        if store(attrs):
            _say(job, f"trial {trial.number} ({shown}): {status}: {reason}")

    t0 = time.perf_counter()
    try:
        outcome = run_program(study.info, profile=study.base_profile, seed=seed,
                              device=job.device, sets=sets, out=out, quiet=True,
                              data_dir=job.data_dir, command=command)
    except KeyboardInterrupt:
        fail("interrupted", "interrupted before it finished; rerun the study to run it again",
             interrupted=True)
        raise
    except DlabError as exc:
        return fail("failed", str(exc))
    except Exception as exc:  # a bug in the base program: record it, go on
        return fail("failed", f"{type(exc).__name__}: {exc}")
    attrs["run_folder"] = os.path.abspath(outcome.folder)  # with "host": see recording
    if outcome.status != "ok":
        return fail(outcome.status, outcome.message)
    metrics = outcome.metrics or {}
    for name in study.report:
        if isinstance(metrics.get(name), int | float | str):
            attrs[name] = metrics[name]
    value = metrics.get(study.metric)
    if not isinstance(value, int | float) or not math.isfinite(value):
        return fail("failed", f"metric {study.metric!r} is {value!r}, not a finite number")
    attrs |= {"status": "ok", "seconds": time.perf_counter() - t0}
    if store(attrs, float(value)):
        _say(job, f"trial {trial.number} ({shown}): {study.metric} {value:.5g} "
                  f"in {time.perf_counter() - t0:.1f}s")


def _pin_cpus(index: int, workers: int) -> None:
    """Give worker `index` its share of this process's cores (torch then uses that many)."""
    if not hasattr(os, "sched_setaffinity"):  # pragma: no cover - not Linux
        return
    cpus = sorted(os.sched_getaffinity(0))
    share = cpus[index::workers] or [cpus[index % len(cpus)]]
    os.sched_setaffinity(0, share)


def _sampled_count(trials: list[Any]) -> int:
    """Trials that count towards n_trials: running, or finished for good."""
    from optuna.trial import TrialState

    return sum(1 for t in trials if t.state == TrialState.RUNNING or _settles(t))


def _has_work(job: _Job, trials: list[Any]) -> bool:
    from optuna.trial import TrialState

    if any(t.state == TrialState.WAITING for t in trials):
        return True
    return job.study.mode == "sampled" and _sampled_count(trials) < job.study.n_trials


def _next_trial(job: _Job, st: Any, storage: Any) -> Any:
    """Claim this worker's next trial (RUNNING, first heartbeat recorded), or None."""
    from optuna.trial import TrialState

    fail_stale(st)
    if job.study.mode == "sampled":
        with storage_lock(job.url):  # count and ask as one step: exactly n_trials in all
            if not _has_work(job, st.get_trials(deepcopy=False)):
                return None
            with warnings.catch_warnings():  # Optuna warns that its heartbeat is meant for
                # Study.optimize; here _heartbeat records it while the trial runs
                warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                trial = st.ask()
            _start(trial, storage)
            if "varied" not in trial.user_attrs:
                trial.set_user_attr("varied", "")
            return trial
    while True:
        trial = _claim(job, st, storage)
        if trial is None:
            return None
        other = _duplicate_of(st, trial)
        if other is None:
            return trial
        trial.set_user_attr("status", "duplicate")
        trial.set_user_attr("reason", f"same setting as trial {other}")
        st.tell(trial, state=TrialState.PRUNED)


def _watch_others(job: _Job, st: Any) -> bool:
    """Nothing left to claim here: watch the trials running elsewhere for one grace
    period and a heartbeat, failing any that go silent (a lost worker). True as soon as
    there is a trial to claim again; False when none runs any more, or when all of them
    kept their heartbeat for the whole watch (their workers are alive)."""
    from optuna.trial import TrialState

    start = time.monotonic()
    deadline = start + job.grace + job.heartbeat + 1
    check = start + job.heartbeat
    said = False
    while True:
        trials = st.get_trials(deepcopy=False)
        if _has_work(job, trials):
            return True
        running = [t.number for t in trials if t.state == TrialState.RUNNING]
        if not running or time.monotonic() > deadline:
            return False
        if not said:
            _say(job, f"nothing left to claim; trial(s) {', '.join(map(str, running))} "
                      f"running elsewhere: watching them up to {deadline - start:.0f} s in "
                      "case a worker was lost")
            said = True
        time.sleep(min(1.0, job.heartbeat))
        if time.monotonic() >= check:
            fail_stale(st)
            check += job.heartbeat


def _work(job: _Job, index: int, workers: int) -> int:
    """Pull and run trials until the study has none left; returns how many it ran."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if workers > 1 and job.device == "cpu":
        _pin_cpus(index, workers)
    if job.study.mode == "sampled":
        sampler = optuna.samplers.TPESampler(seed=job.seed * 1000 + index)
    else:
        sampler = optuna.samplers.RandomSampler(seed=job.seed)  # never used: params are fixed
    storage = open_storage(job.url, job.heartbeat, job.grace, say=lambda m: _say(job, m))
    st = optuna.load_study(study_name=job.name, storage=storage, sampler=sampler)
    ran = 0
    while True:
        trial = _next_trial(job, st, storage)
        if trial is None:
            if _watch_others(job, st):
                continue
            return ran
        with _heartbeat(storage, trial._trial_id):
            _run_trial(job, st, trial)
        ran += 1


def _worker_main(job: _Job, index: int, workers: int) -> None:
    """Entry point of a spawned worker process."""
    import sys

    try:
        _work(job, index, workers)
    except KeyboardInterrupt:
        sys.exit(130)


def _run_workers(job: _Job, workers: int) -> set[int]:
    """Run the trials in this process or in `workers` spawned ones; returns their PIDs."""
    import multiprocessing

    if workers == 1:
        _work(job, 0, 1)
        return {os.getpid()}
    mp = multiprocessing.get_context("spawn")
    procs = [mp.Process(target=_worker_main, args=(job, i, workers),
                        name=f"dlab-study-worker-{i}") for i in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=60)
        raise
    crashed = [p.name for p in procs if p.exitcode not in (0, None)]
    if crashed:
        raise RuntimeError(f"study workers {', '.join(crashed)} stopped with an error; "
                           "see their output above")
    return {p.pid for p in procs if p.pid is not None}
