import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from dlab.data import sequences as seq
from dlab.data.tabular import seattle_weather
from dlab.errors import DataError
from dlab.models.rnn import SequenceConfig, SequenceRegressor
from dlab.registry import PROGRAMS
from dlab.running import run_program
from dlab.uncertainty import Difference


def test_weather_smoke_on_seattle(tmp_path):
    out = run_program(PROGRAMS["11.1"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    assert out.status == "ok"
    m = out.metrics
    # persistence and the scaler recomputed by hand from the raw table (smoke: 120 test days)
    temps = seattle_weather().frame["temp_max"].to_numpy()
    test = temps[-120:]
    assert m["test_days_scored"] == 120
    assert m["persistence_rmse"] == pytest.approx(np.sqrt(np.mean((test - temps[-121:-1]) ** 2)))
    assert m["persistence_mae"] == pytest.approx(np.mean(np.abs(test - temps[-121:-1])))
    assert (m["scaler_train_min"], m["scaler_train_max"]) == (temps[:-120].min(),
                                                              temps[:-120].max())
    assert "keras_rmse" not in m                       # smoke skips the Keras variant
    meta = json.loads((out.folder / "model.json").read_text())
    assert meta["scaler_max"] == temps[:-120].max()
    assert (out.folder / "forecast.png").exists()
    # the seasonal baseline by hand: the mean of each calendar day over the training days
    frame = seattle_weather().frame
    days = pd.to_datetime(frame["date"]).dt.strftime("%m-%d").to_numpy()
    means = pd.Series(temps[:-120]).groupby(days[:-120]).mean()
    seasonal = means.reindex(days[-120:]).to_numpy()
    assert m["seasonal_rmse"] == pytest.approx(np.sqrt(np.mean((seasonal - test) ** 2)))
    # the PyTorch RMSE is the saved model's, on windows scaled with the training range
    lo, hi = meta["scaler_min"], meta["scaler_max"]
    scaled = (temps - lo) / (hi - lo)
    x = np.stack([scaled[t - 20:t] for t in range(len(temps) - 120, len(temps))])
    model = SequenceRegressor(SequenceConfig(cell="lstm", hidden=8, num_layers=2, dense=(4,)))
    model.load_state_dict(torch.load(out.folder / "model.pt", weights_only=True))
    with torch.no_grad():
        pred = model(torch.from_numpy(x[..., None]).float()).double().numpy() * (hi - lo) + lo
    assert m["pytorch_rmse"] == pytest.approx(np.sqrt(np.mean((pred - test) ** 2)), rel=1e-5)
    summary = json.loads((out.folder / "metrics.json").read_text())
    assert [t["met"] for t in summary["targets"]] == ["not applicable"] * 3   # quick/full only
    # each gap to a baseline is the difference of the two scores, with its interval
    for base in ("persistence", "seasonal"):
        for k in ("rmse", "mae"):
            gap = Difference.from_dict(m[f"pytorch_vs_{base}_{k}"])
            assert gap.estimate == pytest.approx(m[f"pytorch_{k}"] - m[f"{base}_{k}"])
            assert gap.low <= gap.estimate <= gap.high and gap.n == 120
    assert m["pytorch_bias_hh_parameters"] == 2 * 4 * 8


def _gappy_csv(tmp_path):
    """Three years of a seasonal series with gaps, and a record high in the last days."""
    rng = np.random.default_rng(0)
    dates = pd.date_range("2019-01-01", periods=3 * 365, freq="D")
    values = 10 + 8 * np.sin(2 * np.pi * np.arange(len(dates)) / 365.25) \
        + rng.normal(0, 1, len(dates))
    values[-20] = 60.0                                   # a record in the test period
    frame = pd.DataFrame({"day": dates.strftime("%Y-%m-%d"), "temp": values})
    frame.loc[[100, 101, len(frame) - 30], "temp"] = np.nan      # missing values
    frame = frame.drop(index=[200, 201, 202, len(frame) - 40])   # missing days
    path = tmp_path / "daily.csv"
    frame.to_csv(path, index=False)
    return path


def test_weather_on_a_user_csv_with_gaps_and_a_leaky_scaler(tmp_path):
    path = _gappy_csv(tmp_path)
    sets = {"csv": str(path), "date_column": "day", "value_column": "temp"}
    out = run_program(PROGRAMS["11.1"], profile="smoke", sets=sets, out=tmp_path / "runs",
                      quiet=True, device="cpu")
    assert out.status == "ok"
    m = out.metrics
    # 120 test days, of which one is a missing value and one a missing day: not scored
    assert m["test_days_scored"] == 118
    assert m["scaler_all_max"] == pytest.approx(60.0)
    assert m["scaler_train_max"] < 30.0                  # the honest scaler never saw 60
    assert m["test_days_outside_training_range"] >= 1
    assert np.isfinite(m["pytorch_leaky_scaler_rmse"])   # retrained with the leaky scaler
    record = (out.folder / "record.md").read_text()
    assert "4 missing days, 3 missing values" in record and "never scored" in record


def test_weather_rejects_a_missing_column_before_writing(tmp_path):
    path = _gappy_csv(tmp_path)
    with pytest.raises(DataError, match="no column 'tmax'"):
        run_program(PROGRAMS["11.1"], profile="smoke", out=tmp_path / "runs", quiet=True,
                    device="cpu", sets={"csv": str(path), "date_column": "day",
                                        "value_column": "tmax"})
    assert not list((tmp_path / "runs").glob("11.1/*"))


def test_keras_forecaster_matches_its_pytorch_twin():
    import keras

    from dlab.keras_programs import weather_lstm as kw

    keras.utils.set_random_seed(0)
    kmodel = kw.build_forecaster(window=7, hidden=6, dense=4)
    # Keras: one bias per gate block, so 4 * 6 * (1 + 6 + 1) + 4 * 6 * (6 + 6 + 1) + ...
    assert kw.count_params(kmodel) == 4 * 6 * 8 + 4 * 6 * 13 + 6 * 4 + 4 + 4 + 1
    tmodel = SequenceRegressor(SequenceConfig(cell="lstm", hidden=6, num_layers=2, dense=(4,)))
    tmodel.load_state_dict(kw.torch_state_dict(kmodel))
    x = np.random.default_rng(0).normal(size=(5, 7, 1)).astype(np.float32)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    assert np.allclose(kw.predict(kmodel, x), expected, atol=1e-5)


def test_keras_training_records_history_and_learns():
    from dlab.keras_programs import weather_lstm as kw

    rng = np.random.default_rng(0)
    series = 0.5 + 0.4 * np.sin(np.arange(400) / 6.0)
    x, y = seq.sliding_windows(series, 12)
    x = x[..., None] + rng.normal(0, 0.01, (len(x), 12, 1))
    model = kw.build_forecaster(12, hidden=8, dense=4, seed=0)
    rows = kw.train_forecaster(model, x[:300], y[:300], x[300:], y[300:], epochs=3,
                               batch_size=32, lr=0.01, patience=0)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all(r["model"] == "keras" for r in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert np.isfinite(rows[-1]["val_loss"])


def test_sequence_lstm_smoke(tmp_path):
    out = run_program(PROGRAMS["11.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    assert out.status == "ok"
    m = out.metrics
    # the data and the mean predictor rebuilt by hand: 400 sequences of 12, 280 training,
    # 60 validation, 60 test; the mean of the training targets in the models' float32
    x, y, clean = seq.random_sines(np.random.default_rng(0), 400, 12, 0.05)
    y = y.astype(np.float64)
    mean = float(np.float32(y[:280].astype(np.float32).mean()))
    assert m["test_sequences"] == 60 and m["train_mean"] == mean
    assert m["mean_prediction_mse"] == pytest.approx(np.mean((y[340:] - mean) ** 2), rel=1e-12)
    assert m["noise_floor_mse"] == pytest.approx(np.mean((y[340:] - clean[340:]) ** 2))
    assert m["last_value_mse"] == pytest.approx(np.mean((y[340:] - x[340:, -1, 0]) ** 2))
    # a model trained on targets independent of its inputs cannot beat the mean by much,
    # and the record's control sentence says what was measured
    assert m["control_test_mse"] > 0.9 * m["control_mean_prediction_mse"]
    summary = json.loads((out.folder / "metrics.json").read_text())
    control = next(c for c in summary["record"]["claims"] if c["claim"].startswith("Control"))
    gap = Difference.from_dict(m["control_vs_mean_prediction"])
    assert gap.estimate == pytest.approx(m["control_test_mse"] - m["control_mean_prediction_mse"],
                                         abs=1e-6)
    assert control["holds"] == (gap.verdict("lower") != "better"
                                and m["control_prediction_spread"] < 0.25)
    tables = {t["title"]: t for t in summary["record"]["tables"]}
    sample = next(t for k, t in tables.items() if k.startswith("Sample predictions"))
    assert len(sample["rows"]) == 10
    for row in sample["rows"]:
        assert row[4] == pytest.approx(row[3] - row[2])       # error = prediction - truth
    assert (out.folder / "sequence_predictions.png").exists()
    assert {t["met"] for t in summary["targets"]} == {"not applicable"}


def test_sequence_lstm_beats_the_mean_predictor_when_trained_a_little(tmp_path):
    sets = {"n_sequences": "600", "epochs": "10", "hidden": "16", "lr": "0.01",
            "control": "false", "patience": "0"}
    out = run_program(PROGRAMS["11.2"], profile="smoke", sets=sets, out=tmp_path, quiet=True,
                      device="cpu")
    m = out.metrics
    assert m["test_mse"] < 0.25 * m["mean_prediction_mse"]
    analysis = json.loads((out.folder / "metrics.json").read_text())["record"]["analysis"]
    assert any("against predicting the training mean's" in s and s.endswith(
        "It has learned more than the mean of the targets.") for s in analysis)


class _MeanModel(torch.nn.Module):
    """Predicts the training mean for every sequence (what the manual's model learned)."""

    def __init__(self, mean):
        super().__init__()
        self.mean = torch.nn.Parameter(torch.tensor(mean, dtype=torch.float32))

    def forward(self, x):
        return self.mean.expand(len(x))


def test_a_model_that_predicts_the_mean_is_judged_missed(monkeypatch, tmp_path):
    from dlab.experiments import exp11_lstm as e11
    from dlab.training import FitResult

    def mean_model(cfg, model, d, ctx):
        model.mean.data.fill_(d["train_mean"])       # "trained" to predict the mean
        return FitResult()

    monkeypatch.setattr(e11, "sequence_net", lambda cfg, ctx, seed: _MeanModel(0.0))
    monkeypatch.setattr(e11, "train_lstm", mean_model)
    out = run_program(PROGRAMS["11.2"], profile="quick", sets={"control": "false"},
                      out=tmp_path, quiet=True, device="cpu")
    m = out.metrics
    assert m["test_mse"] == m["mean_prediction_mse"]
    summary = json.loads((out.folder / "metrics.json").read_text())
    assert summary["verdict"] == "missed"
    assert [t["met"] for t in summary["targets"]] == [False, False]
    analysis = " ".join(summary["record"]["analysis"])
    assert "training mean's" in analysis and "not distinguishable" in analysis
    assert summary["targets"][0]["shown"] is False
    assert "learned more than the mean" not in analysis
    assert not any(c["holds"] for c in summary["record"]["claims"]
                   if "training mean" in c["claim"])


def test_sequence_lstm_trains_through_a_dataloader(monkeypatch, tmp_path):
    from dlab.experiments import exp11_lstm as e11

    seen = []
    real_fit = e11.fit

    def spy(model, train, **kw):
        seen.append(type(train).__name__)
        return real_fit(model, train, **kw)

    monkeypatch.setattr(e11, "fit", spy)
    out = run_program(PROGRAMS["11.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    assert out.status == "ok" and seen == ["DataLoader", "DataLoader"]


def test_weather_keras_variant_runs_in_a_fresh_process(tmp_path):
    # a fresh interpreter: Keras must get its backend from dlab, not from whatever
    # another test imported first
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-m", "dlab", "run", "11.1", "--profile", "smoke",
                           "--set", "keras=true", "--set", "leak_check=false", "--out",
                           str(tmp_path), "--quiet", "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (metrics,) = tmp_path.glob("11.1/*/metrics.json")
    m = json.loads(metrics.read_text())["metrics"]
    assert np.isfinite(m["keras_rmse"]) and m["keras_epochs_run"] == 2


def test_rmse_gap_interval_separates_a_real_gain_from_noise():
    from dlab.experiments import exp11_lstm as e11

    rng = np.random.default_rng(0)
    base = rng.normal(0, 2.0, 365)
    better = e11.gaps(base * 0.5, base, "x", seed=0)            # every day's error halved
    assert Difference.from_dict(better["x_rmse"]).verdict("lower") == "better"
    other = base + rng.normal(0, 0.3, 365)                       # as good, but not the same
    noise = e11.gaps(other, base, "x", seed=0)
    assert Difference.from_dict(noise["x_rmse"]).verdict("lower") == "not distinguishable"
    assert noise["x_rmse"]["estimate"] == pytest.approx(
        np.sqrt(np.mean(other ** 2)) - np.sqrt(np.mean(base ** 2)))
    assert noise["x_mae"]["estimate"] == pytest.approx(np.mean(np.abs(other) - np.abs(base)))


def test_pytorch_lstm_holds_exactly_the_bias_vectors_keras_lacks():
    from dlab.experiments import exp11_lstm as e11

    model = SequenceRegressor(SequenceConfig(cell="lstm", hidden=50, num_layers=2, dense=(25,)))
    assert e11.bias_vectors(model) == 2 * 4 * 50
    recorded = []

    class Rec:
        def infer(self, s):
            recorded.append(s)

        def claim(self, text, holds, otherwise=None, **evidence):
            recorded.append(text if holds else otherwise)

    m = {"parameters": {"PyTorch": 31_051, "Keras": 30_651}, "pytorch_bias_hh_parameters": 400,
         "keras_rmse": 2.7, "pytorch_rmse": 2.8}
    e11._judge_parameters(m, "C", Rec())
    assert "exactly the 400" in recorded[-1]
    m["parameters"]["Keras"] = 30_000
    e11._judge_parameters(m, "C", Rec())
    assert "do not account for the whole gap" in recorded[-1]
