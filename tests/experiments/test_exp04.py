import csv
import json

import numpy as np
import pytest
import torch

from dlab import baselines
from dlab.experiments import exp04_mnist_mlp as e4
from dlab.models.mlp import MLP
from dlab.registry import PROGRAMS
from dlab.running import run_program

BUNDLED = {"source": "bundled"}


def test_mlp_parameter_count_by_hand():
    net = MLP((784, 128, 64, 10))
    # (784 + 1) * 128 + (128 + 1) * 64 + (64 + 1) * 10
    assert sum(p.numel() for p in net.parameters()) == 100_480 + 8_256 + 650 == 109_386
    assert net(torch.zeros(3, 784)).shape == (3, 10)


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    return run_program(PROGRAMS["4.1"], profile="smoke", out=tmp_path_factory.mktemp("r"),
                       quiet=True, device="cpu", sets=BUNDLED)


def test_mnist_mlp_smoke_and_the_manual_defect(mlp_run):
    assert mlp_run.status == "ok"
    m = json.loads((mlp_run.folder / "metrics.json").read_text())["metrics"]
    assert m["train_size"] == 1000 and m["test_size"] == 1000 and m["parameters"] == 109_386
    assert m["data_source"] == "bundled"
    assert m["majority_test_accuracy"] == pytest.approx(0.1)   # 100 test digits a class
    assert m["test_accuracy"] > m["majority_test_accuracy"] + 0.4  # one epoch, 1,000 digits
    d = m["manual_defect"]
    assert d["fresh_interpreter"].startswith("NameError") and "'model'" in d["fresh_interpreter"]
    assert d["old_model_changed"] is False and d["new_model_changed"] is False
    assert abs(d["train_loss"] - 2.3026) < 0.05          # ln 10: the untrained network
    assert d["test_accuracy"] < 0.25 < m["test_accuracy"]
    # both comparisons carry their paired interval over the 1,000 test digits
    vs = m["test_accuracy_vs_manual_defect"]
    assert vs["estimate"] == pytest.approx(m["test_accuracy"] - d["test_accuracy"])
    assert vs["low"] > 0 and vs["n"] == 1000
    vs = m["test_accuracy_vs_majority"]
    assert vs["estimate"] == pytest.approx(m["test_accuracy"] - m["majority_test_accuracy"])
    meta = json.loads((mlp_run.folder / "model.json").read_text())
    assert meta["architecture"] == "mlp" and meta["input"]["flatten"] is True
    assert meta["input"]["size"] == [28, 28] and meta["classes"] == [str(i) for i in range(10)]


def test_mnist_mlp_targets_at_smoke(mlp_run):
    verdicts = [(t["rule"], t["met"]) for t in mlp_run.targets]
    assert verdicts == [
        ("test_accuracy > majority_test_accuracy", True),
        ("test_accuracy >= 0.9", "not applicable"),     # a quick/full target
        ("test_accuracy >= 0.97", "not applicable"),
        ("manual_defect.new_model_changed = false", True),
        ("manual_defect.test_accuracy <= 0.2", True),
    ]


class _ConstantDigit(MLP):
    """An MLP that always answers digit 0: the majority-class baseline's prediction on
    the bundled digits (every class equally common, 0 the first of them)."""

    def forward(self, x):
        zero = torch.zeros(len(x), dtype=torch.long, device=x.device)
        return super().forward(x) * 0 + torch.nn.functional.one_hot(zero, 10).float()


def test_record_of_a_model_that_only_matches_the_baseline(tmp_path, monkeypatch):
    monkeypatch.setattr(e4, "MLP", _ConstantDigit)
    out = run_program(PROGRAMS["4.1"], profile="quick", out=tmp_path, quiet=True,
                      device="cpu", sets={**BUNDLED, "epochs": "1", "train_limit": "500"})
    m = out.metrics
    assert m["test_accuracy"] == pytest.approx(m["majority_test_accuracy"]) == 0.1
    verdict = {t["rule"]: t["met"] for t in out.targets}
    assert verdict["test_accuracy > majority_test_accuracy"] is False
    assert verdict["test_accuracy >= 0.9"] is False
    assert verdict["test_accuracy >= 0.97"] == "not applicable"
    meta = json.loads((out.folder / "metrics.json").read_text())
    assert meta["verdict"] == "missed"
    record = (out.folder / "record.md").read_text()
    assert "missed" in record.lower()
    assert "better" not in record.split("## Analysis")[1].split("The correct program")[0]
    tie = next(line for line in record.splitlines()
               if line.startswith("- The MLP's test accuracy") and "majority" in line)
    assert tie.endswith("not distinguishable.") and "difference +0 " in tie


