"""Sequences for recurrent networks: windows, chronological splits, daily series, long-memory
tasks and the baselines a forecast must beat.

Windows are views of the series (numpy `sliding_window_view`), never a Python loop per
window. A window of length w ending just before time t predicts the value at t:

    X[i] = s[i : i + w],    y[i] = s[i + w]          (i = 0 .. len(s) - w - 1)

A chronological split cuts the series at an index `cut`; training windows lie wholly
before it (inputs and target), test targets wholly after it. Whether test inputs may
reach back before the cut (the past that is known when the forecast is made) is the
caller's choice: `split_windows(..., test_history=True)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlab.data import Provenance
from dlab.errors import DataError

# ------------------------------------------------------------------------ windows


def sliding_windows(series: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs X (N, window) and next-value targets y (N,) of a series (T,) or (T, F).

    X[i] = series[i : i + window], y[i] = series[i + window], N = T - window. For a
    series with features (T, F) the inputs are (N, window, F) and the targets (N, F).
    The result is a copy (safe to modify); building it is one vectorised call.
    """
    series = np.asarray(series)
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    n = len(series) - window
    if n < 1:
        raise ValueError(f"a series of {len(series)} values has no window of {window} "
                         "with a target after it")
    view = np.lib.stride_tricks.sliding_window_view(series[:-1], window, axis=0)  # (N, [F,] w)
    if series.ndim > 1:
        view = np.moveaxis(view, -1, 1)                                          # (N, w, F)
    return view.copy(), series[window:].copy()


