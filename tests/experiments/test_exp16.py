import copy
import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from dlab.errors import UsageError
from dlab.experiments import exp16_gan as e16
from dlab.models import gan as gm
from dlab.registry import PROGRAMS
from dlab.running import run_program


def _linears(module):
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def test_manual_mlp_gan_layers_shapes_and_parameter_counts():
    torch.manual_seed(0)
    G, D = gm.MLPGenerator(), gm.MLPDiscriminator()
    assert _linears(G) == [(100, 128), (128, 256), (256, 512), (512, 784)]
    assert _linears(D) == [(784, 512), (512, 256), (256, 1)]
    # the manual: ReLU in the generator, LeakyReLU(0.2) in the discriminator
    assert sum(isinstance(m, nn.ReLU) for m in G.modules()) == 3
    assert not any(isinstance(m, nn.LeakyReLU) for m in G.modules())
    assert [m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)] == [0.2, 0.2]
    assert sum(p.numel() for p in G.parameters()) == 579_728  # sum of (in + 1) * out
    assert sum(p.numel() for p in D.parameters()) == 533_505
    img = G(torch.randn(5, 100) * 10)  # large z: tanh must still bound the pixels
    assert img.shape == (5, 1, 28, 28) and img.abs().max() <= 1.0
    assert D(img).shape == (5,) and D(img.reshape(5, 784)).shape == (5,)
    with pytest.raises(ValueError):
        gm.MLPGenerator(hidden=())


def test_stabilised_mlp_gan_is_the_manual_pair_with_named_fixes():
    torch.manual_seed(0)
    gan = gm.build_gan("mlp_stable")  # default fixes: batch norm in G, spectral norm in D
    G, D = gan["generator"], gan["discriminator"]
    assert _linears(G) == [(100, 128), (128, 256), (256, 512), (512, 784)]
    assert _linears(D) == [(784, 512), (512, 256), (256, 1)]
    assert [m.num_features for m in G.modules() if isinstance(m, nn.BatchNorm1d)] == [
        128, 256, 512]
    sn = [m for m in D.modules() if isinstance(m, nn.Linear)]
    assert all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in sn)
    D.train()
    for _ in range(30):  # power iteration converges on sigma(W) over training passes
        D(torch.randn(4, 784))
    for m in sn:  # every normalised weight has largest singular value ~1
        assert torch.linalg.matrix_norm(m.weight.detach(), ord=2) == pytest.approx(1, abs=0.05)
    img = G(torch.randn(5, 100))
    assert img.shape == (5, 1, 28, 28) and D(img).shape == (5,)
    # the manual's pair has neither fix; a fix may be left out; unknown ones are refused
    plain = gm.build_gan("mlp")
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain.modules())
    assert not any(torch.nn.utils.parametrize.is_parametrized(m)
                   for m in plain["discriminator"].modules())
    only_sn = gm.build_gan("mlp_stable", stabilisers=("spectral_norm",))
    assert not any(isinstance(m, nn.BatchNorm1d) for m in only_sn.modules())
    with pytest.raises(ValueError):
        gm.build_gan("mlp_stable", stabilisers=("dropout",))


def test_one_sided_label_smoothing_changes_only_the_real_target():
    torch.manual_seed(0)
    gan = gm.build_gan("mlp", latent_dim=6, g_hidden=(8,), d_hidden=(8,))
    ref = copy.deepcopy(gan)
    opts = [torch.optim.SGD(gan[k].parameters(), lr=0.0) for k in ("generator", "discriminator")]
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    out = e16.gan_step(gan, *opts, 6, torch.Generator().manual_seed(3), real_label=0.9)((x,))
    G, D = ref["generator"], ref["discriminator"]
    fake = G(torch.randn(4, 6, generator=torch.Generator().manual_seed(3)))
    r, f = D(x), D(fake)
    # BCE with target 0.9 on real: -(0.9 log s(r) + 0.1 log(1 - s(r))); fakes keep 0
    d_loss = (0.9 * F.softplus(-r) + 0.1 * F.softplus(r)).mean() + F.softplus(f).mean()
    assert float(out["d_loss"]) == pytest.approx(d_loss.item(), rel=1e-5)
    assert float(out["g_loss"]) == pytest.approx(F.softplus(-f).mean().item(), rel=1e-5)
    cfg = e16.GANConfig()
    assert e16.real_label(cfg, "mlp_stable") == cfg.real_label == 0.9
    assert e16.real_label(cfg, "mlp") == e16.real_label(cfg, "dcgan") == 1.0
    no_ls = e16.GANConfig(stabilisers=("batch_norm",))
    assert e16.real_label(no_ls, "mlp_stable") == 1.0


