"""Hyperparameter studies on Optuna: one full, seeded run of a program per setting tried.

A study varies the settings of one program (the *base program*, e.g. 12.1) and is
itself run by another program (the *study program*, e.g. 12.2), so `dlab run 12.2` and
`dlab study 12.2` both leave an ordinary run folder with a record, a table and plots.

Declaring a study, next to its study program::

    from dlab.studies import Study, StudySettings, execute, record

    @dataclass
    class AEStudyConfig(StudySettings):       # adds mode, n_trials, workers, storage
        latents: tuple[int, ...] = (8, 16, 32, 64)  # code sizes tried
        lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3)  # learning rates tried

    def ae_study(cfg: AEStudyConfig) -> Study:
        return Study(program="12.1", base_profile="quick", base={"epochs": 8},
                     space={"latent": cfg.latents, "lr": cfg.lrs},
                     metric="test_mse", direction="minimize", mode=cfg.mode,
                     n_trials=cfg.n_trials, report=("parameters",))

    def run_ae_study(cfg, ctx):
        result = execute(ae_study(cfg), ctx, workers=cfg.workers, storage=cfg.storage)
        record(result, ctx)         # table, plots and sentences in the run's record

    AE_STUDY = Implementation(config=AEStudyConfig, run=run_ae_study, profiles={...})

What a study does
- `space` maps fields of the base program's config to the values tried (numbers,
  strings, booleans, or tuples, which travel as "64,32" like `--set`). `base` fixes
  other fields for every trial; `base_profile` is the base program's profile each
  trial starts from.
- mode "one_at_a_time" (the default): the base configuration once, then each field
  changed alone to each of its other values, everything else at the base; the table
  then reads one factor at a time. "grid": every combination. "sampled": `n_trials`
  settings drawn by Optuna's TPE sampler from the same value lists.
- Each trial is `dlab.api.run_program(base program, profile=base_profile, seed=the
  study's seed, sets=base + the trial's values)` with its own run folder (metrics.json,
  history, figures, record). All trials share the seed, so differences between rows come
  from the settings, not from the draw of initial weights.
- The objective is `metrics[metric]` of the trial's metrics.json; `report` names other
  metrics kept beside it. A trial that diverges, fails or produces no finite metric
  is stored as FAIL with its reason (user attribute "reason") and the study goes on.

Where things go
- The study folder is `OUT/<study program>/study-<profile>-seed<seed>-<key>/`, next to
  the study program's run folders; `key` hashes the plan (program, space, mode, base
  configuration, metric, seed). It holds `study.db` (the default storage, SQLite),
  `trials/<number>/...` (each trial's run folder), `trials.csv`, `table.md` and one
  plot per varied field (`<field>.png`). The study program's own run folder gets the
  same table and plots through `record`.
- The Optuna study is named `dlab-<study program>-<profile>-seed<seed>-<key>`.
- `storage` may be any database URL Optuna supports (e.g. postgresql://user@host/db).
  Keep passwords out of the URL (it is written to metrics.json): use PGPASSWORD or
  ~/.pgpass. PostgreSQL needs the psycopg2 driver (`pip install psycopg2-binary`).

Reruns, workers and machines
- Trials of a plan are put in Optuna's queue (WAITING) once; a worker claims one by
  moving it to RUNNING (a row lock on a database server; a file lock beside SQLite),
  so no two workers run the same trial. Optuna's GridSampler is not used because it is
  documented to repeat grid points when workers run concurrently.
- Rerunning the same study continues it: finished trials (COMPLETE, or FAIL for a
  reason other than an interruption) are not repeated; interrupted ones and trials
  left RUNNING by a process that no longer exists on this machine are run again.
- `workers=N` starts N processes (multiprocessing, spawn) that each load the study by
  name from the storage and pull trials until none is left; on CPU each process is
  pinned to its share of the cores. Other machines can join a study by running the
  same command with the same `storage` URL.
- `run_study(ID, ...)` is `dlab study ID [--workers N] [--storage URL]`: the same as
  `dlab run ID --set workers=N --set storage=URL` for a study program ID.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlab.errors import DlabError, UsageError
from dlab.registry import PROGRAMS, ProgramInfo

MODES = ("one_at_a_time", "grid", "sampled")
DIRECTIONS = ("minimize", "maximize")
COURSE_STUDIES = ("12.2", "13.2", "14.2", "15.2", "16.2")

Value = str | int | float | bool


# ------------------------------------------------------------------ declarations


@dataclass(frozen=True)
class Study:
    """A hyperparameter study over the config of one program (see the module docstring).

    program:      id of the base program ("12.1"), or its ProgramInfo.
    space:        {config field: values tried}.
    metric:       key of the base program's metrics.json "metrics" to optimise.
    direction:    "minimize" or "maximize".
    mode:         "one_at_a_time", "grid" or "sampled".
    base_profile: the base program's profile every trial starts from.
    base:         {config field: value} fixed in every trial (e.g. fewer epochs).
    report:       other metrics kept per trial (table, trials.csv).
    plot:         metrics drawn against each varied field (default: `metric`).
    n_trials:     number of trials in "sampled" mode.
    """

    program: str | ProgramInfo
    space: Mapping[str, Sequence[Any]]
    metric: str
    direction: str = "minimize"
    mode: str = "one_at_a_time"
    base_profile: str = "smoke"
    base: Mapping[str, Any] = field(default_factory=dict)
    report: tuple[str, ...] = ()
    plot: tuple[str, ...] = ()
    n_trials: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"study mode {self.mode!r}: use one of {', '.join(MODES)}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"study direction {self.direction!r}: use minimize or maximize")
        if not self.space or any(len(v) == 0 for v in self.space.values()):
            raise ValueError("a study needs at least one field with at least one value")
        if self.mode == "sampled" and self.n_trials < 1:
            raise ValueError("a sampled study needs n_trials >= 1")
        for name, values in self.space.items():
            for v in values:
                encode(v, name)

    @property
    def info(self) -> ProgramInfo:
        if isinstance(self.program, ProgramInfo):
            return self.program
        if self.program not in PROGRAMS:
            raise UsageError(f"study over unknown program {self.program!r}")
        return PROGRAMS[self.program]


@dataclass
class StudySettings:
    """Settings every study program has; its config dataclass subclasses this.

    A subclass that defines `validate` must call `super().validate()`.
    """

    mode: str = "one_at_a_time"  # one_at_a_time (around the base settings), grid or sampled
    n_trials: int = 12  # number of trials in "sampled" mode (other modes ignore it)
    workers: int = 1  # local processes that run trials at the same time
    storage: str = ""  # Optuna storage URL; "" = an SQLite file in the study folder
    trial_profile: str = "quick"  # profile of the base program that every trial starts from

    def validate(self) -> None:
        if self.trial_profile not in ("smoke", "quick", "full"):
            raise ValueError(f"trial_profile {self.trial_profile!r}: use smoke, quick or full")
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: use one of {', '.join(MODES)}")
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be at least 1, got {self.n_trials}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.storage:
            check_storage_url(self.storage)


def encode(value: Any, name: str = "value") -> Value:
    """A config value as Optuna stores it: scalars as they are, tuples as "64,32"."""
    if isinstance(value, tuple | list):
        return ",".join(str(encode(v, name)) for v in value)
    if isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"study field {name}: value {value!r} is not a number, string, bool "
                     "or tuple of them")


def as_text(value: Value) -> str:
    """A stored value as `--set` text (run_program parses it against the field's type)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ------------------------------------------------------------------------ storage


def check_storage_url(url: str) -> None:
    """Raise ValueError for text that is not a database URL or that holds a password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"storage {url!r} is not a database URL; e.g. "
                         "postgresql://user@host:5432/db or sqlite:///study.db") from None
    if parsed.password:
        raise ValueError("the storage URL holds a password, which would be written to "
                         "metrics.json; put it in PGPASSWORD or ~/.pgpass instead")


def masked(url: str) -> str:
    """The URL with any password hidden, for messages and records."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL: say so rather than fail while reporting
        return "<storage URL>"


def _with_driver(url: str) -> str:
    """postgresql://... names SQLAlchemy's default driver (psycopg 3 since SQLAlchemy 2.1);
    use psycopg2, dlab's dependency, when psycopg 3 is not installed."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def open_storage(url: str) -> Any:
    """An Optuna RDBStorage for `url`; one clear UsageError when it cannot be used."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}  # wait for writers
    try:
        return optuna.storages.RDBStorage(_with_driver(url), **kwargs)
    except ImportError:
        raise UsageError(f"storage {masked(url)}: its database driver is not installed; for "
                         "PostgreSQL run `pip install psycopg2-binary`") from None
    except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"storage {masked(url)}: cannot open it ({first}); check the URL and "
                         "that the database server is running") from None


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Point:
    """One planned setting: the value of every varied field, and which field differs
    from the base configuration ("base" for the base itself; "" in grid mode)."""

    params: dict[str, Value]
    varied: str

    @property
    def key(self) -> str:
        return json.dumps(self.params, sort_keys=True)


