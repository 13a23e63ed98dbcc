"""Experiment 16: generative adversarial networks on MNIST, scored honestly (16.1), and
a study of their settings and stability (16.2).

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014. The discriminator D
and generator G play

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]                     (eq. 1)

trained by alternating one D step and one G step per batch. D's step minimises the
binary cross-entropy of "real" on data and "fake" on G's samples; G's step uses the
paper's non-saturating loss -log D(G(z)) (section 3), which keeps G's gradient alive
while D is still winning. Both networks use Adam with lr 2e-4 and betas (0.5, 0.999)
(Radford et al. 2016), batch 128, as in the course manual.

Samples from the same fixed noise are drawn after every epoch; quality is measured
once an epoch (never per batch) with `dlab.quality`: a Frechet distance in the
features of an MNIST classifier, between a floor (real digits) and a ceiling (noise),
the spread of the generated classes, and the classifier's confidence.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlab.io import atomic_path
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.studies import Study, StudySettings, execute, record

KINDS = ("mlp", "dcgan")
TITLES = {"mlp": "MLP GAN", "dcgan": "DCGAN"}
DATA_SOURCES = ("auto", "bundled", "full")
D_WINS = 0.05  # D "wins outright" when its mean output on fakes ends below this


# ------------------------------------------------------------------ the step


def gan_step(gan: nn.ModuleDict, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
             latent_dim: int, noise: torch.Generator):
    """A step function for `dlab.training.fit`: one D update, then one G update.

    gan: nn.ModuleDict with "generator" (z (B, latent_dim) -> (B, 1, 28, 28)) and
    "discriminator" ((B, 1, 28, 28) -> logits (B,)). noise: the generator of z
    (on the device the models are on). The batch is a 1-tuple of real images
    (B, 1, 28, 28) in [-1, 1]. Returns per-batch numbers: d_loss, g_loss,
    d_real = mean D(x), d_fake = mean D(G(z)) (before this step's D update), and
    loss = d_loss + g_loss (watched for NaN by the loop).
    """
    G, D = gan["generator"], gan["discriminator"]

    def step(batch: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        (x,) = batch
        G.train()
        D.train()
        z = torch.randn(len(x), latent_dim, generator=noise, device=noise.device).to(x.device)
        fake = G(z)  # (B, 1, 28, 28)
        ones, zeros = torch.ones(len(x), device=x.device), torch.zeros(len(x), device=x.device)

        # D: minimise -[log D(x) + log(1 - D(G(z)))] / 2, i.e. BCE against labels 1 and 0.
        # The fakes are detached: this step must not move G.
        real_logit, fake_logit = D(x), D(fake.detach())
        d_loss = 0.5 * (F.binary_cross_entropy_with_logits(real_logit, ones)
                        + F.binary_cross_entropy_with_logits(fake_logit, zeros))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        # G: the non-saturating loss -log D(G(z)) against the D just updated.
        g_loss = F.binary_cross_entropy_with_logits(D(fake), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        d_loss, g_loss = d_loss.detach(), g_loss.detach()
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss,
                "d_real": torch.sigmoid(real_logit.detach()).mean(),
                "d_fake": torch.sigmoid(fake_logit.detach()).mean()}

    return step


# ------------------------------------------------------------------ pictures


def sample_grid(images: torch.Tensor | np.ndarray, ncol: int, pad: int = 2,
                background: int = 64) -> np.ndarray:
    """Tile images (N, 1, H, W) in [-1, 1] into one uint8 picture, row by row.

    Returns (rows * (H + pad) + pad, ncol * (W + pad) + pad) uint8, rows = ceil(N / ncol);
    -1 maps to 0 and 1 to 255; gaps are `background`.
    """
    x = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images)
    n, _, h, w = x.shape
    rows = math.ceil(n / ncol)
    pix = np.clip(np.round((x[:, 0] + 1.0) * 127.5), 0, 255).astype(np.uint8)  # (N, H, W)
    out = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad), background, np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        out[top:top + h, left:left + w] = pix[i]
    return out


def _save_png(path: Path, picture: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def _save_gif(path: Path, frames: list[Path], ms_per_frame: int = 300) -> bool:
    """An animated GIF of the per-epoch grids (last frame held longer); False if none."""
    from PIL import Image

    if not frames:
        return False
    images = []
    for f in frames:
        with Image.open(f) as im:
            images.append(im.convert("L"))
    durations = [ms_per_frame] * (len(images) - 1) + [ms_per_frame * 5]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=durations, loop=0)
    return True


# ------------------------------------------------------------------ 16.1


@dataclass
class GANConfig:
    models: tuple[str, ...] = ("mlp", "dcgan")  # GANs to train: mlp (the manual's), dcgan
    data: str = "auto"  # MNIST: auto (full when in the data folder, else bundled), bundled, full
    n_train: int = 0  # training digits the GANs see (0 = all of the training split)
    epochs: int = 10  # epochs per GAN
    batch_size: int = 128  # the manual's
    lr: float = 2e-4  # Adam learning rate of both networks (the manual's)
    beta1: float = 0.5  # Adam beta1 (the manual's); beta2 = 0.999
    latent_dim: int = 100  # length of the noise vector z (the manual's)
    g_hidden: tuple[int, ...] = (128, 256, 512)  # MLP generator hidden widths (the manual's)
    d_hidden: tuple[int, ...] = (512, 256)  # MLP discriminator hidden widths (the manual's)
    dcgan_width: int = 16  # DCGAN channels at 14x14 (twice that at 7x7)
    n_quality: int = 1000  # generated digits scored once an epoch
    grid: int = 8  # the fixed-noise sample grid is grid x grid
    classifier_channels: tuple[int, ...] = (16, 32)  # scoring classifier's conv channels
    classifier_features: int = 64  # its feature layer (the Frechet distance's space)
    classifier_epochs: int = 10  # its training epochs (trained once, then cached)
    classifier_seed: int = 0  # its seed (fixed, so every run scores with the same network)
    classifier_n_train: int = 0  # digits it trains on (0 = the whole training split)
    collapse_rare_classes: int = 5  # mode collapse: at least this many classes under 2%

    def validate(self) -> None:
        if not self.models or len(set(self.models)) != len(self.models) or not set(
                self.models) <= set(KINDS):
            raise ValueError(f"models must be distinct names from {', '.join(KINDS)}, "
                             f"e.g. --set models=mlp,dcgan; got {','.join(self.models)}")
        if self.data not in DATA_SOURCES:
            raise ValueError(f"data must be one of {', '.join(DATA_SOURCES)}, got {self.data!r}")
        if self.n_train < 0 or (0 < self.n_train < self.batch_size):
            raise ValueError(f"n_train must be 0 (all) or at least batch_size, got {self.n_train}")
        if not 0.0 <= self.beta1 < 1.0:
            raise ValueError(f"beta1 must be in [0, 1), got {self.beta1}")
        if self.latent_dim < 1 or min(self.g_hidden, default=0) < 1 or min(
                self.d_hidden, default=0) < 1:
            raise ValueError("latent_dim and every g_hidden, d_hidden width must be >= 1")
        if self.n_quality < 50:
            raise ValueError(f"n_quality must be at least 50 (a covariance is fit), "
                             f"got {self.n_quality}")
        if not 1 <= self.grid <= 16:
            raise ValueError(f"grid must be 1 to 16, got {self.grid}")
        if len(self.classifier_channels) != 2 or min(self.classifier_channels) < 1:
            raise ValueError("classifier_channels must be two positive counts, e.g. 32,64")
        if self.classifier_n_train < 0:
            raise ValueError("classifier_n_train must be 0 (all) or more")
        if self.classifier_features < 2:
            raise ValueError("classifier_features must be at least 2")
        if not 1 <= self.collapse_rare_classes <= 10:
            raise ValueError("collapse_rare_classes must be 1 to 10")


def _stability(last: dict[str, Any]) -> str:
    """A one-word stability mark from the last epoch's row."""
    if last.get("mode_collapse"):
        return "mode collapse"
    if last["d_fake"] < D_WINS:
        return "D wins"
    return "stable"


def train_gan(kind: str, cfg: GANConfig, ctx: RunContext, x_train: torch.Tensor,
              classifier: Any, reference: Any, z_fixed: torch.Tensor,
              z_quality: torch.Tensor) -> dict[str, Any]:
    """Train one GAN through `fit`; sample and score it after every epoch.

    x_train: (N, 1, 28, 28) in [-1, 1] on ctx.device. z_fixed (grid^2, latent_dim) and
    z_quality (n_quality, latent_dim): the same noise every epoch. Returns {"result":
    FitResult (per-epoch losses, D outputs and scores), "gan": the trained pair,
    "frames": the per-epoch grid PNGs, "pred_counts": (10,) classes of the final samples}.
    """
    from dlab.models.gan import build_gan
    from dlab.quality import classify, quality_score
    from dlab.training import fit

    k = KINDS.index(kind) + 1  # seeds depend on the kind, not on the order trained
    forked = [torch.cuda.current_device()] if ctx.device == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(ctx.seed * 1_000_003 + 100 + k)
        gan = build_gan(kind, cfg.latent_dim, cfg.g_hidden, cfg.d_hidden,
                        cfg.dcgan_width).to(ctx.device)
    G = gan["generator"]
    betas = (cfg.beta1, 0.999)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(gan["discriminator"].parameters(), lr=cfg.lr, betas=betas)

    # z for epoch e comes from a generator seeded with (run seed, kind, e), so a resumed
    # run draws exactly the noise an uninterrupted one would.
    noise = ctx.torch_generator(0, device=ctx.device)

    def seed_noise(epoch: int) -> None:
        noise.manual_seed(ctx.seed * 1_000_003 + 10_000 * k + epoch)

    start = 1
    ckpt = ctx.checkpoint_path(kind)
    if ctx.resume and ckpt.exists():
        start = int(torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"]) + 1
    seed_noise(start)
    samples_dir = ctx.path("samples")

    @torch.inference_mode()
    def generate(z: torch.Tensor) -> torch.Tensor:
        G.eval()  # batch norm with its running statistics: samples do not depend on batch
        out = torch.cat([G(z[i:i + 1000].to(ctx.device)) for i in range(0, len(z), 1000)])
        G.train()
        return out

    def on_epoch_end(epoch: int, row: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        seed_noise(epoch + 1)
        _save_png(samples_dir / f"{kind}-epoch{epoch:03d}.png",
                  sample_grid(generate(z_fixed), cfg.grid))
        feats, probs = classify(classifier, generate(z_quality), device=ctx.device)
        score = quality_score(feats, probs, reference, cfg.collapse_rare_classes)
        score["score_seconds"] = time.perf_counter() - t0
        return score

    result = fit(gan, (x_train,), ctx=ctx, epochs=cfg.epochs, optimizer=[opt_g, opt_d],
                 step=gan_step(gan, opt_g, opt_d, cfg.latent_dim, noise),
                 batch_size=cfg.batch_size, name=kind, on_epoch_end=on_epoch_end)
    frames = [samples_dir / f"{kind}-epoch{e:03d}.png" for e in range(1, cfg.epochs + 1)]
    frames = [f for f in frames if f.exists()]
    _save_gif(ctx.path(f"{kind}-samples.gif"), frames)
    arch = ({"g_hidden": list(cfg.g_hidden), "d_hidden": list(cfg.d_hidden)} if kind == "mlp"
            else {"width": cfg.dcgan_width})
    ctx.save_model(G, name=f"{kind}-generator.pt", kind=kind, latent_dim=cfg.latent_dim,
                   output="images (B, 1, 28, 28) in [-1, 1]; pixel = (x + 1) * 127.5",
                   noise="z ~ N(0, I)", **arch)
    final_probs = classify(classifier, generate(z_quality), device=ctx.device)[1]
    return {"result": result, "gan": gan, "frames": frames,
            "pred_counts": np.bincount(final_probs.argmax(1), minlength=10)[:10]}


def _figures(ctx: RunContext, cfg: GANConfig, runs: dict[str, dict[str, Any]],
             reference: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(runs)
    fig, axes = plt.subplots(len(kinds), 3, figsize=(14, 3.6 * len(kinds)), squeeze=False,
                             layout="constrained")
    for row, kind in zip(axes, kinds, strict=True):
        res = runs[kind]["result"]
        ep = res.column("epoch")
        row[0].plot(ep, res.column("d_loss"), "o-", label="D loss")
        row[0].plot(ep, res.column("g_loss"), "s-", label="G loss")
        row[0].axhline(math.log(2), color="grey", ls=":", label="ln 2 (equilibrium)")
        row[0].set_title(f"{TITLES[kind]}: losses (mean per epoch)")
        row[1].plot(ep, res.column("d_real"), "o-", label="D(x), real")
        row[1].plot(ep, res.column("d_fake"), "s-", label="D(G(z)), fake")
        row[1].axhline(0.5, color="grey", ls=":", label="0.5 (equilibrium)")
        row[1].set_ylim(0, 1)
        row[1].set_title(f"{TITLES[kind]}: discriminator outputs")
        row[2].plot(ep, res.column("frechet"), "o-", color="tab:purple", label="generated")
        row[2].axhline(reference.floor, color="tab:green", ls="--", label="floor: real digits")
        row[2].axhline(reference.ceiling, color="tab:red", ls="--", label="ceiling: noise")
        row[2].set_yscale("log")
        row[2].set_title(f"{TITLES[kind]}: Frechet distance (classifier features)")
        for ax in row:
            ax.set_xlabel("epoch")
            ax.legend(fontsize=8)
    ctx.figure(fig, "training.png", "Per epoch: generator and discriminator losses, the mean "
               "discriminator output on real and on generated digits, and the Frechet distance "
               f"of {reference.n_samples} samples from fixed noise, between the floor (real "
               "training digits) and the ceiling (uniform noise).")

    # A strip of grids at a few epochs, from the per-epoch PNGs.
    n_cols = min(6, cfg.epochs)
    picks = sorted({int(round(e)) for e in np.linspace(1, cfg.epochs, n_cols)})
    fig, axes = plt.subplots(len(kinds), len(picks), figsize=(2.4 * len(picks), 2.6 * len(kinds)),
                             squeeze=False, layout="constrained")
    for row, kind in zip(axes, kinds, strict=True):
        for ax, e in zip(row, picks, strict=True):
            path = ctx.path("samples") / f"{kind}-epoch{e:03d}.png"
            if path.exists():
                ax.imshow(_read_png(path), cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{TITLES[kind]}, epoch {e}", fontsize=9)
            ax.axis("off")
    ctx.figure(fig, "samples-strip.png", "Samples from the same fixed noise vectors after "
               "selected epochs (every epoch's grid is in samples/, animated in "
               "<model>-samples.gif).")

    fig, axes = plt.subplots(2, len(kinds), figsize=(5.2 * len(kinds), 8.5), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1.2]}, layout="constrained")
    for col, kind in enumerate(kinds):
        last = runs[kind]["frames"][-1] if runs[kind]["frames"] else None
        if last is not None:
            axes[0, col].imshow(_read_png(last), cmap="gray", vmin=0, vmax=255)
        axes[0, col].axis("off")
        axes[0, col].set_title(f"{TITLES[kind]} after {cfg.epochs} epochs")
        counts = runs[kind]["pred_counts"]
        share = counts / max(counts.sum(), 1)
        axes[1, col].bar(range(10), share, color="tab:blue")
        axes[1, col].axhline(0.1, color="grey", ls=":", label="uniform (10%)")
        axes[1, col].axhline(0.02, color="tab:red", ls="--", label="rare (< 2%)")
        axes[1, col].set_xticks(range(10))
        axes[1, col].set_xlabel("class predicted by the scoring classifier")
        axes[1, col].set_ylabel("share of samples")
        axes[1, col].legend(fontsize=8)
    ctx.figure(fig, "final-samples.png", "Final samples from fixed noise, and the classes the "
               f"scoring classifier assigns to {reference.n_samples} generated digits: a "
               "collapsed generator leaves most classes empty.")


def run_gan(cfg: GANConfig, ctx: RunContext) -> None:
    from dlab.data.mnist import load_mnist
    from dlab.quality import (
        ClassifierSpec,
        collapse_criterion,
        load_or_train_classifier,
        quality_reference,
        to_unit_range,
    )

    data = load_mnist(cfg.data, ctx.data_dir)
    source = "full" if "full" in data.provenance.name else "bundled"
    ctx.data(data.describe())
    x_all = to_unit_range(data.x_train)  # (N, 1, 28, 28) in [-1, 1]
    x_test = to_unit_range(data.x_test)
    y_train, y_test = torch.as_tensor(data.y_train), torch.as_tensor(data.y_test)
    if cfg.n_train and cfg.n_train < len(x_all):
        idx = np.sort(ctx.rng.choice(len(x_all), cfg.n_train, replace=False))
        x_gan = x_all[torch.as_tensor(idx)]
    else:
        x_gan = x_all
    ctx.data(f"The GANs train on {len(x_gan):,} training digits scaled to [-1, 1] "
             f"(x / 127.5 - 1), the range of the generators' tanh; no labels are used.")
    ctx.data(f"Quality is measured against the {len(x_test):,} test digits.")

    spec = ClassifierSpec(tuple(cfg.classifier_channels), cfg.classifier_features,
                          cfg.classifier_epochs, seed=cfg.classifier_seed)
    x_clf, y_clf = x_all, y_train
    if cfg.classifier_n_train and cfg.classifier_n_train < len(x_all):
        pick = np.random.default_rng(cfg.classifier_seed).choice(len(x_all), cfg.classifier_n_train,
                                                                 replace=False)
        x_clf, y_clf = x_all[torch.as_tensor(pick)], y_train[torch.as_tensor(pick)]
    clf = load_or_train_classifier(x_clf, y_clf, x_test, y_test, source=source, ctx=ctx,
                                   spec=spec)
    target = 0.99 if source == "full" else 0.95
    n_quality = min(cfg.n_quality, len(x_all))  # the floor cannot use more real digits
    reference = quality_reference(clf.model, x_all, x_test, n_quality,
                                  ctx.torch_generator(7), ctx.device)
    ctx.metrics.update({
        "data": source,
        "classifier_test_acc": clf.test_accuracy,
        "classifier_target_acc": target,
        "classifier_cached": clf.cached,
        "frechet_floor": reference.floor,
        "frechet_ceiling": reference.ceiling,
        "real_confidence": reference.real_confidence,
        "n_quality": reference.n_samples,
        "mode_collapse_criterion": collapse_criterion(cfg.collapse_rare_classes),
    })

    z_fixed = torch.randn(cfg.grid ** 2, cfg.latent_dim, generator=ctx.torch_generator(3))
    z_quality = torch.randn(n_quality, cfg.latent_dim, generator=ctx.torch_generator(4))
    x_gan = x_gan.to(ctx.device)
    runs: dict[str, dict[str, Any]] = {}
    collapse: dict[str, bool] = {}
    for kind in cfg.models:
        run = train_gan(kind, cfg, ctx, x_gan, clf.model, reference, z_fixed, z_quality)
        runs[kind] = run
        hist = run["result"].history
        last = hist[-1]
        best = min(hist, key=lambda r: r["frechet"])
        collapse[kind] = bool(last["mode_collapse"])
        ctx.metrics[kind] = {
            "frechet": last["frechet"],
            "frechet_relative": last["frechet_relative"],
            "class_entropy": last["class_entropy"],
            "class_entropy_fraction": last["class_entropy_fraction"],
            "rare_classes": last["rare_classes"],
            "mean_confidence": last["mean_confidence"],
            "mode_collapse": collapse[kind],
            "stability": _stability(last),
            "d_real": last["d_real"],
            "d_fake": last["d_fake"],
            "best_frechet": best["frechet"],
            "best_epoch": best["epoch"],
            "seconds_per_epoch": float(np.mean([r["seconds"] for r in hist])),
            "score_seconds_per_epoch": float(np.mean([r["score_seconds"] for r in hist])),
            "generator_parameters": sum(p.numel() for p in run["gan"]["generator"].parameters()),
            "discriminator_parameters": sum(
                p.numel() for p in run["gan"]["discriminator"].parameters()),
        }
    ctx.metrics["mode_collapse"] = any(collapse.values())  # True when any GAN here collapsed
    if len(runs) == 1:  # a run of one GAN (a study's trial) lists its scores at the top too
        (only,) = runs
        for key in ("frechet", "frechet_relative", "class_entropy_fraction", "rare_classes",
                    "mean_confidence", "stability", "d_real", "d_fake", "seconds_per_epoch"):
            ctx.metrics[key] = ctx.metrics[only][key]

    _figures(ctx, cfg, runs, reference)
    ctx.table(f"Quality after {cfg.epochs} epochs ({reference.n_samples} samples; Frechet "
              f"floor {reference.floor:.3g} = real training digits, ceiling "
              f"{reference.ceiling:.3g} = uniform noise)",
              ["model", "G params", "D params", "Frechet", "relative (0 real, 1 noise)",
               "best Frechet (epoch)", "class entropy / ln 10", "rare classes",
               "mean confidence", "mode collapse", "D(x)", "D(G(z))", "s / epoch"],
              [[TITLES[k], m["generator_parameters"], m["discriminator_parameters"],
                m["frechet"], m["frechet_relative"], f"{m['best_frechet']:.4g} ({m['best_epoch']})",
                m["class_entropy_fraction"], m["rare_classes"], m["mean_confidence"],
                m["mode_collapse"], m["d_real"], m["d_fake"], m["seconds_per_epoch"]]
               for k, m in ((k, ctx.metrics[k]) for k in runs)])

    acc_word = "meets" if clf.test_accuracy >= target else "misses"
    how = (f"loaded from the cache ({clf.path.name})" if clf.cached
           else f"trained in {clf.train_seconds:.0f} s and cached as {clf.path.name}")
    ctx.infer(f"The scoring classifier reaches {clf.test_accuracy:.2%} test accuracy on "
              f"{len(x_test):,} test digits ({acc_word} the {target:.0%} target); it was {how}.")
    ctx.infer(f"With {reference.n_samples} samples, real training digits lie at Frechet distance "
              f"{reference.floor:.3g} from the test digits and uniform noise at "
              f"{reference.ceiling:.3g}: a generator is judged between these two.")
    for kind in runs:
        m = ctx.metrics[kind]
        where = (f"{m['frechet_relative']:.1%} of the way from real digits to noise"
                 if m["frechet_relative"] <= 1 else "farther from the test digits than noise is")
        ctx.infer(f"{TITLES[kind]} after {cfg.epochs} epochs: Frechet distance {m['frechet']:.3g} "
                  f"({where}; best "
                  f"{m['best_frechet']:.3g} at epoch {m['best_epoch']}), class entropy "
                  f"{m['class_entropy']:.3f} nats ({m['class_entropy_fraction']:.0%} of a uniform "
                  f"spread), {m['rare_classes']} of 10 classes under 2% of samples, mean "
                  f"confidence {m['mean_confidence']:.3f} (real test digits: "
                  f"{reference.real_confidence:.3f}); "
                  f"{'MODE COLLAPSE' if m['mode_collapse'] else 'no mode collapse'} by the "
                  f"criterion; stability: {m['stability']}.")
        ctx.infer(f"{TITLES[kind]}: in the last epoch D(x) = {m['d_real']:.3f} and D(G(z)) = "
                  f"{m['d_fake']:.3f}; at the game's optimum both are 0.5 (Goodfellow et al. "
                  f"2014, Proposition 1). One epoch took {m['seconds_per_epoch']:.2f} s of "
                  f"training and {m['score_seconds_per_epoch']:.2f} s of sampling and scoring.")
    if len(runs) == 2:
        a, b = (ctx.metrics[k]["frechet"] for k in KINDS)
        better, worse = ("DCGAN", "MLP GAN") if b < a else ("MLP GAN", "DCGAN")
        ctx.infer(f"The {better}'s samples are closer to real digits than the {worse}'s "
                  f"(Frechet distance {min(a, b):.3g} against {max(a, b):.3g}).")
    if "mlp" in runs:
        m = ctx.metrics["mlp"]
        ctx.infer(f"The manual's MLP GAN, trained here as the manual sets it (Adam 2e-4, "
                  f"betas 0.5/0.999, batch 128) on {len(x_gan):,} digits, "
                  f"{'collapsed' if m['mode_collapse'] else 'did not collapse'} "
                  f"({m['rare_classes']} rare classes); the manual itself reports no quality "
                  "measure at all.")
    ctx.note(collapse_criterion(cfg.collapse_rare_classes) + "; a collapsed run is recorded "
             "as such, not as a failure.")
    ctx.note("Per-epoch sample grids are in samples/<model>-epochNNN.png and animated in "
             "<model>-samples.gif; the generators are saved as <model>-generator.pt.")


GAN = Implementation(
    config=GANConfig, run=run_gan,
    profiles={
        "smoke": {"epochs": 1, "n_train": 256, "n_quality": 200, "grid": 4,
                  "dcgan_width": 8, "classifier_channels": (4, 8), "classifier_features": 16,
                  "classifier_epochs": 1, "classifier_n_train": 1000},
        "full": {"epochs": 50, "dcgan_width": 32, "n_quality": 5000},
    },
)


# ------------------------------------------------------------------ 16.2 the study


def parse_widths(text: str) -> tuple[int, ...]:
    """Hidden widths written with dashes, "128-256-512" -> (128, 256, 512)."""
    try:
        widths = tuple(int(w) for w in text.split("-"))
    except ValueError:
        raise ValueError(f"hidden widths {text!r}: write them as 128-256-512") from None
    if min(widths) < 1:
        raise ValueError(f"hidden widths {text!r} must be positive")
    return widths


@dataclass
class GANStudyConfig(StudySettings):
    trial_epochs: int = 5  # epochs of every trial
    trial_n_train: int = 2048  # training digits of every trial (0 = all)
    models: tuple[str, ...] = ("mlp", "dcgan")  # GAN kinds; the base setting is the MLP GAN
    lrs: tuple[float, ...] = (5e-5, 2e-4, 1e-3)  # Adam learning rates (base: 2e-4)
    batch_sizes: tuple[int, ...] = (32, 128, 512)  # (base: 128)
    g_hiddens: tuple[str, ...] = ("128-256-512", "256-512-1024", "256")  # MLP generator
    d_hiddens: tuple[str, ...] = ("512-256", "1024-512-256", "128")  # MLP discriminator

    def validate(self) -> None:
        super().validate()
        if self.trial_n_train < 0:
            raise ValueError("trial_n_train must be 0 (all) or more")
        if not self.models or not set(self.models) <= set(KINDS):
            raise ValueError(f"models must be names from {', '.join(KINDS)}")
        if not (self.lrs and self.batch_sizes and self.g_hiddens and self.d_hiddens):
            raise ValueError("every list of values tried needs at least one value")
        if min(self.lrs) <= 0 or min(self.batch_sizes) < 1:
            raise ValueError("learning rates and batch sizes must be positive")
        if self.trial_n_train and self.trial_n_train < max(self.batch_sizes):
            raise ValueError(f"trial_n_train ({self.trial_n_train}) must be at least the "
                             f"largest batch size ({max(self.batch_sizes)})")
        for text in (*self.g_hiddens, *self.d_hiddens):
            parse_widths(text)


STUDY_REPORT = ("stability", "frechet_relative", "class_entropy_fraction", "rare_classes",
                "mean_confidence", "d_fake", "seconds_per_epoch")


def gan_study(cfg: GANStudyConfig) -> Study:
    """The 16.2 study over 16.1's settings, around the manual's MLP GAN (one GAN a trial)."""
    return Study(program="16.1", base_profile=cfg.trial_profile,
                 base={"models": ("mlp",), "epochs": cfg.trial_epochs,
                       "n_train": cfg.trial_n_train},
                 space={"models": [(m,) for m in cfg.models], "lr": cfg.lrs,
                        "batch_size": cfg.batch_sizes,
                        "g_hidden": [parse_widths(t) for t in cfg.g_hiddens],
                        "d_hidden": [parse_widths(t) for t in cfg.d_hiddens]},
                 metric="frechet", direction="minimize", mode=cfg.mode,
                 n_trials=cfg.n_trials, report=STUDY_REPORT,
                 plot=("frechet", "class_entropy_fraction"))


def run_gan_study(cfg: GANStudyConfig, ctx: RunContext) -> None:
    result = execute(gan_study(cfg), ctx, workers=cfg.workers, storage=cfg.storage or None)
    record(result, ctx)
    marks: dict[str, int] = {}
    for r in result.rows:
        mark = r.get("stability") if r["status"] == "ok" else r["status"]
        marks[str(mark)] = marks.get(str(mark), 0) + 1
    ctx.metrics["stability_counts"] = marks
    ctx.note("Stability marks: " + collapse_text() + "; 'D wins' = the "
             f"discriminator's mean output on generated digits ended below {D_WINS}; "
             "'diverged' = a loss became NaN or infinite (the trial stopped); 'stable' = "
             "none of these.")
    ctx.infer(f"Of {len(result.rows)} settings: " + ", ".join(
        f"{n} {mark}" for mark, n in sorted(marks.items(), key=lambda kv: -kv[1])) + ".")
    collapsed = [r for r in result.complete if r.get("stability") == "mode collapse"]
    if collapsed and len(collapsed) == len(result.rows):
        ctx.infer(f"Every setting ended in mode collapse after {cfg.trial_epochs} epochs of "
                  f"{'all' if not cfg.trial_n_train else cfg.trial_n_train} training digits, "
                  "so the ranking above compares generators that have not yet learnt the "
                  "digits; longer trials (the full profile) are needed to separate the "
                  "settings.")
    elif collapsed:
        ctx.infer("Collapsed settings: " + "; ".join(
            f"trial {r['trial']} ({_changed(r)}, {r['rare_classes']} rare classes)"
            for r in collapsed) + ".")


def collapse_text() -> str:
    from dlab.quality import collapse_criterion

    return collapse_criterion(GANConfig().collapse_rare_classes)


def _changed(row: dict[str, Any]) -> str:
    v = row.get("varied")
    return "base setting" if v in ("base", "") else f"{v}={row[v]}"


GAN_STUDY = Implementation(
    config=GANStudyConfig, run=run_gan_study,
    profiles={
        "smoke": {"trial_profile": "smoke", "trial_epochs": 1, "trial_n_train": 256,
                  "lrs": (2e-4,), "batch_sizes": (128,), "g_hiddens": ("128-256-512",),
                  "d_hiddens": ("512-256",)},
        "full": {"trial_profile": "full", "trial_epochs": 50, "trial_n_train": 0},
    },
)
