"""Declaring a study: `Study` (the base program, the values tried, the objective) and
`StudySettings` (the settings every study program's config has)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dlab.config import as_set_text
from dlab.errors import UsageError
from dlab.registry import PROGRAMS, ProgramInfo
from dlab.studies.storage import check_storage_url

MODES = ("one_at_a_time", "grid", "sampled")
DIRECTIONS = ("minimize", "maximize")

Value = str | int | float | bool


@dataclass(frozen=True)
class Study:
    """A hyperparameter study over the config of one program (see `help(dlab.studies)`).

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
