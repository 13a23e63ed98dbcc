"""Experiment 16: generative adversarial networks on MNIST, scored honestly (16.1), and
a study of their settings and stability (16.2).

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014. The discriminator D
and generator G play

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]                     (eq. 1)

trained by alternating one D step and one G step per batch. D's step minimises the
binary cross-entropy of "real" on data and "fake" on G's samples; G's step uses the
paper's non-saturating loss -log D(G(z)) (section 3), which keeps G's gradient alive
while D is still winning. Both MLP pairs use Adam with lr 2e-4 and betas (0.5, 0.999)
(Radford et al. 2016), as in the course manual; the batch is the manual's 128 at full
and 32 at quick (four times the steps from the same 3,000 digits). The DCGAN has its
own learning rate and batch (dcgan_lr, dcgan_batch_size; measured at quick).

Three GANs are trained alike: the manual's MLP pair, the same pair stabilised (batch
normalisation in the generator, spectral normalisation in the discriminator, Miyato et
al. 2018, and one-sided label smoothing, Salimans et al. 2016; `stabilisers` names
them), and a DCGAN. The manual's MLP GAN is reported, not targeted: it is the defect.

Samples from the same fixed noise are drawn after every epoch; quality is measured
once an epoch (never per batch) with `dlab.quality`: a Frechet distance in the
features of an MNIST classifier, between a floor (real digits) and a ceiling (noise),
the classifier's confidence and recognisable rate, the samples' diversity, and the
judge's verdict (near real, collapsed or not converged). The distance to validation
digits (carved from the training split, never trained on) chooses the best epoch and
the study's best setting; the distance to the test digits is only reported. The judge
is checked before it judges: verdicts are issued only when the classifier reaches its
target accuracy and three sets whose answer is known (real digits, noise, a synthetic
collapsed set) get it. Frechet differences carry a bootstrap interval.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlab.errors import DataError, DlabError
from dlab.io import atomic_path
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.studies import Study, StudySettings, execute, record
from dlab.verdicts import Target

KINDS = ("mlp", "mlp_stable", "dcgan")
Kind = Literal["mlp", "mlp_stable", "dcgan"]
TITLES = {"mlp": "MLP GAN", "mlp_stable": "Stabilised MLP GAN", "dcgan": "DCGAN"}
SEED_INDEX = {"mlp": 1, "dcgan": 2, "mlp_stable": 3}  # each GAN's own seed offset
D_WINS = 0.05  # D "wins outright" when its mean output on fakes ends below this
VAL_SEED = 16  # the validation split is fixed, so every run's classifier is the same
TARGET_ACCURACY = {"bundled": 0.95, "full": 0.99}  # the scoring classifier's, per source
REAL_AT_FLOOR = 0.02  # real-vs-real Frechet within 2% of the floor-to-noise span
NEAR_FLOOR = 0.1  # "near the floor": within 10% of the way from real digits to noise
QUICK_NEAR = 0.25  # at quick: within 25% of the way from real digits to noise
MARKS = ("stable", "collapsed", "not converged", "diverged")  # the study's stability marks
IMAGE_SIZE = (28, 28)


# ------------------------------------------------------------------ the step


def gan_step(gan: nn.ModuleDict, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
             latent_dim: int, noise: torch.Generator, real_label: float = 1.0):
    """A step function for `dlab.training.fit`: one D update, then one G update.

    gan: nn.ModuleDict with "generator" (z (B, latent_dim) -> (B, 1, 28, 28)) and
    "discriminator" ((B, 1, 28, 28) -> logits (B,)). noise: the generator of z
    (on the device the models are on). The batch is a 1-tuple of real images
    (B, 1, 28, 28) in [-1, 1]. real_label: D's target on real images; below 1 it is
    one-sided label smoothing (Salimans et al. 2016, section 3.4): D is never pushed to
    total certainty on real digits, while fakes keep the target 0. Returns per-batch numbers: d_loss, g_loss,
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

        # D: minimise -[log D(x) + log(1 - D(G(z)))], the sum of the BCE against labels 1
        # and 0 as the manual has it (real_label instead of 1 when smoothed). The fakes are
        # detached: this step must not move G.
        real_logit, fake_logit = D(x), D(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real_logit, ones * real_label)
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


def sample_grid(images: torch.Tensor | np.ndarray, ncol: int, pad: int = 2) -> np.ndarray:
    """Tile images (N, 1, H, W) in [-1, 1] into one uint8 picture, row by row.

    Returns (rows * (H + pad) + pad, ncol * (W + pad) + pad) uint8, rows = ceil(N / ncol);
    -1 maps to 0 and 1 to 255; the gaps are mid-grey (128), as `report.figures.tile` makes.
    """
    from dlab.figures import tile

    x = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images)
    picture = tile((x[:, 0] + 1.0) / 2.0, ncol, pad=pad)  # (N, H, W) in [0, 1]
    return np.clip(np.round(picture * 255.0), 0, 255).astype(np.uint8)


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


# ------------------------------------------------------------------ 16.1 settings


@dataclass
class GANConfig:
    # GANs to train: mlp (the manual's), mlp_stable (the manual's with spectral
    # normalisation in D and one-sided label smoothing), dcgan
    models: tuple[Kind, ...] = ("mlp", "mlp_stable", "dcgan")
    source: Literal["auto", "bundled", "full"] = "auto"  # MNIST: auto = full when present
    n_train: int = 0  # training digits the GANs see (0 = all not held out for validation)
    n_val: int = 1000  # validation digits carved from the training split (stratified)
    epochs: int = 10  # epochs per GAN
    # 32 at quick: about 940 steps from 3,000 digits in 10 epochs (the manual's 128 gives
    # 240, too few for any GAN here to draw digits); full uses the manual's 128
    batch_size: int = 32
    lr: float = 2e-4  # Adam learning rate of both networks (the manual's)
    beta1: float = 0.5  # Adam beta1 (the manual's); beta2 = 0.999
    latent_dim: int = 100  # length of the noise vector z (the manual's)
    g_hidden: tuple[int, ...] = (128, 256, 512)  # MLP generator hidden widths (the manual's)
    d_hidden: tuple[int, ...] = (512, 256)  # MLP discriminator hidden widths (the manual's)
    dcgan_width: int = 16  # DCGAN channels at 14x14 (twice that at 7x7)
    # the DCGAN's Adam learning rate (both networks) and batch size: at quick 5e-3 and 16,
    # chosen by the recognisable rate after 10 epochs against 2e-4, 5e-4, 1e-3, 2e-3 and
    # 1e-2 and batch 32 (Radford et al. use 2e-4 and 128, as the full profile does)
    dcgan_lr: float = 5e-3
    dcgan_batch_size: int = 16
    # mlp_stable's fixes: spectral_norm (in D), batch_norm (in G), label_smoothing (D's
    # target on real digits is real_label, not 1)
    stabilisers: tuple[str, ...] = ("batch_norm", "spectral_norm", "label_smoothing")
    real_label: float = 0.9  # D's target on real digits under label_smoothing
    n_quality: int = 1000  # generated digits scored once an epoch
    grid: int = 8  # the fixed-noise sample grid is grid x grid
    classifier_channels: tuple[int, ...] = (16, 32)  # scoring classifier's conv channels
    classifier_features: int = 64  # its feature layer (the Frechet distance's space)
    classifier_epochs: int = 10  # its training epochs (trained once, then cached)
    classifier_batch_size: int = 128  # its batch size
    classifier_seed: int = 0  # its seed (fixed, so every run scores with the same network)
    classifier_n_train: int = 0  # digits it trains on (0 = all not held out for validation)

    def validate(self) -> None:
        if not self.models or len(set(self.models)) != len(self.models):
            raise ValueError(f"models must be distinct names from {', '.join(KINDS)}, "
                             f"e.g. --set models=mlp,dcgan; got {','.join(self.models)}")
        if self.dcgan_batch_size < 1 or self.dcgan_lr <= 0 or self.dcgan_width < 2:
            raise ValueError("dcgan_batch_size must be >= 1, dcgan_lr > 0, dcgan_width >= 2")
        if self.n_train < 0 or (0 < self.n_train < max(self.batch_size,
                                                         self.dcgan_batch_size)):
            raise ValueError(f"n_train must be 0 (all) or at least batch_size, got {self.n_train}")
        if self.n_val < 100:
            raise ValueError(f"n_val must be at least 100 (a covariance is fit), got {self.n_val}")
        if unknown := [m for m in self.models if m not in KINDS]:
            raise ValueError(f"unknown GAN kind(s) {', '.join(unknown)}; use "
                             f"{', '.join(KINDS)}")
        from dlab.models.gan import STABILISERS

        allowed = (*STABILISERS, "label_smoothing")
        if bad := [s for s in self.stabilisers if s not in allowed]:
            raise ValueError(f"unknown stabiliser(s) {', '.join(bad)}; use "
                             f"{', '.join(allowed)}")
        if not 0.5 < self.real_label <= 1.0:
            raise ValueError(f"real_label must be in (0.5, 1], got {self.real_label}")
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
        if self.classifier_n_train < 0 or self.classifier_batch_size < 1:
            raise ValueError("classifier_n_train must be 0 (all) or more, "
                             "classifier_batch_size at least 1")
        if self.classifier_features < 2:
            raise ValueError("classifier_features must be at least 2")