@dataclass(frozen=True)
class Plan:
    points: list[Point]
    base_params: dict[str, Value]  # the base configuration's value of each varied field
    choices: dict[str, list[Value]]  # every value a field can take in this study
    base_config: dict[str, Any]  # the base program's whole config for a trial at the base
    key: str  # hash of everything that defines the study's results


def make_plan(study: Study, seed: int) -> Plan:
    """The study's trials, checked against the base program's config before any runs."""
    import dataclasses

    from dlab import config as configs

    info = study.info
    impl = info.load()
    fields = {f.name for f in dataclasses.fields(impl.config)}
    unknown = sorted((set(study.space) | set(study.base)) - fields)
    if unknown:
        raise UsageError(f"study over {info.id}: no setting {', '.join(unknown)}; settings "
                         f"are: {', '.join(sorted(fields))}")
    base_text = {k: as_text(encode(v, k)) for k, v in study.base.items()}
    base_cfg = configs.build(impl.config, impl.profiles, study.base_profile, base_text, info.id)
    base_params = {f: encode(getattr(base_cfg, f), f) for f in study.space}
    choices: dict[str, list[Value]] = {}
    for f, values in study.space.items():
        listed = [encode(v, f) for v in values]
        if study.mode == "one_at_a_time":
            listed.append(base_params[f])
        choices[f] = list(dict.fromkeys(listed))  # unique, first-seen order

    if study.mode == "one_at_a_time":
        points = [Point(dict(base_params), "base")]
        for f, values in study.space.items():
            for v in dict.fromkeys(encode(x, f) for x in values):
                if v != base_params[f]:
                    points.append(Point({**base_params, f: v}, f))
    elif study.mode == "grid":
        names = list(study.space)
        points = [Point(dict(zip(names, combo, strict=True)), "")
                  for combo in itertools.product(*(choices[f] for f in names))]
    else:
        points = []
    blob = json.dumps({"program": info.id, "mode": study.mode, "choices": choices,
                       "points": [p.key for p in points], "base_profile": study.base_profile,
                       "base_config": configs.to_dict(base_cfg), "metric": study.metric,
                       "direction": study.direction, "n_trials": study.n_trials,
                       "seed": seed}, sort_keys=True, default=str)
    key = hashlib.sha256(blob.encode()).hexdigest()[:10]
    return Plan(points, base_params, choices, configs.to_dict(base_cfg), key)


