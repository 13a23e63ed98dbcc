import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from dlab.data.tabular import TableData, prepare
from dlab.errors import DataError, UsageError
from dlab.experiments import exp03_regression as e3
from dlab.registry import PROGRAMS
from dlab.running import run_program


def _table():
    frame = pd.DataFrame({
        "a": [1.0, 2.0, 3.0, np.nan, 100.0, 200.0],
        "c": ["x", "y", "x", "x", "z", None],
        "t": [10.0, 20.0, 30.0, 40.0, 1000.0, 2000.0],
    })
    return TableData(frame, "t", "regression", None)


def test_manual_split_leaks_the_test_rows():
    rows = {"train": np.array([0, 1, 2, 3]), "val": np.array([4]), "test": np.array([5])}
    leak, mean, std = e3.manual_leaky_split(_table(), rows)
    fair = prepare(_table(), 0, rows=rows)
    assert fair.pre.medians["a"] == 2.0 and e3.target_scale(fair) == (
        25.0, pytest.approx(np.std([10, 20, 30, 40])))
    assert mean == pytest.approx(np.mean([10, 20, 30, 40, 1000, 2000]))
    assert leak.pre.medians["a"] == 3.0                   # the median of every row
    assert leak.y_test[0] == pytest.approx((2000 - mean) / std)


def test_regression_scores_by_hand():
    s = e3.regression_scores(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 3.0, 2.0]))
    assert s["mse"] == 1.25 and s["mae"] == 0.75 and s["rmse"] == math.sqrt(1.25)
    assert s["r2"] == pytest.approx(1 - 5.0 / 5.0)
    assert e3.regression_scores(np.arange(5.0), np.arange(5.0))["r2"] == 1.0


def _metrics(out):
    return json.loads((out.folder / "metrics.json").read_text())


