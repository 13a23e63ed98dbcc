import json
import math

import numpy as np
import pytest
import torch

from dlab.data.mnist import load_mnist
from dlab.experiments import exp13_denoising as e13
from dlab.metrics import psnr
from dlab.models.autoencoder import ConvDenoisingAutoencoder
from dlab.registry import PROGRAMS
from dlab.running import run_program
from dlab.uncertainty import Difference


def test_noise_is_gaussian_with_the_factor_and_clipped():
    g = torch.Generator().manual_seed(0)
    x = torch.full((400_000,), 0.5)
    noisy = e13.add_noise(x, 0.5, g)
    assert noisy.min() >= 0 and noisy.max() <= 1
    # clip(0.5 + 0.5 n, 0, 1) - 0.5 = 0.5 clip(n, -1, 1): mean 0 by symmetry, and
    # E[clip(n,-1,1)^2] = (Phi(1) - Phi(-1)) - 2 phi(1) + P(|n| > 1), phi the normal pdf
    inside = math.erf(1 / math.sqrt(2))
    second = inside - 2 * math.exp(-0.5) / math.sqrt(2 * math.pi) + (1 - inside)
    d = (noisy - 0.5).double()
    assert float(d.mean()) == pytest.approx(0.0, abs=3e-3)
    assert float((d ** 2).mean()) == pytest.approx(0.25 * second, rel=1e-2)
    assert float((noisy == 1).double().mean()) == pytest.approx((1 - inside) / 2, abs=3e-3)
    # same generator state, same noise; factor 0 changes nothing
    assert torch.equal(e13.add_noise(x, 0.5, torch.Generator().manual_seed(0)), noisy)
    assert torch.equal(e13.add_noise(x, 0.0, g), x)


@pytest.mark.parametrize("depth, code", [(1, (8, 14, 14)), (2, (16, 7, 7)), (3, (32, 7, 7))])
def test_conv_autoencoder_has_a_real_bottleneck(depth, code):
    model = ConvDenoisingAutoencoder(28, 8, depth, 16, "leaky_relu").eval()
    x = torch.rand(3, 1, 28, 28)
    assert model.code_shape == code
    assert model.encode(x).shape == (3, 16)  # 16 numbers per 784-pixel image
    y = model(x)
    assert y.shape == x.shape and ((y > 0) & (y < 1)).all()
    odd = ConvDenoisingAutoencoder(20, 4, 2, 5)  # 20 -> 10 -> 5 -> 10 -> 20
    assert odd(torch.rand(2, 1, 20, 20)).shape == (2, 1, 20, 20)
    # the decoder sees the image only through the code: equal codes, equal outputs
    with torch.no_grad():
        z = model.encode(x)
        assert torch.allclose(model.decode(z), y)


def test_manual_features_outnumber_the_pixels():
    n, shape = e13.manual_feature_count()
    assert (n, shape) == (6272, (128, 7, 7)) and n > 784


def test_pca_features_match_scikit_learn_up_to_sign():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(1)
    train = rng.normal(size=(200, 10)) * np.arange(1, 11)
    test = rng.normal(size=(30, 10)) * np.arange(1, 11)
    ours_tr, ours_te = e13.pca_features(train, test, 4)
    pca = PCA(n_components=4).fit(train)
    assert np.allclose(np.abs(ours_tr), np.abs(pca.transform(train)), atol=1e-9)
    assert np.allclose(np.abs(ours_te), np.abs(pca.transform(test)), atol=1e-9)