# ------------------------------------------------------------------ 16.1 data


@dataclass
class Digits:
    """MNIST for 16.1, images (N, 1, 28, 28) in [-1, 1] and labels (N,) int64."""

    source: str  # "bundled" or "full"
    x_gan: torch.Tensor  # what the GANs train on (no labels used)
    x_pool: torch.Tensor  # the training split less the validation digits
    y_pool: torch.Tensor
    x_val: torch.Tensor  # validation digits, carved from the training split
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def check_image_size(data: Any, program: str = "16.1") -> None:
    """One clear DataError when the images are not 28x28 (the networks' input)."""
    for split, x in (("training", data.x_train), ("test", data.x_test)):
        if tuple(x.shape[1:]) != IMAGE_SIZE:
            size = "x".join(str(s) for s in x.shape[1:])
            raise DataError(f"{data.provenance.name} ({data.provenance.source}): the {split} "
                            f"images are {size}; {program}'s networks take 28x28 digits")


def load_digits(cfg: GANConfig, ctx: RunContext) -> Digits:
    """Load MNIST, check it, carve the validation digits and pick the GANs' digits."""
    from dlab.data.mnist import load_mnist
    from dlab.data.subsets import stratified_sample
    from dlab.quality import to_unit_range

    data = load_mnist(cfg.source, ctx.data_dir)
    check_image_size(data)
    if cfg.n_val >= len(data.y_train):
        raise DataError(f"{data.provenance.name} has {len(data.y_train):,} training digits; "
                        f"n_val ({cfg.n_val}) must leave some to train on")
    source = "full" if "full" in data.provenance.name else "bundled"
    ctx.data(data.describe())
    val = stratified_sample(data.y_train, cfg.n_val, VAL_SEED)
    pool = np.setdiff1d(np.arange(len(data.y_train)), val)
    x_pool, y_pool = to_unit_range(data.x_train[pool]), torch.as_tensor(data.y_train[pool])
    x_gan = x_pool
    if cfg.n_train and cfg.n_train < len(pool):
        pick = stratified_sample(data.y_train[pool], cfg.n_train, ctx.seed * 1_000_003 + 16)
        x_gan = x_pool[torch.as_tensor(pick)]
    return Digits(source, x_gan, x_pool, y_pool.long(), to_unit_range(data.x_train[val]),
                  torch.as_tensor(data.y_train[val]).long(), to_unit_range(data.x_test),
                  torch.as_tensor(data.y_test).long())


def describe_digits(ctx: RunContext, d: Digits) -> None:
    from dlab.data.subsets import class_counts

    def counts(y: torch.Tensor) -> str:
        return ", ".join(f"{k}: {n}" for k, n in class_counts(y.numpy()).items())

    ctx.data(f"The GANs train on {len(d.x_gan):,} training digits scaled to [-1, 1] "
             f"(x / 127.5 - 1), the range of the generators' tanh; no labels are used.")
    ctx.data(f"Validation: {len(d.x_val):,} digits carved from the training split (seeded, "
             f"stratified; never trained on by the GANs or the scoring classifier), class "
             f"counts {counts(d.y_val)}. They choose the best epoch (and the study's best "
             "setting).")
    ctx.data(f"Test: all {len(d.x_test):,} test digits, class counts {counts(d.y_test)}; "
             "their Frechet distance is reported, never used to choose.")


EXAMPLES_PER_CLASS = 8  # training digits per class in the data step's figure


def digits_figure(d: Digits, per_class: int = EXAMPLES_PER_CLASS) -> Any:
    """The first `per_class` training digits of every class, one row per class labelled
    with its class. Returns the matplotlib figure."""
    from dlab.figures import by_class_figure

    return by_class_figure(d.x_pool, d.y_pool.numpy(), [str(k) for k in range(10)], per_class,
                           "Training digits by class",
                           to_pixels=lambda x: (x[:, 0].numpy() + 1.0) / 2.0)  # [-1, 1] -> [0, 1]


# ------------------------------------------------------------------ 16.1 the judge


@dataclass
class Judge:
    """The scoring classifier, the two references it scores against, and its checks."""

    classifier: Any  # dlab.quality.TrainedClassifier
    target_accuracy: float
    val_ref: Any  # dlab.quality.QualityReference on the validation digits
    test_ref: Any  # ... on the test digits
    halves: dict[str, Any]  # dlab.quality.real_halves: two halves of the test digits
    calibration: dict[str, Any]  # dlab.quality.calibrate: real, noise, synthetic collapsed

    @property
    def ready(self) -> bool:
        """Whether the classifier is accurate enough for its verdicts to mean anything."""
        return self.classifier.test_accuracy >= self.target_accuracy


def scoring_classifier(cfg: GANConfig, ctx: RunContext, d: Digits) -> Any:
    """The scoring classifier (`dlab.quality`): loaded from the cache, or else trained on
    the pool's digits (or a stratified cfg.classifier_n_train of them) and cached. Returns
    a dlab.quality.TrainedClassifier (the network, its test accuracy, where it is cached)."""
    from dlab.data.subsets import stratified_sample
    from dlab.quality import ClassifierSpec, load_or_train_classifier

    spec = ClassifierSpec(tuple(cfg.classifier_channels), cfg.classifier_features,
                          cfg.classifier_epochs, cfg.classifier_batch_size,
                          seed=cfg.classifier_seed)
    x, y = d.x_pool, d.y_pool
    if cfg.classifier_n_train and cfg.classifier_n_train < len(x):
        pick = torch.as_tensor(stratified_sample(y.numpy(), cfg.classifier_n_train,
                                                 cfg.classifier_seed))
        x, y = x[pick], y[pick]
    return load_or_train_classifier(x, y, d.x_test, d.y_test, source=d.source, ctx=ctx,
                                    spec=spec)


