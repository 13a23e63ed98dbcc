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
- Each trial is `dlab.running.run_program(base program, profile=base_profile, seed=the
  study's seed, sets=base + the trial's values)` with its own run folder (metrics.json,
  history, figures, record). All trials share the seed, so differences between rows come
  from the settings, not from the draw of initial weights.
- Seed noise: with `spread_seeds=k` the base setting is also run at seeds seed+1 ..
  seed+k (rows "seed +1" ...; not candidates for the choice). The standard deviation s
  of the objective over those k+1 runs is the study's measured seed noise: two single
  runs differ by the seed alone by up to t(0.975, k) * s * sqrt(2) (95%), the *noise
  band*. Settings closer than that to the chosen one cannot be ranked against it, and
  the record says so; with no repeats it says the ranking rests on one seed.
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
- Opening a study (creating Optuna's tables in a fresh database, creating the study,
  queueing its trials) happens under a lock every dlab process on that storage takes:
  an advisory lock on PostgreSQL, a file lock beside an SQLite file. Any number of
  workers may therefore start at the same moment on an empty database.
- Every running trial records a heartbeat in the storage every `heartbeat` seconds
  (Optuna's heartbeat). A trial whose heartbeat stops for `grace` seconds (its worker
  was killed, lost power or its network) is failed by whichever worker looks next and
  queued again with the same setting (Optuna's RetryHeartbeatStaleTrialCallback); the
  record names the lost trial and its retry. A worker with nothing left to claim
  watches the trials still running elsewhere for one grace period before it leaves,
  so a lost trial is taken over while any worker is alive.
- Rerunning the same study continues it: finished trials (COMPLETE, or FAIL for a
  reason other than an interruption or a lost worker) are not repeated; the others are
  run again.
- `workers=N` starts N processes (multiprocessing, spawn) that each load the study by
  name from the storage and pull trials until none is left; on CPU each process is
  pinned to its share of the cores. Other machines join a study by running the same
  command with the same `storage` URL, each with its own `--out`.
- One record per study: the process whose work leaves the study finished writes it
  (decided under the same lock). A process that runs out of trials while others still
  run raises StudyNotFinished, which says how far the study is and writes no record;
  `report_only` (`dlab study ID --report`) writes the record from the storage at any
  time, marking unfinished trials as running or waiting.
- `run_study(ID, ...)` is `dlab study ID [--workers N] [--storage URL] [--report]`: the
  same as `dlab run ID --set workers=N --set storage=URL` for a study program ID.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlab.config import as_set_text
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
    spread_seeds: further seeds the base setting runs at, to measure seed noise (not in
                  "sampled" mode).
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
    spread_seeds: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"study mode {self.mode!r}: use one of {', '.join(MODES)}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"study direction {self.direction!r}: use minimize or maximize")
        if not self.space or any(len(v) == 0 for v in self.space.values()):
            raise ValueError("a study needs at least one field with at least one value")
        if self.mode == "sampled" and self.n_trials < 1:
            raise ValueError("a sampled study needs n_trials >= 1")
        if self.spread_seeds < 0 or (self.spread_seeds and self.mode == "sampled"):
            raise ValueError("spread_seeds must be >= 0, and 0 in sampled mode")
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
    heartbeat: int = 10  # seconds between a running trial's heartbeats in the storage
    grace: int = 30  # seconds without a heartbeat before a trial counts as lost and is retried
    report_only: bool = False  # write the record from the storage; run no trials

    def validate(self) -> None:
        if self.trial_profile not in ("smoke", "quick", "full"):
            raise ValueError(f"trial_profile {self.trial_profile!r}: use smoke, quick or full")
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: use one of {', '.join(MODES)}")
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be at least 1, got {self.n_trials}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.heartbeat < 1:
            raise ValueError(f"heartbeat must be at least 1 second, got {self.heartbeat}")
        if self.grace <= self.heartbeat:
            raise ValueError(f"grace ({self.grace} s) must be longer than heartbeat "
                             f"({self.heartbeat} s), or live trials would count as lost")
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
    return as_set_text(value)


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
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_file(url, parsed.database)


SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def _check_sqlite_file(url: str, database: str | None) -> None:
    """Refuse an SQLite URL without a file (each process would get its own empty
    in-memory database) and a path that holds something other than a database."""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise ValueError(f"storage {url!r} names no database file; give one, e.g. "
                         "sqlite:///study.db (relative) or sqlite:////abs/path/study.db")
    path = Path(database)
    if path.is_dir():
        raise ValueError(f"storage {url!r}: {path} is a folder; name a database file in it")
    if path.exists():
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise ValueError(f"storage {url!r}: cannot read {path} "
                             f"({exc.strerror or exc})") from None
        if head and head != SQLITE_HEADER:  # an empty file is an empty database
            raise ValueError(f"storage {url!r}: {path} exists and is not an SQLite database; "
                             "dlab will not overwrite it (name a new file)")
    elif not path.parent.is_dir():
        raise ValueError(f"storage {url!r}: folder {path.parent} does not exist")


def _sqlite_path(url: str) -> Path:
    from sqlalchemy.engine import make_url

    return Path(make_url(url).database or "study.db")


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


def _cannot_open(url: str, exc: BaseException) -> UsageError:
    if isinstance(exc, ImportError):
        return UsageError(f"storage {masked(url)}: its database driver is not installed; for "
                          "PostgreSQL run `pip install psycopg2-binary`")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UsageError(f"storage {masked(url)}: cannot open it ({first}); check the URL and "
                      "that the database server is running")


class _RetryLost:
    """Optuna's callback for a trial whose heartbeat stopped: queue its setting again
    (RetryHeartbeatStaleTrialCallback, at most `max_retry` times), and say so."""

    def __init__(self, say: Any = None, max_retry: int = 2) -> None:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        self._say = say

    def __call__(self, study: Any, trial: Any) -> None:
        before = len(study.get_trials(deepcopy=False))
        self._retry(study, trial)
        retried = len(study.get_trials(deepcopy=False)) > before
        if self._say:
            where = f"host {trial.user_attrs.get('host', '?')}, pid {trial.user_attrs.get('pid')}"
            self._say(f"trial {trial.number} lost: its worker ({where}) sent no heartbeat for "
                      f"the grace period; " + ("queued again" if retried else
                                               "retried too often, not queued again"))


def open_storage(url: str, heartbeat: int | None = None, grace: int | None = None,
                 say: Any = None) -> Any:
    """An Optuna RDBStorage for `url`; one clear UsageError when it cannot be used.

    With `heartbeat` (seconds), running trials can record heartbeats, and a trial
    silent for `grace` seconds is failed and queued again by `fail_stale`.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}  # wait for writers
    if heartbeat:
        kwargs.update(heartbeat_interval=heartbeat, grace_period=grace or 3 * heartbeat,
                      heartbeat_stale_trial_callback=_RetryLost(say))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(_with_driver(url), **kwargs)
    except (ImportError, SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
        raise _cannot_open(url, exc) from None


def fail_stale(st: Any) -> None:
    """Fail the trials whose heartbeat stopped for the grace period; Optuna's callback
    (set by `open_storage`) queues each again. Any worker may call it: a trial is
    failed once, by whichever process gets there first."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(st)


# An arbitrary fixed key: every dlab process on a PostgreSQL server takes the same lock.
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"dlab study storage").digest()[:8], "big",
                              signed=True)


