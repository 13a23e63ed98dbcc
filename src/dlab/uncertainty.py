"""How sure a comparison is: the difference between two measured values with its 95%
interval, and the only verdicts that interval allows.

Two sources of uncertainty are measured, whichever the program has:

- **Seeds.** Where a program already repeats a run over seeds (Iris, XOR, credit, the
  sine and memory tasks), the two methods are run on the same seeds and the paired
  differences d_1..d_n give a Student-t interval: mean(d) +- t(0.975, n-1) sd(d)/sqrt(n).
- **Test examples.** Where one trained model of each kind is scored on the same test
  examples, a paired bootstrap resamples the examples (both scores move together) and
  the 2.5% and 97.5% quantiles of the resampled difference bound it
  (`scipy.stats.bootstrap`, paired, seeded; Efron and Tibshirani 1993, ch. 13). This
  measures how much the verdict depends on which test examples were drawn, not how
  much it depends on the training seed.

A verdict is "better" or "worse" only when the interval excludes zero; otherwise the
two are "not distinguishable" at this sample size. A comparison with no noise at all
(two exact computations) says so with `Difference.exact`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

LEVEL = 0.95  # coverage of every interval dlab prints
RESAMPLES = 2000  # bootstrap resamples: the interval's ends move by well under 1% of its width


@dataclass(frozen=True)
class Difference:
    """a - b, with its 95% interval [low, high] and how it was measured.

    estimate: the difference of the two measured values (a - b).
    low, high: the interval's ends (equal to the estimate for an exact comparison;
               -inf and inf when nothing measured its spread, e.g. one seed).
    method: how the interval was obtained, in words for the record.
    n: the number of paired seeds or test examples behind it.
    """

    estimate: float
    low: float
    high: float
    method: str
    n: int

    @classmethod
    def exact(cls, a: float, b: float, why: str) -> Difference:
        """A difference with no sampling noise (e.g. two exact counts); `why` says why."""
        d = float(a) - float(b)
        return cls(d, d, d, f"exact: {why}", 1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Difference:
        return cls(float(d["estimate"]), float(d["low"]), float(d["high"]), str(d["method"]),
                   int(d["n"]))

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers for metrics.json (infinities as text, as the run's JSON keeps them)."""
        out = asdict(self)
        for k in ("estimate", "low", "high"):
            if not math.isfinite(out[k]):
                out[k] = str(out[k])
        return out

    @property
    def includes_zero(self) -> bool:
        return not (self.low > 0 or self.high < 0)

    def verdict(self, better: str) -> str:
        """'better', 'worse' or 'not distinguishable' for a, where `better` is "lower" or
        "higher" (which direction of a - b is good)."""
        if better not in ("lower", "higher"):
            raise ValueError("better must be 'lower' or 'higher'")
        if self.includes_zero:
            return "not distinguishable"
        return "better" if (self.estimate > 0) == (better == "higher") else "worse"

    def text(self, digits: int = 3) -> str:
        """'difference +0.008 (95% CI -0.012 to +0.027; paired bootstrap over ...)'."""
        if self.method.startswith("exact"):
            return f"difference {_signed(self.estimate, digits)} ({self.method})"
        return (f"difference {_signed(self.estimate, digits)} ({LEVEL:.0%} CI "
                f"{_signed(self.low, digits)} to {_signed(self.high, digits)}; {self.method})")


def _signed(x: float, digits: int) -> str:
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return f"{x:+.{digits}g}"


def _t_quantile(df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + LEVEL / 2, df))


def over_seeds(a: Sequence[float], b: Sequence[float], what: str = "seeds") -> Difference:
    """Paired t interval of mean(a - b) over seeds: a[i] and b[i] share seed i.

    a, b: (n,) one value per seed (or per data split: `what` names the repeats) for each
    method. With one repeat the spread is not measured and the interval is unbounded
    (nothing is distinguishable).
    """
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_.shape != b_.shape or a_.ndim != 1 or len(a_) == 0:
        raise ValueError(f"over_seeds needs two equal-length 1-D lists, got {a_.shape} "
                         f"and {b_.shape}")
    d = a_ - b_
    n = len(d)
    mean = float(d.mean())
    if n == 1:
        return Difference(mean, -math.inf, math.inf,
                          f"one run: spread over {what} not measured", 1)
    half = _t_quantile(n - 1) * float(d.std(ddof=1)) / math.sqrt(n)
    return Difference(mean, mean - half, mean + half, f"paired t interval over {n} {what}", n)