def build_judge(cfg: GANConfig, ctx: RunContext, d: Digits, clf: Any) -> Judge:
    """The judge around the scoring classifier `clf`: its floor and ceiling against the
    validation and the test digits, two halves of the test digits, and its verdicts on
    three sets whose answer is known (`dlab.quality.calibration_sets`: the validation
    digits, uniform noise and a synthetic collapsed set), scored against the test digits."""
    from dlab.quality import calibrate, calibration_sets, quality_reference, real_halves

    n = min(cfg.n_quality, len(d.x_pool))  # the floor cannot use more real digits
    val_ref = quality_reference(clf.model, d.x_pool, d.x_val, n, ctx.torch_generator(6),
                                ctx.device)
    test_ref = quality_reference(clf.model, d.x_pool, d.x_test, n, ctx.torch_generator(7),
                                 ctx.device)
    halves = real_halves(clf.model, d.x_test, test_ref, ctx.torch_generator(8), ctx.device)
    sets = calibration_sets(d.x_val, d.x_pool, n, ctx.torch_generator(9))
    calibration = calibrate(clf.model, sets, test_ref, ctx.device)
    return Judge(clf, TARGET_ACCURACY[d.source], val_ref, test_ref, halves, calibration)


CALIBRATION_KEYS = ("frechet", "frechet_relative", "diversity_relative", "duplicates",
                    "neighbours_relative",
                    "mean_confidence", "recognisable", "class_entropy_fraction",
                    "rare_classes", "verdict", "expected", "passed")


def judge_metrics(cfg: GANConfig, judge: Judge, source: str) -> dict[str, Any]:
    """The judge's own measured values, for metrics.json (and its targets), with
    judge_calibrated: whether the three known sets get their known verdicts and two
    halves of the real digits sit at the floor."""
    from dlab.quality import collapse_criterion

    clf, ref = judge.classifier, judge.test_ref
    out: dict[str, Any] = {
        "data": source,  # the older key, kept
        "data_source": source,
        "classifier_test_acc": clf.test_accuracy,
        "classifier_target_acc": judge.target_accuracy,
        "classifier_cached": clf.cached,
        "judge_ready": judge.ready,
        "frechet_floor": ref.floor,
        "frechet_ceiling": ref.ceiling,
        "val_frechet_floor": judge.val_ref.floor,
        "val_frechet_ceiling": judge.val_ref.ceiling,
        "real_confidence": ref.real_confidence,
        "real_recognisable": ref.real_recognisable,
        "real_diversity": ref.real_diversity,
        "real_neighbours": ref.real_neighbours,
        "n_quality": ref.n_samples,
        "n_val": len(judge.val_ref.real_features),
        **judge.halves,
        "calibration": {name: {k: s[k] for k in CALIBRATION_KEYS}
                        for name, s in judge.calibration.items()},
        "judge_criterion": collapse_criterion(),
    }
    out["judge_calibrated"] = calibrated(out)
    return out


# ------------------------------------------------------------------ 16.1 training


def gan_pair(kind: str, cfg: GANConfig, ctx: RunContext) -> nn.ModuleDict:
    """The GAN pair of `kind`, an nn.ModuleDict of "generator" and "discriminator" on
    ctx.device. Its initial weights are seeded by the run seed and the kind, under a forked
    global RNG: neither the order in which the pairs are built nor building them at all
    moves any other random number of the run."""
    from dlab.models.gan import build_gan

    k = SEED_INDEX[kind]
    forked = [torch.cuda.current_device()] if ctx.device == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(ctx.seed * 1_000_003 + 100 + k)
        return build_gan(kind, cfg.latent_dim, cfg.g_hidden, cfg.d_hidden, cfg.dcgan_width,
                         stabilisers=[s for s in cfg.stabilisers if s != "label_smoothing"]
                         ).to(ctx.device)


