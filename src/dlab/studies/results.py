"""What a study produced: `StudyResult` (one row per planned setting, one per stored
trial, the choice and what the measured seed noise allows it to say)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlab.errors import DlabError
from dlab.studies.plan import Plan, Progress, _retryable
from dlab.studies.study import Study


class StudyNotFinished(DlabError):
    """Raised by `execute` in a worker that ran out of trials while others still run (or
    whose study another worker has just recorded): nothing is wrong, and this worker
    writes no record. The message says how far the study is and how to get the record."""


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
        folder is not on this machine (a trial run elsewhere). A row's run_folder is
        absolute; a relative one (older studies) is taken under the study folder."""
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