def against_reference(values: Sequence[float], reference: float, what: str) -> Difference:
    """t interval of mean(values) - reference, for repeats of one method (seeds or
    splits) against a fixed published figure; `what` names the repeats ("5 splits")."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0:
        raise ValueError("against_reference needs a non-empty 1-D list")
    mean = float(v.mean()) - float(reference)
    if len(v) == 1:
        return Difference(mean, -math.inf, math.inf, f"one {what}: spread not measured", 1)
    half = _t_quantile(len(v) - 1) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return Difference(mean, mean - half, mean + half, f"t interval over {len(v)} {what}",
                      len(v))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, seed: int,
                     what: str = "test examples") -> Difference:
    """Interval of mean(a) - mean(b) for per-example scores a[i], b[i] of two models on
    the same example i (0/1 correctness, squared errors, NLLs), by the paired BCa
    bootstrap over examples (`scipy.stats.bootstrap`, `RESAMPLES` resamples, `seed`)."""
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_.shape != b_.shape or a_.ndim != 1 or len(a_) < 2:
        raise ValueError(f"paired_bootstrap needs two equal-length 1-D arrays of at least 2, "
                         f"got {a_.shape} and {b_.shape}")
    d = a_ - b_
    est = float(d.mean())
    if np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):  # no spread to resample
        # (e.g. both right on every example; rounding alone would make BCa divide by 0)
        return Difference(est, est, est, f"identical difference on all {len(d)} {what}",
                          len(d))
    from scipy.stats import bootstrap

    res = bootstrap((d,), np.mean, confidence_level=LEVEL, n_resamples=RESAMPLES,
                    method="BCa", vectorized=True, rng=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # BCa degenerate: fall back
        res = bootstrap((d,), np.mean, confidence_level=LEVEL, n_resamples=RESAMPLES,
                        method="percentile", vectorized=True, rng=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Difference(est, lo, hi, f"paired bootstrap over {len(d)} {what}", len(d))


def paired_bootstrap_statistic(statistic: Callable[..., float], *samples: Sequence[Any],
                               seed: int, what: str = "test examples") -> Difference:
    """Interval of a statistic of paired samples that is not a mean of per-example
    scores, e.g. AUC(y, p_a) - AUC(y, p_b): `statistic(*samples)` returns a - b, and
    every sample is resampled with the same example indices (percentile bootstrap)."""
    arrays = [np.asarray(s) for s in samples]
    n = len(arrays[0])
    if n < 2 or any(len(x) != n for x in arrays):
        raise ValueError("paired_bootstrap_statistic needs samples of one length >= 2")
    est = float(statistic(*arrays))
    rng = np.random.default_rng(seed)
    values = np.empty(RESAMPLES)
    for r in range(RESAMPLES):
        idx = rng.integers(0, n, n)
        values[r] = statistic(*(x[idx] for x in arrays))
    values = values[np.isfinite(values)]  # e.g. an AUC on a resample with one class
    if len(values) < RESAMPLES // 2:
        return Difference(est, -math.inf, math.inf, f"bootstrap failed on {n} {what}", n)
    lo, hi = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Difference(est, float(lo), float(hi),
                      f"paired percentile bootstrap over {n} {what}", n)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) form, ties given half credit; NaN when
    y has one class. Fast enough to run thousands of times inside a bootstrap."""
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def widened_by_band(diff: Difference, band: float | None, seeds: int) -> Difference:
    """A bootstrap interval over test examples widened by a study's seed-noise band (the
    two half-widths added in quadrature): the interval of a difference between two
    single-seed runs. Unchanged, and said so, when the seed noise was not measured."""
    if band is None:
        return Difference(diff.estimate, diff.low, diff.high,
                          f"{diff.method}; seed noise not measured", diff.n)
    lo = diff.estimate - math.hypot(diff.estimate - diff.low, band)
    hi = diff.estimate + math.hypot(diff.high - diff.estimate, band)
    return Difference(diff.estimate, lo, hi, f"{diff.method}, widened by the seed-noise "
                      f"band {band:.3g} of {seeds} seeds (in quadrature)", diff.n)
