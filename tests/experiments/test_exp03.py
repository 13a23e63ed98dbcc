import json
import math

import numpy as np
import pandas as pd
import pytest

from dlab.api import run_program
from dlab.data.tabular import TableData
from dlab.errors import DataError, UsageError
from dlab.experiments import exp03_regression as e3
from dlab.registry import PROGRAMS


def _table():
    frame = pd.DataFrame({
        "a": [1.0, 2.0, 3.0, np.nan, 100.0, 200.0],
        "c": ["x", "y", "x", "x", "z", None],
        "t": [10.0, 20.0, 30.0, 40.0, 1000.0, 2000.0],
    })
    return TableData(frame, "t", "regression", None)


def test_preprocessing_is_fit_on_training_rows_only():
    rows = {"train": np.array([0, 1, 2, 3]), "val": np.array([4]), "test": np.array([5])}
    s = e3.preprocess(_table(), rows)
    # training column a: 1, 2, 3, gap -> median 2 (all rows would give 3), then mean 2
    assert s.pre.medians["a"] == 2.0
    assert s.pre.means["a"] == 2.0
    assert s.pre.stds["a"] == pytest.approx(math.sqrt(0.5))
    assert s.pre.categories["c"] == ["x", "y"]          # 'z' and the gap come from other rows
    assert s.pre.feature_names == ["a", "c=x", "c=y"]
    assert np.allclose(s.x_train[:, 0], [-1 / math.sqrt(0.5), 0, 1 / math.sqrt(0.5), 0])
    assert s.x_train[:, 0].mean() == pytest.approx(0.0, abs=1e-12)
    assert s.x_val[0, 0] == pytest.approx(98 / math.sqrt(0.5))
    assert s.x_val[0, 1:].tolist() == [0.0, 0.0]          # unseen category -> zeros
    assert s.y_mean == 25.0 and s.y_std == pytest.approx(np.std([10, 20, 30, 40]))
    assert s.y_test.tolist() == [2000.0]                  # targets stay in their own units


def test_manual_split_leaks_the_test_rows():
    rows = {"train": np.array([0, 1, 2, 3]), "val": np.array([4]), "test": np.array([5])}
    leak, mean, std = e3.manual_leaky_split(_table(), rows)
    assert mean == pytest.approx(np.mean([10, 20, 30, 40, 1000, 2000]))
    assert leak.pre.medians["a"] == 3.0                   # the median of every row
    assert leak.y_test[0] == pytest.approx((2000 - mean) / std)


def test_regression_scores_by_hand():
    s = e3.regression_scores(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 3.0, 2.0]))
    assert s["mse"] == 1.25 and s["mae"] == 0.75 and s["rmse"] == math.sqrt(1.25)
    assert s["r2"] == pytest.approx(1 - 5.0 / 5.0)
    assert e3.regression_scores(np.arange(5.0), np.arange(5.0))["r2"] == 1.0


def test_split_rows_are_disjoint_and_complete():
    rows = e3.split_rows(398, 0.2, 0.2, np.random.default_rng(0))
    allrows = np.concatenate(list(rows.values()))
    assert sorted(allrows.tolist()) == list(range(398))
    assert (len(rows["test"]), len(rows["val"]), len(rows["train"])) == (80, 64, 254)


def test_torch_program_smoke(tmp_path):
    out = run_program(PROGRAMS["3.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    assert out.status == "ok"
    m = json.loads((out.folder / "metrics.json").read_text())["metrics"]
    assert m["unit"] == "mpg" and m["parameters"] == (9 + 1) * 64 + (64 + 1) * 32 + 33
    assert m["test_mse"] == pytest.approx(m["test_rmse"] ** 2)
    assert 0.7 < m["baseline_linear"]["r2"] < 0.95          # linear model on Auto MPG
    assert m["baseline_mean"]["r2"] <= 0.0 + 1e-2           # a constant explains nothing
    assert json.loads((out.folder / "model.json").read_text())["task"] == "regression"
    assert (out.folder / "predicted_vs_true.png").read_bytes()[:4] == b"\x89PNG"


def test_keras_program_smoke(tmp_path):
    out = run_program(PROGRAMS["3.1"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    assert out.status == "ok"
    m = out.metrics
    assert m["parameters"] == 2753 and m["keras_backend"] == "torch"
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