def test_torch_program_smoke(tmp_path):
    out = run_program(PROGRAMS["3.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    assert out.status == "ok"
    meta = _metrics(out)
    m = meta["metrics"]
    assert m["unit"] == "mpg" and m["parameters"] == (9 + 1) * 64 + (64 + 1) * 32 + 33
    assert m["test_mse"] == pytest.approx(m["test_rmse"] ** 2)
    # the baselines are what they say: least squares on the same rows, and a constant
    s = prepare(e3.load_table(e3.RegressionConfig()), 0.2, 0.2, seed=0, stratify=False)
    linear = LinearRegression().fit(s.x_train, s.y_train).predict(s.x_test)
    assert m["baseline_linear"]["mse"] == pytest.approx(np.mean((s.y_test - linear) ** 2))
    assert m["baseline_mean"]["mse"] == pytest.approx(
        np.mean((s.y_test - s.y_train.mean()) ** 2))
    assert m["baseline_mean"]["r2"] <= 0.0                # a constant explains nothing
    assert m["baseline_linear"]["mse"] < m["baseline_mean"]["mse"]
    assert m["n_test"] == 80 and m["epochs_run"] <= 3
    assert json.loads((out.folder / "model.json").read_text())["task"] == "regression"
    assert (out.folder / "predicted_vs_true.png").read_bytes()[:4] == b"\x89PNG"
    # the quality target is for quick and full runs
    assert [(t["name"], t["reference"], t["met"]) for t in meta["targets"]] == [
        ("test_mse", "baseline_linear.mse", "not applicable")]


@pytest.mark.parametrize("fake", ["linear", "mean"])
def test_record_of_a_network_that_only_copies_a_baseline(tmp_path, monkeypatch, fake):
    """A 'network' whose predictions are the linear baseline's (or the training mean) must
    miss the target and must not be written up as beating the baseline."""
    def predict(model, s, device):
        if fake == "linear":
            return e3.linear_baseline(s)
        return np.full(len(s.y_test), s.y_train.mean())

    monkeypatch.setattr(e3, "predict_torch", predict)
    out = run_program(PROGRAMS["3.2"], profile="quick", out=tmp_path, quiet=True,
                      device="cpu", sets={"epochs": "2"})
    meta = _metrics(out)
    target = meta["targets"][0]
    assert target["met"] is False and meta["verdict"] == "missed"
    assert target["value"] >= target["reference_value"]
    record = (out.folder / "record.md").read_text()
    assert "**Targets: missed**" in record
    versus_linear = [a for a in meta["record"]["analysis"]
                     if a.startswith("The PyTorch network") and "linear regression" in a]
    assert len(versus_linear) == 1
    sentence = versus_linear[0]
    assert "better" not in sentence
    assert not any("beat" in a for a in meta["record"]["analysis"])
    assert (sentence.endswith("not distinguishable.") if fake == "linear"
            else sentence.endswith("worse."))


def test_a_gain_inside_the_bootstrap_interval_is_not_shown(tmp_path, monkeypatch):
    """Predictions equal to least squares' but moved halfway to the truth on two test rows
    have a lower test MSE than linear regression, by too little to tell from which rows
    were drawn: the target is 'not shown' and the sentence says not distinguishable."""
    def predict(model, s, device):
        p = e3.linear_baseline(s)
        p[:2] = (p[:2] + s.y_test[:2]) / 2
        return p

    monkeypatch.setattr(e3, "predict_torch", predict)
    out = run_program(PROGRAMS["3.2"], profile="quick", out=tmp_path, quiet=True,
                      device="cpu", sets={"epochs": "1"})
    meta = _metrics(out)
    m, target = meta["metrics"], meta["targets"][0]
    assert m["test_mse"] < m["baseline_linear"]["mse"]
    gap = m["test_mse_vs_linear"]
    assert gap["estimate"] == pytest.approx(m["test_mse"] - m["baseline_linear"]["mse"])
    assert gap["low"] < 0 <= gap["high"] and gap["n"] == m["n_test"]
    assert target["met"] is False and target["shown"] is False
    assert any("not distinguishable" in a and "linear regression" in a
               for a in meta["record"]["analysis"])


def test_squared_error_gap_by_hand():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    gap = e3.squared_error_gap(y, y + 1.0, y, seed=0)
    assert gap["estimate"] == 1.0 and gap["low"] == gap["high"] == 1.0   # no spread
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    gap = e3.squared_error_gap(y, y + rng.normal(0, 0.1, 200), y + rng.normal(0, 1, 200), 0)
    assert gap["high"] < 0 and gap["low"] < gap["estimate"] < gap["high"]


def test_keras_program_smoke(tmp_path):
    out = run_program(PROGRAMS["3.1"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    assert out.status == "ok"
    m = out.metrics
    assert m["parameters"] == 2753 and m["keras_backend"] == "torch"
    assert m["baseline_mean"]["r2"] <= 0.0 < m["baseline_linear"]["r2"]
    assert m["manual_mse_in_units"] == pytest.approx(m["manual_scores_in_units"]["mse"])
    assert m["manual_mse_standardised"] < m["manual_mse_in_units"]
    hist = (out.folder / "history.csv").read_text().splitlines()
    assert len(hist) == 1 + 2 * 3                           # two Keras models, 3 epochs each


def test_user_csv_and_its_errors(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    x = rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "colour": rng.choice(["red", "blue"], n),
                          "y": 3 * x + rng.normal(0, 0.1, n)})
    frame.loc[[2, 5], "x"] = np.nan
    path = tmp_path / "my.csv"
    frame.to_csv(path, index=False)
    out = run_program(PROGRAMS["3.2"], profile="smoke", out=tmp_path / "runs", quiet=True,
                      device="cpu", sets={"csv": str(path), "target": "y"})
    assert out.status == "ok" and out.metrics["unit"] == "units of y"
    assert out.metrics["baseline_linear"]["r2"] > 0.8
    with pytest.raises(DataError, match="no such column"):
        run_program(PROGRAMS["3.2"], profile="smoke", out=tmp_path / "runs", quiet=True,
                    device="cpu", sets={"csv": str(path), "target": "mpg"})
    with pytest.raises(UsageError, match="both"):
        run_program(PROGRAMS["3.2"], profile="smoke", out=tmp_path / "runs", quiet=True,
                    device="cpu", sets={"csv": str(path)})
    assert [p.name for p in (tmp_path / "runs" / "3.2").iterdir()] == [out.folder.name]


def test_keras_training_does_not_depend_on_what_was_built_or_trained_before(tmp_path):
    """3.1 builds both networks before training either: the weights come from the seed and
    the shuffling order is seeded again when training starts, so a network trained after
    another was built and trained learns exactly what it learns alone."""
    from dlab.runs import RunContext

    ctx = RunContext(PROGRAMS["3.1"], None, tmp_path, profile="smoke", seed=0, device="cpu",
                     quiet=True)
    cfg = e3.RegressionConfig(epochs=2, batch_size=8)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    frame["t"] = 2 * frame["a"] - frame["b"] + rng.normal(0, 0.1, 60)
    s = prepare(TableData(frame, "t", "regression", None), 0.2, 0.2, seed=0, stratify=False)
    alone = e3.keras_net(cfg, ctx, 2)
    hist, pred = e3.train_keras(cfg, ctx, alone, s, "alone")
    first, second = e3.keras_net(cfg, ctx, 2), e3.keras_net(cfg, ctx, 2)
    e3.train_keras(cfg, ctx, first, s, "first")
    hist2, pred2 = e3.train_keras(cfg, ctx, second, s, "second")
    assert [r["loss"] for r in hist] == [r["loss"] for r in hist2]
    np.testing.assert_array_equal(pred, pred2)
    assert not np.array_equal(pred, e3.kr.predict(e3.keras_net(cfg, ctx, 2), s.x_test))
