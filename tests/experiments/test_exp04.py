import csv
import json

import pytest
import torch

from dlab.api import run_program
from dlab.experiments import exp04_mnist_mlp as e4
from dlab.models.mlp import MLP
from dlab.registry import PROGRAMS

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
    assert m["test_accuracy"] > 0.5                      # one epoch on 1,000 digits
    d = m["manual_defect"]
    assert d["fresh_interpreter"].startswith("NameError") and "'model'" in d["fresh_interpreter"]
    assert d["old_model_changed"] is False and d["new_model_changed"] is False
    assert abs(d["train_loss"] - 2.3026) < 0.05          # ln 10: the untrained network
    assert d["test_accuracy"] < 0.25 < m["test_accuracy"]
    meta = json.loads((mlp_run.folder / "model.json").read_text())
    assert meta["architecture"] == "mlp" and meta["input"]["flatten"] is True
    assert meta["input"]["size"] == [28, 28] and meta["classes"] == [str(i) for i in range(10)]


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
    assert m["test_accuracy_per_epoch"] == pytest.approx([float(r["val_acc"]) for r in rows])
    assert m["train_accuracy"] == pytest.approx(float(rows[-1]["train_eval_acc"]))
    assert float(rows[1]["train_eval_loss"]) < float(rows[0]["train_eval_loss"])
    assert (out.folder / "curves.png").read_bytes()[:4] == b"\x89PNG"