@dataclass
class WindowSplit:
    """Windows on both sides of a chronological cut.

    x_train (N_tr, w), y_train (N_tr,): windows whose inputs and target are before `cut`.
    x_test (N_te, w), y_test (N_te,): windows whose targets are at or after `cut`.
    t_train (N_tr,), t_test (N_te,): the index in the series of each window's target.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    t_train: np.ndarray
    t_test: np.ndarray
    cut: int


def split_windows(series: np.ndarray, window: int, cut: int,
                  test_history: bool = False) -> WindowSplit:
    """Windows of `series` (T,) split chronologically at index `cut` (0 < cut < T).

    Training windows come from series[:cut] only. Test windows have targets in
    series[cut:]; with `test_history=False` their inputs also lie in series[cut:] (no
    window touches both sides), with `test_history=True` the first test windows take
    their inputs from the last `window` values before the cut, so every test-period value
    is forecast (inputs are then only values known at forecast time, never targets).
    """
    series = np.asarray(series)
    if not 0 < cut < len(series):
        raise ValueError(f"cut must lie inside the series (0 < cut < {len(series)}), got {cut}")
    x_tr, y_tr = sliding_windows(series[:cut], window)
    start = cut - window if test_history else cut
    if start < 0:
        raise ValueError(f"only {cut} values before the cut; the test history needs {window}")
    x_te, y_te = sliding_windows(series[start:], window)
    t_tr = np.arange(window, cut)
    t_te = np.arange(start + window, len(series))
    return WindowSplit(x_tr, y_tr, x_te, y_te, t_tr, t_te, cut)


# ------------------------------------------------------------------------ scaling


@dataclass
class MinMaxScaler:
    """x' = (x - lo) / (hi - lo): maps the fitted range onto [0, 1].

    Fit it on the training period only; test values outside that range then map outside
    [0, 1], which is honest (the model meets values it never saw).
    """

    lo: float = 0.0
    hi: float = 1.0

    @classmethod
    def fit(cls, values: np.ndarray) -> MinMaxScaler:
        values = np.asarray(values, dtype=np.float64)
        lo, hi = float(np.min(values)), float(np.max(values))
        if hi == lo:
            hi = lo + 1.0  # a constant series: shift only
        return cls(lo, hi)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) - self.lo) / (self.hi - self.lo)

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        return np.asarray(scaled, dtype=np.float64) * (self.hi - self.lo) + self.lo


def scaled_split(values: np.ndarray, window: int, cut: int,
                 test_history: bool = True) -> tuple[WindowSplit, MinMaxScaler]:
    """Fit a MinMaxScaler on values[:cut] (the training period) only, scale the whole
    series with it, and cut it into windows with `split_windows`.

    values (T,) raw. Returns the split of scaled windows and the scaler, whose
    `inverse` turns predictions back into the series' units.
    """
    scaler = MinMaxScaler.fit(np.asarray(values)[:cut])
    return split_windows(scaler.transform(values), window, cut, test_history), scaler


# -------------------------------------------------------------------- daily series


@dataclass
class DailySeries:
    """One value per calendar day, gaps filled and recorded.

    dates (T,) datetime64[D], consecutive days; values (T,) float64 with no NaN;
    observed (T,) bool: False where the value was interpolated (a missing day or a
    missing value), so forecasts are scored on observed days only.
    """

    dates: np.ndarray
    values: np.ndarray
    observed: np.ndarray
    provenance: Provenance
    value_name: str
    report: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        r = self.report
        text = (f"{self.provenance.name}: `{self.value_name}`, {len(self.values):,} days "
                f"from {self.dates[0]} to {self.dates[-1]}")
        gaps = []
        if r.get("missing_days"):
            gaps.append(f"{r['missing_days']} missing days")
        if r.get("missing_values"):
            gaps.append(f"{r['missing_values']} missing values")
        if r.get("duplicate_days"):
            gaps.append(f"{r['duplicate_days']} repeated dates averaged")
        if r.get("bad_dates"):
            gaps.append(f"{r['bad_dates']} unreadable dates dropped")
        if gaps:
            text += ("; " + ", ".join(gaps) + f" ({r.get('interpolated', 0)} days filled by "
                     "linear interpolation, used as inputs but never scored)")
        else:
            text += "; no gaps"
        return text + f"; source: {self.provenance.source}; licence: {self.provenance.licence}"


def daily_series(frame, date_column: str, value_column: str,
                 provenance: Provenance) -> DailySeries:
    """A DailySeries from a table with a date column and a numeric column.

    Unreadable dates are dropped, repeated dates averaged, missing calendar days
    inserted, and every missing value filled by linear interpolation in time (the
    first and last observed values carry outward). All of it is counted in `.report`.
    """
    import pandas as pd

    where = provenance.source
    for col in (date_column, value_column):
        if col not in frame.columns:
            raise DataError(f"{where}: no column {col!r}; columns are: "
                            + ", ".join(map(str, frame.columns))
                            + " (choose with --set date_column=... --set value_column=...)")
    dates = pd.to_datetime(frame[date_column], errors="coerce")
    values = pd.to_numeric(frame[value_column], errors="coerce")
    bad_dates = int(dates.isna().sum())
    table = pd.DataFrame({"date": dates.dt.normalize(), "value": values}).dropna(subset=["date"])
    if table["value"].notna().sum() < 2:
        raise DataError(f"{where}: column {value_column!r} has fewer than 2 numeric values")
    n_rows = len(table)
    daily = table.groupby("date")["value"].mean().sort_index()   # NaN-skipping mean
    duplicate_days = n_rows - len(daily)
    full = pd.date_range(daily.index[0], daily.index[-1], freq="D")
    missing_days = len(full) - len(daily)
    missing_values = int(daily.isna().sum())
    series = daily.reindex(full)
    observed = series.notna().to_numpy()
    filled = series.interpolate(method="time", limit_direction="both")
    report = {"rows": int(len(frame)), "bad_dates": bad_dates,
              "duplicate_days": int(duplicate_days), "missing_days": int(missing_days),
              "missing_values": missing_values, "interpolated": int((~observed).sum())}
    return DailySeries(full.to_numpy().astype("datetime64[D]"),
                       filled.to_numpy(dtype=np.float64), observed, provenance, value_column,
                       report)


def read_daily_csv(path: str | Path, date_column: str, value_column: str) -> DailySeries:
    """A user's CSV of daily values (`--set csv=PATH --set date_column=... --set value_column=...`)."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"--set csv={path}: file not found") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"--set csv={path}: cannot read as CSV ({exc})") from None
    prov = Provenance(path.name, f"user file {path}", "the user's", f"{len(frame)} rows")
    return daily_series(frame, date_column, value_column, prov)


# ---------------------------------------------------------------------- baselines


def persistence_forecast(x: np.ndarray) -> np.ndarray:
    """'Tomorrow = today': the last value of each window, (N, w) -> (N,)."""
    return np.asarray(x)[:, -1].copy()


def _month_day(dates: np.ndarray) -> np.ndarray:
    """Day of the year on a 366-day calendar (Feb 29 = 59, Mar 1 = 60 in every year), 0-based.

    Keying on month and day keeps March 1 on the same key in leap and common years.
    """
    d = np.asarray(dates, dtype="datetime64[D]")
    year_start = d.astype("datetime64[Y]").astype("datetime64[D]")
    doy = (d - year_start).astype(np.int64)                      # 0-based day of its year
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return np.where(~leap & (doy >= 59), doy + 1, doy)


