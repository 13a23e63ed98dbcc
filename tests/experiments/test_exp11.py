import json

import numpy as np
import pandas as pd
import pytest
import torch

from dlab.api import run_program
from dlab.data import sequences as seq
from dlab.data.tabular import seattle_weather
from dlab.errors import DataError
from dlab.models.rnn import SequenceConfig, SequenceRegressor
from dlab.registry import PROGRAMS


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
    assert 1.0 < m["pytorch_rmse"] < 15.0 and 1.0 < m["seasonal_rmse"] < 10.0
    assert "keras_rmse" not in m                       # smoke skips the Keras variant
    meta = json.loads((out.folder / "model.json").read_text())
    assert meta["scaler_max"] == temps[:-120].max()
    assert (out.folder / "forecast.png").exists()


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
    model, rows = kw.train_forecaster(x[:300], y[:300], x[300:], y[300:], hidden=8, dense=4,
                                      epochs=3, batch_size=32, lr=0.01, patience=0, seed=0)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all(r["model"] == "keras" for r in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert np.isfinite(rows[-1]["val_loss"])


def test_sequence_lstm_smoke(tmp_path):
    out = run_program(PROGRAMS["11.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    assert out.status == "ok"
    m = out.metrics
    # 400 sequences -> 60 test; predicting the mean scores about the targets' variance
    assert 0.1 < m["mean_prediction_mse"] < 1.5
    assert m["noise_floor_mse"] == pytest.approx(0.0025, rel=0.6)
    assert np.isfinite(m["test_mse"])
    # a model trained on targets independent of its inputs can only approach the mean
    assert m["control_test_mse"] > 0.9 * m["control_mean_prediction_mse"]
    tables = {t["title"]: t for t in json.loads((out.folder / "metrics.json").read_text())
              ["record"]["tables"]}
    sample = next(t for k, t in tables.items() if k.startswith("Sample predictions"))
    assert len(sample["rows"]) == 10
    for row in sample["rows"]:
        assert row[4] == pytest.approx(row[3] - row[2])       # error = prediction - truth
    assert (out.folder / "sequence_predictions.png").exists()


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