@contextlib.contextmanager
def storage_lock(url: str) -> Iterator[None]:
    """Hold the lock that every dlab process using this storage takes before it creates
    tables, opens or queues a study, claims a trial on SQLite or decides who writes the
    record: an advisory lock on PostgreSQL (released by the server if the process dies),
    an exclusive file lock beside an SQLite file, nothing elsewhere."""
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        with _file_lock(path.with_name(path.name + ".lock")):
            yield
    elif url.startswith("postgresql"):
        import sqlalchemy
        from sqlalchemy.exc import SQLAlchemyError

        try:
            engine = sqlalchemy.create_engine(_with_driver(url),
                                              poolclass=sqlalchemy.pool.NullPool)
            conn = engine.connect()
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
        except (ImportError, SQLAlchemyError) as exc:
            raise _cannot_open(url, exc) from None
        try:
            yield
        finally:
            with contextlib.suppress(SQLAlchemyError):  # a closed connection unlocks too
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"),
                             {"k": _PG_LOCK_KEY})
            conn.close()
            engine.dispose()
    else:
        yield


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Unix: SQLite's own locking only
        yield
        return
    try:
        fh = open(path, "a")
    except OSError as exc:
        raise UsageError(f"storage lock {path}: cannot create it ({exc.strerror or exc}); "
                         "the folder of an SQLite storage must be writable") from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Point:
    """One planned setting: the value of every varied field, and which field differs
    from the base configuration ("base" for the base itself; "" in grid mode; "seed +k"
    for the base setting repeated at the study's seed + k)."""

    params: dict[str, Value]
    varied: str
    seed_offset: int = 0

    @property
    def key(self) -> str:
        extra = {"@seed": self.seed_offset} if self.seed_offset else {}
        return json.dumps({**self.params, **extra}, sort_keys=True)


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
    points += [Point(dict(base_params), f"seed +{k}", k)
               for k in range(1, study.spread_seeds + 1)]
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
    heartbeat: int = 10  # seconds between heartbeats of a running trial
    grace: int = 30  # seconds of silence before a trial counts as lost