def seasonal_forecast(train_dates: np.ndarray, train_values: np.ndarray,
                      dates: np.ndarray, halfwidth: int = 0) -> tuple[np.ndarray, int]:
    """The day-of-year mean of the training years, for each of `dates` (N,).

    train_dates (M,), train_values (M,): the training period (observed days only, say).
    halfwidth: also average the `halfwidth` calendar days on each side (circularly).
    Returns (forecast (N,), number of dates whose calendar day no training year covers,
    which get the overall training mean).
    """
    keys = _month_day(train_dates)
    sums = np.bincount(keys, weights=np.asarray(train_values, np.float64), minlength=366)
    counts = np.bincount(keys, minlength=366).astype(np.float64)
    if halfwidth > 0:
        offsets = np.arange(-halfwidth, halfwidth + 1)
        idx = (np.arange(366)[:, None] + offsets[None, :]) % 366    # (366, 2h+1)
        sums, counts = sums[idx].sum(axis=1), counts[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    target = _month_day(dates)
    uncovered = counts[target] == 0
    out = np.where(uncovered, float(np.mean(train_values)), means[target])
    return out, int(uncovered.sum())


def regression_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and MSE of predictions (N,) against targets (N,)."""
    err = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    mse = float(np.mean(err ** 2))
    return {"rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(err))), "mse": mse}


# ------------------------------------------------------------- long-memory tasks


def adding_problem(rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """The adding problem (Hochreiter and Schmidhuber 1997, experiment 4; in the form of
    Le, Jaitly and Hinton 2015): inputs x (n, length, 2), targets y (n,).

    Channel 0 holds values drawn from U(0, 1); channel 1 marks two positions with 1, one
    in the first half of the sequence and one in the second. The target is the sum of
    the two marked values. Predicting the constant 1 gives MSE Var(u1 + u2) = 1/6, the
    score of a network that has not learned to remember.
    """
    if length < 2:
        raise ValueError(f"the adding problem needs length >= 2, got {length}")
    values = rng.random((n, length))
    half = length // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, length, n)
    marks = np.zeros((n, length))
    rows = np.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    x = np.stack([values, marks], axis=-1)                              # (n, length, 2)
    y = values[rows, first] + values[rows, second]
    return x.astype(np.float32), y.astype(np.float32)


def running_sum(rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The running-sum task: x (n, length, 1) from U(-1, 1), y (n,) = sum_t x_t / sqrt(length).

    Every input counts equally, however far back. The scaling keeps the target's variance
    at 1/3 for every length (Var U(-1, 1) = 1/3), so MSEs of different lengths compare;
    predicting the mean (0) scores 1/3.
    """
    x = rng.uniform(-1.0, 1.0, (n, length, 1))
    y = x[:, :, 0].sum(axis=1) / math.sqrt(length)
    return x.astype(np.float32), y.astype(np.float32)


def random_sines(rng: np.random.Generator, n: int, length: int, noise: float = 0.05,
                 components: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums of sines, a fresh random signal per sequence, and the value that comes next.

    s(t) = sum_k a_k sin(2 pi f_k t + phi_k), with a_k ~ U(0.2, 1), f_k ~ U(1/25, 1/6)
    cycles per step and phi_k ~ U(0, 2 pi); the observations add N(0, noise^2).
    Returns x (n, length, 1) = noisy s(0 .. length - 1), y (n,) = noisy s(length), and
    clean (n,) = s(length) without noise (whose MSE against y is the best possible).
    """
    amp = rng.uniform(0.2, 1.0, (n, components, 1))
    freq = rng.uniform(1 / 25, 1 / 6, (n, components, 1))
    phase = rng.uniform(0, 2 * math.pi, (n, components, 1))
    t = np.arange(length + 1)[None, None, :]                              # (1, 1, L+1)
    signal = (amp * np.sin(2 * math.pi * freq * t + phase)).sum(axis=1)   # (n, L+1)
    noisy = signal + rng.normal(0.0, noise, signal.shape)
    x = noisy[:, :length, None]                                           # (n, L, 1)
    return x.astype(np.float32), noisy[:, length].astype(np.float32), signal[:, length]


ADDING_BASELINE_MSE = 1.0 / 6.0  # Var(U1 + U2) for independent U(0, 1)
RUNNING_SUM_VARIANCE = 1.0 / 3.0  # Var of the scaled sum of U(-1, 1)
