import csv
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from dlab import config as configs
from dlab import runs
from dlab.data import binary
from dlab.errors import UsageError
from dlab.experiments import exp15_pixel as e15
from dlab.metrics import bernoulli_baseline_nll
from dlab.models import count_parameters
from dlab.models.pixelcnn import PixelCNN
from dlab.models.pixelrnn import PixelRNN
from dlab.registry import PROGRAMS
from dlab.running import run_program
from dlab.runs import RunContext
from dlab.training import FitResult, mean_nll, nll_step
from dlab.verdicts import judge


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # run_program and torch use every core; on a shared machine two threads that wait
    # for each other are far slower than one, so this module runs on one
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runs, "cpu_count", lambda: 1)
        yield
    torch.set_num_threads(threads)


def _all_images(h, w):
    """Every binary h x w image, (2^(h w), 1, h, w) float64."""
    d = h * w
    codes = torch.arange(2 ** d)[:, None]
    bits = (codes >> torch.arange(d - 1, -1, -1)) & 1  # (2^d, d)
    return bits.double().reshape(-1, 1, h, w)


def test_manual_pixelcnn_has_the_manual_s_million_parameters():
    # 7x7 mask-A 1 -> 64 (3,200), five 7x7 mask-B 64 -> 64 (200,768 each), 1x1 64 -> 1 (65)
    assert count_parameters(e15.ManualPixelCNN()) == 3_200 + 5 * 200_768 + 65 == 1_007_105
    layers = list(e15.ManualPixelCNN().net)
    kinds = [type(m).__name__ for m in layers]
    assert kinds == ["MaskedConv2d", "ReLU", *["MaskedConv2d"] * 5, "Conv2d"]
    assert [m.mask_type for m in layers if hasattr(m, "mask_type")] == ["A"] + ["B"] * 5


def test_manual_pixelcnn_sums_to_one_over_every_binary_image():
    torch.manual_seed(1)
    model = e15.ManualPixelCNN(4, 5, 7).double()  # the manual's depth and kernels, narrow
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # conditionals far from 1/2
    x = _all_images(3, 3)  # all 512 images
    with torch.no_grad():
        logp = model.log_prob(x)
    assert float(logp.max() - logp.min()) > 1.0  # not a uniform density
    assert float(torch.logsumexp(logp, dim=0).exp()) == pytest.approx(1.0, abs=1e-10)


def test_manual_pixelcnn_is_autoregressive():
    # the gradient of pixel i's logit with respect to pixels i .. end (raster order) is
    # exactly zero, by back-propagation; pixels before i do reach it
    torch.manual_seed(2)
    model = e15.ManualPixelCNN(8, 2, 3).double()
    h, w = 4, 5
    inp = torch.rand(1, 1, h, w, dtype=torch.float64, requires_grad=True)
    out = model.logits(inp)
    reached = 0
    for i in range(h * w):
        (g,) = torch.autograd.grad(out.flatten()[i], inp, retain_graph=True)
        g = g.flatten()
        assert torch.all(g[i:] == 0), i
        reached += int(i > 0 and bool(g[:i].abs().sum() > 0))
    assert reached == h * w - 1


def test_manual_pixelcnn_is_not_one_affine_map_but_linear_after_its_relu():
    torch.manual_seed(0)
    model = e15.ManualPixelCNN(6, 2, 5).double()
    x1 = (torch.rand(3, 1, 7, 7) < 0.5).double()
    x2 = (torch.rand(3, 1, 7, 7) < 0.5).double()
    a = 0.3
    mix = a * x1 + (1 - a) * x2  # weights sum to 1: an affine map commutes with it
    with torch.no_grad():
        gap = (model.logits(mix) - a * model.logits(x1) - (1 - a) * model.logits(x2)).abs()
        assert float(gap.max()) > 1e-3  # the ReLU after the mask-A layer: not affine
        # everything after that ReLU (five masked convolutions and the 1x1) is affine
        relu_at = [i for i, m in enumerate(model.net) if isinstance(m, nn.ReLU)]
        assert relu_at == [1]
        tail = model.net[2:]
        h1, h2 = model.net[:2](x1), model.net[:2](x2)
        lhs, rhs = tail(a * h1 + (1 - a) * h2), a * tail(h1) + (1 - a) * tail(h2)
        assert torch.allclose(lhs, rhs, atol=1e-10)


