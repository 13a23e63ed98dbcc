"""Verdicts computed from measured values: targets (checks with a threshold or a
reference metric) and comparative sentences whose direction comes from the numbers.

A program declares its targets as data on its `Implementation`, e.g.

    Target("test_mse", below="pca_test_mse", why="an autoencoder must beat the best linear code")
    Target("test_accuracy", at_least=0.93, profiles=("quick",))
    Target("collapsed", equals=False, when=lambda m: m["judge_accuracy"] >= 0.95,
           when_text="the scoring classifier reaches 95% test accuracy")

After the program has run, `judge(targets, metrics, profile)` turns each into a plain
dict for `metrics.json`:

    {"name", "rule", "value", "threshold" | "reference" (+ "reference_value"), "met", "why"}

where `met` is true, false or "not applicable" (the profile is not one the target is
for, or its `when` condition does not hold: `why` then says which).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NOT_APPLICABLE = "not applicable"


def lookup(metrics: dict[str, Any], key: str) -> Any:
    """metrics["a"]["b"] for key "a.b"; None when any part is missing."""
    value: Any = metrics
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):  # NaN and inf are stored as text in JSON
        try:
            return float(value)
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class Target:
    """One measurable promise of a program.

    metric:    the measured value (a key of `ctx.metrics`, dotted for nested dicts).
    at_least / at_most: a fixed threshold (inclusive).
    above / below:      another metric the value must beat (strictly).
    equals:    an exact value (a count, a flag).
    tolerance: for `equals` on floats, the allowed absolute difference.
    profiles:  the profiles the target is for (empty: all).
    when:      a condition on the metrics; where it is false the target is not applicable.
    when_text: what `when` asks for, shown when it does not hold.
    why:       one line on what the target shows.
    """

    metric: str
    at_least: float | None = None
    at_most: float | None = None
    above: str | None = None
    below: str | None = None
    equals: Any = None
    tolerance: float = 0.0
    profiles: tuple[str, ...] = ()
    when: Callable[[dict[str, Any]], bool] | None = None
    when_text: str = ""
    why: str = ""

    def __post_init__(self) -> None:
        rules = [self.at_least is not None or self.at_most is not None,
                 self.above is not None, self.below is not None, self.equals is not None]
        if sum(rules) != 1:
            raise ValueError(f"target {self.metric}: give exactly one of at_least/at_most, "
                             "above, below or equals")

    @property
    def rule(self) -> str:
        """The check in words, e.g. "test_mse < pca_test_mse" or "test_accuracy >= 0.93"."""
        if self.above is not None:
            return f"{self.metric} > {self.above}"
        if self.below is not None:
            return f"{self.metric} < {self.below}"
        if self.equals is not None:
            return f"{self.metric} = {_show(self.equals)}"
        parts = []
        if self.at_least is not None:
            parts.append(f"{self.metric} >= {_show(self.at_least)}")
        if self.at_most is not None:
            parts.append(f"{self.metric} <= {_show(self.at_most)}")
        return " and ".join(parts)

    def judge(self, metrics: dict[str, Any], profile: str | None = None) -> dict[str, Any]:
        value = lookup(metrics, self.metric)
        out: dict[str, Any] = {"name": self.metric, "rule": self.rule, "value": value}
        if self.at_least is not None or self.at_most is not None:
            out["threshold"] = self.at_least if self.at_least is not None else self.at_most
        elif self.equals is not None:
            out["threshold"] = self.equals
        else:
            ref = self.above if self.above is not None else self.below
            out["reference"] = ref
            out["reference_value"] = lookup(metrics, ref)

        if self.profiles and profile is not None and profile not in self.profiles:
            return {**out, "met": NOT_APPLICABLE,
                    "why": f"set for the {' and '.join(self.profiles)} profile, not {profile}"}
        if self.when is not None:
            try:
                applies = bool(self.when(metrics))
            except (KeyError, TypeError, ValueError):
                applies = False
            if not applies:
                return {**out, "met": NOT_APPLICABLE,
                        "why": f"applies only when {self.when_text or 'its condition holds'}"}
        met, reason = self._check(value, out.get("reference_value"))
        return {**out, "met": met, "why": reason or self.why}

    def _check(self, value: Any, reference: Any) -> tuple[bool, str]:
        if value is None:
            return False, f"{self.metric} was not measured in this run"
        if self.equals is not None:
            if isinstance(self.equals, bool) or not isinstance(self.equals, int | float):
                return value == self.equals, ""
            v = _number(value)
            return v is not None and abs(v - self.equals) <= self.tolerance, ""
        v = _number(value)
        if v is None or math.isnan(v):
            return False, f"{self.metric} is {value!r}, not a number"
        if self.above is not None or self.below is not None:
            r = _number(reference)
            if r is None or math.isnan(r):
                ref = self.above if self.above is not None else self.below
                return False, f"the reference {ref} was not measured in this run"
            return (v > r if self.above is not None else v < r), ""
        ok = True
        if self.at_least is not None:
            ok &= v >= self.at_least
        if self.at_most is not None:
            ok &= v <= self.at_most
        return ok, ""


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def judge(targets: tuple[Target, ...] | list[Target], metrics: dict[str, Any],
          profile: str | None = None) -> list[dict[str, Any]]:
    """Every target of a program checked against its run's metrics."""
    return [t.judge(metrics, profile) for t in targets]


