import json

import numpy as np
import pytest
import torch

from dlab.data.mnist import load_mnist, mnist_split
from dlab.metrics import pca_reconstruction_mse
from dlab.models.autoencoder import DenseAutoencoder, halving_widths
from dlab.registry import PROGRAMS
from dlab.running import run_program
from dlab.studies import run_study
from dlab.uncertainty import Difference


def test_dense_autoencoder_shapes_and_exact_parameter_count():
    model = DenseAutoencoder(784, (128, 64), 32, "relu")
    # weights + biases of 784-128-64-32-64-128-784, counted by hand
    layers = [(784, 128), (128, 64), (64, 32), (32, 64), (64, 128), (128, 784)]
    assert sum(p.numel() for p in model.parameters()) == sum(a * b + b for a, b in layers) \
        == 222_384
    x = torch.rand(5, 784)
    z = model.encode(x)
    y = model(x)
    assert z.shape == (5, 32) and y.shape == (5, 784)
    assert (z >= 0).all()  # the code layer is a ReLU layer, as in the manual
    assert ((y > 0) & (y < 1)).all()  # sigmoid output
    assert halving_widths(128, 2) == (128, 64) and halving_widths(256, 3) == (256, 128, 64)
    with pytest.raises(ValueError):
        halving_widths(2, 3)
    tanh = DenseAutoencoder(784, (64,), 8, "tanh")
    assert [m.out_features for m in tanh.modules() if isinstance(m, torch.nn.Linear)] == \
        [64, 8, 64, 784]


def test_pca_reconstruction_matches_scikit_learn():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12))
    test = rng.normal(size=(50, 12)) @ rng.normal(size=(12, 12))
    for k in (1, 4, 9):
        pca = PCA(n_components=k).fit(train)
        expected = np.mean((pca.inverse_transform(pca.transform(test)) - test) ** 2)
        assert pca_reconstruction_mse(train, test, k) == pytest.approx(expected, rel=1e-9)
    assert pca_reconstruction_mse(train, test, 12) == pytest.approx(0.0, abs=1e-20)


def test_autoencoder_program_smoke(tmp_path):
    outcome = run_program(PROGRAMS["12.1"], profile="smoke", out=tmp_path, quiet=True,
                          device="cpu", sets={"source": "bundled"})
    assert outcome.status == "ok"
    m = outcome.metrics
    assert m["architecture"] == "784-128-64-32-64-128-784" and m["parameters"] == 222_384
    assert 0 < m["pca_test_mse"] < m["mean_image_test_mse"]
    # beating PCA means beyond the paired-bootstrap interval over the test digits
    gap = Difference.from_dict(m["test_mse_vs_pca"])
    assert gap.estimate == pytest.approx(m["test_mse"] - m["pca_test_mse"], rel=1e-6)
    assert (gap.low, gap.high) == (m["test_mse_vs_pca_low"], m["test_mse_vs_pca_high"])
    assert m["beats_pca"] == (gap.verdict("lower") == "better") and gap.n == m["test_digits"]
    for name in ("metrics.json", "record.md", "history.csv", "reconstructions.png", "loss.png",
                 "model.pt"):
        assert (outcome.folder / name).exists(), name

    # the recorded test MSE is the saved model's error on the test digits
    model = DenseAutoencoder(784, (128, 64), 32, "relu")
    model.load_state_dict(torch.load(outcome.folder / "model.pt", weights_only=True))
    x = torch.from_numpy(load_mnist("bundled").x_test.reshape(-1, 784).astype(np.float32) / 255)
    with torch.no_grad():
        mse = float(torch.nn.functional.mse_loss(model(x), x))
    assert mse == pytest.approx(m["test_mse"], rel=1e-5)
    # and PCA-32 is fit on the training digits only: refitting it on the test digits
    # themselves must do better than the recorded value
    xt = x.numpy().astype(np.float64)
    assert pca_reconstruction_mse(xt, xt, 32) < m["pca_test_mse"]
    summary = json.loads((outcome.folder / "metrics.json").read_text())
    sentence = next(s for s in summary["record"]["analysis"] if "PCA-32 reconstruction's" in s)
    assert sentence.endswith(f"{gap.verdict('lower')}.") or "reconstructs better" in sentence
    # the target (below PCA-32) is for quick and full; two epochs of smoke are not judged
    assert [(t["rule"], t["met"]) for t in summary["targets"]] == [
        ("test_mse < pca_test_mse", "not applicable")]


def test_mnist_split_carves_a_stratified_validation_set_from_training():
    d = mnist_split("bundled", None, 600, 0.1, np.random.default_rng(0))
    assert (len(d["y_train"]), len(d["y_val"]), len(d["y_test"])) == (540, 60, 1000)
    assert np.bincount(d["y_val"], minlength=10).tolist() == [6] * 10
    assert np.bincount(d["y_train"], minlength=10).tolist() == [54] * 10
    assert np.bincount(d["y_test"], minlength=10).tolist() == [100] * 10   # the whole test set
    # no validation digit is a training digit, and the training order is shuffled
    flat = {k: d[k].reshape(len(d[k]), -1) for k in ("x_train", "x_val")}
    seen = {row.tobytes() for row in flat["x_train"]}
    assert not any(row.tobytes() in seen for row in flat["x_val"])
    assert len(set(d["y_train"][:20].tolist())) > 3