def test_denoising_program_smoke(tmp_path):
    outcome = run_program(PROGRAMS["13.1"], profile="smoke", out=tmp_path, quiet=True,
                          device="cpu", sets={"source": "bundled"})
    assert outcome.status == "ok"
    m = outcome.metrics
    assert m["manual_features_per_image"] == 6272 and m["bottleneck"] == 32
    # chance is the most frequent test class: 100 of the 1,000 bundled test digits
    assert m["probe_chance"] == 0.1 and m["probe_train_digits"] == 300
    # even one epoch gives a code a linear probe reads far better than chance
    assert m["probe_encoder"] > m["probe_chance"] + 0.3
    assert m["probe_pixels"] > 0.6  # 300 digits are plenty for a linear model on pixels
    assert m["probe_pca"] > m["probe_chance"] + 0.3
    for name in ("denoising.png", "bottleneck.png", "loss.png", "model.pt", "record.md"):
        assert (outcome.folder / name).exists(), name

    # recompute both PSNRs from the bundled test digits, the run's noise draw and the
    # saved model
    clean = torch.from_numpy(load_mnist("bundled").x_test.astype(np.float32) / 255).unsqueeze(1)
    g = torch.Generator().manual_seed(0 * 1_000_003 + 3)  # ctx.torch_generator(3), seed 0
    noisy = e13.add_noise(clean, 0.5, g)
    assert psnr(clean.numpy(), noisy.numpy()) == pytest.approx(m["psnr_noisy"], rel=1e-9)
    model = ConvDenoisingAutoencoder(28, 8, 2, 32, "relu")
    model.load_state_dict(torch.load(outcome.folder / "model.pt", weights_only=True))
    model.eval()
    with torch.no_grad():
        denoised = model(noisy)
    assert psnr(clean.numpy(), denoised.numpy()) == pytest.approx(m["psnr_denoised"], rel=1e-4)
    assert 10 * math.log10(1 / m["test_mse"]) == pytest.approx(m["psnr_denoised"], rel=1e-9)
    summary = json.loads((outcome.folder / "metrics.json").read_text())
    analysis = summary["record"]["analysis"]
    assert any("6,272 numbers per image" in s for s in analysis)
    psnr_sentence = next(s for s in analysis if s.startswith("The denoised output's PSNR"))
    assert "95% CI" in psnr_sentence
    assert psnr_sentence.endswith("closer to the clean digits than its input is.") == (
        Difference.from_dict(m["psnr_denoised_vs_noisy"]).low > 0)
    # the filter baseline: chosen on validation digits, scored on the same test digits
    assert m["filter"] in {f"{k} {w:g}" for k, w in e13.FILTERS}
    assert min(m["filter_val_mse"].values()) == m["filter_val_mse"][m["filter"]]
    kind, width = m["filter"].split()
    smooth = e13.filtered(noisy.numpy().astype(np.float64), kind, float(width))
    assert psnr(clean.numpy(), smooth) == pytest.approx(m["psnr_filter"], rel=1e-9)
    assert m["psnr_filter"] > m["psnr_noisy"] + 2          # a filter does remove noise
    for key, ref in (("psnr_denoised_vs_noisy", "psnr_noisy"),
                     ("psnr_denoised_vs_filter", "psnr_filter")):
        assert m[key]["estimate"] == pytest.approx(m["psnr_denoised"] - m[ref], rel=1e-6)
    assert m["probe_encoder_vs_pca"]["estimate"] == pytest.approx(
        m["probe_encoder"] - m["probe_pca"])
    assert not any("best linear code" in s for s in analysis)
    assert "Eckart and Young 1936" in summary["record"]["background"][0]["source"]
    # the quality targets are for quick and full: one epoch of smoke is not judged
    assert {t["met"] for t in summary["targets"]} == {"not applicable"}
    assert [t["rule"] for t in summary["targets"]] == [
        "psnr_denoised > psnr_noisy", "psnr_denoised > psnr_filter",
        "probe_encoder > probe_pca"]


def test_psnr_difference_is_the_difference_of_the_psnrs():
    rng = np.random.default_rng(0)
    clean = rng.random((50, 1, 6, 6))
    a = (clean + 0.1 * rng.normal(size=clean.shape)).clip(0, 1)
    b = (clean + 0.3 * rng.normal(size=clean.shape)).clip(0, 1)
    diff = e13.psnr_difference(e13.per_image_mse(clean, a), e13.per_image_mse(clean, b), 0)
    assert diff.estimate == pytest.approx(psnr(clean, a) - psnr(clean, b), rel=1e-9)
    assert 0 < diff.low < diff.estimate < diff.high      # 3x the noise: clearly apart
    same = e13.psnr_difference(e13.per_image_mse(clean, a), e13.per_image_mse(clean, a), 0)
    assert same.verdict("higher") == "not distinguishable"