@pytest.mark.parametrize("width, batch", [(4, 1), (8, 3), (3, 2)])
def test_dcgan_shapes_and_layers(width, batch):
    pair = gm.build_gan("dcgan", latent_dim=10, width=width)
    G, D = pair["generator"], pair["discriminator"]
    G.train()
    img = G(torch.randn(batch + 1, 10))  # batch norm in training mode needs 2+ samples
    assert img.shape == (batch + 1, 1, 28, 28) and img.abs().max() <= 1.0
    G.eval()
    assert G(torch.randn(batch, 10)).shape == (batch, 1, 28, 28)
    D.eval()
    assert D(img).shape == (batch + 1,)
    convt = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.stride) for m in convt] == [
        (2 * width, width, (2, 2)), (width, width // 2, (2, 2))]
    (last,) = [m for m in G.modules() if isinstance(m, nn.Conv2d)]  # 3x3 to one channel
    assert (last.in_channels, last.out_channels, last.kernel_size) == (width // 2, 1, (3, 3))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == 1
    assert isinstance(D.net[0], nn.Conv2d)  # no batch norm on the input layer
    with pytest.raises(ValueError):
        gm.build_gan("vae")


def test_dcgan_initial_weights_follow_radford():
    G = gm.DCGANGenerator(100, 32, generator=torch.Generator().manual_seed(0))
    w = torch.cat([G.project.weight.flatten(), G.net[2].weight.flatten()])
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    assert torch.all(G.net[-2].bias == 0)
    again = gm.DCGANGenerator(100, 32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.project.weight, G.project.weight)


def test_gan_step_is_one_d_update_then_one_g_update():
    torch.manual_seed(0)
    gan = gm.build_gan("mlp", latent_dim=6, g_hidden=(8,), d_hidden=(8,))
    ref, before = copy.deepcopy(gan), copy.deepcopy(gan)
    opts = [torch.optim.SGD(gan[k].parameters(), lr=0.1)
            for k in ("generator", "discriminator")]
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    out = e16.gan_step(gan, *opts, 6, torch.Generator().manual_seed(7))((x,))

    # by hand on the copy: same z, D step on detached fakes, then G step through the new D
    G, D = ref["generator"], ref["discriminator"]
    og = torch.optim.SGD(G.parameters(), lr=0.1)
    od = torch.optim.SGD(D.parameters(), lr=0.1)
    z = torch.randn(5, 6, generator=torch.Generator().manual_seed(7))
    fake = G(z)
    real_logit, fake_logit = D(x), D(fake.detach())
    d_loss = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()  # the manual's sum
    od.zero_grad()
    d_loss.backward()
    od.step()
    g_loss = F.softplus(-D(fake)).mean()  # -log sigmoid(D(G(z)))
    og.zero_grad()
    g_loss.backward()
    og.step()

    d_loss, g_loss = d_loss.item(), g_loss.item()
    assert float(out["d_loss"]) == pytest.approx(d_loss, rel=1e-5)
    assert float(out["g_loss"]) == pytest.approx(g_loss, rel=1e-5)
    assert float(out["loss"]) == pytest.approx(d_loss + g_loss, rel=1e-5)
    assert float(out["d_real"]) == pytest.approx(torch.sigmoid(real_logit).mean().item(), rel=1e-5)
    assert float(out["d_fake"]) == pytest.approx(torch.sigmoid(fake_logit).mean().item(), rel=1e-5)
    for k in ("generator", "discriminator"):
        for p, q in zip(gan[k].parameters(), ref[k].parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    # and both networks did move
    for k in ("generator", "discriminator"):
        assert not torch.equal(gan[k].net[0].weight, before[k].net[0].weight)


def test_programs_are_split_into_steps():
    from dlab.steps import steps

    gan_steps = steps(e16.run_gan)
    assert [s.kind for s in gan_steps] == [  # the judge first, then the GANs
        "data", "model", "score", "judge", "model", "train", "score", "judge", "write"]
    assert [s.assigned for s in gan_steps if s.kind == "model"] == [("scorer",), ("gans",)]
    assert [s.kind for s in steps(e16.run_gan_study)] == ["train", "score", "judge"]


def test_gan_pairs_are_seeded_by_kind_not_by_build_order(tmp_path):
    from dlab.runs import RunContext

    ctx = RunContext(PROGRAMS["16.1"], None, tmp_path, profile="smoke", seed=0, device="cpu",
                     quiet=True)
    cfg = e16.GANConfig(latent_dim=6, g_hidden=(8,), d_hidden=(8,), dcgan_width=4)
    state = torch.get_rng_state()
    first = {k: e16.gan_pair(k, cfg, ctx) for k in ("mlp", "mlp_stable", "dcgan")}
    again = {k: e16.gan_pair(k, cfg, ctx) for k in ("dcgan", "mlp")}
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG did not move
    for kind, pair in again.items():
        for (name, p), q in zip(pair.state_dict().items(),
                                first[kind].state_dict().values(), strict=True):
            assert torch.equal(p, q), (kind, name)
    assert not torch.equal(first["mlp"]["generator"].net[0].weight,
                           first["mlp_stable"]["generator"].net[0].weight)
    opt_g, opt_d = e16.gan_optimizers(cfg, first["mlp"])
    assert opt_g.param_groups[0]["betas"] == opt_d.param_groups[0]["betas"] == (0.5, 0.999)
    assert opt_d.param_groups[0]["params"][0] is first["mlp"]["discriminator"].net[0].weight


def test_sample_grid_places_and_scales_images():
    imgs = np.stack([np.full((1, 2, 2), -1.0), np.full((1, 2, 2), 1.0), np.zeros((1, 2, 2))])
    grid = e16.sample_grid(imgs, ncol=2, pad=1)
    assert grid.shape == (7, 7) and grid.dtype == np.uint8
    assert (grid[1:3, 1:3] == 0).all() and (grid[1:3, 4:6] == 255).all()
    assert (grid[4:6, 1:3] == 128).all()  # 0 -> 127.5, rounded
    assert (grid[4:6, 4:6] == 128).all() and (grid[0] == 128).all() and (grid[:, 3] == 128).all()


def test_bad_settings_are_refused():
    from dlab import config

    impl = PROGRAMS["16.1"].load()
    for sets in ({"models": "mlp,gan"}, {"models": "mlp,mlp"}, {"source": "cifar"},
                 {"n_quality": "10"}, {"beta1": "1.5"}, {"classifier_channels": "8"},
                 {"n_val": "10"}, {"stabilisers": "dropout"}, {"real_label": "0.4"}):
        with pytest.raises(UsageError):
            config.build(impl.config, impl.profiles, "smoke", sets, "16.1")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One data folder for the module: the scoring classifier is trained once (and the
    user cache, the fallback of a read-only data folder, is an empty one of its own)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user-cache")))
        yield tmp_path_factory.mktemp("data")


def _run(tmp_path, out, data_dir, sets=None, program="16.1"):
    return run_program(PROGRAMS[program], profile="smoke", out=tmp_path / out, quiet=True,
                       device="cpu", data_dir=data_dir, sets=sets)


def _verdicts(info):
    return {(t["rule"], str(t.get("threshold"))): t["met"] for t in info["targets"]}


def _history(folder, kind):
    rows = list(csv.DictReader((folder / "history.csv").read_text().splitlines()))
    return [r for r in rows if r["model"] == kind]


def test_gan_smoke_run_judges_with_a_checked_judge(tmp_path, data_dir):
    cached_before = list((data_dir / "classifiers").glob("*.pt"))
    first = _run(tmp_path, "a", data_dir)
    assert first.status == "ok"
    info = json.loads((first.folder / "metrics.json").read_text())
    m = info["metrics"]
    assert m["classifier_cached"] is bool(cached_before)

    # The smoke judge reaches its stated accuracy, so its verdicts are issued ...
    assert m["classifier_test_acc"] >= e16.TARGET_ACCURACY["bundled"] == m["classifier_target_acc"]
    assert m["judge_ready"] is True and m["judge_calibrated"] is True
    # ... and the three sets whose answer is known get it
    cal = m["calibration"]
    assert [cal[k]["verdict"] for k in ("real", "noise", "collapsed")] == [
        "near real", "not converged", "collapsed"]
    # real vs real is at the floor, far below noise vs real
    assert m["frechet_real_halves_relative"] <= e16.REAL_AT_FLOOR
    assert m["frechet_real_halves"] < 0.05 * m["frechet_ceiling"]
    assert m["frechet_floor"] < 0.05 * m["frechet_ceiling"]
    assert m["val_frechet_floor"] < 0.05 * m["val_frechet_ceiling"]
    assert m["n_real_half"] == 500 and m["n_val"] == 1000
    assert 0.8 < m["real_recognisable"] <= 1

    v = _verdicts(info)
    assert v[("calibration.real.verdict = near real", "near real")] is True
    assert v[("calibration.noise.verdict = not converged", "not converged")] is True
    assert v[("calibration.collapsed.verdict = collapsed", "collapsed")] is True
    assert v[("frechet_real_halves_relative <= 0.02", "0.02")] is True
    assert v[("classifier_test_acc >= 0.95", "0.95")] == "not applicable"  # quick, full only
    # no GAN is judged against a target at smoke: one epoch on 256 digits
    assert v[("dcgan.verdict = near real", "near real")] == "not applicable"
    assert v[("dcgan.recognisable >= 0.7", "0.7")] == "not applicable"
    assert v[("dcgan.frechet_relative <= 0.25", "0.25")] == "not applicable"  # quick only
    assert v[("mlp_stable.frechet < mlp.frechet", "None")] == "not applicable"
    assert info["verdict"] == "met"  # the judge's own checks, all measured at smoke

    for kind in ("mlp", "mlp_stable", "dcgan"):
        k, hist = m[kind], _history(first.folder, kind)
        assert k["frechet_relative"] == pytest.approx(
            (k["frechet"] - m["frechet_floor"]) / (m["frechet_ceiling"] - m["frechet_floor"]))
        assert k["val_frechet_relative"] == pytest.approx(
            (k["val_frechet"] - m["val_frechet_floor"])
            / (m["val_frechet_ceiling"] - m["val_frechet_floor"]))
        # the best epoch is the lowest validation Frechet; its test value is reported
        best = min(hist, key=lambda r: float(r["val_frechet"]))
        assert k["best_epoch"] == int(best["epoch"])
        assert k["best_frechet"] == pytest.approx(float(best["frechet"]))
        assert k["d_real"] == pytest.approx(float(hist[-1]["d_real"]))
        # one epoch on 256 digits: samples far from digits, hardly ever recognised, and
        # so judged not converged (never collapsed, whatever their class spread)
        assert k["frechet"] > 10 * m["frechet_floor"]
        assert k["recognisable"] < 0.5 * m["real_recognisable"]
        assert k["verdict"] == "not converged" and k["collapsed"] is False
        assert k["stability"] == "not converged" and hist[-1]["verdict"] == "not converged"
        with Image.open(first.folder / "samples" / f"{kind}-epoch001.png") as grid:
            assert grid.size == (4 * 30 + 2, 4 * 30 + 2)  # 4x4 grid of 28 px, 2 px gaps
        with Image.open(first.folder / f"{kind}-samples.gif") as gif:
            assert gif.format == "GIF"
        ckpt = torch.load(first.folder / f"checkpoint-{kind}.pt", weights_only=True)
        assert len(ckpt["optimizers"]) == 2 and ckpt["epoch"] == 1  # G's and D's Adam
        assert any(key.startswith("discriminator.") for key in ckpt["model"])
    assert m["collapsed"] is False
    assert "frechet" not in m  # three GANs: scores only per model
    # both pairs have not converged: no better / worse between them, only the numbers
    for key in ("dcgan_vs_mlp", "mlp_stable_vs_mlp"):
        d = m["frechet_differences"][key]
        a, b = key.split("_vs_")
        assert d["estimate"] == pytest.approx(m[a]["frechet"] - m[b]["frechet"])
        assert d["low"] <= d["estimate"] <= d["high"]
    record = (first.folder / "record.md").read_text()
    assert "are judged collapsed, as they must be" in record
    assert "images of uniform noise (a fresh draw) are judged not converged, as they" in record
    assert "are both not converged" in record and "neither is ranked" in record
    assert "better" not in record and "worse" not in record
    assert "leaves most classes empty" not in record and "not as a failure" not in record
    assert "Background" in record and "Goodfellow et al. 2014, Proposition 1" in record
    assert "cannot be judged" not in record
    assert "spectral normalisation of every discriminator layer (Miyato et al. 2018)" in record
    assert "Stabilised MLP GAN: judged not converged by the criterion" in record
    g = gm.MLPGenerator(100, (128, 256, 512))
    g.load_state_dict(torch.load(first.folder / "mlp-generator.pt", weights_only=True))
    for name in ("digits.png", "training.png", "samples-strip.png", "final-samples.png"):
        assert (first.folder / name).stat().st_size > 1000
    rows = list(csv.DictReader((first.folder / "history.csv").read_text().splitlines()))
    assert {r["model"] for r in rows} == {"classifier", "mlp", "mlp_stable", "dcgan"}
    s = gm.build_gan("mlp_stable")["generator"]  # the stabilised generator loads back too
    s.load_state_dict(torch.load(first.folder / "mlp_stable-generator.pt", weights_only=True))
    assert len(list((data_dir / "classifiers").glob("*.pt"))) == 1

    # A second run, of the MLP GAN alone, reuses the cached classifier and measures
    # exactly the same: neither the cache nor the other GAN moves any random state.
    second = _run(tmp_path, "b", data_dir, {"models": "mlp"})
    m2 = json.loads((second.folder / "metrics.json").read_text())["metrics"]
    assert m2["classifier_cached"] is True and "dcgan" not in m2
    for key in ("frechet_floor", "frechet_ceiling", "classifier_test_acc",
                "frechet_real_halves"):
        assert m2[key] == m[key]
    for key in ("frechet", "val_frechet", "class_entropy", "d_real", "d_fake",
                "mean_confidence"):
        assert m2["mlp"][key] == m["mlp"][key], key
    assert m2["frechet"] == m2["mlp"]["frechet"] and m2["stability"] == m2["mlp"]["stability"]
    assert m2["verdict"] == m2["mlp"]["verdict"] and m2["frechet_differences"] == {}
    assert m2["val_frechet"] == m2["mlp"]["val_frechet"]


def test_an_inaccurate_judge_gives_no_collapse_verdict(tmp_path, data_dir):
    """One epoch on 200 digits: the classifier is under its target, so the record says the
    quality cannot be judged and no collapse or calibration verdict is issued."""
    out = _run(tmp_path, "weak", data_dir, {"models": "mlp", "classifier_epochs": "1",
                                            "classifier_n_train": "200"})
    info = json.loads((out.folder / "metrics.json").read_text())
    m = info["metrics"]
    assert m["classifier_test_acc"] < m["classifier_target_acc"] and m["judge_ready"] is False
    assert m["collapsed"] is None and m["mlp"]["collapsed"] is None
    assert m["mlp"]["stability"] == m["mlp"]["verdict"] == "not judged"
    v = _verdicts(info)
    for name in ("real", "noise", "collapsed"):
        rule = [r for r in v if r[0].startswith(f"calibration.{name}.")]
        assert [v[r] for r in rule] == ["not applicable"]
    assert v[("frechet_real_halves_relative <= 0.02", "0.02")] == "not applicable"
    record = (out.folder / "record.md").read_text()
    assert "sample quality cannot be judged at this profile" in record
    assert "judged collapsed by the criterion" not in record
    assert "| not judged |" in record


def test_resume_refuses_a_checkpoint_that_would_run_code(tmp_path):
    from dlab.errors import DlabError
    from dlab.runs import RunContext

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    ctx = RunContext(PROGRAMS["16.1"], None, tmp_path, profile="smoke", seed=0, device="cpu",
                     quiet=True, resume=True)
    torch.save({"epoch": 3, "x": Payload()}, ctx.checkpoint_path("mlp"))
    with pytest.raises(DlabError, match="not a checkpoint that loads safely"):
        e16._resume_epoch(ctx, "mlp")
    assert not (tmp_path / "pwned").exists()
    torch.save({"epoch": 3, "torch_rng": torch.get_rng_state()}, ctx.checkpoint_path("mlp"))
    assert e16._resume_epoch(ctx, "mlp") == 4


def test_images_that_are_not_28x28_are_refused_in_one_line(tmp_path, cli):
    from dlab.data.idx import write_idx

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (60, 27, 27)).astype(np.uint8))
    write_idx(raw / "train-labels-idx1-ubyte", (np.arange(60) % 10).astype(np.uint8))
    write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (20, 27, 27)).astype(np.uint8))
    write_idx(raw / "t10k-labels-idx1-ubyte", (np.arange(20) % 10).astype(np.uint8))
    code, _, err = cli("run", "16.1", "--profile", "smoke", "--set", "source=full",
                       "--data-dir", tmp_path / "data", "--out", tmp_path / "out")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "27x27" in lines[0] and "28x28" in lines[0], err
    assert "Traceback" not in err


