"""Where a study lives: checking a storage URL, opening it, the lock every dlab process on
it takes, and failing the trials whose worker went silent.

A storage is any database URL Optuna supports (an SQLite file by default, PostgreSQL for
workers on several machines). Passwords stay out of URLs, since the URL is written into
metrics.json; PostgreSQL reads them from PGPASSWORD or ~/.pgpass.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlab.errors import UsageError


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