def _say(job: _Job, message: str) -> None:
    if not job.quiet:
        print(f"[{job.prefix}] {message}", flush=True)


def _retryable(t: Any) -> bool:
    """A FAIL trial whose setting should run again: interrupted (Ctrl-C), or lost (failed
    by the heartbeat check, so dlab never stored a status for it)."""
    from optuna.trial import TrialState

    return t.state == TrialState.FAIL and (bool(t.user_attrs.get("interrupted"))
                                           or "status" not in t.user_attrs)


def _settles(t: Any) -> bool:
    """The trial settles its setting for good: it completed, or failed on its own."""
    from optuna.trial import TrialState

    return t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL
                                              and not _retryable(t))


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
    out = job.folder / "trials" / f"{trial.number:04d}"
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
    attrs["run_folder"] = str(outcome.folder.relative_to(job.folder))
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


def _enqueue_missing(st: Any, points: list[Point]) -> int:
    """Queue every planned setting that no trial covers yet; returns how many."""
    from optuna.trial import TrialState

    covered = set()
    for t in st.get_trials(deepcopy=False):
        if t.state in (TrialState.WAITING, TrialState.RUNNING) or _settles(t):
            covered.add(t.user_attrs.get("key"))
    queued = 0
    for p in points:
        if p.key not in covered:
            st.enqueue_trial(p.params, user_attrs={"key": p.key, "varied": p.varied,
                                                   "seed_offset": p.seed_offset})
            covered.add(p.key)
            queued += 1
    return queued


# ------------------------------------------------------------------------ results


class StudyNotFinished(DlabError):
    """Raised by `execute` in a worker that ran out of trials while others still run (or
    whose study another worker has just recorded): nothing is wrong, and this worker
    writes no record. The message says how far the study is and how to get the record."""


@dataclass(frozen=True)
class Progress:
    """How far a study is, from the storage."""

    done: int  # planned settings (sampled: trials) settled for good
    total: int  # planned settings (sampled: n_trials)
    running: list[tuple[int, str]]  # (trial number, host) of the trials running now
    waiting: list[int]  # numbers of the trials queued and not yet claimed

    @property
    def finished(self) -> bool:
        """Nothing runs and nothing waits: no worker will add to the study."""
        return not self.running and not self.waiting

    def text(self) -> str:
        parts = [f"{self.done} of {self.total} trials done"]
        if self.running:
            parts.append(f"{len(self.running)} running elsewhere (" + ", ".join(
                f"trial {n} on {host or 'an unknown host'}" for n, host in self.running) + ")")
        if self.waiting:
            parts.append(f"{len(self.waiting)} waiting")
        return "; ".join(parts)


