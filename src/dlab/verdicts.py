"""Verdicts computed from measured values: targets (checks with a threshold or a
reference metric) and comparative sentences whose direction comes from the numbers.

A program declares its targets as data on its `Implementation`, e.g.

    Target("test_mse", below="pca_test_mse", interval="test_mse_vs_pca",
           why="an autoencoder must beat the best linear code")
    Target("test_accuracy", at_least=0.93, profiles=("quick",))
    Target("collapsed", equals=False, when=lambda m: m["judge_accuracy"] >= 0.95,
           when_text="the scoring classifier reaches 95% test accuracy")

After the program has run, `judge(targets, metrics, profile)` turns each into a plain
dict for `metrics.json`:

    {"name", "rule", "value", "threshold" | "reference" (+ "reference_value"), "met", "why"}

where `met` is true, false or "not applicable" (the profile is not one the target is
for, or its `when` condition does not hold: `why` then says which).

A target that compares two measured values (`above` / `below`) is decided with its
uncertainty: it names `interval`, a metric holding the `dlab.uncertainty.Difference`
of value - reference, and is met only when that 95% interval lies wholly on the right
side of zero. When the interval includes zero the target is *not shown* (`met` false,
`shown` false). A comparison that has no noise says why in `exact` instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlab.uncertainty import Difference

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
    above / below:      another metric the value must beat (strictly), beyond the noise:
    interval:  for above/below, the metric holding the Difference (value - reference) whose
               95% interval must exclude zero on the right side.
    exact:     for above/below without an interval, why the comparison has no noise.
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
    interval: str | None = None
    exact: str | None = None
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
        relative = self.above is not None or self.below is not None
        if relative and (self.interval is None) == (self.exact is None):
            raise ValueError(f"target {self.metric}: a comparison with another metric names "
                             "its uncertainty: interval=<metric with the Difference> or "
                             "exact=<why there is no noise>")
        if not relative and (self.interval or self.exact):
            raise ValueError(f"target {self.metric}: interval/exact apply to above/below only")

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
        if self.interval is not None and "reference" in out:
            return self._judge_interval(out, metrics, met, reason)
        if self.exact is not None:
            out["uncertainty"] = f"exact: {self.exact}"
        return {**out, "met": met, "why": reason or self.why}

    def _judge_interval(self, out: dict[str, Any], metrics: dict[str, Any], met: bool,
                        reason: str) -> dict[str, Any]:
        """Met only when the Difference's interval excludes zero on the right side."""
        raw = lookup(metrics, self.interval)
        if not isinstance(raw, dict):
            return {**out, "met": False, "why": reason or f"the interval {self.interval} was "
                    "not measured in this run"}
        diff = Difference.from_dict(raw)
        out["interval"] = diff.as_dict()
        v, r = _number(out["value"]), _number(out.get("reference_value"))
        if v is None or r is None or not math.isfinite(v - r):
            return {**out, "met": False, "why": reason or self.why}
        if abs(diff.estimate - (v - r)) > 1e-6 * max(1.0, abs(v), abs(r)):
            return {**out, "met": False,
                    "why": f"the interval {self.interval} is of {diff.estimate:.6g}, not of "
                           f"{self.metric} - {out['reference']} = {v - r:.6g}"}
        wanted = "higher" if self.above is not None else "lower"
        word = diff.verdict(wanted)
        if word == "better":
            return {**out, "met": True, "why": self.why}
        if word == "not distinguishable":
            return {**out, "met": False, "shown": False,
                    "why": f"not shown: {diff.text()} includes 0"}
        return {**out, "met": False, "why": f"{diff.text()}: the wrong side of 0"}

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
        if v.get("shown") is False:
            word = "NOT SHOWN"
        shown = f"{v['name']} = {_brief(v['value'])}"
        if "reference" in v:
            shown += f" vs {v['reference']} = {_brief(v.get('reference_value'))}"
        parts.append(f"{word}: {shown}" + (f" ({v['rule']})" if v["rule"] != shown else ""))
    return f"{overall(verdicts)} — " + "; ".join(parts)


def _brief(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return _show(value) if value is not None else "not measured"


# ------------------------------------------------------------------ comparisons


def compare(quantity: str, a_label: str, a: float, b_label: str, b: float, *,
            diff: Difference, better: str = "lower", digits: int = 4,
            unit: str = "") -> tuple[str, str]:
    """A comparative sentence decided by the interval of a - b, never by the sign alone.

    diff: the measured `Difference` a - b with its 95% interval (`dlab.uncertainty`).
    Returns (sentence, word), word one of "better", "worse", "not distinguishable" for
    a against b, where `better` says which direction is good ("lower": errors, NLL;
    "higher": accuracy). For example: "The MLP's ROC AUC (0.798) against logistic
    regression's (0.790): difference +0.008 (95% CI -0.012 to +0.027; paired bootstrap
    over 200 test examples): not distinguishable."
    """
    if better not in ("lower", "higher"):
        raise ValueError("better must be 'lower' or 'higher'")
    if abs(diff.estimate - (a - b)) > 1e-6 * max(1.0, abs(a), abs(b)):
        raise ValueError(f"compare({quantity!r}): the interval is of {diff.estimate:.6g}, "
                         f"not of {a_label} - {b_label} = {a - b:.6g}")
    u = f" {unit}" if unit else ""
    fa, fb = f"{a:.{digits}g}{u}", f"{b:.{digits}g}{u}"
    word = diff.verdict(better)
    if word == "not distinguishable":
        ending = "not distinguishable"
    else:
        direction = "higher" if diff.estimate > 0 else "lower"
        who = a_label[0].lower() + a_label[1:] if a_label.startswith("The ") else a_label
        ending = f"{who} is {direction}, {word}"
    return (f"{a_label}'s {quantity} ({fa}) against {b_label}'s ({fb}): "
            f"{diff.text(3)}: {ending}."), word