def test_manual_pixelcnn_reads_pixels_as_they_are():
    # the manual feeds images in [0, 1] unchanged; the PixelCNN of dlab.models feeds 2x - 1
    torch.manual_seed(4)
    model = e15.ManualPixelCNN(3, 1, 3).double()
    x = (torch.rand(2, 1, 5, 5) < 0.5).double()
    with torch.no_grad():
        assert torch.equal(model.logits(x), model.net(x))
        assert not torch.allclose(model.logits(x), model.net(2 * x - 1))


def test_mean_nll_by_hand_for_a_constant_model():
    model = e15.ManualPixelCNN(3, 1, 3)
    for p in model.parameters():
        nn.init.zeros_(p)
    b = 0.7
    model.net[-1].bias.data.fill_(b)  # every pixel on with probability sigmoid(0.7)
    x = torch.zeros(5, 1, 2, 4)
    ones = [0, 3, 8, 1, 5]
    for k, n in enumerate(ones):
        x[k].view(-1)[:n] = 1
    p = 1 / (1 + math.exp(-b))
    want = np.mean([-(n * math.log(p) + (8 - n) * math.log(1 - p)) for n in ones])
    assert mean_nll(model, x, batch_size=2) == pytest.approx(want, rel=1e-6)


def test_nll_step_returns_the_nll_and_lowers_it():
    torch.manual_seed(0)
    x = (torch.rand(16, 1, 5, 5) < 0.3).float()
    model = PixelRNN(4, 1, "gru")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    step = nll_step(model, opt)
    before = mean_nll(model, x)
    out = step((x,))
    assert float(out["loss"]) == pytest.approx(before, rel=1e-5)
    for _ in range(20):
        step((x,))
    assert mean_nll(model, x) < before - 1.0


def test_train_pixel_keeps_the_best_epoch(tmp_path):
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 4, 4)
    x[:, :, :, ::2] = 1  # striped images: each pixel is fixed by its left neighbour
    x[::2] = 1 - x[::2]
    ctx = RunContext(PROGRAMS["15.1"], None, tmp_path, profile="smoke", seed=0, device="cpu",
                     quiet=True)
    model = PixelCNN(8, 1, 3, 3)
    start = mean_nll(model, x[:16])
    res = e15.train_pixel(model, (x,), x[:16], ctx, epochs=5, lr=1e-2, batch_size=16,
                          patience=2, name="t")
    vals = res.column("val_nll")
    assert min(vals) < 0.7 * start
    assert mean_nll(model, x[:16]) == pytest.approx(min(vals), rel=1e-6)
    assert (tmp_path / "history.csv").exists()


def test_config_validation():
    impl = PROGRAMS["15.1"].load()
    with pytest.raises(UsageError, match="models"):
        configs.build(impl.config, impl.profiles, "smoke", {"models": "made"}, "15.1")
    with pytest.raises(UsageError, match="rnn_cell"):
        configs.build(impl.config, impl.profiles, "smoke", {"rnn_cell": "rnn"}, "15.1")
    with pytest.raises(UsageError, match="rnn_layer_type"):
        configs.build(impl.config, impl.profiles, "smoke", {"rnn_layer_type": "column"}, "15.1")
    with pytest.raises(UsageError, match="cnn_kernel"):
        configs.build(impl.config, impl.profiles, "smoke", {"cnn_kernel": "4"}, "15.1")
    with pytest.raises(UsageError, match="manual_kernel"):
        configs.build(impl.config, impl.profiles, "smoke", {"manual_kernel": "6"}, "15.1")
    with pytest.raises(UsageError, match="manual_channels"):
        configs.build(impl.config, impl.profiles, "smoke", {"manual_channels": "0"}, "15.1")
    cfg = configs.build(impl.config, impl.profiles, "full", None, "15.1")
    assert (cfg.cnn_channels, cfg.cnn_layers, cfg.rnn_hidden, cfg.rnn_layers) == (64, 7, 64, 2)
    # full builds the manual's PixelCNN at the manual's sizes; quick keeps its depth and
    # kernels at a narrower width
    assert count_parameters(e15.build_model("manual_pixelcnn", cfg)) == 1_007_105
    quick = configs.build(impl.config, impl.profiles, "quick", None, "15.1")
    assert (quick.manual_layers, quick.manual_kernel) == (5, 7)
    assert quick.manual_model and quick.manual_channels < cfg.manual_channels
    # full: the manual's lr, batch and 5 epochs over 20,000 digits, scored on all test digits
    assert (cfg.lr, cfg.batch_size, cfg.epochs) == (1e-3, 64, 5)
    assert cfg.n_train == 20000 and cfg.n_test == 0
    study = PROGRAMS["15.2"].load()
    with pytest.raises(UsageError, match="rnn_cells"):
        configs.build(study.config, study.profiles, "smoke", {"rnn_cells": "lstm,rnn"}, "15.2")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    data = tmp_path_factory.mktemp("data")
    return run_program(PROGRAMS["15.1"], profile="smoke", out=out, quiet=True, device="cpu",
                       data_dir=data), data