def test_best_filter_is_chosen_on_the_validation_digits():
    g = torch.Generator().manual_seed(0)
    clean = torch.zeros(20, 1, 28, 28)
    clean[:, :, 8:20, 8:20] = 1.0                         # smooth shapes: blurring helps
    d = {"x_val": clean, "noisy_val": e13.add_noise(clean, 0.5, g)}
    kind, width, mse = e13.best_filter(d)
    assert mse[f"{kind} {width:g}"] == min(mse.values()) and len(mse) == len(e13.FILTERS)
    noisy = d["noisy_val"].numpy().astype(np.float64)
    assert mse[f"{kind} {width:g}"] < float(np.mean((noisy - clean.numpy()) ** 2))


def test_denoising_study_smoke(tmp_path):
    outcome = run_program(PROGRAMS["13.2"], profile="smoke", out=tmp_path, quiet=True,
                          device="cpu")
    assert outcome.status == "ok"
    table = json.loads((outcome.folder / "metrics.json").read_text())["record"]["tables"][0]
    rows = [dict(zip(table["columns"], r, strict=True)) for r in table["rows"]]
    assert [(r["varied"], r["bottleneck"], r["activation"]) for r in rows] == [
        ("base", 32, "relu"), ("bottleneck", 8, "relu"), ("activation", 32, "tanh")]
    # every setting's code is read far better than chance (0.1: 100 digits a class)
    assert all(r["probe_encoder"] > 0.3 and r["val_probe_encoder"] > 0.3 for r in rows)
    assert "probe_encoder" in table["columns"] and "psnr_denoised" in table["columns"]
    # the setting is chosen by validation MSE; test values are only reported
    assert "): val_mse, minimized" in table["title"]
    chosen = min(rows, key=lambda r: r["val_mse"])
    assert outcome.metrics["best_val_mse"] == chosen["val_mse"]
    test_col = next(c for c in rows[0] if c.startswith("test_mse"))  # "(not used for ...)"
    assert outcome.metrics["best_test_mse"] == chosen[test_col]
    by_probe = max(rows, key=lambda r: r["val_probe_encoder"])
    assert outcome.metrics["best_probe_encoder"] == by_probe["probe_encoder"]
    # the chosen setting against the filter, read from its own trial's metrics.json
    m = outcome.metrics
    assert m["chosen_psnr_denoised"] == chosen["psnr_denoised"]
    assert m["chosen_psnr_filter"] == chosen["psnr_filter"]
    assert m["chosen_psnr_vs_filter"]["estimate"] == pytest.approx(
        m["chosen_psnr_denoised"] - m["chosen_psnr_filter"], rel=1e-6)
    assert [t["met"] for t in outcome.targets] == ["not applicable"]  # a quick/full target


def test_study_quick_is_five_trials_and_full_keeps_every_value():
    """Five settings at quick, and the base setting at two further seeds (the noise)."""
    from dlab import config as configs
    from dlab.studies import make_plan

    impl = PROGRAMS["13.2"].load()
    quick = make_plan(e13.dae_study(configs.build(impl.config, impl.profiles, "quick")), 0)
    assert [(p.varied, p.params.get(p.varied))
            for p in quick.points] == [("base", None), ("bottleneck", 8), ("bottleneck", 64),
                                       ("depth", 3), ("activation", "sigmoid"),
                                       ("seed +1", None), ("seed +2", None)]
    full = make_plan(e13.dae_study(configs.build(impl.config, impl.profiles, "full")), 0)
    assert len(full.points) == 1 + 3 + 2 + 3 + 2


def test_probe_features_are_float64(monkeypatch):
    """scikit-learn's logistic regression is many times slower on float32 features."""
    seen = []
    monkeypatch.setattr(e13, "probe_predictions", lambda a, y, b, seed=0: seen.append(
        (a.dtype, b.dtype)) or np.zeros(len(b), dtype=int))
    cfg = e13.DenoisingConfig(channels=2, bottleneck=3, baselines=True)
    model = e13.ConvDenoisingAutoencoder(28, 2, 2, 3, "relu")
    x = torch.rand(12, 1, 28, 28)
    d = {"probe_idx": np.arange(6), "x_train": x, "y_train": np.arange(12) % 10,
         "x_val": x[:4], "y_val": np.arange(4), "x_test": x[4:], "y_test": np.arange(8)}
    e13._probes(cfg, model, d, "cpu", 0)
    assert seen and all(t == (np.float64, np.float64) for t in seen)