def test_standardisation_uses_training_pixels_only(tmp_path):
    from dlab.runs import RunContext

    ctx = RunContext(PROGRAMS["4.1"], None, tmp_path, profile="smoke", seed=0, device="cpu",
                     quiet=True)
    d = e4.load_digits(e4.MLPConfig(source="bundled", train_limit=500), ctx)
    assert d.x_train.shape == (500, 784) and d.x_test.shape == (1000, 784)
    assert abs(float(d.x_train.double().mean())) < 1e-5
    assert abs(float(d.x_train.double().std()) - 1) < 1e-3
    assert abs(float(d.x_test.double().mean())) > 1e-4   # the test set was not used


def test_curves_are_measured_each_epoch(tmp_path):
    out = run_program(PROGRAMS["4.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu",
                      sets=BUNDLED)
    assert out.status == "ok"
    lines = (out.folder / "history.csv").read_text().splitlines()
    rows = [r for r in csv.DictReader(lines) if r["model"] == "mlp"]
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    m = out.metrics
    assert m["test_accuracy_per_epoch"] == pytest.approx([float(r["test_acc"]) for r in rows])
    assert m["val_accuracy_per_epoch"] == pytest.approx([float(r["val_acc"]) for r in rows])
    assert m["train_accuracy"] == pytest.approx(float(rows[-1]["train_eval_acc"]))
    best = max(rows, key=lambda r: float(r["val_acc"]))   # chosen on validation only
    assert m["best_val_epoch"] == int(best["epoch"])
    assert float(rows[1]["train_eval_loss"]) < float(rows[0]["train_eval_loss"])
    assert m["test_accuracy"] > m["majority_test_accuracy"] + 0.4
    assert [(t["rule"], t["met"]) for t in out.targets] == [
        ("test_accuracy > majority_test_accuracy", True),
        ("test_accuracy >= 0.89", "not applicable"),    # quick/full targets
        ("test_accuracy >= 0.97", "not applicable"),
        ("train_loss_decreased = true", True)]
    # the baseline: logistic regression on the same 900 training digits, C on validation
    assert m["logreg_C"] in baselines.BASELINE_C and 0.7 < m["logreg_test_accuracy"] < 1
    diff = m["test_accuracy_vs_logreg"]
    assert diff["estimate"] == pytest.approx(m["test_accuracy"] - m["logreg_test_accuracy"])
    assert diff["low"] < diff["estimate"] < diff["high"]
    assert (out.folder / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_curves_validation_split_is_carved_from_training(tmp_path):
    from dlab.runs import RunContext

    ctx = RunContext(PROGRAMS["4.2"], None, tmp_path, profile="smoke", seed=0, device="cpu",
                     quiet=True)
    cfg = e4.CurvesConfig(source="bundled", train_limit=1000)
    d = e4.load_digits(cfg, ctx)
    x_fit, y_fit, x_val, y_val = e4.split_validation(cfg, ctx, d)
    assert len(x_fit) + len(x_val) == 1000 and 90 <= len(x_val) <= 110
    assert len(set(y_val.tolist())) == 10                 # stratified: every digit
    fit_rows = {r.numpy().tobytes() for r in x_fit}
    assert not any(r.numpy().tobytes() in fit_rows for r in x_val)


def test_logistic_baseline_chooses_c_on_validation_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = (x[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(int)
    out = baselines.logistic_baseline(x[:200], y[:200], x[200:250], y[200:250], x[250:], seed=0)
    assert set(out["val_accuracy"]) == set(baselines.BASELINE_C)
    assert out["val_accuracy"][out["C"]] == max(out["val_accuracy"].values())
    assert out["pred"].shape == (50,) and (out["pred"] == y[250:]).mean() > 0.8
    # the test rows play no part in the choice: scrambling them changes nothing chosen
    again = baselines.logistic_baseline(x[:200], y[:200], x[200:250], y[200:250], -x[250:], seed=0)
    assert again["C"] == out["C"] and again["val_accuracy"] == out["val_accuracy"]


def test_accuracy_difference_is_paired_and_not_better_on_a_tie():
    true = np.arange(400) % 10
    same = baselines.accuracy_difference(true, true, true, seed=0)
    assert same.estimate == 0 and same.verdict("higher") == "not distinguishable"
    half = np.where(np.arange(400) % 2 == 0, true, (true + 1) % 10)
    diff = baselines.accuracy_difference(true, half, true, seed=0)
    assert diff.estimate == pytest.approx(0.5) and diff.low > 0.4
