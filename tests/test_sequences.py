import math

import numpy as np
import pandas as pd
import pytest

from dlab.data import Provenance
from dlab.data import sequences as seq
from dlab.errors import DataError


def test_sliding_windows_align_targets_with_inputs():
    s = np.arange(10.0)
    x, y = seq.sliding_windows(s, 3)
    assert x.shape == (7, 3) and y.shape == (7,)
    assert x[0].tolist() == [0, 1, 2] and y[0] == 3
    assert x[-1].tolist() == [6, 7, 8] and y[-1] == 9
    assert np.array_equal(y, x[:, -1] + 1)       # every target is the value after its window
    x[0, 0] = 99                                  # a copy, not a view of the series
    assert s[0] == 0


def test_sliding_windows_with_features():
    s = np.stack([np.arange(6.0), 10 * np.arange(6.0)], axis=1)   # (6, 2)
    x, y = seq.sliding_windows(s, 2)
    assert x.shape == (4, 2, 2) and y.shape == (4, 2)
    assert x[1].tolist() == [[1, 10], [2, 20]] and y[1].tolist() == [3, 30]


def test_sliding_windows_rejects_short_series():
    with pytest.raises(ValueError):
        seq.sliding_windows(np.arange(3.0), 3)
    with pytest.raises(ValueError):
        seq.sliding_windows(np.arange(3.0), 0)


@pytest.mark.parametrize("test_history", [False, True])
def test_no_window_crosses_the_split(test_history):
    s = np.arange(30.0)            # value = time index, so windows show where they come from
    cut, w = 20, 4
    sp = seq.split_windows(s, w, cut, test_history=test_history)
    # training windows: inputs and targets all before the cut
    assert sp.x_train.max() < cut and sp.y_train.max() < cut
    assert sp.y_train.tolist() == list(range(w, cut))
    assert np.array_equal(sp.t_train, sp.y_train)
    # test targets: all at or after the cut, each right after its window
    assert sp.y_test.min() >= cut
    assert np.array_equal(sp.y_test, sp.x_test[:, -1] + 1)
    assert np.array_equal(sp.t_test, sp.y_test)
    if test_history:               # every test-period value is forecast, from the past
        assert sp.y_test.tolist() == list(range(cut, 30))
        assert sp.x_test[0].tolist() == [16, 17, 18, 19]
    else:                          # strict: no test window touches the training period
        assert sp.x_test.min() >= cut
        assert sp.y_test.tolist() == list(range(cut + w, 30))


def test_split_rejects_bad_cut():
    with pytest.raises(ValueError):
        seq.split_windows(np.arange(10.0), 3, 10)
    with pytest.raises(ValueError):
        seq.split_windows(np.arange(10.0), 3, 2, test_history=True)


def test_scaler_is_fit_on_the_training_period_only():
    # training values in [2, 12]; the test period holds a record of 112
    values = np.concatenate([np.linspace(2, 12, 50), [100, 112, 50, 7, 8, 9]])
    cut = 50
    sp, scaler = seq.scaled_split(values, 5, cut)
    assert (scaler.lo, scaler.hi) == (2.0, 12.0)          # would be 112 if it saw the test
    assert sp.x_train.min() == 0.0 and sp.x_train.max() <= 1.0
    assert sp.y_test.max() == pytest.approx(11.0)         # (112 - 2) / 10: outside [0, 1]
    assert np.allclose(scaler.inverse(sp.y_test), values[cut:])
    leaky = seq.MinMaxScaler.fit(values)
    assert leaky.hi == 112.0


def test_minmax_scaler_round_trip_and_constant_series():
    sc = seq.MinMaxScaler.fit(np.array([-3.0, 1.0, 5.0]))
    assert np.allclose(sc.transform([-3, 1, 5]), [0, 0.5, 1])
    assert np.allclose(sc.inverse(sc.transform([7.0, -9.0])), [7, -9])
    const = seq.MinMaxScaler.fit(np.full(4, 2.5))
    assert np.all(np.isfinite(const.transform([2.5, 3.0])))


