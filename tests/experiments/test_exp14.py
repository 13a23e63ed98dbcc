import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from dlab import config as configs
from dlab.errors import UsageError
from dlab.experiments import exp14_nade_made as e14
from dlab.models.made import MADE
from dlab.models.nade import NADE
from dlab.registry import PROGRAMS
from dlab.runs import RunContext, run_program


def _ctx(tmp_path):
    return RunContext(PROGRAMS["14.1"], None, tmp_path, profile="smoke", seed=0, device="cpu",
                      quiet=True)


def test_all_binary_enumerates_in_counting_order():
    x = e14.all_binary(3)
    assert x.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1],
                          [1, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1]]
    assert e14.all_binary(10).shape == (1024, 10) and len(set(map(tuple, e14.all_binary(10)
                                                                 .int().tolist()))) == 1024


def test_total_mass_of_distributions_and_of_an_autoencoder():
    # independent Bernoullis with p = (0.2, 0.7, 0.5): a distribution
    logit = torch.tensor([0.2, 0.7, 0.5]).logit()
    bern = lambda x: -nn.functional.binary_cross_entropy_with_logits(  # noqa: E731
        logit.expand_as(x), x, reduction="none").sum(1)
    assert e14.total_mass(bern, 3) == pytest.approx(1.0, abs=1e-7)
    torch.manual_seed(0)
    nade, made = NADE(8, 5), MADE(8, (7, 6), num_masks=3)
    assert e14.total_mass(nade.log_prob, 8) == pytest.approx(1.0, abs=1e-5)
    assert e14.total_mass(made.log_prob, 8) == pytest.approx(1.0, abs=1e-5)

    # an 'autoencoder' that copies its input, squashed into (0.05, 0.95): every vector
    # scores 0.95^d, so the scores sum to 2^d 0.95^d, far from 1
    class Copy(nn.Module):
        def forward(self, x):
            return 0.05 + 0.9 * x

    d = 4
    assert e14.total_mass(lambda x: e14.autoencoder_log_score(Copy(), x), d) == \
        pytest.approx(2 ** d * 0.95 ** d, rel=1e-6)
    with pytest.raises(ValueError):
        e14.total_mass(bern, 21)


def test_markov_log_prob_by_hand_and_normalised():
    x = np.array([[0, 0, 1, 1], [1, 0, 1, 0]])
    lp = e14.markov_log_prob(x, 0.1, 0.5)
    assert lp[0] == pytest.approx(math.log(0.5) + 2 * math.log(0.9) + math.log(0.1))
    assert lp[1] == pytest.approx(math.log(0.5) + 3 * math.log(0.1))
    every = e14.all_binary(6).int().numpy()
    assert np.exp(e14.markov_log_prob(every, 0.3, 0.8)).sum() == pytest.approx(1.0, abs=1e-12)


def test_output_bias_init_gives_the_bernoulli_baseline(tmp_path):
    from dlab.metrics import bernoulli_baseline_nll

    rng = np.random.default_rng(0)
    x = (rng.random((500, 6)) < np.array([0.1, 0.3, 0.5, 0.7, 0.9, 0.2])).astype(np.float32)
    xt = torch.from_numpy(x)
    for model in (NADE(6, 4), MADE(6, (5,), num_masks=2)):
        for p in model.parameters():  # hidden units switched off: only biases matter
            nn.init.zeros_(p)
        e14.init_output_bias(model, xt)
        nll = e14.mean_nll(model, xt)
        assert nll == pytest.approx(bernoulli_baseline_nll(x, x, eps=1e-3), rel=1e-5)


def test_density_step_is_the_nll_and_cycles_masks():
    torch.manual_seed(0)
    x = (torch.rand(16, 6) < 0.4).float()
    made = MADE(6, (8,), num_masks=3)
    opt = torch.optim.SGD(made.parameters(), lr=0.0)  # lr 0: weights stay, loss checkable
    step = e14.density_step(made, opt)
    seen = []
    for _ in range(4):
        k = (int(made.mask_index) + 1) % 3
        expected = float(-made.log_prob_single(x, k).detach().mean())
        assert float(step((x,))["loss"]) == pytest.approx(expected, rel=1e-6)
        seen.append(int(made.mask_index))
    assert seen == [1, 2, 0, 1]
    nade = NADE(6, 4)
    out = e14.density_step(nade, torch.optim.SGD(nade.parameters(), lr=0.0))((x,))
    assert float(out["loss"]) == pytest.approx(float(-nade.log_prob(x).detach().mean()), rel=1e-6)


def test_ensemble_curve_is_log_of_mean_probability():
    torch.manual_seed(1)
    made = MADE(5, (6,), num_masks=4, seed=3)
    x = e14.all_binary(5)
    curve = e14._made_masks_nll(made, x)
    assert sorted(curve) == [1, 2, 4]
    with torch.no_grad():
        p = torch.stack([made.log_prob_single(x, k).double().exp() for k in range(4)])  # (4, N)
        wrong = float(-torch.stack([made.log_prob_single(x, k) for k in range(4)]).mean())
    for k in (1, 2, 4):
        assert curve[k] == pytest.approx(float(-p[:k].mean(0).log().mean()), rel=1e-6)
    # averaging log-probabilities instead is a different, wrong number (worse: Jensen)
    assert curve[4] < wrong