def gan_optimizers(cfg: GANConfig, gan: nn.ModuleDict, kind: str = "mlp"
                   ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for the generator and for the discriminator (lr cfg.lr, or cfg.dcgan_lr for
    the DCGAN; betas (beta1, 0.999)). Returns (opt_g, opt_d)."""
    betas, lr = (cfg.beta1, 0.999), cfg.dcgan_lr if kind == "dcgan" else cfg.lr
    return (torch.optim.Adam(gan["generator"].parameters(), lr=lr, betas=betas),
            torch.optim.Adam(gan["discriminator"].parameters(), lr=lr, betas=betas))


def real_label(cfg: GANConfig, kind: str) -> float:
    """D's target on real digits: cfg.real_label for the stabilised MLP GAN with label
    smoothing, else 1."""
    smooth = kind == "mlp_stable" and "label_smoothing" in cfg.stabilisers
    return cfg.real_label if smooth else 1.0


def _resume_epoch(ctx: RunContext, kind: str) -> int:
    """The first epoch to train: 1, or after the last checkpointed one on --resume.

    The checkpoint is read with weights_only=True (tensors, numbers and plain containers
    only), so a tampered file cannot run code; one that does not load so is refused."""

    ckpt = ctx.checkpoint_path(kind)
    if not (ctx.resume and ckpt.exists()):
        return 1
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DlabError(f"{ckpt}: not a checkpoint that loads safely ({type(exc).__name__}); "
                        "remove it or run again without --resume") from None
    return int(state["epoch"]) + 1


def epoch_scores(features: np.ndarray, probs: np.ndarray, judge: Judge) -> dict[str, Any]:
    """Scores of one epoch's samples: val_frechet(_relative) against the validation digits
    (used to choose), frechet(_relative) and the judge's verdict against the test digits
    (reported only), and the class spread, confidence and recognisable rate."""
    from dlab.quality import frechet, quality_score

    out = quality_score(features, probs, judge.test_ref)
    v, ref = frechet(features, judge.val_ref.real_features), judge.val_ref
    out["val_frechet"] = float(v)
    out["val_frechet_relative"] = (float((v - ref.floor) / (ref.ceiling - ref.floor))
                                   if ref.ceiling > ref.floor else float("nan"))
    return out


def train_gan(kind: str, cfg: GANConfig, ctx: RunContext, gan: nn.ModuleDict,
              x_train: torch.Tensor, judge: Judge, z_fixed: torch.Tensor,
              z_quality: torch.Tensor) -> dict[str, Any]:
    """Train the pair `gan` of `kind` (from `gan_pair`) in place through `fit`; sample and
    score it after every epoch.

    x_train: (N, 1, 28, 28) in [-1, 1] on ctx.device. z_fixed (grid^2, latent_dim) and
    z_quality (n_quality, latent_dim): the same noise every epoch. Returns {"result":
    FitResult (per-epoch losses, D outputs and scores), "gan": the trained pair,
    "frames": the per-epoch grid PNGs, "pred_counts": (10,) classes of the final samples}.
    """
    from dlab.quality import classify
    from dlab.training import fit

    opt_g, opt_d = gan_optimizers(cfg, gan, kind)
    G, k = gan["generator"], SEED_INDEX[kind]
    # z for epoch e comes from a generator seeded with (run seed, kind, e), so a resumed
    # run draws exactly the noise an uninterrupted one would.
    noise = ctx.torch_generator(0, device=ctx.device)
    noise.manual_seed(ctx.seed * 1_000_003 + 10_000 * k + _resume_epoch(ctx, kind))
    samples_dir = ctx.path("samples")

    @torch.inference_mode()
    def generate(z: torch.Tensor) -> torch.Tensor:
        G.eval()  # batch norm with its running statistics: samples do not depend on batch
        out = torch.cat([G(z[i:i + 1000].to(ctx.device)) for i in range(0, len(z), 1000)])
        G.train()
        return out

    def on_epoch_end(epoch: int, row: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        noise.manual_seed(ctx.seed * 1_000_003 + 10_000 * k + epoch + 1)
        _save_png(samples_dir / f"{kind}-epoch{epoch:03d}.png",
                  sample_grid(generate(z_fixed), cfg.grid))
        feats, probs = classify(judge.classifier.model, generate(z_quality), device=ctx.device)
        score = epoch_scores(feats, probs, judge)
        return {**score, "score_seconds": time.perf_counter() - t0}

    result = fit(gan, (x_train,), ctx=ctx, epochs=cfg.epochs, optimizer=[opt_g, opt_d],
                 step=gan_step(gan, opt_g, opt_d, cfg.latent_dim, noise,
                               real_label(cfg, kind)),
                 batch_size=cfg.dcgan_batch_size if kind == "dcgan" else cfg.batch_size,
                 name=kind, on_epoch_end=on_epoch_end)
    frames = [samples_dir / f"{kind}-epoch{e:03d}.png" for e in range(1, cfg.epochs + 1)]
    frames = [f for f in frames if f.exists()]
    _save_gif(ctx.path(f"{kind}-samples.gif"), frames)
    arch = ({"g_hidden": list(cfg.g_hidden), "d_hidden": list(cfg.d_hidden)}
            if kind != "dcgan" else {"width": cfg.dcgan_width})
    ctx.save_model(G, name=f"{kind}-generator.pt", kind=kind, latent_dim=cfg.latent_dim,
                   output="images (B, 1, 28, 28) in [-1, 1]; pixel = (x + 1) * 127.5",
                   noise="z ~ N(0, I)", **arch)
    final_feats, final_probs = classify(judge.classifier.model, generate(z_quality),
                                        device=ctx.device)
    return {"result": result, "gan": gan, "frames": frames, "features": final_feats,
            "pred_counts": np.bincount(final_probs.argmax(1), minlength=10)[:10]}


def train_all(cfg: GANConfig, ctx: RunContext, d: Digits, judge: Judge,
              gans: dict[str, nn.ModuleDict]) -> dict[str, Any]:
    """Every GAN of `gans` (kind -> pair), trained on the same digits and scored on the
    same noise. Returns kind -> what `train_gan` returns."""
    n = judge.test_ref.n_samples
    z_fixed = torch.randn(cfg.grid ** 2, cfg.latent_dim, generator=ctx.torch_generator(3))
    z_quality = torch.randn(n, cfg.latent_dim, generator=ctx.torch_generator(4))
    x = d.x_gan.to(ctx.device)
    return {kind: train_gan(kind, cfg, ctx, gan, x, judge, z_fixed, z_quality)
            for kind, gan in gans.items()}


# ------------------------------------------------------------------ 16.1 score


def _stability(last: dict[str, Any], judged: bool) -> str:
    """A stability mark from the last epoch's judge verdict: "stable" (near real),
    "collapsed" or "not converged"; "not judged" when the judge may not judge."""
    if not judged:
        return "not judged"
    return "stable" if last["verdict"] == "near real" else str(last["verdict"])


SCORE_KEYS = ("frechet", "frechet_relative", "val_frechet", "val_frechet_relative",
              "class_entropy", "class_entropy_fraction", "rare_classes", "mean_confidence",
              "recognisable", "diversity", "diversity_relative", "duplicates", "neighbours",
              "neighbours_relative", "d_real", "d_fake")


def score_gan(run: dict[str, Any], judged: bool) -> dict[str, Any]:
    """Measured values of one trained GAN; its best epoch is chosen on validation digits."""
    from dlab.models import count_parameters

    hist = run["result"].history
    last = hist[-1]
    best = min(hist, key=lambda r: r["val_frechet"])
    return {
        **{k: last[k] for k in SCORE_KEYS},
        "verdict": last["verdict"] if judged else "not judged",
        "collapsed": bool(last["collapsed"]) if judged else None,
        "stability": _stability(last, judged),
        "d_wins": bool(last["d_fake"] < D_WINS),
        "best_epoch": best["epoch"],  # the lowest validation Frechet
        "best_val_frechet": best["val_frechet"],
        "best_frechet": best["frechet"],  # test, at that epoch: reported, not chosen on
        "seconds_per_epoch": float(np.mean([r["seconds"] for r in hist])),
        "score_seconds_per_epoch": float(np.mean([r["score_seconds"] for r in hist])),
        "generator_parameters": count_parameters(run["gan"]["generator"]),
        "discriminator_parameters": count_parameters(run["gan"]["discriminator"]),
    }


TOP_KEYS = ("frechet", "frechet_relative", "val_frechet", "val_frechet_relative",
            "class_entropy_fraction", "rare_classes", "mean_confidence", "recognisable",
            "diversity_relative", "duplicates", "neighbours_relative", "verdict",
            "stability", "d_wins", "d_real",
            "d_fake", "seconds_per_epoch", "best_epoch")


def score(runs: dict[str, Any], judge_m: dict[str, Any], judge: Judge,
          seed: int) -> dict[str, Any]:
    """The trained GANs' measured values, as one plain dict: per kind, whether any
    collapsed, and the intervals of their Frechet differences. judge_m: the judge's
    (`judge_metrics`), which say whether it may judge."""
    m: dict[str, Any] = {}
    judged = can_judge(judge_m)
    for kind, run in runs.items():
        m[kind] = score_gan(run, judged)
    m["collapsed"] = any(m[k]["collapsed"] for k in runs) if judged else None
    m["frechet_differences"] = frechet_differences(runs, judge, seed)
    if len(runs) == 1:  # a run of one GAN (a study's trial) lists its scores at the top too
        (only,) = runs
        m.update({key: m[only][key] for key in TOP_KEYS})
    return m


PAIRS = (("dcgan", "mlp"), ("mlp_stable", "mlp"))  # (a, b): a's Frechet minus b's


def frechet_differences(runs: dict[str, Any], judge: Judge, seed: int) -> dict[str, Any]:
    """For each pair of PAIRS trained here, the test Frechet difference a - b with its 95%
    interval (`dlab.quality.frechet_difference`), as Difference.as_dict()."""
    from dlab.quality import frechet_difference

    out = {}
    for a, b in PAIRS:
        if a in runs and b in runs:
            diff = frechet_difference(runs[a]["features"], runs[b]["features"],
                                      judge.test_ref.real_features, seed=seed)
            out[f"{a}_vs_{b}"] = diff.as_dict()
    return out


def can_judge(m: dict[str, Any]) -> bool:
    """Whether collapse verdicts are issued: the judge reaches its target accuracy and is
    calibrated."""
    return bool(m["judge_ready"] and m["judge_calibrated"])


def calibrated(m: dict[str, Any]) -> bool:
    """The three known sets get their known verdicts, and real vs real is at the floor."""
    return (all(c["passed"] for c in m["calibration"].values())
            and m["frechet_real_halves_relative"] <= REAL_AT_FLOOR)


# ------------------------------------------------------------------ 16.1 judge


READY_TEXT = "the scoring classifier reaches its target test accuracy"
JUDGED_TEXT = ("the DCGAN is trained and the scoring classifier reaches its target accuracy "
               "and passes its calibration")
RECOGNISABLE_QUICK = 0.7  # the DCGAN's recognisable rate at quick


def _ready(m: dict[str, Any]) -> bool:
    return bool(m["judge_ready"])


def _dcgan_judged(m: dict[str, Any]) -> bool:
    return bool(can_judge(m) and "dcgan" in m)


def beyond_ceiling(g: dict[str, Any]) -> bool:
    """The GAN's test Frechet distance is at or beyond the noise ceiling: not converged,
    whoever judges, and not to be ranked against another such GAN."""
    return not g["frechet_relative"] < 1


def _stable_vs_manual(m: dict[str, Any]) -> bool:
    return bool(can_judge(m) and "mlp_stable" in m and "mlp" in m
                and not (beyond_ceiling(m["mlp_stable"]) and beyond_ceiling(m["mlp"])))


def _calibration_target(name: str, why: str) -> Target:
    from dlab.quality import CALIBRATION_SETS

    return Target(f"calibration.{name}.verdict", equals=CALIBRATION_SETS[name], when=_ready,
                  when_text=READY_TEXT, why=why)


GAN_TARGETS = (
    Target("classifier_test_acc", at_least=TARGET_ACCURACY["bundled"], profiles=("quick", "full"),
           when=lambda m: m["data_source"] == "bundled", when_text="the bundled digits are used",
           why="the judge classifies 95% of the bundled test digits"),
    Target("classifier_test_acc", at_least=TARGET_ACCURACY["full"], profiles=("quick", "full"),
           when=lambda m: m["data_source"] == "full", when_text="full MNIST is used",
           why="the judge classifies 99% of MNIST's test digits"),
    _calibration_target("real", "real held-out digits are judged near real"),
    _calibration_target("noise", "uniform noise is judged not converged, never collapsed"),
    _calibration_target("collapsed", "copies of a handful of real digits with small noise "
                                     "are judged collapsed"),
    Target("frechet_real_halves_relative", at_most=REAL_AT_FLOOR, when=_ready,
           when_text=READY_TEXT,
           why="two halves of the real test digits are at the Frechet floor, far from noise"),
    Target("dcgan.verdict", equals="near real", profiles=("quick", "full"), when=_dcgan_judged,
           when_text=JUDGED_TEXT,
           why="the DCGAN's samples are judged near real: digits to the classifier, diverse, "
               "and less than halfway from real digits to noise"),
    Target("dcgan.recognisable", at_least=RECOGNISABLE_QUICK, profiles=("quick", "full"),
           when=_dcgan_judged, when_text=JUDGED_TEXT,
           why="at least 70% of the DCGAN's samples are classified with confidence >= 0.9"),
    Target("dcgan.frechet_relative", at_most=NEAR_FLOOR, profiles=("full",), when=_dcgan_judged,
           when_text=JUDGED_TEXT,
           why="after 50 epochs the DCGAN's test Frechet distance is near the real-digit "
               "floor (within 10% of the way from real digits to noise)"),
    Target("dcgan.frechet_relative", at_most=QUICK_NEAR, profiles=("quick",),
           when=_dcgan_judged, when_text=JUDGED_TEXT,
           why="after the quick epochs the DCGAN's samples are at least 75% of the way from "
               "noise to real digits (test Frechet distance)"),
    Target("mlp_stable.frechet", below="mlp.frechet",
           interval="frechet_differences.mlp_stable_vs_mlp", profiles=("quick", "full"),
           when=_stable_vs_manual,
           when_text="both MLP GANs are trained, the judge is calibrated and they are not "
                     "both at or beyond the noise ceiling (both not converged)",
           why="the stabilised MLP GAN's test Frechet distance is below the manual's MLP "
               "GAN's, trained alike, beyond the sampling noise of the two"),
)


def record_judge(ctx: RunContext, cfg: GANConfig, judge: Judge, m: dict[str, Any]) -> None:
    """Sentences on the judge: its accuracy against its target and its calibration."""
    clf, acc, target = judge.classifier, m["classifier_test_acc"], m["classifier_target_acc"]
    how = (f"loaded from the cache ({clf.path.name})" if clf.cached
           else f"trained in {clf.train_seconds:.0f} s"
           + (f" and cached as {clf.path.name}" if clf.path else ", not cached"))
    n_test = len(judge.test_ref.real_features)
    ctx.claim(f"The scoring classifier reaches {acc:.2%} test accuracy on {n_test:,} test "
              f"digits, at least its {target:.0%} target; it was {how}.", holds=judge.ready,
              otherwise=f"The scoring classifier reaches {acc:.2%} test accuracy on "
              f"{n_test:,} test digits, under its {target:.0%} target ({cfg.classifier_epochs} "
              f"epochs at this profile; it was {how}): sample quality cannot be judged at this "
              "profile, so no collapse verdict is given.",
              test_accuracy=acc, target=target)
    if clf.note:
        ctx.note(f"Scoring classifier: {clf.note}.")
    ctx.infer(f"With {m['n_quality']} samples, real training digits lie at Frechet distance "
              f"{m['frechet_floor']:.3g} from the test digits (the floor) and uniform noise "
              f"at {m['frechet_ceiling']:.3g} (the ceiling); from the validation digits "
              f"{m['val_frechet_floor']:.3g} and {m['val_frechet_ceiling']:.3g}. The "
              f"classifier gives {m['real_recognisable']:.1%} of the real test digits a "
              f"confidence of at least 0.9 (their recognisable rate).")
    if judge.ready:
        _record_calibration(ctx, m)


CALIBRATION_WORDS = {
    "real": "{n} validation digits (held out from the classifier and the GANs)",
    "noise": "{n} images of uniform noise (a fresh draw)",
    "collapsed": "{n} copies of 5 real training digits with N(0, 0.1^2) pixel noise",
}


def _scores_text(s: dict[str, Any]) -> str:
    return (f"Frechet relative {s['frechet_relative']:.3f}, mean confidence "
            f"{s['mean_confidence']:.3f}, recognisable {s['recognisable']:.1%}, near-copies "
            f"{s['duplicates']:.1%}, diversity {s['diversity_relative']:.2f} of real digits'")


def _record_calibration(ctx: RunContext, m: dict[str, Any]) -> None:
    for name, s in m["calibration"].items():
        what = CALIBRATION_WORDS[name].format(n=m["n_quality"])
        ctx.claim(f"Calibration: {what} are judged {s['verdict']}, as they must be "
                  f"({_scores_text(s)}).", holds=s["passed"],
                  otherwise=f"Calibration failed: {what} are judged {s['verdict']}, not "
                  f"{s['expected']} ({_scores_text(s)}); no collapse verdict is given.",
                  verdict=s["verdict"], expected=s["expected"])
    d, rel, half = (m["frechet_real_halves"], m["frechet_real_halves_relative"],
                    m["n_real_half"])
    where = f"{abs(rel):.2%} of the floor-to-noise span {'below' if rel < 0 else 'above'} the floor"
    ctx.claim(f"Calibration: two disjoint halves of the test digits ({half:,} each) lie at "
              f"Frechet distance {d:.3g}, at the floor ({where}; allowed: "
              f"{REAL_AT_FLOOR:.0%} above).", holds=rel <= REAL_AT_FLOOR,
              otherwise=f"Calibration failed: two disjoint halves of the test digits lie at "
              f"Frechet distance {d:.3g}, {where}, more than the {REAL_AT_FLOOR:.0%} allowed; "
              "no collapse verdict is given.",
              frechet_real_halves=d, frechet_real_halves_relative=rel)


def _record_one(ctx: RunContext, m: dict[str, Any], kind: str, epochs: str) -> None:
    g, title = m[kind], TITLES[kind]
    ctx.infer(f"{title} after {epochs}: test Frechet distance {g['frechet']:.3g} "
              f"(relative {g['frechet_relative']:.3f}: 0 = real digits, 1 = noise), "
              f"validation {g['val_frechet']:.3g}. The lowest validation Frechet is at "
              f"epoch {g['best_epoch']} ({g['best_val_frechet']:.3g}; test there "
              f"{g['best_frechet']:.3g}, reported only). Mean confidence "
              f"{g['mean_confidence']:.3f} and recognisable rate {g['recognisable']:.1%} "
              f"(real test digits: {m['real_confidence']:.3f} and "
              f"{m['real_recognisable']:.1%}); near-copies {g['duplicates']:.1%}, mean "
              f"pairwise feature distance {g['diversity_relative']:.2f} of real digits', "
              f"distinct nearest real digits {g['neighbours_relative']:.2f} of real digits'; "
              f"{g['rare_classes']} of 10 classes under 2% of samples.")
    if g["verdict"] == "not judged":
        ctx.infer(f"{title}: not judged (the judge is not ready or not calibrated).")
    else:
        ctx.infer(f"{title}: judged {g['verdict']} by the criterion ({_scores_text(g)}).")
    ctx.infer(f"{title}: in the last epoch D(x) = {g['d_real']:.3f} and D(G(z)) = "
              f"{g['d_fake']:.3f}. One epoch took {g['seconds_per_epoch']:.2f} s of training "
              f"and {g['score_seconds_per_epoch']:.2f} s of sampling and scoring.")


PAIR_WORDS = {("dcgan", "mlp"): ("The DCGAN", "the manual's MLP GAN"),
              ("mlp_stable", "mlp"): ("The stabilised MLP GAN", "the manual's MLP GAN")}


def _record_pairs(ctx: RunContext, m: dict[str, Any]) -> None:
    """Each pair's Frechet distances compared with their interval, unless both are at or
    beyond the noise ceiling (both not converged: there is nothing to rank)."""
    from dlab.uncertainty import Difference

    for (a, b), (a_label, b_label) in PAIR_WORDS.items():
        if a not in m or b not in m:
            continue
        ga, gb = m[a], m[b]
        if beyond_ceiling(ga) and beyond_ceiling(gb):
            ctx.infer(f"{a_label} and {b_label} are both not converged: both test Frechet "
                      f"distances are at or beyond the noise ceiling ({ga['frechet']:.4g} "
                      f"and {gb['frechet']:.4g}, relative {ga['frechet_relative']:.2f} and "
                      f"{gb['frechet_relative']:.2f}), so neither is ranked above the other.")
            continue
        diff = Difference.from_dict(m["frechet_differences"][f"{a}_vs_{b}"])
        ctx.compare("test Frechet distance", a_label, ga["frechet"], b_label, gb["frechet"],
                    diff=diff, better="lower")


def record_gans(ctx: RunContext, cfg: GANConfig, m: dict[str, Any], n_gan: int) -> None:
    """Measured sentences and the judge's verdict per GAN, and the GANs compared."""
    kinds = [k for k in KINDS if k in m]
    epochs = f"{cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}"
    for kind in kinds:
        _record_one(ctx, m, kind, epochs)
    _record_pairs(ctx, m)
    ctx.background("At the optimum of the adversarial game the discriminator outputs 0.5 "
                   "on real and on generated images alike.",
                   "Goodfellow et al. 2014, Proposition 1")
    how = (f"Adam {cfg.lr:g}, betas {cfg.beta1:g}/0.999, batch {cfg.batch_size}, on "
           f"{n_gan:,} digits for {epochs}")
    if "mlp" in kinds:
        ctx.note(f"The manual's MLP GAN is its networks and losses, trained with {how} "
                 "(the manual: batch 128 on 60,000 digits for 50 epochs).")
    if "mlp_stable" in kinds:
        ctx.note("The stabilised MLP GAN is the manual's pair, trained alike, with "
                 + stabiliser_text(cfg) + ".")
    if "dcgan" in kinds:
        ctx.note(dcgan_text(cfg))
    ctx.note("The manual itself reports no quality measure for its GAN.")
    ctx.note("Judge: " + m["judge_criterion"] + ". Verdicts are issued only when the "
             "scoring classifier reaches its target accuracy, the three calibration sets "
             "(real digits, noise, a synthetic collapsed set) get their known verdicts and "
             "two halves of the real digits sit at the floor. Class spread is reported and "
             "decides nothing: uniform noise, scored here, leaves "
             f"{m['calibration']['noise']['rare_classes']} of 10 classes under 2% of its "
             "samples.")
    ctx.note("Per-epoch sample grids are in samples/<model>-epochNNN.png and animated in "
             "<model>-samples.gif; the generators are saved as <model>-generator.pt.")


STABILISER_TEXT = {
    "batch_norm": "batch normalisation before every hidden activation of the generator "
                  "(Ioffe and Szegedy 2015, as Radford et al. 2016 use it in DCGAN "
                  "generators)",
    "spectral_norm": "spectral normalisation of every discriminator layer (Miyato et al. "
                     "2018)",
    "label_smoothing": "one-sided label smoothing: the discriminator's target on real "
                       "digits is {real_label:g}, on generated ones 0 (Salimans et al. 2016)",
}


def stabiliser_text(cfg: GANConfig) -> str:
    """The stabilised MLP GAN's fixes in words, with their sources."""
    parts = [STABILISER_TEXT[s].format(real_label=cfg.real_label) for s in cfg.stabilisers]
    if not parts:
        return "no fix at all (stabilisers is empty)"
    return "; ".join(parts)


def dcgan_text(cfg: GANConfig) -> str:
    """The DCGAN's settings in words (it is dlab's addition, not the manual's)."""
    return (f"The DCGAN (not in the manual; Radford et al. 2016) has {cfg.dcgan_width} "
            f"channels at 14x14 and is trained with Adam {cfg.dcgan_lr:g} for both "
            f"networks, betas {cfg.beta1:g}/0.999, batch {cfg.dcgan_batch_size}.")


def _cell(value: Any) -> Any:
    return "not judged" if value is None else value


SCORE_COLUMNS = ["test Frechet", "relative (0 real, 1 noise)", "mean confidence",
                 "recognisable (conf >= 0.9)", "near-copies", "diversity / real",
                 "distinct neighbours / real", "class entropy / ln 10", "rare classes",
                 "verdict"]


def _score_cells(s: dict[str, Any]) -> list[Any]:
    return [s["frechet"], s["frechet_relative"], s["mean_confidence"], s["recognisable"],
            s["duplicates"], s["diversity_relative"], s["neighbours_relative"],
            s["class_entropy_fraction"], s["rare_classes"], _cell(s.get("verdict"))]


def write_table(ctx: RunContext, cfg: GANConfig, m: dict[str, Any]) -> None:
    ctx.table(f"Quality after {cfg.epochs} epoch(s) ({m['n_quality']} samples; test Frechet "
              f"floor {m['frechet_floor']:.3g} = real training digits, ceiling "
              f"{m['frechet_ceiling']:.3g} = uniform noise; real test digits' recognisable "
              f"rate {m['real_recognisable']:.3f}; best epoch chosen on {m['n_val']:,} "
              "validation digits)",
              ["model", "G params", "D params", *SCORE_COLUMNS, "val Frechet",
               "best epoch (val)", "test Frechet there", "D(x)", "D(G(z))", "s / epoch"],
              [[TITLES[k], g["generator_parameters"], g["discriminator_parameters"],
                *_score_cells(g), g["val_frechet"], g["best_epoch"], g["best_frechet"],
                g["d_real"], g["d_fake"], g["seconds_per_epoch"]]
               for k, g in ((k, m[k]) for k in KINDS if k in m)])
    ctx.table("The judge on sets whose verdict is known (scored against the test digits)",
              ["set", *SCORE_COLUMNS, "expected"],
              [[CALIBRATION_WORDS[name].format(n=m["n_quality"]), *_score_cells(s),
                s["expected"]] for name, s in m["calibration"].items()])
    ctx.table("The judge checked on real digits",
              ["check", "value", "compare with"],
              [["classifier test accuracy", m["classifier_test_acc"],
                f"target {m['classifier_target_acc']:.0%}"],
               ["recognisable rate of real test digits", m["real_recognisable"],
                "the GANs' recognisable rates"],
               ["Frechet, real test half vs half", m["frechet_real_halves"],
                f"floor {m['frechet_floor']:.3g}, ceiling {m['frechet_ceiling']:.3g}"],
               ["its place between floor (0) and ceiling (1)",
                m["frechet_real_halves_relative"], f"at most {REAL_AT_FLOOR:g}"]])


# ------------------------------------------------------------------ 16.1 figures


def _training_figure(ctx: RunContext, runs: dict[str, Any], m: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    kinds = list(runs)
    fig, axes = plt.subplots(len(kinds), 3, figsize=(14, 3.6 * len(kinds)), squeeze=False,
                             layout="constrained")
    for row, kind in zip(axes, kinds, strict=True):
        res = runs[kind]["result"]
        ep = res.column("epoch")
        row[0].plot(ep, res.column("d_loss"), "o-", label="D loss")
        row[0].plot(ep, res.column("g_loss"), "s-", label="G loss")
        row[0].axhline(2 * math.log(2), color="grey", ls="--", label="2 ln 2 (D at equilibrium)")
        row[0].axhline(math.log(2), color="grey", ls=":", label="ln 2 (G at equilibrium)")
        row[0].set_title(f"{TITLES[kind]}: losses (mean per epoch)")
        row[1].plot(ep, res.column("d_real"), "o-", label="D(x), real")
        row[1].plot(ep, res.column("d_fake"), "s-", label="D(G(z)), fake")
        row[1].axhline(0.5, color="grey", ls=":", label="0.5 (equilibrium)")
        row[1].set_ylim(0, 1)
        row[1].set_title(f"{TITLES[kind]}: discriminator outputs")
        row[2].plot(ep, res.column("val_frechet"), "o-", color="tab:purple", label="validation")
        row[2].plot(ep, res.column("frechet"), "s--", color="tab:grey",
                    label="test (not used to choose)")
        row[2].axvline(m[kind]["best_epoch"], color="tab:purple", ls=":", label="best (val)")
        row[2].axhline(m["frechet_floor"], color="tab:green", ls="--", label="floor: real digits")
        row[2].axhline(m["frechet_ceiling"], color="tab:red", ls="--", label="ceiling: noise")
        row[2].set_yscale("log")
        row[2].set_title(f"{TITLES[kind]}: Frechet distance (classifier features)")
        for ax in row:
            ax.set_xlabel("epoch")
            ax.legend(fontsize=8)
    ctx.figure(fig, "training.png", "Per epoch: generator and discriminator losses, the mean "
               "discriminator output on real and on generated digits, and the Frechet distance "
               f"of {m['n_quality']} samples from fixed noise to the validation digits (which "
               "choose the best epoch) and to the test digits (reported only), between the "
               "floor (real training digits) and the ceiling (uniform noise).")


def _strip_figure(ctx: RunContext, cfg: GANConfig, kinds: list[str]) -> None:
    import matplotlib.pyplot as plt

    picks = sorted({int(round(e)) for e in np.linspace(1, cfg.epochs, min(6, cfg.epochs))})
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


def _final_figure(ctx: RunContext, cfg: GANConfig, runs: dict[str, Any],
                  m: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    kinds = list(runs)
    fig, axes = plt.subplots(2, len(kinds), figsize=(5.2 * len(kinds), 8.5), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1.2]}, layout="constrained")
    for col, kind in enumerate(kinds):
        if runs[kind]["frames"]:
            axes[0, col].imshow(_read_png(runs[kind]["frames"][-1]), cmap="gray", vmin=0,
                                vmax=255)
        axes[0, col].axis("off")
        axes[0, col].set_title(f"{TITLES[kind]} after {cfg.epochs} epochs "
                               f"(recognisable {m[kind]['recognisable']:.0%})")
        counts = runs[kind]["pred_counts"]
        axes[1, col].bar(range(10), counts / max(counts.sum(), 1), color="tab:blue")
        axes[1, col].axhline(0.1, color="grey", ls=":", label="uniform (10%)")
        axes[1, col].axhline(0.02, color="tab:red", ls="--", label="rare (< 2%)")
        axes[1, col].set_xticks(range(10))
        axes[1, col].set_xlabel("class predicted by the scoring classifier")
        axes[1, col].set_ylabel("share of samples")
        axes[1, col].legend(fontsize=8)
    ctx.figure(fig, "final-samples.png", "Final samples from fixed noise (top; the title gives "
               "the share of samples classified with confidence >= 0.9), and the share of "
               f"{m['n_quality']} generated digits the scoring classifier "
               f"({m['classifier_test_acc']:.1%} test accuracy) assigns to each class "
               "(bottom; dotted: an even 10%, dashed: 2%).")


def write_figures(ctx: RunContext, cfg: GANConfig, runs: dict[str, Any],
                  m: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    _training_figure(ctx, runs, m)
    _strip_figure(ctx, cfg, list(runs))
    _final_figure(ctx, cfg, runs, m)


# ------------------------------------------------------------------ 16.1 the program


def run_gan(cfg: GANConfig, ctx: RunContext) -> None:
    """The judge first (a scoring classifier, checked on real digits), then the GANs."""
    # step data: MNIST: the GANs' training digits, validation digits and test digits
    digits = load_digits(cfg, ctx)
    describe_digits(ctx, digits)
    ctx.figure(digits_figure(digits), "digits.png", f"The first {EXAMPLES_PER_CLASS} "
               "training digits of every class (the GANs never see the labels).")
    # step model: the scoring classifier, loaded from the cache (or trained once and cached)
    scorer = scoring_classifier(cfg, ctx, digits)
    # step score: the judge on real digits: its floor, ceiling and calibration
    judge = build_judge(cfg, ctx, digits, scorer)
    ctx.metrics.update(judge_metrics(cfg, judge, digits.source))
    # step judge: is the judge accurate and calibrated enough to give verdicts?
    record_judge(ctx, cfg, judge, ctx.metrics)
    # step model: the GAN pairs, a generator and a discriminator each
    gans = {kind: gan_pair(kind, cfg, ctx) for kind in cfg.models}
    # step train: each GAN in turn, sampled and scored after every epoch
    runs = train_all(cfg, ctx, digits, judge, gans)
    # step score: the GANs' quality, their best epoch (on validation) and stability
    ctx.metrics.update(score(runs, ctx.metrics, judge, ctx.seed))
    # step judge: sentences per GAN, the judge's verdict, and the GANs compared
    record_gans(ctx, cfg, ctx.metrics, len(digits.x_gan))
    # step write: the quality table, training curves and samples
    write_table(ctx, cfg, ctx.metrics)
    write_figures(ctx, cfg, runs, ctx.metrics)


GAN = Implementation(
    config=GANConfig, run=run_gan,
    profiles={
        # smoke: GANs train for seconds; the judge is small but accurate (about 97% on the
        # bundled digits, trained once in a few seconds and cached)
        "smoke": {"epochs": 1, "n_train": 256, "batch_size": 128, "n_quality": 200, "grid": 4,
                  "dcgan_width": 8, "dcgan_batch_size": 128, "classifier_epochs": 4, "classifier_batch_size": 32,
                  "classifier_n_train": 3000},
        "full": {"epochs": 50, "dcgan_width": 32, "n_quality": 5000, "batch_size": 128,
                 "dcgan_batch_size": 128, "dcgan_lr": 2e-4},
    },
    targets=GAN_TARGETS,
    # one epoch on 500 digits: no GAN draws digits, so the DCGAN's targets are missed
    crippled={"epochs": 1, "n_train": 500},
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
    # quick: four trials around the stabilised MLP GAN, each changing one thing: the
    # manual's MLP GAN instead, the DCGAN instead, a tenfold learning rate
    trial_epochs: int = 6  # epochs of every trial
    trial_n_train: int = 0  # training digits of every trial (0 = all)
    # GAN kinds; the first is the base setting (the stabilised MLP GAN); the DCGAN keeps
    # its own learning rate and batch size (dcgan_lr, dcgan_batch_size)
    models: tuple[Kind, ...] = ("mlp_stable", "mlp", "dcgan")
    lrs: tuple[float, ...] = (2e-4, 2e-3)  # MLP GANs' Adam learning rates (base: 2e-4)
    batch_sizes: tuple[int, ...] = (32,)  # MLP GANs' batch sizes (base: 16.1's, 32 at quick)
    g_hiddens: tuple[str, ...] = ("128-256-512",)  # MLP generator (base: the manual's)
    d_hiddens: tuple[str, ...] = ("512-256",)  # MLP discriminator (base: the manual's)

    def validate(self) -> None:
        super().validate()
        if self.trial_n_train < 0:
            raise ValueError("trial_n_train must be 0 (all) or more")
        if not self.models:
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


# The objective is val_frechet (validation digits); the test Frechet is only reported.
STUDY_REPORT = ("frechet", "stability", "val_frechet_relative", "mean_confidence",
                "recognisable", "duplicates", "diversity_relative", "rare_classes", "d_fake",
                "seconds_per_epoch")


def gan_study(cfg: GANStudyConfig) -> Study:
    """The 16.2 study over 16.1's settings, around the first of cfg.models (one GAN a
    trial)."""
    return Study(program="16.1", base_profile=cfg.trial_profile,
                 base={"models": (cfg.models[0],), "epochs": cfg.trial_epochs,
                       "n_train": cfg.trial_n_train},
                 space={"models": [(m,) for m in cfg.models], "lr": cfg.lrs,
                        "batch_size": cfg.batch_sizes,
                        "g_hidden": [parse_widths(t) for t in cfg.g_hiddens],
                        "d_hidden": [parse_widths(t) for t in cfg.d_hiddens]},
                 metric="val_frechet", direction="minimize", mode=cfg.mode,
                 n_trials=cfg.n_trials, report=STUDY_REPORT,
                 plot=("val_frechet", "recognisable"))


def stability_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Settings per mark: the trial's stability (stable, collapsed, not converged, not
    judged) when it ran to the end, else its status (diverged, failed, ...)."""
    marks: dict[str, int] = {}
    for r in rows:
        mark = str(r.get("stability") if r["status"] == "ok" else r["status"])
        marks[mark] = marks.get(mark, 0) + 1
    return marks


def separation(marks: dict[str, int]) -> dict[str, int]:
    """Settings judged stable (near real), collapsed, not converged and diverged, each
    counted apart; unstable = collapsed or diverged (a setting that has not converged
    shows nothing about stability)."""
    counts = {f"{mark.replace(' ', '_')}_settings": marks.get(mark, 0) for mark in MARKS}
    counts["unstable_settings"] = counts["collapsed_settings"] + counts["diverged_settings"]
    return counts


def score_study(result: Any) -> dict[str, Any]:
    """The chosen setting's test Frechet distance (when a setting was chosen), the count
    of settings per stability mark, and how many were stable, collapsed, not converged
    and diverged."""
    out: dict[str, Any] = {}
    if result.best is not None:
        out["best_frechet"] = result.best.get("frechet")  # test, of the setting chosen on val
    marks = out["stability_counts"] = stability_counts(result.rows)
    return {**out, **separation(marks)}


def judge_study(ctx: RunContext, cfg: GANStudyConfig, result: Any) -> None:
    """Sentences from the study: the chosen setting's test value, the stability marks,
    and whether the study separates settings."""
    best = result.best
    if best is not None:
        ctx.infer(f"Chosen by validation Frechet: trial {best['trial']} ({_changed(best)}), "
                  f"val_frechet {best['val_frechet']:.4g}; its test Frechet distance is "
                  f"{best.get('frechet', float('nan')):.4g} (reported, not used to choose).")
    marks = stability_counts(result.rows)
    ctx.note("Stability marks, from 16.1's judge on each trial's last epoch: 'stable' = "
             "judged near real, 'collapsed' and 'not converged' as the judge has them ("
             + collapse_text() + "); 'not judged' = the scoring classifier missed its target "
             "or its calibration; 'diverged' = a loss became NaN or infinite (the trial "
             "stopped).")
    ctx.infer(f"Of {len(result.rows)} settings: " + ", ".join(
        f"{n} {mark}" for mark, n in sorted(marks.items(), key=lambda kv: -kv[1])) + ".")
    for r in result.complete:
        ctx.infer(f"Trial {r['trial']} ({_changed(r)}): {r['stability']}; validation "
                  f"Frechet relative {r['val_frechet_relative']:.3f}, mean confidence "
                  f"{r['mean_confidence']:.3f}, recognisable {r['recognisable']:.1%}, "
                  f"near-copies {r['duplicates']:.1%}.")
    sep = separation(marks)
    ctx.claim(f"The study separates settings: {sep['stable_settings']} stable and "
              f"{sep['unstable_settings']} collapsed or diverged.",
              holds=bool(sep["stable_settings"] and sep["unstable_settings"]),
              otherwise=f"The study does not separate settings: {sep['stable_settings']} "
              f"stable, {sep['unstable_settings']} collapsed or diverged, "
              f"{sep['not_converged_settings']} not converged.", **sep)


def run_gan_study(cfg: GANStudyConfig, ctx: RunContext) -> None:
    # step train: one run of 16.1 per setting, one GAN each, all with this run's seed
    study_result = execute(gan_study(cfg), ctx, workers=cfg.workers,
                           storage=cfg.storage or None)
    # step score: the trials' table and plots, the setting chosen by validation Frechet
    record(study_result, ctx)
    ctx.metrics.update(score_study(study_result))
    # step judge: the chosen setting's test Frechet, the stability marks and what they show
    judge_study(ctx, cfg, study_result)


def collapse_text() -> str:
    from dlab.quality import collapse_criterion

    return collapse_criterion()


def _changed(row: dict[str, Any]) -> str:
    v = row.get("varied")
    return "base setting" if v in ("base", "", None) else f"{v}={row[v]}"


STUDY_TARGETS = (
    Target("stable_settings", at_least=1, profiles=("quick", "full"),
           why="at least one setting's samples are judged near real"),
    Target("unstable_settings", at_least=1, profiles=("quick", "full"),
           why="at least one setting genuinely collapses or diverges (not merely fails to "
               "converge): the study tells stable settings from unstable ones"),
)


GAN_STUDY = Implementation(
    config=GANStudyConfig, run=run_gan_study,
    profiles={
        "smoke": {"trial_profile": "smoke", "trial_epochs": 1, "trial_n_train": 256,
                  "models": ("mlp_stable", "mlp"),
                  "lrs": (2e-4,), "batch_sizes": (128,), "g_hiddens": ("128-256-512",),
                  "d_hiddens": ("512-256",)},
        # a trial at full is the base program's full run with one setting changed: its
        # epochs, on fewer digits where the base run is long (bench/full_profile.py)
        "full": {"trial_profile": "full", "trial_epochs": 50, "trial_n_train": 10000,
                 "models": ("mlp_stable", "mlp", "dcgan"), "lrs": (5e-5, 2e-4, 1e-3),
                 "batch_sizes": (32, 128, 512),
                 "g_hiddens": ("128-256-512", "256-512-1024", "256"),
                 "d_hiddens": ("512-256", "1024-512-256", "128")},
    },
    targets=STUDY_TARGETS,
    # one epoch on 300 digits per trial: no setting converges, none is judged stable
    crippled={"trial_epochs": 1, "trial_n_train": 300},
)