def overall(verdicts: list[dict[str, Any]]) -> str:
    """'met' when every applicable target is met, 'missed' when any is missed, 'n/a'
    when the program has no applicable target."""
    applicable = [v for v in verdicts if v.get("met") is True or v.get("met") is False]
    if not applicable:
        return "n/a"
    return "met" if all(v["met"] is True for v in applicable) else "missed"


def verdict_line(verdicts: list[dict[str, Any]]) -> str:
    """One line for a terminal: 'met: test_accuracy 0.938 >= 0.93; ...'."""
    if not verdicts:
        return "n/a: no target"
    parts = []
    for v in verdicts:
        word = {True: "met", False: "MISSED"}.get(v["met"], "n/a")
        shown = f"{v['name']} = {_brief(v['value'])}"
        if "reference" in v:
            shown += f" vs {v['reference']} = {_brief(v.get('reference_value'))}"
        parts.append(f"{word}: {shown} ({v['rule']})")
    return f"{overall(verdicts)} — " + "; ".join(parts)


def _brief(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return _show(value) if value is not None else "not measured"


# ------------------------------------------------------------------ comparisons


def compare(quantity: str, a_label: str, a: float, b_label: str, b: float, *,
            better: str = "lower", digits: int = 4, unit: str = "") -> tuple[str, bool]:
    """A comparative sentence whose direction and sign come from the two numbers.

    Returns (sentence, a_is_better). `better` is "lower" (errors, NLL) or "higher"
    (accuracy). The relative difference is taken against b and always printed as a
    positive percentage with the word that matches its direction, never "-3% lower".
    """
    if better not in ("lower", "higher"):
        raise ValueError("better must be 'lower' or 'higher'")
    u = f" {unit}" if unit else ""
    fa, fb = f"{a:.{digits}g}{u}", f"{b:.{digits}g}{u}"
    if a == b:
        return f"{a_label} and {b_label} have the same {quantity} ({fa}).", False
    direction = "lower" if a < b else "higher"
    a_better = direction == better
    if b != 0 and math.isfinite(a) and math.isfinite(b):
        rel = abs(a - b) / abs(b) * 100
        amount = f"{rel:.1f}% {direction}" if rel >= 0.1 else f"slightly {direction}"
    else:
        amount = direction
    verdict = "better" if a_better else "worse"
    return (f"{a_label}'s {quantity} ({fa}) is {amount} than {b_label}'s ({fb}): "
            f"{verdict}."), a_better