def test_train_density_lowers_val_nll_and_keeps_the_best_epoch(tmp_path):
    from dlab.data.binary import markov_chain_set

    torch.manual_seed(0)
    mc = markov_chain_set(np.random.default_rng(0), 800, 200, 200, d=8, p_flip=0.1)
    tr, va = (torch.from_numpy(v).float() for v in (mc.x_train, mc.x_val))
    model = MADE(8, (32,), natural_ordering=True)
    e14.init_output_bias(model, tr)
    start = e14.mean_nll(model, va)
    res = e14.train_density(model, tr, va, _ctx(tmp_path), epochs=6, lr=1e-2, batch_size=50,
                            patience=3, name="t")
    vals = res.column("val_nll")
    assert min(vals) < start - 0.3  # learnt the chain's dependencies, not only marginals
    assert e14.mean_nll(model, va) == pytest.approx(min(vals), rel=1e-6)
    assert min(vals) > mc.entropy - 0.3  # no normalised model beats the entropy by much


def test_random_batches_are_short_passes_without_repeats():
    x = torch.arange(100.0)[:, None]  # (100, 1): row i holds i
    rb = e14.RandomBatches(x, batch_size=8, steps=5, seed=3)
    first, second = ([b[0][:, 0].long().tolist() for b in rb] for _ in range(2))
    assert len(rb) == 5 and len(first) == 5 and all(len(b) == 8 for b in first)
    flat = sum(first, [])
    assert len(set(flat)) == 40  # no row twice within a pass
    assert first != second  # a new draw each pass
    again = e14.RandomBatches(x, batch_size=8, steps=5, seed=3)
    assert [b[0][:, 0].long().tolist() for b in again] == first  # fixed by the seed
    short = e14.RandomBatches(x[:10], batch_size=4, steps=5, seed=0)
    assert sorted(sum((b[0][:, 0].long().tolist() for b in short), [])) == list(range(10))


def test_tile_places_images_row_by_row():
    imgs = np.stack([np.full((2, 3), v, np.float32) for v in (0.0, 1.0, 0.25)])
    out = e14.tile(imgs, ncol=2, pad=1)
    assert out.shape == (2 * 3 + 1, 2 * 4 + 1)
    assert (out[1:3, 1:4] == 0).all() and (out[1:3, 5:8] == 1).all()
    assert (out[4:6, 1:4] == 0.25).all() and (out[4:6, 5:8] == 0.5).all()  # empty cell grey


def test_config_validation():
    impl = PROGRAMS["14.1"].load()
    with pytest.raises(UsageError, match="markov_dims"):
        configs.build(impl.config, impl.profiles, "smoke", {"markov_dims": "24"}, "14.1")
    with pytest.raises(UsageError, match="models"):
        configs.build(impl.config, impl.profiles, "smoke", {"models": "pixelcnn"}, "14.1")
    with pytest.raises(UsageError, match="activation"):
        configs.build(impl.config, impl.profiles, "smoke", {"made_activation": "swish"},
                      "14.1")
    cfg = configs.build(impl.config, impl.profiles, "full", None, "14.1")
    assert cfg.nade_hidden == 500 and cfg.made_width == 500 and cfg.made_masks == 32


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    data = tmp_path_factory.mktemp("data")
    return run_program(PROGRAMS["14.1"], profile="smoke", out=out, quiet=True, device="cpu",
                       data_dir=data)


def test_smoke_run(smoke_run):
    o = smoke_run
    assert o.status == "ok"
    meta = json.loads((o.folder / "metrics.json").read_text())
    m = meta["metrics"]
    d = 784
    assert meta["status"] == "ok"
    for kind in ("nade", "made"):
        nll = m[f"{kind}_test_nll"]
        assert 0 < nll < d * math.log(2) + 1  # bias init: never worse than p = 1/2 by much
        assert m[f"{kind}_test_bits_per_dim"] == pytest.approx(nll / (d * math.log(2)))
        assert torch.load(o.folder / f"{kind}.pt", weights_only=True)
    assert 150 < m["bernoulli_test_nll"] < 300
    assert set(m["made_ensemble_nll"]) == {"1", "2"}
    assert m["made_ensemble_nll"]["2"] == pytest.approx(m["made_test_nll"], rel=1e-4)
    # normalisation of the trained models over all 2^d Markov vectors; the autoencoder isn't
    assert m["markov_nade_mass"] == pytest.approx(1.0, abs=1e-4)
    assert m["markov_made_mass"] == pytest.approx(1.0, abs=1e-4)
    assert m["markov_entropy"] == pytest.approx(math.log(2) + 5 * (
        -(0.1 * math.log(0.1) + 0.9 * math.log(0.9))))
    assert abs(m["autoencoder_mass"] - 1.0) > 1e-3
    assert 0.9 < m["gaussian_made_mass_on_grid"] < 1.01
    assert m["gaussian_true_test_nll"] < m["single_gaussian_test_nll"]  # two modes beat one
    for name in ("samples.png", "val_nll.png", "gaussian_density.png", "history.csv",
                 "record.md"):
        assert (o.folder / name).exists(), name
    tables = [t["title"] for t in meta["record"]["tables"]]
    assert any("binarised MNIST" in t for t in tables) and any("Markov" in t for t in tables)
    assert any("autoencoder" in s for s in meta["record"]["analysis"])


def test_study_smoke(tmp_path):
    o = run_program(PROGRAMS["14.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu",
                    data_dir=tmp_path / "data")
    assert o.status == "ok"
    meta = json.loads((o.folder / "metrics.json").read_text())
    study = meta["metrics"]["study"]
    assert study["complete"] == study["settings"] == 2 and study["failed"] == 0
    table = meta["record"]["tables"][0]
    assert "made_test_nll" in table["title"]
    assert len(table["rows"]) == 2
