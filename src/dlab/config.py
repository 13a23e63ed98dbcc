"""Program settings: a dataclass per program, profiles, and `--set key=value`.

A program's config dataclass holds the `quick` profile in its defaults; `smoke` and
`full` are dictionaries of overrides. `--set` values are parsed against the field's
declared type, so `--set lr=abc` is an error before anything runs.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from dlab.errors import UsageError

PROFILES = ("smoke", "quick", "full")

# Settings that must be positive whenever a program has them.
_POSITIVE = ("epochs", "batch_size", "lr", "learning_rate", "n_seeds", "hidden", "width",
             "steps")


MAX_SEED = 2**32 - 1


def check_seed(seed: Any, option: str = "--seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"{option} {seed}: must be a whole number from 0 to {MAX_SEED}")
    return seed


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
        inner = text.strip()
        if inner[:1] in ("(", "[") and inner[-1:] in (")", "]"):  # as `dlab show` prints it
            inner = inner[1:-1]
        parts = [p for p in inner.replace(" ", "").split(",") if p]
        try:
            values = [_parse(p, item, key) for p in parts]
        except UsageError:
            if typing.get_origin(item) is typing.Literal:
                raise  # "must be one of ..." names the choices already
            example = {int: "64,32", float: "0.01,0.5"}.get(item, "a,b")
            raise UsageError(f"--set {key}={text}: expected a list of "
                             f"{getattr(item, '__name__', item)} values with commas, e.g. "
                             f"--set {key}={example}") from None
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


# Integer settings that set a layer's width: their largest value times its widest
# neighbour (the other widths, or an input of up to WIDEST_INPUT features) estimates the
# parameter count of the largest weight matrix before anything is built.
_WIDTH_WORDS = ("hidden", "width", "channels", "latent", "dense", "bottleneck", "features",
                "units", "filters")
WIDEST_INPUT = 3 * 32 * 32  # CIFAR-10 images, the widest input a program takes
MAX_PARAMETERS = 100_000_000  # about 0.4 GB of float32 weights, 1.6 GB with Adam's state
MAX_INT_SETTING = 10_000_000  # any other whole-number setting (counts, sizes, lengths)


def _is_width(name: str) -> bool:
    return any(w in name for w in _WIDTH_WORDS)


def _example(config: Any, name: str) -> str:
    """The setting's default as a `--set` example."""
    try:
        value = getattr(type(config)(), name)
    except Exception:  # a config without defaults
        return "..."
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "..."
    return str(value)


def _check_value(name: str, value: Any, where: str, nonfinite_ok: bool,
                 example: str = "...") -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value) and not nonfinite_ok:
        raise UsageError(f"{where}{name} must be a finite number, got {value}; "
                         f"e.g. --set {name}={example}")
    seed = name == "seed" or name.endswith("_seed")
    if isinstance(value, int) and abs(value) > MAX_INT_SETTING and not (_is_width(name) or seed):
        raise UsageError(f"{where}{name}={value} is too large (at most "
                         f"{MAX_INT_SETTING:,}); choose a smaller value")


def check(config: Any, program: str = "") -> None:
    """Reject values no program can use: negative epochs, a zero batch size, NaN or
    infinite numbers (unless the config lists the setting in `nonfinite_ok`), empty
    lists (unless in `empty_ok`), seeds outside 0..MAX_SEED, and widths that would build
    a model of more than MAX_PARAMETERS parameters (estimated, before building)."""
    where = f"program {program}: " if program else ""
    nonfinite_ok = set(getattr(config, "nonfinite_ok", ()))
    empty_ok = set(getattr(config, "empty_ok", ()))
    widths: dict[str, int] = {}
    pairs: dict[str, int] = {}  # a list of widths: its two largest, multiplied
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, list | tuple):
            if not value and f.name not in empty_ok:
                raise UsageError(f"{where}{f.name} is empty; give at least one value, e.g. "
                                 f"--set {f.name}={_example(config, f.name)}")
            for v in value:
                _check_value(f.name, v, where, f.name in nonfinite_ok,
                             _example(config, f.name).split(",")[0])
            ints = sorted(abs(v) for v in value if isinstance(v, int) and not isinstance(v, bool))
            if _is_width(f.name) and ints:
                widths[f.name] = ints[-1]
                pairs[f.name] = ints[-1] * ints[-2] if len(ints) > 1 else 0
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        _check_value(f.name, value, where, f.name in nonfinite_ok, _example(config, f.name))
        if any(f.name == p or f.name.endswith("_" + p) for p in _POSITIVE) and value <= 0:
            raise UsageError(f"{where}{f.name} must be positive, got {value}")
        if isinstance(value, int) and (f.name == "seed" or f.name.endswith("_seed")):
            check_seed(value, f"{where}{f.name}")
        if isinstance(value, int) and _is_width(f.name):
            widths[f.name] = abs(value)
    for name, w in sorted(widths.items(), key=lambda kv: -kv[1]):  # the widest first
        neighbour = max([WIDEST_INPUT, *(v for k, v in widths.items() if k != name)])
        estimate = max(w * neighbour, pairs.get(name, 0))
        if estimate > MAX_PARAMETERS:
            raise UsageError(f"{where}{name}={getattr(config, name)} would build a layer of "
                             f"about {estimate:.1e} parameters (the limit is "
                             f"{MAX_PARAMETERS:.0e}, about {MAX_PARAMETERS * 16 / 1e9:.1f} GB "
                             f"to train); use widths of at most "
                             f"{min(MAX_PARAMETERS // neighbour, math.isqrt(MAX_PARAMETERS))}")
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


def as_set_text(value: Any) -> str:
    """A config value as `--set` text that `build` parses back to the same value:
    tuples as "64,32", booleans as "true"/"false", floats by repr (no digits lost)."""
    if isinstance(value, tuple | list):
        return ",".join(as_set_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