def test_persistence_and_scores_by_hand():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert seq.persistence_forecast(x).tolist() == [3.0, 6.0]
    s = seq.regression_scores(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 5.0]))
    assert s["mse"] == pytest.approx(5 / 3)
    assert s["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert s["mae"] == pytest.approx(1.0)


def test_month_day_keys_line_up_across_leap_years():
    d = np.array(["2015-03-01", "2016-03-01", "2016-02-29", "2015-12-31", "2016-12-31",
                  "2015-01-01"], dtype="datetime64[D]")
    k = seq._month_day(d)
    assert k[0] == k[1] == 60 and k[2] == 59
    assert k[3] == k[4] == 365 and k[5] == 0


def test_seasonal_baseline_is_the_day_of_year_mean_of_training_years():
    dates = np.arange(np.datetime64("2012-01-01"), np.datetime64("2015-01-01"))
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    key = seq._month_day(dates)
    values = key + 100.0 * (years - 2012)        # 2012: key, 2013: key + 100, 2014: key + 200
    test = np.array(["2015-01-05", "2015-03-01", "2015-12-31"], dtype="datetime64[D]")
    pred, uncovered = seq.seasonal_forecast(dates, values, test)
    assert uncovered == 0
    assert pred.tolist() == pytest.approx([4 + 100, 60 + 100, 365 + 100])
    # Feb 29 exists only in 2012; a Feb 29 forecast uses that single year
    pred29, _ = seq.seasonal_forecast(dates, values, np.array(["2016-02-29"],
                                                              dtype="datetime64[D]"))
    assert pred29[0] == pytest.approx(59)
    # +-1 day: mean over keys 3, 4, 5 of three years
    pred_h, _ = seq.seasonal_forecast(dates, values, test[:1], halfwidth=1)
    assert pred_h[0] == pytest.approx(4 + 100)


def test_seasonal_baseline_counts_uncovered_days():
    dates = np.arange(np.datetime64("2014-01-01"), np.datetime64("2014-01-11"))
    values = np.arange(10.0)
    pred, uncovered = seq.seasonal_forecast(dates, values, np.array(
        ["2015-01-03", "2015-06-01"], dtype="datetime64[D]"))
    assert uncovered == 1
    assert pred.tolist() == [2.0, 4.5]            # a covered day; the training mean


def test_daily_series_fills_and_reports_gaps():
    frame = pd.DataFrame({
        "day": ["2020-01-01", "2020-01-02", "2020-01-04", "2020-01-04", "2020-01-05", "oops",
                "2020-01-06"],
        "v": [1.0, 2.0, 4.0, 6.0, None, 9.0, 8.0],
    })
    s = seq.daily_series(frame, "day", "v", Provenance("t", "test frame", "-", "7 rows"))
    assert s.dates.astype(str).tolist() == ["2020-01-01", "2020-01-02", "2020-01-03",
                                            "2020-01-04", "2020-01-05", "2020-01-06"]
    # Jan 4 = mean of its two rows; Jan 3 (missing day) and Jan 5 (missing value)
    # interpolated in time
    assert s.values.tolist() == pytest.approx([1, 2, 3.5, 5, 6.5, 8])
    assert s.observed.tolist() == [True, True, False, True, False, True]
    assert s.report == {"rows": 7, "bad_dates": 1, "duplicate_days": 1, "missing_days": 1,
                        "missing_values": 1, "interpolated": 2}
    text = s.describe()
    assert "1 missing days" in text and "never scored" in text


def test_daily_series_bad_input(tmp_path):
    frame = pd.DataFrame({"date": ["2020-01-01"], "x": [1.0]})
    prov = Provenance("t", "test frame", "-", "1 row")
    with pytest.raises(DataError, match="no column 'temp'"):
        seq.daily_series(frame, "date", "temp", prov)
    with pytest.raises(DataError, match="fewer than 2"):
        seq.daily_series(frame, "date", "x", prov)
    with pytest.raises(DataError, match="not found"):
        seq.read_daily_csv(tmp_path / "missing.csv", "date", "x")


def test_adding_problem_marks_and_targets():
    rng = np.random.default_rng(0)
    x, y = seq.adding_problem(rng, 4000, 20)
    assert x.shape == (4000, 20, 2) and y.shape == (4000,) and x.dtype == np.float32
    marks = x[:, :, 1]
    assert np.all(marks.sum(axis=1) == 2)
    assert np.all(marks[:, :10].sum(axis=1) == 1) and np.all(marks[:, 10:].sum(axis=1) == 1)
    assert np.allclose(y, (x[:, :, 0] * marks).sum(axis=1), atol=1e-6)
    # predicting 1 scores Var(U1 + U2) = 1/6
    assert np.mean((y - 1.0) ** 2) == pytest.approx(seq.ADDING_BASELINE_MSE, abs=0.01)


def test_running_sum_targets_and_variance():
    rng = np.random.default_rng(1)
    x, y = seq.running_sum(rng, 20000, 16)
    assert x.shape == (20000, 16, 1)
    assert np.allclose(y, x[:, :, 0].sum(axis=1) / 4.0, atol=1e-5)
    assert np.var(y) == pytest.approx(seq.RUNNING_SUM_VARIANCE, abs=0.01)


def test_random_sines_noise_and_continuation():
    x, y, clean = seq.random_sines(np.random.default_rng(2), 3000, 25, noise=0.1)
    assert x.shape == (3000, 25, 1) and y.shape == (3000,) and clean.shape == (3000,)
    assert np.std(y - clean) == pytest.approx(0.1, rel=0.05)
    x0, y0, c0 = seq.random_sines(np.random.default_rng(3), 5, 25, noise=0.0)
    assert np.allclose(y0, c0, atol=1e-6)
    # without noise the next value continues the signal smoothly: one step moves at most
    # 2 pi f_max (a_1 + a_2) = 2 pi / 6 * 2
    steps = np.abs(np.diff(np.concatenate([x0[:, :, 0], y0[:, None]], axis=1), axis=1))
    assert steps.max() <= 2 * math.pi / 6 * 2 + 1e-6