# ------------------------------------------------------------------------ running


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


def _say(job: _Job, message: str) -> None:
    if not job.quiet:
        print(f"[{job.prefix}] {message}", flush=True)


@contextlib.contextmanager
def _claim_lock(job: _Job) -> Iterator[None]:
    """Serialise claims on SQLite, which has no row locks (a server database has them)."""
    if not job.url.startswith("sqlite"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Unix: SQLite's own locking only
        yield
        return
    with open(job.folder / "claim.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _claim(job: _Job, st: Any, storage: Any) -> Any:
    """Move one WAITING trial to RUNNING and return it as an optuna Trial, or None."""
    import optuna
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(job.name)
    with _claim_lock(job):
        for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
            tid = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            try:
                if storage.set_trial_state_values(tid, state=TrialState.RUNNING):
                    trial = optuna.trial.Trial(st, tid)
                    trial.set_user_attr("host", socket.gethostname())
                    trial.set_user_attr("pid", os.getpid())
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
        settled = t.state == TrialState.COMPLETE or (
            t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"))
        if settled or (t.state == TrialState.RUNNING and t.number < trial.number):
            return t.number
    return None


def _run_trial(job: _Job, st: Any, trial: Any) -> None:
    """Run the base program with the trial's settings and tell Optuna the outcome."""
    from optuna.trial import TrialState

    from dlab.api import run_program

    study = job.study
    params = {f: trial.suggest_categorical(f, job.choices[f]) for f in study.space}
    sets = {**{k: as_text(encode(v, k)) for k, v in study.base.items()},
            **{k: as_text(v) for k, v in params.items()}}
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    out = job.folder / "trials" / f"{trial.number:04d}"
    command = (f"dlab run {study.info.id} --profile {study.base_profile} --seed {job.seed}"
               + "".join(f" --set {k}={v}" for k, v in sets.items()))

    def fail(status: str, reason: str, interrupted: bool = False) -> None:
        trial.set_user_attr("status", status)
        trial.set_user_attr("reason", " ".join(reason.split())[:500])
        if interrupted:
            trial.set_user_attr("interrupted", True)
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        st.tell(trial, state=TrialState.FAIL)
        _say(job, f"trial {trial.number} ({shown}): {status}: {reason}")

    t0 = time.perf_counter()
    try:
        outcome = run_program(study.info, profile=study.base_profile, seed=job.seed,
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
    trial.set_user_attr("run_folder", str(outcome.folder.relative_to(job.folder)))
    if outcome.status != "ok":
        return fail(outcome.status, outcome.message)
    metrics = outcome.metrics or {}
    for name in study.report:
        if isinstance(metrics.get(name), int | float | str):
            trial.set_user_attr(name, metrics[name])
    value = metrics.get(study.metric)
    if not isinstance(value, int | float) or not math.isfinite(value):
        return fail("failed", f"metric {study.metric!r} is {value!r}, not a finite number")
    trial.set_user_attr("status", "ok")
    trial.set_user_attr("seconds", time.perf_counter() - t0)
    st.tell(trial, float(value))
    _say(job, f"trial {trial.number} ({shown}): {study.metric} {value:.5g} "
              f"in {time.perf_counter() - t0:.1f}s")


def _pin_cpus(index: int, workers: int) -> None:
    """Give worker `index` its share of this process's cores (torch then uses that many)."""
    if not hasattr(os, "sched_setaffinity"):  # pragma: no cover - not Linux
        return
    cpus = sorted(os.sched_getaffinity(0))
    share = cpus[index::workers] or [cpus[index % len(cpus)]]
    os.sched_setaffinity(0, share)


def _work(job: _Job, index: int, workers: int) -> int:
    """Pull and run trials until the study has none left; returns how many it ran."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if workers > 1 and job.device == "cpu":
        _pin_cpus(index, workers)
    if job.study.mode == "sampled":
        sampler = optuna.samplers.TPESampler(seed=job.seed * 1000 + index)
    else:
        sampler = optuna.samplers.RandomSampler(seed=job.seed)  # never used: params are fixed
    storage = open_storage(job.url)
    st = optuna.load_study(study_name=job.name, storage=storage, sampler=sampler)
    ran = 0
    while True:
        if job.study.mode == "sampled":
            counted = [t for t in st.get_trials(deepcopy=False)
                       if t.state in (TrialState.COMPLETE, TrialState.RUNNING)
                       or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"))]
            if len(counted) >= job.study.n_trials:
                return ran
            trial = st.ask()
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
            trial.set_user_attr("varied", "")
        else:
            trial = _claim(job, st, storage)
            if trial is None:
                return ran
            other = _duplicate_of(st, trial)
            if other is not None:
                trial.set_user_attr("status", "duplicate")
                trial.set_user_attr("reason", f"same setting as trial {other}")
                st.tell(trial, state=TrialState.PRUNED)
                continue
        _run_trial(job, st, trial)
        ran += 1


def _worker_main(job: _Job, index: int, workers: int) -> None:
    """Entry point of a spawned worker process."""
    import sys

    try:
        _work(job, index, workers)
    except KeyboardInterrupt:
        sys.exit(130)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid == os.getpid():
        return False  # this process runs no trial while it prepares the study
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _release_stale(st: Any, storage: Any, local_only: bool) -> int:
    """Fail RUNNING trials whose process on this machine has gone (Ctrl-C, a crash)."""
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(st.study_name)
    host = socket.gethostname()
    released = 0
    for t in st.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("host")
        if owner == host and not _pid_alive(t.user_attrs.get("pid")) or (
                owner is None and local_only):
            tid = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            storage.set_trial_user_attr(tid, "status", "interrupted")
            storage.set_trial_user_attr(tid, "reason", "its process ended before it finished")
            storage.set_trial_user_attr(tid, "interrupted", True)
            st.tell(t.number, state=TrialState.FAIL)
            released += 1
    return released


def _settled(trials: list[Any]) -> int:
    from optuna.trial import TrialState

    return sum(1 for t in trials if t.state in (TrialState.COMPLETE, TrialState.FAIL))


def _enqueue_missing(st: Any, points: list[Point]) -> int:
    """Queue every planned setting that no trial covers yet; returns how many."""
    from optuna.trial import TrialState

    covered = set()
    for t in st.get_trials(deepcopy=False):
        live = t.state in (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
        if live or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")):
            covered.add(t.user_attrs.get("key"))
    queued = 0
    for p in points:
        if p.key not in covered:
            st.enqueue_trial(p.params, user_attrs={"key": p.key, "varied": p.varied})
            covered.add(p.key)
            queued += 1
    return queued


# ------------------------------------------------------------------------ results


@dataclass
class StudyResult:
    """What a study produced (rows in plan order; see `rows` for the columns)."""

    study: Study
    name: str
    folder: Path
    storage: str  # URL with any password hidden
    plan: Plan
    rows: list[dict[str, Any]]  # one per setting: trial, varied, params, metric, report...
    trials: list[dict[str, Any]]  # every trial in the storage (trials.csv)
    ran: int  # trials run by this call (0 when a rerun found everything done)
    seconds: float
    workers: int
    figures: dict[str, Path] = field(default_factory=dict)  # varied field -> PNG

    @property
    def params(self) -> list[str]:
        return list(self.study.space)

    @property
    def varied_params(self) -> list[str]:
        """The fields that took more than one value in this study's rows."""
        return [f for f in self.params if len({r[f] for r in self.rows}) > 1]

    @property
    def complete(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "ok"]

    @property
    def best(self) -> dict[str, Any] | None:
        done = self.complete
        if not done:
            return None
        sign = 1.0 if self.study.direction == "minimize" else -1.0
        return min(done, key=lambda r: sign * r[self.study.metric])

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Columns and rows for the record (and table.md)."""
        s = self.study
        cols = ["trial"] + (["varied"] if s.mode == "one_at_a_time" else [])
        cols += [*self.params, s.metric, *s.report, "seconds", "status"]
        rows = []
        for r in self.rows:
            rows.append([r.get(c, "") if r.get(c) is not None else "" for c in cols])
        return cols, rows


def _trial_row(t: Any, study: Study) -> dict[str, Any]:
    ua = t.user_attrs
    row: dict[str, Any] = {"trial": t.number, "state": t.state.name,
                           "status": ua.get("status", t.state.name.lower()),
                           "varied": ua.get("varied", "")}
    fixed = t.system_attrs.get("fixed_params", {})
    for f in study.space:
        row[f] = t.params.get(f, fixed.get(f))
    row[study.metric] = t.value if t.value is not None else None
    for name in study.report:
        row[name] = ua.get(name)
    row["seconds"] = round(ua["seconds"], 2) if "seconds" in ua else None
    row["reason"] = ua.get("reason", "")
    row["host"] = ua.get("host", "")
    row["run_folder"] = ua.get("run_folder", "")
    return row


def _rows(trials: list[Any], plan: Plan, study: Study) -> list[dict[str, Any]]:
    """One row per planned setting (its best-settled trial), or per sampled trial."""
    from optuna.trial import TrialState

    rank = {TrialState.COMPLETE: 0, TrialState.FAIL: 1, TrialState.RUNNING: 2,
            TrialState.WAITING: 3, TrialState.PRUNED: 4}
    if study.mode == "sampled":
        return [_trial_row(t, study) for t in trials if t.state != TrialState.PRUNED]
    by_key: dict[str, Any] = {}
    for t in trials:
        k = t.user_attrs.get("key")
        interrupted = bool(t.user_attrs.get("interrupted"))
        score = (rank[t.state] + (3 if interrupted else 0), t.number)
        if k not in by_key or score < by_key[k][0]:
            by_key[k] = (score, t)
    return [_trial_row(by_key[p.key][1], study) for p in plan.points if p.key in by_key]


def _sort_values(values: list[Value]) -> list[Value]:
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return sorted(values)
    return values


def plot_field(result: StudyResult, name: str) -> Any:
    """A figure of each plotted metric against one varied field (failed trials marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.study
    metrics = list(s.plot or (s.metric,))
    rows = result.rows
    if s.mode == "one_at_a_time":
        rows = [r for r in rows if r["varied"] in (name, "base")]
    values = _sort_values(list(dict.fromkeys(r[name] for r in rows)))
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    log_x = numeric and min(values) > 0 and max(values) / min(values) >= 20
    pos = {v: (v if numeric else i) for i, v in enumerate(values)}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        ok = [r for r in rows if r["status"] == "ok" and isinstance(r.get(metric), int | float)]
        bad = [r for r in rows if r["status"] != "ok"]
        ax.scatter([pos[r[name]] for r in ok], [r[metric] for r in ok], color="tab:blue",
                   zorder=3, label="trial")
        means = [(pos[v], float(sum(r[metric] for r in ok if r[name] == v)
                                / max(1, sum(1 for r in ok if r[name] == v))))
                 for v in values if any(r[name] == v for r in ok)]
        if len(means) > 1 and numeric:
            ax.plot(*zip(*means, strict=True), color="tab:blue", alpha=0.6,
                    label="mean" if s.mode != "one_at_a_time" else None)
        if s.mode == "one_at_a_time" and name in result.plan.base_params:
            base = [r for r in ok if r["varied"] == "base"]
            if base:
                ax.scatter([pos[base[0][name]]], [base[0][metric]], s=110, facecolors="none",
                           edgecolors="black", zorder=4, label="base setting")
        if bad:
            y = max([r[metric] for r in ok], default=1.0)
            ax.scatter([pos[r[name]] for r in bad], [y] * len(bad), marker="x", color="tab:red",
                       zorder=3, label="failed / diverged")
        if log_x:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(values)), [str(v) for v in values])
        elif len(values) <= 8:
            ax.set_xticks(values, [str(v) for v in values])
            ax.minorticks_off()
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    others = "others at the base setting" if s.mode == "one_at_a_time" else "all trials"
    fig.suptitle(f"{s.info.id}: {', '.join(metrics)} against {name} ({others})", fontsize=9)
    fig.tight_layout()
    return fig


def _write_outputs(result: StudyResult) -> None:
    import matplotlib.pyplot as plt

    from dlab.io import atomic_path, atomic_write, write_csv
    from dlab.report.record import md_table

    write_csv(result.folder / "trials.csv", result.trials)
    cols, rows = result.table()
    s = result.study
    lines = [f"# Study {result.name}", "",
             f"Base program {s.info.id} at profile `{s.base_profile}`, mode `{s.mode}`, "
             f"{s.direction} `{s.metric}`; storage {result.storage}.", "",
             md_table(cols, rows), ""]
    failed = [r for r in result.rows if r["status"] != "ok"]
    if failed:
        lines += ["Failed trials:", ""]
        lines += [f"- trial {r['trial']}: {r['status']}: {r['reason']}" for r in failed]
        lines.append("")
    atomic_write(result.folder / "table.md", "\n".join(lines))
    for name in result.varied_params:
        fig = plot_field(result, name)
        with atomic_path(result.folder / f"{name}.png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        plt.close(fig)
        result.figures[name] = result.folder / f"{name}.png"


def execute(study: Study, ctx: Any, *, workers: int = 1, storage: str | None = None
            ) -> StudyResult:
    """Run (or continue) `study` for the study program whose RunContext is `ctx`.

    Trials run with ctx.seed, ctx.device and ctx.data_dir. Returns the rows in plan
    order after writing trials.csv, table.md and the plots into the study folder.
    """
    import multiprocessing

    import optuna

    plan = make_plan(study, ctx.seed)
    tag = f"{ctx.profile}-seed{ctx.seed}-{plan.key}"
    folder = ctx.folder.parent / f"study-{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    name = f"dlab-{ctx.program.id}-{tag}"
    job = _Job(study, plan.choices, name, url, folder, ctx.seed, ctx.device,
               ctx.data_dir, ctx.quiet, ctx.program.id)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = open_storage(url)
    st = optuna.create_study(study_name=name, storage=opened, direction=study.direction,
                             load_if_exists=True)
    released = _release_stale(st, opened, local_only=not storage)
    queued = _enqueue_missing(st, plan.points) if study.mode != "sampled" else 0
    done = sum(1 for t in st.get_trials(deepcopy=False) if t.state.is_finished())
    ctx.log(f"study {name}: {len(plan.points) or study.n_trials} settings, {done} trials "
            f"already finished, {queued} queued, {released} stale released; {workers} "
            f"worker(s); storage {masked(url)}")

    t0 = time.perf_counter()
    before = _settled(st.get_trials(deepcopy=False))
    if workers == 1:
        _work(job, 0, 1)
    else:
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
    seconds = time.perf_counter() - t0

    trials = st.get_trials(deepcopy=False)
    ran = _settled(trials) - before
    result = StudyResult(study, name, folder, masked(url), plan, _rows(trials, plan, study),
                         [_trial_row(t, study) for t in trials], ran, seconds, workers)
    _write_outputs(result)
    return result


# ------------------------------------------------------------------------- record


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def record(result: StudyResult, ctx: Any) -> None:
    """Put the study's table, plots, numbers and measured sentences into ctx's record."""
    s = result.study
    cols, rows = result.table()
    ctx.table(f"Study over {s.info.id} ({s.mode.replace('_', ' ')}): {s.metric}, "
              f"{s.direction}d", cols, rows)
    for name in result.varied_params:
        ctx.figure(plot_field(result, name), f"study-{name}.png",
                   f"{', '.join(s.plot or (s.metric,))} of {s.info.id} against {name}.")
    fixed = ", ".join(f"{k}={v}" for k, v in s.base.items())
    ctx.data(f"Each trial is a full run of {s.info.id} ({s.info.title}) at profile "
             f"{s.base_profile}{' with ' + fixed if fixed else ''}, seed {ctx.seed}; "
             f"run folders under {result.folder / 'trials'}.")
    ctx.data(f"Study {result.name} in {result.storage}; {len(result.trials)} trials stored, "
             f"{result.ran} run now by {result.workers} worker(s) in {result.seconds:.1f} s.")

    best = result.best
    failed = [r for r in result.rows if r["status"] != "ok"]
    ctx.metrics["study"] = {
        "name": result.name, "folder": str(result.folder), "storage": result.storage,
        "mode": s.mode, "settings": len(result.rows), "complete": len(result.complete),
        "failed": len(failed), "ran_now": result.ran, "workers": result.workers,
        "seconds": round(result.seconds, 2),
        "best": ({"trial": best["trial"], "params": {f: best[f] for f in result.params},
                  s.metric: best[s.metric]} if best else None),
    }
    if best is not None:
        ctx.metrics[f"best_{s.metric}"] = best[s.metric]
        where = ", ".join(f"{f}={best[f]}" for f in result.params)
        ctx.infer(f"The best of {len(result.complete)} completed trials is trial "
                  f"{best['trial']} ({where}) with {s.metric} {_fmt(best[s.metric])}.")
    for sentence in _effects(result):
        ctx.infer(sentence)
    for r in failed:
        ctx.infer(f"Trial {r['trial']} ({', '.join(f'{f}={r[f]}' for f in result.params)}) "
                  f"ended {r['status']}: {r['reason']}")


def _effects(result: StudyResult) -> list[str]:
    """Per varied field: how far the metric moved across its values (measured)."""
    s = result.study
    ok = result.complete
    spans: list[tuple[float, str]] = []
    out = []
    base = next((r for r in ok if r["varied"] == "base"), None)
    for f in result.params:
        group = [r for r in ok if r["varied"] in (f, "base")] if s.mode == "one_at_a_time" \
            else ok
        means: dict[Value, float] = {}
        for v in dict.fromkeys(r[f] for r in group):
            vals = [r[s.metric] for r in group if r[f] == v]
            means[v] = sum(vals) / len(vals)
        if len(means) < 2:
            continue
        lo = min(means, key=means.get)
        hi = max(means, key=means.get)
        best, worst = (lo, hi) if s.direction == "minimize" else (hi, lo)
        span = means[hi] - means[lo]
        spans.append((span, f))
        how = "alone, others at the base setting" if s.mode == "one_at_a_time" \
            else "averaged over the other fields"
        rel = f" ({span / abs(base[s.metric]) * 100:.1f}% of the base value)" \
            if base and base[s.metric] else ""
        out.append(f"Varying {f} ({how}): {s.metric} ranges from {_fmt(means[best])} at "
                   f"{f}={best} to {_fmt(means[worst])} at {f}={worst}, a spread of "
                   f"{_fmt(span)}{rel}.")
    if len(spans) >= 2:
        spans.sort()
        out.append(f"Over these values, {spans[-1][1]} moves {s.metric} the most "
                   f"({_fmt(spans[-1][0])}) and {spans[0][1]} the least ({_fmt(spans[0][0])}).")
    return out


# ------------------------------------------------------------------------ the CLI


def run_study(program_id: str, *, profile: str = "quick", seed: int = 0,
              storage: str | None = None, workers: int = 1, out: str | os.PathLike = "runs",
              quiet: bool = False, data_dir: str | os.PathLike | None = None,
              device: str = "auto") -> Path:
    """`dlab study ID`: run the study program ID (12.2, or 12 for its experiment's study).

    The same as `dlab run ID --set workers=N --set storage=URL`; returns the study
    program's run folder (its study folder is beside it; see the module docstring).
    """
    from dlab.api import run_program
    from dlab.registry import resolve

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
    command = f"dlab study {info.id} --profile {profile} --seed {seed} --workers {workers}"
    if storage:
        command += f" --storage {masked(storage)}"
    outcome = run_program(info, profile=profile, seed=seed, device=device, sets=sets, out=out,
                          quiet=quiet, data_dir=data_dir, command=command)
    return outcome.folder