def _progress(trials: list[Any], plan: Plan, study: Study) -> Progress:
    from optuna.trial import TrialState

    if study.mode == "sampled":
        done, total = sum(1 for t in trials if _settles(t)), study.n_trials
    else:
        keys = {t.user_attrs.get("key") for t in trials if _settles(t)}
        done, total = sum(1 for p in plan.points if p.key in keys), len(plan.points)
    running = [(t.number, str(t.user_attrs.get("host", ""))) for t in trials
               if t.state == TrialState.RUNNING]
    waiting = [t.number for t in trials if t.state == TrialState.WAITING]
    return Progress(done, total, running, waiting)


def _is_test_metric(name: str) -> bool:
    """Metrics measured on test data (by the naming the programs use: test_mse,
    pca_test_mse, made_test_nll, ...); shown, never used to choose."""
    return "test" in name.lower().split("_")


def chosen_and_test_choice(rows: list[dict[str, Any]], val: str, test: str
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The completed row chosen by the validation metric `val` (lowest), and the row the
    test metric `test` would have chosen instead; the second is for the record only, to
    show whether choosing on test data would have changed the answer."""
    return min(rows, key=lambda r: r[val]), min(rows, key=lambda r: r[test])


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
    ran: int  # trials run by this call's processes (0 when a rerun found everything done)
    seconds: float
    workers: int
    figures: dict[str, Path] = field(default_factory=dict)  # varied field -> PNG
    progress: Progress | None = None  # None: finished (older callers)
    heartbeat: int = 10
    grace: int = 30

    @property
    def finished(self) -> bool:
        return self.progress is None or self.progress.finished

    @property
    def params(self) -> list[str]:
        return list(self.study.space)

    @property
    def varied_params(self) -> list[str]:
        """The fields that took more than one value in this study's rows."""
        return [f for f in self.params if len({r[f] for r in self.rows}) > 1]

    @property
    def complete(self) -> list[dict[str, Any]]:
        """Completed settings (the candidates for the choice; seed repeats excluded)."""
        return [r for r in self.rows if r["status"] == "ok" and not _repeat(r)]

    @property
    def base_row(self) -> dict[str, Any] | None:
        """The completed trial at the base setting (the base program's defaults at the
        study's budget; seed repeats excluded)."""
        base = self.plan.base_params
        return next((r for r in self.complete
                     if all(r[f] == base[f] for f in self.params)), None)

    def trial_arrays(self, row: dict[str, Any], name: str) -> dict[str, Any] | None:
        """The arrays a trial saved as `name` (.npz) in its run folder, or None where that
        folder is not on this machine (a trial run elsewhere)."""
        import numpy as np

        path = self.folder / row.get("run_folder", "") / name
        if not row.get("run_folder") or not path.exists():
            return None
        with np.load(path) as f:
            return {k: f[k] for k in f.files}

    @property
    def seed_runs(self) -> list[float]:
        """The objective of the base setting at the study's seed and at each repeat seed."""
        ok = [r for r in self.rows if r["status"] == "ok"]
        base = [r for r in ok if r["varied"] == "base" or (
            self.study.mode != "one_at_a_time" and not _repeat(r)
            and all(r[f] == self.plan.base_params[f] for f in self.params))][:1]
        return [r[self.study.metric] for r in base + [r for r in ok if _repeat(r)]]

    def noise_band(self) -> float | None:
        """95% band of the difference of two single runs from the seed alone, from the
        base setting's spread over seeds (None when fewer than two seeds ran)."""
        runs = self.seed_runs
        if len(runs) < 2:
            return None
        import numpy as np
        from scipy.stats import t

        return float(t.ppf(0.975, len(runs) - 1) * np.std(runs, ddof=1) * math.sqrt(2))

    def ranking(self) -> dict[str, Any]:
        """What the measured seed noise allows the study to say about its ranking."""
        done = self.complete
        sign = 1.0 if self.study.direction == "minimize" else -1.0
        order = sorted(done, key=lambda r: sign * r[self.study.metric])
        band = self.noise_band()
        out: dict[str, Any] = {"seeds": len(self.seed_runs), "noise_band": band}
        if len(order) < 2:
            return out
        m = self.study.metric
        lead = abs(order[1][m] - order[0][m])
        span = abs(order[-1][m] - order[0][m])
        out |= {"lead_over_runner_up": lead, "best_to_worst": span,
                "runner_up_trial": order[1]["trial"], "worst_trial": order[-1]["trial"]}
        if band is not None:
            out |= {"ranks_chosen": lead > band, "chosen_beats_worst": span > band,
                    "settings_within_noise": sum(abs(r[m] - order[0][m]) <= band
                                                 for r in order[1:])}
        return out

    @property
    def lost(self) -> list[dict[str, Any]]:
        """Trials whose worker stopped sending heartbeats (each row names its retry)."""
        return [r for r in self.trials if r["status"] == "lost"]

    @property
    def best(self) -> dict[str, Any] | None:
        """The chosen trial: the best objective (a validation metric) among completed
        trials; test metrics play no part."""
        done = self.complete
        if not done:
            return None
        sign = 1.0 if self.study.direction == "minimize" else -1.0
        return min(done, key=lambda r: sign * r[self.study.metric])

    def column(self, name: str) -> str:
        """A column's heading: test metrics are marked as not used for selection."""
        if name != self.study.metric and _is_test_metric(name):
            return f"{name} (not used for selection)"
        return name

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Columns and rows for the record (and table.md)."""
        s = self.study
        keys = ["trial"] + (["varied"] if s.mode == "one_at_a_time" else [])
        keys += [*self.params, s.metric, *s.report, "seconds", "status"]
        rows = []
        for r in self.rows:
            rows.append([r.get(c, "") if r.get(c) is not None else "" for c in keys])
        return [self.column(k) for k in keys], rows


def _repeat(row: dict[str, Any]) -> bool:
    return str(row.get("varied", "")).startswith("seed +")


def _trial_rows(trials: list[Any], study: Study) -> list[dict[str, Any]]:
    """One row per trial in the storage (trials.csv), lost trials named with their retry."""
    rows = [_trial_row(t, study) for t in trials]
    by_number = {r["trial"]: r for r in rows}
    for t in trials:
        history = t.system_attrs.get("retry_history") or []
        if history:
            by_number[t.number]["retry_of"] = history[-1]
            lost = by_number.get(history[-1])
            if lost is not None:
                lost["retried_as"] = t.number
                lost["reason"] += f"; retried as trial {t.number}"
    return rows


def _trial_row(t: Any, study: Study) -> dict[str, Any]:
    ua = t.user_attrs
    status = ua.get("status", t.state.name.lower())
    reason = ua.get("reason", "")
    if _retryable(t) and not ua.get("interrupted"):
        status = "lost"
        reason = (f"its worker (host {ua.get('host', '?')}, pid {ua.get('pid', '?')}) stopped "
                  "sending heartbeats, so the trial was failed after the grace period")
    row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "status": status,
                           "varied": ua.get("varied", "")}
    fixed = t.system_attrs.get("fixed_params", {})
    for f in study.space:
        row[f] = t.params.get(f, fixed.get(f))
    row[study.metric] = t.value if t.value is not None else None
    for name in study.report:
        row[name] = ua.get(name)
    row["seconds"] = round(ua["seconds"], 2) if "seconds" in ua else None
    row["reason"] = reason
    row["host"] = ua.get("host", "")
    row["run_folder"] = ua.get("run_folder", "")
    row["retry_of"] = ""
    row["retried_as"] = ""
    return row


def _rows(trials: list[Any], plan: Plan, study: Study,
          rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per planned setting (its best-settled trial), or per sampled trial;
    `rows` are the trials' rows from `_trial_rows`, in the same order as `trials`."""
    from optuna.trial import TrialState

    rank = {TrialState.COMPLETE: 0, TrialState.FAIL: 1, TrialState.RUNNING: 2,
            TrialState.WAITING: 3, TrialState.PRUNED: 4}
    if study.mode == "sampled":
        return [r for t, r in zip(trials, rows, strict=True) if t.state != TrialState.PRUNED]
    by_key: dict[str, Any] = {}
    for t, r in zip(trials, rows, strict=True):
        k = t.user_attrs.get("key")
        score = (rank[t.state] + (3 if _retryable(t) else 0), t.number)
        if k not in by_key or score < by_key[k][0]:
            by_key[k] = (score, r)
    return [by_key[p.key][1] for p in plan.points if p.key in by_key]


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
        bad = [r for r in rows if r["status"] not in ("ok", "running", "waiting")]
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
                       zorder=3, label="failed / diverged / lost")
        if log_x:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(values)), [str(v) for v in values])
        elif len(values) <= 8:
            ax.set_xticks(values, [str(v) for v in values])
            ax.minorticks_off()
        ax.set_xlabel(name)
        ax.set_ylabel(result.column(metric))
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
    lines = [f"# Study {result.name}", ""]
    if not result.finished and result.progress is not None:
        lines += [f"**Unfinished** when this was written: {result.progress.text()}.", ""]
    lines += [f"Base program {s.info.id} at profile `{s.base_profile}`, mode `{s.mode}`, "
              f"{s.direction} `{s.metric}` (the objective: the chosen trial is picked on it "
              f"alone); storage {result.storage}.", "", md_table(cols, rows), ""]
    failed = [r for r in result.trials if r["status"] not in ("ok", "running", "waiting",
                                                               "duplicate")]
    if failed:
        lines += ["Failed, interrupted or lost trials:", ""]
        lines += [f"- trial {r['trial']}: {r['status']}: {r['reason']}" for r in failed]
        lines.append("")
    atomic_write(result.folder / "table.md", "\n".join(lines))
    for name in result.varied_params:
        fig = plot_field(result, name)
        with atomic_path(result.folder / f"{name}.png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        plt.close(fig)
        result.figures[name] = result.folder / f"{name}.png"


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
    StudyNotFinished in a process that should write no record (see the module docstring).
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
    at_start = _progress(st.get_trials(deepcopy=False), plan, study)
    ctx.log(f"study {name}: {len(plan.points) or study.n_trials} settings, {at_start.done} "
            f"already done, {queued} queued, {len(at_start.running)} running elsewhere; "
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
             f"run folders under {result.folder / 'trials'} on the host that ran it.")
    hosts: dict[str, int] = {}
    for r in result.trials:
        if r["host"] and r["status"] not in ("waiting", "duplicate"):
            hosts[r["host"]] = hosts.get(r["host"], 0) + 1
    ctx.data(f"Study {result.name} in {result.storage}; {len(result.trials)} trials stored "
             f"(" + (", ".join(f"{n} on {h}" for h, n in hosts.items()) or "none run") +
             f"), {result.ran} run by this command's {result.workers} worker(s) in "
             f"{result.seconds:.1f} s; heartbeat every {result.heartbeat} s, a trial silent "
             f"for {result.grace} s counts as lost and is retried.")

    best = result.best
    failed = [r for r in result.rows if r["status"] not in ("ok", "running", "waiting", "lost")]
    progress = result.progress
    ctx.metrics["study"] = {
        "name": result.name, "folder": str(result.folder), "storage": result.storage,
        "mode": s.mode, "settings": len(result.rows), "complete": len(result.complete),
        "failed": len(failed), "lost": [r["trial"] for r in result.lost],
        "finished": result.finished, "ran_now": result.ran, "workers": result.workers,
        "seconds": round(result.seconds, 2), "hosts": hosts,
        "best": ({"trial": best["trial"], "params": {f: best[f] for f in result.params},
                  s.metric: best[s.metric]} if best else None),
    }
    if not result.finished and progress is not None:
        ctx.infer(f"This record was written from the storage while the study was still "
                  f"running: {progress.text()}. Rows marked running or waiting have no "
                  "result yet, and the choice below is among the trials done so far.")
    if best is not None:
        ctx.metrics[f"best_{s.metric}"] = best[s.metric]
        where = ", ".join(f"{f}={best[f]}" for f in result.params)
        kind = " (a validation metric)" if s.metric.lower().startswith("val") else ""
        tests = [c for c in s.report if _is_test_metric(c)]
        ctx.infer(f"The chosen trial is {best['trial']} ({where}), picked on the objective "
                  f"{s.metric}{kind} alone: {s.metric} {_fmt(best[s.metric])}, the best of "
                  f"{len(result.complete)} completed trials"
                  + (f"; {', '.join(tests)} (not used for selection) are shown beside it "
                     "and played no part in the choice." if tests else "."))
    for sentence in _effects(result):
        ctx.infer(sentence)
    _say_ranking(result, ctx)
    for r in result.lost:
        retry = next((t for t in result.trials if t["trial"] == r["retried_as"]), None)
        ctx.infer(f"Trial {r['trial']} ({', '.join(f'{f}={r[f]}' for f in result.params)}) "
                  f"was lost: {r['reason']}"
                  + (f", which ended {retry['status']}." if retry else
                     "; it was not retried again (rerun the study command to try it)."))
    for r in failed:
        ctx.infer(f"Trial {r['trial']} ({', '.join(f'{f}={r[f]}' for f in result.params)}) "
                  f"ended {r['status']}: {r['reason']}")


def _say_ranking(result: StudyResult, ctx: Any) -> None:
    """The study's ranking against its measured seed noise (metrics and sentences)."""
    s, rank = result.study, result.ranking()
    ctx.metrics["study"]["ranking"] = rank
    for key in ("noise_band", "ranks_chosen", "chosen_beats_worst", "settings_within_noise"):
        if rank.get(key) is not None:
            ctx.metrics[f"study_{key}"] = rank[key]
    if "lead_over_runner_up" not in rank:
        return
    band = rank["noise_band"]
    if band is None:
        ctx.infer(f"Every setting ran once, at seed {ctx.seed}: the seed noise of {s.metric} "
                  "was not measured, so this ranking rests on one seed and no gap in it is "
                  "shown to come from the settings.")
        return
    runs = result.seed_runs
    ctx.infer(f"Seed noise: the base setting at {len(runs)} seeds gives {s.metric} "
              f"{', '.join(_fmt(v) for v in runs)}; two single runs differ by the seed alone "
              f"by up to {_fmt(band)} (95%).")
    lead = rank["lead_over_runner_up"]
    ctx.claim(f"The chosen trial leads the runner-up (trial {rank['runner_up_trial']}) by "
              f"{_fmt(lead)}, more than the noise band {_fmt(band)}: the study ranks it first.",
              holds=rank["ranks_chosen"],
              otherwise=f"The chosen trial leads the runner-up (trial {rank['runner_up_trial']})"
              f" by {_fmt(lead)}, inside the noise band {_fmt(band)}: the study cannot rank "
              f"them; {rank['settings_within_noise']} setting(s) lie within the band of the "
              "chosen one.", lead=lead, band=band)
    ctx.claim(f"The best and worst settings differ by {_fmt(rank['best_to_worst'])}, beyond "
              f"the noise band: the settings studied do change {s.metric}.",
              holds=rank["chosen_beats_worst"],
              otherwise=f"The best and worst settings differ by {_fmt(rank['best_to_worst'])}, "
              f"inside the noise band {_fmt(band)}: no setting studied is shown to change "
              f"{s.metric}.", span=rank["best_to_worst"], band=band)


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
              device: str = "auto", report: bool = False, heartbeat: int | None = None,
              grace: int | None = None) -> Path:
    """`dlab study ID`: run the study program ID (12.2, or 12 for its experiment's study).

    The same as `dlab run ID --set workers=N --set storage=URL`; returns the study
    program's run folder (its study folder is beside it; see the module docstring).
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
