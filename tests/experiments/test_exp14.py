import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from dlab import config as configs
from dlab.data import binary
from dlab.errors import UsageError
from dlab.experiments import exp14_nade_made as e14
from dlab.metrics import bernoulli_baseline_nll
from dlab.models.made import MADE
from dlab.models.nade import NADE
from dlab.registry import PROGRAMS
from dlab.running import run_program
from dlab.runs import RunContext
from dlab.training import FitResult, mean_nll, nll_step
from dlab.verdicts import judge


def _ctx(tmp_path, profile="smoke"):
    return RunContext(PROGRAMS["14.1"], None, tmp_path, profile=profile, seed=0, device="cpu",
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
    rng = np.random.default_rng(0)
    x = (rng.random((500, 6)) < np.array([0.1, 0.3, 0.5, 0.7, 0.9, 0.2])).astype(np.float32)
    xt = torch.from_numpy(x)
    for model in (NADE(6, 4), MADE(6, (5,), num_masks=2)):
        for p in model.parameters():  # hidden units switched off: only biases matter
            nn.init.zeros_(p)
        e14.init_output_bias(model, xt)
        nll = mean_nll(model, xt)
        assert nll == pytest.approx(bernoulli_baseline_nll(x, x, eps=1e-3), rel=1e-5)


def test_nll_step_is_the_nll_and_cycles_masks():
    torch.manual_seed(0)
    x = (torch.rand(16, 6) < 0.4).float()
    made = MADE(6, (8,), num_masks=3)
    opt = torch.optim.SGD(made.parameters(), lr=0.0)  # lr 0: weights stay, loss checkable
    step = nll_step(made, opt, log_prob=e14.training_log_prob(made))
    seen = []
    for _ in range(4):
        k = (int(made.mask_index) + 1) % 3
        expected = float(-made.log_prob_single(x, k).detach().mean())
        assert float(step((x,))["loss"]) == pytest.approx(expected, rel=1e-6)
        seen.append(int(made.mask_index))
    assert seen == [1, 2, 0, 1]
    nade = NADE(6, 4)
    opt = torch.optim.SGD(nade.parameters(), lr=0.0)
    out = nll_step(nade, opt, log_prob=e14.training_log_prob(nade))((x,))
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
    start = mean_nll(model, va)
    res = e14.train_density(model, tr, va, _ctx(tmp_path), epochs=6, lr=1e-2, batch_size=50,
                            patience=3, name="t")
    vals = res.column("val_nll")
    assert mean_nll(model, va) == pytest.approx(min(vals), rel=1e-6)  # best epoch restored
    # the true chain's NLL on the same validation vectors is the known answer: bias init
    # starts at the independent-bit NLL, training must close most of the gap to it
    true_val = float(-e14.markov_log_prob(mc.x_val, 0.1).mean())
    assert start - true_val > 1.0
    assert min(vals) - true_val < 0.25 * (start - true_val)


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


def test_config_validation():
    impl = PROGRAMS["14.1"].load()
    with pytest.raises(UsageError, match="markov_dims"):
        configs.build(impl.config, impl.profiles, "smoke", {"markov_dims": "24"}, "14.1")
    with pytest.raises(UsageError, match="models"):
        configs.build(impl.config, impl.profiles, "smoke", {"models": "pixelcnn"}, "14.1")
    with pytest.raises(UsageError, match="activation"):
        configs.build(impl.config, impl.profiles, "smoke", {"made_activation": "swish"},
                      "14.1")
    with pytest.raises(UsageError, match="source"):
        configs.build(impl.config, impl.profiles, "smoke", {"source": "mnist"}, "14.1")
    cfg = configs.build(impl.config, impl.profiles, "full", None, "14.1")
    assert cfg.nade_hidden == 500 and cfg.made_width == 500 and cfg.made_masks == 32


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    data = tmp_path_factory.mktemp("data")
    return run_program(PROGRAMS["14.1"], profile="smoke", out=out, quiet=True, device="cpu",
                       data_dir=data)


def test_smoke_run(smoke_run, tmp_path_factory):
    o = smoke_run
    assert o.status == "ok"
    meta = json.loads((o.folder / "metrics.json").read_text())
    m = meta["metrics"]
    d = 784
    # the scored digits are a stratified sample of the class-sorted test split, not a prefix
    assert m["n_test"] == 100 and m["test_class_counts"] == {str(c): 10 for c in range(10)}
    assert any("test digits per class: 0: 10, 1: 10" in line for line in meta["record"]["data"])
    data = binary.binarized_mnist("bundled", tmp_path_factory.mktemp("again"))
    split = binary.splits(data, 240, 0.1, 100)
    x = {k: torch.from_numpy(v).float() for k, v in split.x.items()}
    assert m["bernoulli_test_nll"] == pytest.approx(
        bernoulli_baseline_nll(split.x["train"], split.x["test"]), rel=1e-12)
    models = {"nade": NADE(d, 8), "made": MADE(d, (32,), num_masks=2, seed=0)}
    with np.load(o.folder / e14.PER_DIGIT) as f:
        per_digit = {k: f[k] for k in f.files}
    assert set(per_digit) == {"nade", "made", "made_mask1", "bernoulli"}
    for kind, model in models.items():
        model.load_state_dict(torch.load(o.folder / f"{kind}.pt", weights_only=True))
        # the recorded numbers are the saved model's on the stratified test and val digits
        assert mean_nll(model, x["test"]) == pytest.approx(m[f"{kind}_test_nll"], rel=1e-5)
        assert mean_nll(model, x["val"]) == pytest.approx(m[f"val_{kind}_nll"], rel=1e-5)
        assert m[f"{kind}_test_bits_per_dim"] == pytest.approx(
            m[f"{kind}_test_nll"] / (d * math.log(2)))
        # bias init starts each model at the Bernoulli baseline and one short epoch
        # cannot move it far: within 2% of it (a fake NLL would not be)
        assert m[f"{kind}_test_nll"] == pytest.approx(m["bernoulli_test_nll"], rel=0.02)
        # the saved per-digit NLLs are this model's, digit by digit, and their mean is
        # the recorded test NLL
        with torch.no_grad():
            own = (-model.log_prob(x["test"])).double().numpy()
        assert per_digit[kind] == pytest.approx(own, rel=1e-5, abs=1e-4)
        assert per_digit[kind].mean() == pytest.approx(m[f"{kind}_test_nll"], rel=1e-12)
        d_ = m["nll_diff"][f"{kind}_vs_bernoulli"]
        assert d_["estimate"] == pytest.approx(m[f"{kind}_test_nll"] - m["bernoulli_test_nll"])
        assert d_["low"] < d_["estimate"] < d_["high"] and d_["n"] == 100
    assert per_digit["bernoulli"] == pytest.approx(e14.bernoulli_nll_per_example(
        split.x["train"], split.x["test"]), rel=1e-12)
    assert per_digit["bernoulli"].mean() == pytest.approx(m["bernoulli_test_nll"], rel=1e-12)
    assert set(m["made_ensemble_nll"]) == {"1", "2"}
    assert m["made_ensemble_nll"]["2"] == pytest.approx(m["made_test_nll"], rel=1e-4)
    # normalisation: the trained Markov models and the tiny models sum to one; the
    # manual's autoencoder does not
    assert m["markov_nade_mass"] == pytest.approx(1.0, abs=1e-9)
    assert m["markov_made_mass"] == pytest.approx(1.0, abs=1e-9)
    assert m["max_mass_error"] <= 1e-9
    assert m["markov_entropy"] == pytest.approx(math.log(2) + 5 * (
        -(0.1 * math.log(0.1) + 0.9 * math.log(0.9))))
    assert m["markov_bernoulli_test_nll"] > m["markov_true_model_test_nll"] + 1.0
    assert abs(m["autoencoder_mass"] - 1.0) > 1e-3
    assert m["gaussian_made_mass_on_grid"] == pytest.approx(1.0, abs=0.01)
    assert m["gaussian_true_test_nll"] < m["single_gaussian_test_nll"]  # two modes beat one
    assert (m["gaussian_true_modes_x"], m["gaussian_made_modes_x"]) == (2, 1)
    for name in ("samples.png", "val_nll.png", "gaussian_density.png", "history.csv",
                 "record.md"):
        assert (o.folder / name).exists(), name
    tables = [t["title"] for t in meta["record"]["tables"]]
    assert any("binarised MNIST" in t for t in tables) and any("Markov" in t for t in tables)
    assert any("autoencoder" in s for s in meta["record"]["analysis"])


def test_smoke_targets_are_judged(smoke_run):
    meta = json.loads((smoke_run.folder / "metrics.json").read_text())
    verdicts = {(v["name"], v["rule"]): v["met"] for v in meta["targets"]}
    assert verdicts[("max_mass_error", "max_mass_error <= 1e-05")] is True
    assert verdicts[("autoencoder_mass_error", "autoencoder_mass_error >= 0.001")] is True
    # quality targets are for quick and full; the published-scale ones for full MNIST
    for v in meta["targets"]:
        if v["name"] not in ("max_mass_error", "autoencoder_mass_error"):
            assert v["met"] == "not applicable", v
    assert meta["verdict"] == "met"
    claims = {c["claim"][:40]: c for c in meta["record"]["claims"]}
    assert any(c["holds"] and "normalised distribution" in c["written"]
               for c in claims.values())


def test_a_model_that_is_not_normalised_is_reported_as_such(tmp_path, monkeypatch):
    class Inflated(NADE):  # every probability 1% too high: sums to 1.01
        def log_prob(self, x):
            return super().log_prob(x) + math.log(1.01)

    monkeypatch.setattr(e14, "build_model", lambda kind, cfg, d, seed: Inflated(d, 4))
    ctx = _ctx(tmp_path)
    cfg = e14.DensityConfig(models=("nade",))
    ctx.metrics.update(e14.mass_check(cfg, ctx))
    e14.judge_mass(cfg, ctx, ctx.metrics)
    assert ctx.metrics["max_mass_error"] == pytest.approx(0.01, rel=1e-6)
    assert ctx.claims[-1]["holds"] is False
    assert "NOT normalised" in ctx.analysis[-1]
    assert not any("is a normalised distribution" in s for s in ctx.analysis)
    (verdict,) = judge([t for t in e14.DENSITY.targets if t.metric == "max_mass_error"],
                       ctx.metrics, "smoke")
    assert verdict["met"] is False


class _BernoulliModel(nn.Module):
    """Predicts what the independent-Bernoulli baseline predicts (training frequencies,
    clipped as the baseline clips them), scored `penalty` nats worse per example."""

    def __init__(self, train, penalty=0.0):
        super().__init__()
        p = np.clip(np.asarray(train, np.float64).mean(0), 1e-6, 1 - 1e-6)
        self.register_buffer("p", torch.from_numpy(p))
        self.penalty = penalty

    def log_prob(self, x):
        x = x.double()
        return (x * self.p.log() + (1 - x) * (-self.p).log1p()).sum(1) - self.penalty


def test_a_model_no_better_than_the_baseline_is_reported_as_not_better(tmp_path):
    data = binary.binarized_mnist("bundled", tmp_path)
    split = binary.splits(data, 400, 0.1, 200)
    x = {k: torch.from_numpy(v).float() for k, v in split.x.items()}
    fake = _BernoulliModel(split.x["train"], penalty=0.01)
    ctx = _ctx(tmp_path, profile="quick")
    ctx.metrics.update({"data_source": "bundled", "n_train": 360, "n_test": 200,
                        "test_total": 1000})
    fit = FitResult(history=[{"epoch": 1, "val_nll": 0.0}], best_epoch=1, seconds=1.0)
    ctx.metrics.update(e14.score_mnist({"made": fake}, {"made": fit}, x))
    m = ctx.metrics
    assert m["made_test_nll"] == pytest.approx(m["bernoulli_test_nll"] + 0.01, abs=1e-9)
    e14.judge_mnist(e14.DensityConfig(models=("made",)), ctx, m)
    said = " ".join(ctx.analysis)
    assert "baseline's" in said and ", worse." in said and ", better." not in said
    verdicts = judge(e14.DENSITY.targets, m, "quick")
    made = next(v for v in verdicts if v["rule"] == "made_test_nll < bernoulli_test_nll")
    assert made["met"] is False
    nade = next(v for v in verdicts if v["rule"] == "nade_test_nll < bernoulli_test_nll")
    assert nade["met"] == "not applicable"  # NADE was not trained


class _NoisyBaseline(_BernoulliModel):
    """The baseline plus +1 or -1 nats on alternate digits, +0.01 on average: a model no
    better than the baseline whose per-digit scores scatter around it."""

    def log_prob(self, x):
        sign = torch.where(torch.arange(len(x)) % 2 == 0, 1.0, -1.0).double()
        return super().log_prob(x) - sign - 0.01


def test_a_difference_inside_the_noise_is_not_shown(tmp_path):
    data = binary.binarized_mnist("bundled", tmp_path)
    split = binary.splits(data, 400, 0.1, 200)
    x = {k: torch.from_numpy(v).float() for k, v in split.x.items()}
    fake = _NoisyBaseline(split.x["train"])
    ctx = _ctx(tmp_path, profile="quick")
    ctx.metrics.update({"data_source": "bundled", "n_train": 360, "n_test": 200,
                        "test_total": 1000})
    fit = FitResult(history=[{"epoch": 1, "val_nll": 0.0}], best_epoch=1, seconds=1.0)
    # a fake that reports a lower mean NLL than it has would fail here: the mean and the
    # difference come from the per-digit scores
    ctx.metrics.update(e14.score_mnist({"nade": fake}, {"nade": fit}, x, seed=0))
    m = ctx.metrics
    d_ = m["nll_diff"]["nade_vs_bernoulli"]
    assert d_["estimate"] == pytest.approx(0.01, abs=1e-9) and d_["low"] < 0 < d_["high"]
    e14.judge_mnist(e14.DensityConfig(models=("nade",)), ctx, m)
    assert ": not distinguishable." in " ".join(ctx.analysis)
    verdict = next(v for v in judge(e14.DENSITY.targets, m, "quick")
                   if v["rule"] == "nade_test_nll < bernoulli_test_nll")
    assert verdict["met"] is False and verdict["shown"] is False
    # and the level a quick run reaches is missed by a model at the baseline
    level = next(v for v in judge(e14.DENSITY.targets, m, "quick")
                 if v["rule"] == f"nade_test_nll <= {e14.QUICK_NLL:g}")
    assert level["met"] is False


def test_seed_widened_adds_the_seed_band_in_quadrature():
    from dlab.uncertainty import Difference, widened_by_band

    d_ = Difference(-3.0, -4.0, -1.0, "paired bootstrap over 100 test digits", 100)
    same = widened_by_band(d_, None, 1)
    assert (same.low, same.high) == (-4.0, -1.0) and "not measured" in same.method
    w = widened_by_band(d_, 3.0, 3)
    assert w.estimate == -3.0
    assert w.low == pytest.approx(-3.0 - math.hypot(1.0, 3.0))
    assert w.high == pytest.approx(-3.0 + math.hypot(2.0, 3.0))
    assert w.verdict("lower") == "not distinguishable" and d_.verdict("lower") == "better"


class _Result:
    """A stand-in for a StudyResult: rows with run folders holding per-digit NLLs."""

    def __init__(self, folder, rows, band):
        from types import SimpleNamespace

        self.folder, self.complete, self.params = folder, rows, ["made_width"]
        self.plan = SimpleNamespace(base_params={"made_width": 500})
        self._band = band

    def ranking(self):
        return {"noise_band": self._band, "seeds": 3}

    from dlab.studies import StudyResult

    base_row = StudyResult.base_row  # the real lookups, on these rows
    trial_arrays = StudyResult.trial_arrays


def _trial(folder, trial, width, nll):
    run = folder / f"t{trial}"
    run.mkdir()
    spread = np.random.default_rng(trial).normal(0, 5, len(nll))
    np.savez(run / e14.PER_DIGIT, made=nll, bernoulli=nll + 90.0 + spread)
    return {"trial": trial, "made_width": width, "run_folder": f"t{trial}",
            "val_made_nll": float(nll.mean()), "made_test_nll": float(nll.mean()),
            "bernoulli_test_nll": float((nll + 90.0 + spread).mean())}


def test_chosen_setting_against_the_default_needs_a_gap_beyond_both_noises(tmp_path):
    rng = np.random.default_rng(0)
    base = 110 + rng.normal(0, 5, 300)
    rows = [_trial(tmp_path, 0, 500, base), _trial(tmp_path, 1, 1000, base - 3.0 +
                                                   rng.normal(0, 1, 300))]
    target = next(t for t in e14.DENSITY_STUDY.targets if t.interval)
    for band, met in ((0.5, True), (10.0, False)):
        m = e14.against_default(_Result(tmp_path, rows, band), rows[1], "made", seed=0)
        m["chosen_made_test_nll"] = rows[1]["made_test_nll"]
        assert m["default_trial"] == 0 and m["chosen_is_default"] is False
        assert target.judge(m, "quick")["met"] is met, band
    # the default chosen: a difference of exactly zero, never shown
    m = e14.against_default(_Result(tmp_path, rows, 0.5), rows[0], "made", seed=0)
    m["chosen_made_test_nll"] = rows[0]["made_test_nll"]
    assert m["chosen_is_default"] is True and m["chosen_vs_default"]["estimate"] == 0
    assert target.judge(m, "quick")["met"] is False


def test_study_objective_is_validation_and_choice_ignores_test():
    cfg = configs.build(e14.DensityStudyConfig, e14.DENSITY_STUDY.profiles, "quick", None)
    study = e14.density_study(cfg)
    assert study.metric == "val_made_nll" and "made_test_nll" in study.report
    # validation and test disagree: the choice follows validation, and says test differs
    rows = [{"trial": 0, "made_width": 250, "val_made_nll": 120.0, "made_test_nll": 110.0},
            {"trial": 1, "made_width": 500, "val_made_nll": 115.0, "made_test_nll": 112.0}]
    c = e14.score_choice(rows, ["made_width"], "val_made_nll", "made_test_nll")
    assert c["chosen_trial"] == 1 and c["chosen_made_test_nll"] == 112.0
    assert c["test_choice_trial"] == 0 and c["choice_differs_on_test"] is True


def test_study_smoke(tmp_path):
    o = run_program(PROGRAMS["14.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu",
                    data_dir=tmp_path / "data")
    assert o.status == "ok"
    meta = json.loads((o.folder / "metrics.json").read_text())
    m = meta["metrics"]
    study = m["study"]
    # two settings and the base setting again at one further seed (the seed noise)
    assert study["complete"] == 2 and study["settings"] == 3 and study["failed"] == 0
    table = meta["record"]["tables"][0]
    assert "val_made_nll" in table["title"]
    assert len(table["rows"]) == 3
    cols = table["columns"]
    vals = [r[cols.index("val_made_nll")] for r in table["rows"]
            if not str(r[cols.index("varied")]).startswith("seed")]
    assert m["chosen_val_made_nll"] == pytest.approx(min(vals))
    assert m["best_val_made_nll"] == pytest.approx(min(vals))
    assert m["study_noise_band"] > 0 and isinstance(m["study_ranks_chosen"], bool)
    assert m["default_trial"] == 0
    d_ = m["chosen_vs_default"]
    assert d_["estimate"] == pytest.approx(m["chosen_made_test_nll"] - m["default_test_nll"])
    assert "seed-noise band" in d_["method"]
    assert all(t["met"] == "not applicable" for t in meta["targets"])  # quick and full only


def test_study_quick_is_six_trials_and_full_keeps_every_value():
    from dlab.studies import make_plan

    impl = PROGRAMS["14.2"].load()
    quick = make_plan(e14.density_study(configs.build(impl.config, impl.profiles, "quick")), 0)
    assert [p.varied for p in quick.points] == ["base", "made_layers", "made_width",
                                                 "made_activation", "natural_ordering",
                                                 "made_masks", "seed +1", "seed +2"]
    full = make_plan(e14.density_study(configs.build(impl.config, impl.profiles, "full")), 0)
    assert len(full.points) == 1 + 1 + 2 + 2 + 1 + 2 + 2  # 14.1 full has 32 masks; 2 seeds


def test_programs_are_split_into_steps():
    from dlab.steps import steps

    phase = ["data", "model", "train", "score", "judge", "write"]
    density = steps(e14.run_density)
    assert [s.kind for s in density] == phase * 3  # MNIST, the Markov chain, two Gaussians
    assert [s.assigned for s in density if s.kind == "model"] == [
        ("models",), ("chain_models",), ("made_2d",)]
    assert [s.kind for s in steps(e14.run_density_study)] == ["train", "score", "judge"]


def test_training_draws_nothing_from_the_global_generator(tmp_path):
    """Every model is built before any is trained: the weights are the ones a build, train,
    build, train order gives only because training leaves torch's global generator alone."""
    ctx = _ctx(tmp_path)
    cfg = e14.DensityConfig(nade_hidden=4, made_width=8, made_masks=2, markov_dims=6,
                            batch_size=10, markov_epochs=1)
    x = (torch.rand(40, 6, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    bits = {"train": x, "val": x[:10]}
    models = e14.markov_models(cfg, ctx)
    assert list(models) == ["nade", "made", "autoencoder"]
    state = torch.get_rng_state()
    fits = e14.train_markov(cfg, ctx, models, bits)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(len(f.history) == 1 for f in fits.values())
