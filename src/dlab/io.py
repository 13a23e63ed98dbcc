"""Atomic file writing: every file goes to a temporary name in its folder and is renamed,
so a reader never sees half a file. Also the conversion of numbers to plain JSON."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _publish(tmp: str | os.PathLike, path: Path) -> None:
    """Give a finished temporary file the usual permissions (mkstemp makes it 0600) and
    rename it onto `path`."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        _publish(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` if the block succeeds.

    For writers that insist on a file name (matplotlib, torch.save).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        _publish(tmp, path)
    except OSError as exc:
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def to_jsonable(value: Any) -> Any:
    """Numbers from numpy/torch to plain Python; NaN and inf to strings JSON can hold."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    elif hasattr(value, "tolist"):
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def write_csv(path: str | os.PathLike, rows: list[dict[str, Any]]) -> Path:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: to_jsonable(v) for k, v in row.items()})
    return atomic_write(path, buf.getvalue())


def describe_os_error(exc: BaseException) -> str:
    """One line for an error while writing: the path and the cause."""
    if isinstance(exc, OSError):
        where = exc.filename or ""
        cause = exc.strerror or str(exc)
        return f"{where}: {cause}" if where else cause
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return first


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file beside `path`, then rename; a failed write (a full
    disk makes torch raise RuntimeError) becomes an OSError naming the path."""
    import errno
    import shutil

    import torch

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as exc:
        try:
            full = shutil.disk_usage(path.parent).free < 1 << 20
        except OSError:
            full = False
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise OSError(errno.EIO, f"cannot write ({describe_os_error(exc)})", str(path)) from None
    return path


def escape_markup(value: Any, skip_keys: tuple[str, ...] = ("file",)) -> Any:
    """Strings (at any depth) with &, < and > as HTML entities, for Markdown that may hold
    user text (a class folder named `<script>`); dict keys in `skip_keys` (file links)
    are kept as they are."""
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, dict):
        return {k: v if k in skip_keys else escape_markup(v, skip_keys) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(escape_markup(v, skip_keys) for v in value)
    return value
