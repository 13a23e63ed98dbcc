"""Program settings: a dataclass per program, profiles, and `--set key=value`.

A program's config dataclass holds the `quick` profile in its defaults; `smoke` and
`full` are dictionaries of overrides. `--set` values are parsed against the field's
declared type, so `--set lr=abc` is an error before anything runs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from dlab.errors import UsageError

PROFILES = ("smoke", "quick", "full")

# Settings that must be positive whenever a program has them.
_POSITIVE = ("epochs", "batch_size", "lr", "learning_rate", "n_seeds", "hidden", "width",
             "steps")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _parse(text: str, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if text.lower() in ("none", "null", ""):
            return None
        return _parse(text, inner[0], key)
    if origin in (tuple, list):
        item = args[0] if args else str
        parts = [p for p in text.replace(" ", "").split(",") if p]
        values = [_parse(p, item, key) for p in parts]
        return tuple(values) if origin is tuple else values
    if typing.get_origin(tp) is typing.Literal:
        if text not in args:
            raise UsageError(f"--set {key}={text}: must be one of {', '.join(map(str, args))}")
        return text
    try:
        if tp is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
        if tp is str:
            return text
    except ValueError:
        raise UsageError(
            f"--set {key}={text}: expected {getattr(tp, '__name__', tp)}, e.g. "
            f"--set {key}={ {int: '5', float: '0.01', bool: 'true'}.get(tp, '...') }"
        ) from None
    raise UsageError(f"--set {key}: settings of type {tp} cannot be set from the command line")


def parse_sets(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """["epochs=3", "lr=0.1"] -> {"epochs": "3", "lr": "0.1"} (values still text)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {pair!r}: expected key=value, e.g. --set epochs=3")
        out[key.strip()] = value.strip()
    return out


def check(config: Any, program: str = "") -> None:
    """Reject values no program can use (negative epochs, zero batch size, ...)."""
    where = f"program {program}: " if program else ""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if any(f.name == p or f.name.endswith("_" + p) for p in _POSITIVE) and value <= 0:
            raise UsageError(f"{where}{f.name} must be positive, got {value}")
    validate = getattr(config, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            raise UsageError(f"{where}{exc}") from None


def build(cls: type, profiles: dict[str, dict[str, Any]], profile: str,
          sets: dict[str, str] | None = None, program: str = "") -> Any:
    """The config for `profile` with `sets` (text values) applied and checked."""
    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    types_ = _field_types(cls)
    values: dict[str, Any] = dict(profiles.get(profile, {}))
    for key, text in (sets or {}).items():
        if key not in types_:
            known = ", ".join(sorted(types_))
            raise UsageError(f"program {program}: no setting {key!r}; settings are: {known}")
        values[key] = _parse(text, types_[key], key)
    config = cls(**values)
    check(config, program)
    return config


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config saved in metrics.json (lists back to tuples where declared)."""
    types_ = _field_types(cls)
    kw = {}
    for k, v in values.items():
        if k in types_:
            kw[k] = tuple(v) if typing.get_origin(types_[k]) is tuple else v
    return cls(**kw)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
