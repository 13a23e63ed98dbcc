"""The plan of a study and how the storage's trials stand against it: the planned points,
queueing the ones no trial covers yet, which trials settle their setting for good, and
how far the study is (`Progress`)."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from dlab.errors import UsageError
from dlab.studies.study import Study, Value, as_text, encode


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

    def _running_text(self) -> str:
        return ", ".join(f"trial {n} on {host or 'an unknown host'}"
                         for n, host in self.running)

    def text(self) -> str:
        parts = [f"{self.done} of {self.total} trials done"]
        if self.running:
            parts.append(f"{len(self.running)} running elsewhere ({self._running_text()})")
        if self.waiting:
            parts.append(f"{len(self.waiting)} waiting")
        return "; ".join(parts)

    def start_text(self, queued: int) -> str:
        """The storage's trials as a process about to run them finds them, `queued` of
        the waiting ones queued by that process itself: every trial another worker has
        claimed (RUNNING) and every one still in the queue (WAITING) is counted, whoever
        queued it, so a worker that joins a study others are running says so."""
        running = (f" ({self._running_text()})" if self.running else "")
        return (f"in the storage now: {self.done} of {self.total} done, "
                f"{len(self.running)} running on other workers{running}, "
                f"{len(self.waiting)} waiting to be claimed ({queued} of them queued by this "
                "command)")


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