def test_parse_widths():
    assert e16.parse_widths("128-256-512") == (128, 256, 512)
    assert e16.parse_widths("64") == (64,)
    for bad in ("128,256", "0-5", "a"):
        with pytest.raises(ValueError):
            e16.parse_widths(bad)


def test_gan_study_chooses_on_validation_and_reports_test(tmp_path, data_dir):
    plan_study = e16.gan_study(e16.GANStudyConfig(lrs=(1e-3,), batch_sizes=(128,)))
    assert plan_study.base["models"] == ("mlp_stable",)  # the first model is the base
    assert plan_study.metric == "val_frechet" and "frechet" in plan_study.report
    out = _run(tmp_path, "s", data_dir, program="16.2")
    assert out.status == "ok"
    info = json.loads((out.folder / "metrics.json").read_text())
    m = info["metrics"]
    assert m["study"]["settings"] == 2 and m["study"]["complete"] == 2  # both MLP GANs
    marks = m["stability_counts"]
    assert sum(marks.values()) == 2
    assert m["stable_settings"] == marks.get("stable", 0)
    assert m["collapsed_settings"] == marks.get("collapsed", 0)
    assert m["not_converged_settings"] == marks.get("not converged", 0) == 2  # one epoch
    assert m["unstable_settings"] == m["collapsed_settings"] + m["diverged_settings"] == 0
    v = _verdicts(info)
    assert v[("stable_settings >= 1", "1")] == "not applicable"  # quick and full only
    assert v[("unstable_settings >= 1", "1")] == "not applicable"
    (table,) = [t for t in info["record"]["tables"] if t["title"].startswith("Study over 16.1")]
    cols = table["columns"]
    assert {"models", "lr", "val_frechet", "frechet", "stability", "recognisable",
            "duplicates"} <= set(cols)
    rows = {r[cols.index("models")]: r for r in table["rows"]}
    assert set(rows) == {"mlp_stable", "mlp"}
    assert all(r[cols.index("status")] == "ok" for r in rows.values())
    # the chosen setting is the lowest validation Frechet; its test Frechet is reported
    chosen = min(rows.values(), key=lambda r: r[cols.index("val_frechet")])
    assert m["best_val_frechet"] == chosen[cols.index("val_frechet")]
    assert m["best_frechet"] == chosen[cols.index("frechet")]
    assert m["study"]["best"]["trial"] == chosen[cols.index("trial")]
    # each trial scored with the checked smoke judge: after one epoch neither is
    # recognised often enough to be judged near real or collapsed
    for r in rows.values():
        assert r[cols.index("stability")] == "not converged"
    record = (out.folder / "record.md").read_text()
    assert "The study does not separate settings: 0 stable, 0 collapsed or diverged, 2 not" in record