def test_smoke_run(smoke_run):
    o, data_dir = smoke_run
    assert o.status == "ok"
    meta = json.loads((o.folder / "metrics.json").read_text())
    m = meta["metrics"]
    d = 784
    for name in ("samples.png", "val_nll.png", "history.csv", "record.md", "pixelcnn.pt",
                 "pixelrnn.pt"):
        assert (o.folder / name).exists(), name
    # the scored digits are a stratified sample of the class-sorted test split: 2 per class
    assert m["n_test"] == 20 and m["test_class_counts"] == {str(c): 2 for c in range(10)}
    split = binary.splits(binary.binarized_mnist("bundled", data_dir), 40, 0.1, 20)
    assert sorted(split.y["test"].tolist()) == sorted(list(range(10)) * 2)
    x = {k: torch.from_numpy(v).float().reshape(-1, 1, 28, 28) for k, v in split.x.items()}
    assert m["bernoulli_test_nll"] == pytest.approx(
        bernoulli_baseline_nll(split.x["train"], split.x["test"]), rel=1e-12)
    assert m["test_mean_pixel"] == pytest.approx(float(split.x["test"].mean()), rel=1e-6)
    # the recorded NLLs are the saved models' NLLs on those test and validation digits
    with np.load(o.folder / e15.PER_DIGIT) as f:
        per_image = {k: f[k] for k in f.files}
    assert set(per_image) == {"pixelcnn", "pixelrnn", "manual_pixelcnn", "bernoulli"}
    for kind, model in (("pixelcnn", PixelCNN(8, 1)), ("pixelrnn", PixelRNN(4, 1))):
        model.load_state_dict(torch.load(o.folder / f"{kind}.pt", weights_only=True))
        assert mean_nll(model, x["test"]) == pytest.approx(m[f"{kind}_test_nll"], rel=1e-5)
        assert mean_nll(model, x["val"]) == pytest.approx(m[f"val_{kind}_nll"], rel=1e-5)
        assert m[f"{kind}_test_bits_per_dim"] == pytest.approx(
            m[f"{kind}_test_nll"] / (d * math.log(2)))
        assert m[f"{kind}_epochs_run"] == 1
        # the saved per-image NLLs are this model's, image by image; their mean is the
        # recorded test NLL and the interval is of the recorded difference
        with torch.no_grad():
            own = (-model.log_prob(x["test"])).double().numpy()
        assert per_image[kind] == pytest.approx(own, rel=1e-5, abs=1e-4)
        assert per_image[kind].mean() == pytest.approx(m[f"{kind}_test_nll"], rel=1e-12)
        d_ = m["nll_diff"][f"{kind}_vs_bernoulli"]
        assert d_["estimate"] == pytest.approx(m[f"{kind}_test_nll"] - m["bernoulli_test_nll"])
        assert d_["low"] <= d_["estimate"] <= d_["high"] and d_["n"] == 20
    assert per_image["bernoulli"].mean() == pytest.approx(m["bernoulli_test_nll"], rel=1e-12)
    assert m["nll_diff"]["pixelcnn_vs_pixelrnn"]["estimate"] == pytest.approx(
        m["pixelcnn_test_nll"] - m["pixelrnn_test_nll"])
    # epoch times are stated as measured, with no faster/slower verdict
    said = " ".join(meta["record"]["analysis"])
    assert "Seconds per epoch as measured" in said
    assert not any("time per epoch" in c["claim"] for c in meta["record"]["claims"])
    assert m["pixelcnn_params"] == count_parameters(PixelCNN(8, 1))
    assert m["manual_pixelcnn_params"] == count_parameters(e15.ManualPixelCNN(8, 5, 7))
    with open(o.folder / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {row["model"] for row in rows} == {"pixelcnn", "pixelrnn", "manual-pixelcnn"}
    # the validation NLL recorded for each model is that of its best (kept) epoch
    for kind, tag in (("pixelcnn", "pixelcnn"), ("manual_pixelcnn", "manual-pixelcnn")):
        best = min(float(r["val_nll"]) for r in rows if r["model"] == tag)
        assert m[f"val_{kind}_nll"] == pytest.approx(best, rel=1e-6)
    table = meta["record"]["tables"][0]
    assert len(table["rows"]) == 4  # baseline, two models, the manual's PixelCNN
    said = meta["record"]["analysis"]
    assert any(s.startswith("The manual's PixelCNN: 7x7 mask-A convolution to 8 channels, one "
                            "ReLU, then 5 7x7 mask-B") for s in said)
    assert any(s.startswith("The PixelCNN's test NLL") and "against the manual's PixelCNN's"
               in s for s in said)
    assert any("final sigmoid folded into the Bernoulli likelihood" in n
               for n in meta["record"]["notes"])


def test_smoke_targets_are_judged(smoke_run):
    o, _ = smoke_run
    meta = json.loads((o.folder / "metrics.json").read_text())
    rules = {v["rule"] for v in meta["targets"]}
    assert {"pixelcnn_test_nll < bernoulli_test_nll", "pixelrnn_test_nll < bernoulli_test_nll",
            "pixelcnn_test_nll < manual_pixelcnn_test_nll"} <= rules
    # one epoch on 36 digits: quality targets are for quick and full, not smoke
    assert all(v["met"] == "not applicable" for v in meta["targets"])
    assert meta["verdict"] == "n/a"


class _BernoulliModel(nn.Module):
    """Predicts what the independent-Bernoulli baseline predicts, `penalty` nats worse."""

    def __init__(self, train, penalty=0.0):
        super().__init__()
        p = np.clip(np.asarray(train, np.float64).mean(0), 1e-6, 1 - 1e-6)
        self.register_buffer("p", torch.from_numpy(p))
        self.penalty = penalty

    def log_prob(self, x):
        x = x.reshape(len(x), -1).double()
        return (x * self.p.log() + (1 - x) * (-self.p).log1p()).sum(1) - self.penalty


def test_a_model_no_better_than_the_baseline_is_reported_as_not_better(tmp_path):
    split = binary.splits(binary.binarized_mnist("bundled", tmp_path), 200, 0.1, 100)
    x = {k: torch.from_numpy(v).float().reshape(-1, 1, 28, 28) for k, v in split.x.items()}
    fake = _BernoulliModel(split.x["train"], penalty=0.01)
    fit = FitResult(history=[{"epoch": 1, "val_nll": 0.0, "seconds": 1.0}], best_epoch=1)
    ctx = RunContext(PROGRAMS["15.1"], None, tmp_path, profile="quick", seed=0, device="cpu",
                     quiet=True)
    ctx.metrics.update({"data_source": "bundled", "n_train": 180, "n_test": 100,
                        "test_total": 1000})
    ctx.metrics.update(e15.score_pixel({"pixelcnn": fake}, {"pixelcnn": fit}, x))
    m = ctx.metrics
    assert m["pixelcnn_test_nll"] == pytest.approx(m["bernoulli_test_nll"] + 0.01, abs=1e-9)
    e15.judge_pixel(e15.PixelConfig(models=("pixelcnn",)), ctx, m)
    said = " ".join(ctx.analysis)
    assert "baseline's" in said and ", worse." in said and ", better." not in said
    verdicts = judge(e15.PIXEL.targets, m, "quick")
    cnn = next(v for v in verdicts if v["rule"] == "pixelcnn_test_nll < bernoulli_test_nll")
    assert cnn["met"] is False
    level = next(v for v in verdicts if v["rule"] == f"pixelcnn_test_nll <= {e15.QUICK_NLL:g}")
    assert level["met"] is False  # a model at the baseline is far from the quick level
    assert all(v["met"] == "not applicable" for v in verdicts if v is not cnn
               and v["name"] != "pixelcnn_test_nll")


class _NoisyBaseline(_BernoulliModel):
    """The baseline plus +1 or -1 nats on alternate images, 0.01 worse on average."""

    def log_prob(self, x):
        sign = torch.where(torch.arange(len(x)) % 2 == 0, 1.0, -1.0).double()
        return super().log_prob(x) - sign - 0.01


def test_a_difference_inside_the_noise_is_not_shown(tmp_path):
    split = binary.splits(binary.binarized_mnist("bundled", tmp_path), 200, 0.1, 100)
    x = {k: torch.from_numpy(v).float().reshape(-1, 1, 28, 28) for k, v in split.x.items()}
    fit = FitResult(history=[{"epoch": 1, "val_nll": 0.0, "seconds": 1.0}], best_epoch=1)
    models = {"pixelcnn": _BernoulliModel(split.x["train"], penalty=-0.01),
              "manual_pixelcnn": _NoisyBaseline(split.x["train"])}
    m = e15.score_pixel(models, {k: fit for k in models}, x, seed=0)
    # the "better" PixelCNN leads the noisy manual one by 0.02 nats on average, well inside
    # the per-image scatter of +-1: not distinguishable, so the target is not shown
    d_ = m["nll_diff"]["pixelcnn_vs_manual_pixelcnn"]
    assert d_["estimate"] == pytest.approx(-0.02, abs=1e-9) and d_["low"] < 0 < d_["high"]
    (v,) = [v for v in judge(e15.PIXEL.targets, m, "quick")
            if v["rule"] == "pixelcnn_test_nll < manual_pixelcnn_test_nll"]
    assert v["met"] is False and v["shown"] is False


def test_part_metrics_keep_each_studys_ranking():
    m = {"study": {"name": "a"}, "study_noise_band": 1.5, "study_ranks_chosen": False,
         "other": 1}
    moved = e15.part_metrics("pixelrnn", m)
    assert moved == {"pixelrnn_study": {"name": "a"}, "pixelrnn_study_noise_band": 1.5,
                     "pixelrnn_study_ranks_chosen": False}
    assert m == {"other": 1}


def test_study_objectives_are_validation_and_choice_ignores_test():
    cfg = configs.build(e15.PixelStudyConfig, e15.PIXEL_STUDY.profiles, "quick", None)
    for part, study in e15.pixel_studies(cfg).items():
        assert study.metric == f"val_{part}_nll" and f"{part}_test_nll" in study.report
        assert study.base["manual_model"] is False  # a trial trains only its own model
    rows = [{"trial": 0, "cnn_layers": 1, "val_pixelcnn_nll": 120.0, "pixelcnn_test_nll": 110.0,
             "bernoulli_test_nll": 200.0},
            {"trial": 1, "cnn_layers": 3, "val_pixelcnn_nll": 115.0, "pixelcnn_test_nll": 112.0,
             "bernoulli_test_nll": 200.0}]
    c = e15.score_choice("pixelcnn", rows, ["cnn_layers"])
    assert c["pixelcnn_chosen_trial"] == 1 and c["pixelcnn_chosen_test_nll"] == 112.0
    assert c["pixelcnn_test_choice_trial"] == 0 and c["pixelcnn_choice_differs_on_test"]


def test_study_smoke(tmp_path):
    o = run_program(PROGRAMS["15.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu",
                    data_dir=tmp_path / "data")
    assert o.status == "ok"
    meta = json.loads((o.folder / "metrics.json").read_text())
    m = meta["metrics"]
    study = m["pixelcnn_study"]
    # two settings and the base setting at one further seed (the seed noise)
    assert study["complete"] == 2 and study["settings"] == 3 and study["failed"] == 0
    assert m["pixelcnn_study_noise_band"] > 0 and "study_noise_band" not in m
    assert m["pixelcnn_default_trial"] == 0
    d_ = m["pixelcnn_chosen_vs_default"]
    assert d_["estimate"] == pytest.approx(m["pixelcnn_chosen_test_nll"]
                                           - m["pixelcnn_default_test_nll"])
    rows = meta["record"]["tables"][0]["rows"]
    cols = meta["record"]["tables"][0]["columns"]
    rows = [r for r in rows if not str(r[cols.index("varied")]).startswith("seed")]
    vals = [r[cols.index("val_pixelcnn_nll")] for r in rows]
    assert m["best_val_pixelcnn_nll"] == pytest.approx(min(vals))
    assert m["pixelcnn_chosen_val_nll"] == pytest.approx(min(vals))
    assert sorted(r[cols.index("cnn_layers")] for r in rows) == [0, 1]
    assert (o.folder / "study-pixelcnn-samples.png").exists()
    assert all(v["met"] == "not applicable" for v in meta["targets"])


@pytest.mark.parametrize("build", [
    lambda: PixelCNN(6, 2, 3), lambda: PixelCNN(6, 1, 5, first_kernel_size=3),
    lambda: PixelRNN(4, 2, "lstm"), lambda: PixelRNN(4, 1, "gru"),
    lambda: PixelRNN(3, 1, "lstm", "diagonal")],
    ids=["cnn-k3", "cnn-k5", "row-lstm-2", "row-gru", "diagonal"])
def test_fast_sampling_draws_the_same_images_as_the_plain_raster_loop(build):
    """A PixelCNN is sampled through a window of its receptive field, a Row LSTM row by
    row with its states kept: with the same draws they give the plain loop's images (the
    images are wider and taller than the window, so its edges are exercised)."""
    from dlab.models.pixelcnn import sample_raster

    torch.manual_seed(3)
    model = build().double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # conditionals far from 1/2, so a wrong logit changes a pixel
    fast = model.sample(5, 12, 13, generator=torch.Generator().manual_seed(1))
    plain = sample_raster(model, 5, 12, 13, generator=torch.Generator().manual_seed(1))
    assert torch.equal(fast, plain)
    assert 0 < float(fast.mean()) < 1  # neither all 0 nor all 1
    if isinstance(model, PixelCNN):
        assert model.receptive_field == model.config.first_kernel_size // 2 + \
            model.config.n_layers * (model.config.kernel_size // 2)


def test_study_quick_profile_is_five_trials_and_full_keeps_the_whole_grid():
    quick = configs.build(e15.PixelStudyConfig, e15.PIXEL_STUDY.profiles, "quick")
    full = configs.build(e15.PixelStudyConfig, e15.PIXEL_STUDY.profiles, "full")
    assert (quick.cnn_layers, quick.cnn_kernels, quick.rnn_cells, quick.rnn_layers) == \
        ((1, 3), (3, 5), ("lstm", "gru"), (1,))
    assert (full.cnn_layers, full.rnn_layers) == ((1, 3, 5), (1, 2))


def test_programs_are_split_into_steps():
    from dlab.steps import steps

    pixel = steps(e15.run_pixel)
    assert [s.kind for s in pixel] == ["data", "model", "train", "score", "judge", "write"]
    assert [s.assigned for s in pixel if s.kind == "model"] == [("models",)]
    assert [s.kind for s in steps(e15.run_pixel_study)] == ["train", "score", "judge", "write"]


def test_training_draws_nothing_from_the_global_generator(tmp_path):
    """15.1 builds every model before training any: the weights match the old build, train,
    build, train order only because training leaves torch's global generator alone."""
    ctx = RunContext(PROGRAMS["15.1"], None, tmp_path, profile="smoke", seed=0, device="cpu",
                     quiet=True)
    cfg = e15.PixelConfig(cnn_channels=4, cnn_layers=1, rnn_hidden=2, epochs=1, batch_size=8)
    assert e15.model_kinds(cfg) == ["pixelcnn", "pixelrnn", "manual_pixelcnn"]
    models = {k: e15.build_model(k, cfg) for k in e15.model_kinds(cfg)}
    x = (torch.rand(16, 1, 6, 6, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    state = torch.get_rng_state()
    fits = e15.train_models(cfg, ctx, models, {"train": x, "val": x[:4]})
    assert torch.equal(torch.get_rng_state(), state)
    assert list(fits) == list(models)