def test_autoencoder_study_smoke(tmp_path):
    # `dlab study 12` runs the experiment's study program, 12.2
    folder = run_study("12", profile="smoke", out=tmp_path, quiet=True, device="cpu")
    summary = json.loads((folder / "metrics.json").read_text())
    assert summary["program"] == "12.2" and summary["status"] == "ok"
    assert summary["command"].startswith("dlab study 12.2 --profile smoke")
    info = summary["metrics"]["study"]
    assert (info["settings"], info["complete"]) == (4, 3)   # 3 settings and a seed repeat
    table = summary["record"]["tables"][0]
    cols = table["columns"]
    rows = [dict(zip(cols, r, strict=True)) for r in table["rows"]]
    assert [(r["varied"], r["activation"], r["latent"]) for r in rows] == [
        ("base", "relu", 32), ("activation", "tanh", 32), ("latent", "relu", 8),
        ("seed +1", "relu", 32)]
    assert rows[2]["parameters"] == 222_384 - (32 - 8) * (64 + 1) - (32 - 8) * 64
    # the choice is made on validation digits; the test MSE is only reported
    chosen = min(rows, key=lambda r: r["val_mse"])
    assert summary["metrics"]["best_val_mse"] == chosen["val_mse"]
    test_col = next(c for c in rows[0] if c.startswith("test_mse"))  # "(not used for ...)"
    assert summary["metrics"]["best_test_mse"] == chosen[test_col]
    assert summary["metrics"]["study"]["best"]["trial"] == chosen["trial"]
    assert (folder / "study-activation.png").exists() and (folder / "study-latent.png").exists()
    # the base setting ran at one more seed; settings beating PCA are counted on intervals
    m = summary["metrics"]
    assert m["study"]["ranking"]["seeds"] == 2
    assert "study_chosen_beats_worst" in m and "study_noise_band" in m
    assert m["trials_beating_pca"] == sum(bool(r["beats_pca"]) for r in rows
                                          if not str(r["varied"]).startswith("seed +"))
    assert m["any_setting_beats_pca"] == (m["trials_beating_pca"] > 0)
    gap = Difference.from_dict(m["best_vs_mean_image"])
    assert gap.estimate == pytest.approx(m["best_test_mse"] - m["best_mean_image_test_mse"])
    assert [t["met"] for t in summary["targets"]] == ["not applicable"] * 2
    assert not (folder / "study-depth.png").exists()  # one depth only: nothing to plot


def test_study_quick_moves_each_factor_once_and_full_keeps_every_value():
    from dlab import config as configs
    from dlab.experiments import exp12_autoencoder as e12
    from dlab.studies import make_plan

    impl = PROGRAMS["12.2"].load()
    quick = make_plan(e12.ae_study(configs.build(impl.config, impl.profiles, "quick")), 0)
    assert [p.varied for p in quick.points] == ["base", "depth", "width", "activation",
                                                 "latent", "lr", "seed +1", "seed +2"]
    full = make_plan(e12.ae_study(configs.build(impl.config, impl.profiles, "full")), 0)
    assert len(full.points) == 1 + 2 + 2 + 3 + 3 + 2 + 2  # base, every other value, 2 seeds


def test_a_setting_below_pca_inside_its_interval_does_not_count_as_beating_it():
    """beats_pca comes from the trial's interval, not from test_mse < pca_test_mse."""
    from types import SimpleNamespace

    from dlab.experiments import exp12_autoencoder as e12

    def row(trial, test, pca, beats):
        return {"trial": trial, "varied": "lr", "lr": 0.003, "test_mse": test,
                "pca_test_mse": pca, "beats_pca": beats, "mean_image_test_mse": 0.067,
                "test_mse_vs_mean_image_low": test - 0.068, "test_mse_vs_mean_image_high":
                test - 0.066}

    inside = row(0, 0.01739, 0.0174, False)   # lower by a hair, interval holds 0
    result = SimpleNamespace(best=inside, complete=[inside])
    m = e12.score_ae_study(result)
    assert m["trials_beating_pca"] == 0 and m["any_setting_beats_pca"] is False
    gap = Difference.from_dict(m["best_vs_mean_image"])
    assert (gap.low, gap.high) == (0.01739 - 0.068, 0.01739 - 0.066)
    beyond = row(1, 0.015, 0.0174, True)
    m = e12.score_ae_study(SimpleNamespace(best=beyond, complete=[inside, beyond]))
    assert m["trials_beating_pca"] == 1 and m["any_setting_beats_pca"] is True
