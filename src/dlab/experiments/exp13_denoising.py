"""Experiment 13: a convolutional denoising autoencoder (13.1) and its study (13.2).

Denoising autoencoder (Vincent et al., ICML 2008): corrupt a clean image x into
x~ = clip(x + s * n, 0, 1) with n ~ N(0, I) and s = 0.5 (the manual's noise factor),
and train f, g to minimise |g(f(x~)) - x|^2. Denoising is measured by the peak
signal-to-noise ratio, PSNR = 10 log10(1 / MSE) for pixels in [0, 1], of the noisy and
of the denoised test images against the clean ones. The code z = f(x) is judged by a
linear probe: a logistic regression trained on codes of training digits and scored on
test digits, beside the same probe on the raw pixels and on PCA features of the same
size (the linear code the autoencoder should beat).

The manual's model has no bottleneck: its encoder output is 7x7x128 = 6,272 numbers
per image, eight times the 784 pixels. Here the code is a vector of `bottleneck`
numbers (32 by default, about 4% of the pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dlab.experiments.exp12_autoencoder import (
    SOURCES,
    image_rows,
    loss_curves,
    mnist_split,
    n_parameters,
    pca_basis,
    spread_over_classes,
)
from dlab.metrics import linear_probe, psnr
from dlab.models.autoencoder import ACTIVATIONS, ConvDenoisingAutoencoder, manual_style_encoder
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.studies import Study, StudySettings, execute, record
from dlab.training import fit

PIXELS = 28 * 28


def add_noise(x: Tensor, factor: float, generator: torch.Generator) -> Tensor:
    """clip(x + factor * n, 0, 1) with n ~ N(0, 1) per pixel, drawn with `generator`.

    x: any shape, values in [0, 1]; the noise is drawn on the generator's device and
    moved to x's device.
    """
    n = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
    return (x + factor * n.to(x.device)).clamp(0.0, 1.0)


@torch.inference_mode()
def apply(fn: Any, x: Tensor, device: str, batch_size: int = 1000) -> Tensor:
    """fn over x (N, ...) in batches on `device`; the result on the CPU."""
    return torch.cat([fn(x[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(x), batch_size)])


def pca_features(train: np.ndarray, test: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Projections (N, k), (M, k) on the top-k principal directions of `train` (N, D)."""
    mean, v = pca_basis(train, k)
    return (train - mean) @ v, (test - mean) @ v


def manual_feature_count() -> tuple[int, tuple[int, ...]]:
    """Numbers per image out of an encoder with the manual's layer sizes, measured."""
    with torch.no_grad():
        out = manual_style_encoder()(torch.zeros(1, 1, 28, 28))
    return out[0].numel(), tuple(out.shape[1:])


# --------------------------------------------------------------- 13.1 the program


@dataclass
class DenoisingConfig:
    epochs: int = 8  # passes over the training digits (fresh noise every batch)
    batch_size: int = 64  # digits per Adam step
    lr: float = 1e-3  # Adam learning rate
    noise: float = 0.5  # noise factor s: x + s * N(0, 1), then clipped to [0, 1] (manual: 0.5)
    channels: int = 16  # maps of the first conv block (doubling per block)
    depth: int = 2  # conv blocks on each side (the first two halve the size: 28, 14, 7)
    bottleneck: int = 32  # numbers in the code
    activation: str = "relu"  # relu, leaky_relu, tanh or sigmoid
    n_train: int = 0  # training digits used (0 = all)
    val_fraction: float = 0.1  # share of the training digits kept for the validation curve
    probe_train: int = 4000  # training digits each linear probe is fit on (0 = all)
    baselines: bool = True  # also probe raw pixels and PCA features (the study skips them)
    source: str = "auto"  # MNIST: auto (full when present), bundled or full
    n_show: int = 8  # test digits drawn

    def validate(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r}: use one of "
                             f"{', '.join(ACTIVATIONS)}")
        if self.depth < 1 or self.channels < 1 or not 1 <= self.bottleneck < PIXELS:
            raise ValueError(f"need depth >= 1, channels >= 1 and 1 <= bottleneck < {PIXELS}")
        if self.noise < 0 or not 0 < self.val_fraction < 1:
            raise ValueError("noise must be >= 0 and val_fraction in (0, 1)")
        if self.n_train < 0 or self.probe_train < 0 or self.n_show < 1:
            raise ValueError("n_train and probe_train must be >= 0, n_show >= 1")
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r}: use auto, bundled or full")


def run_denoising(cfg: DenoisingConfig, ctx: RunContext) -> None:
    d = mnist_split(cfg.source, ctx.data_dir, cfg.n_train, cfg.val_fraction, ctx.rng, ctx)
    img = {k: torch.from_numpy(d[k]).unsqueeze(1) for k in ("x_train", "x_val", "x_test")}
    xtr, xva, xte = img["x_train"], img["x_val"], img["x_test"]  # (N, 1, 28, 28)
    noisy_va = add_noise(xva, cfg.noise, ctx.torch_generator(2))
    noisy_te = add_noise(xte, cfg.noise, ctx.torch_generator(3))
    ctx.data(f"Used: {len(xtr):,} training digits (fresh noise in every batch), {len(xva):,} "
             f"validation and {len(xte):,} test digits (one fixed noise draw each); noise "
             f"clip(x + {cfg.noise} * N(0, 1), 0, 1).")

    model = ConvDenoisingAutoencoder(28, cfg.channels, cfg.depth, cfg.bottleneck,
                                     cfg.activation).to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    mse = nn.functional.mse_loss
    noise_gen = ctx.torch_generator(1, device=ctx.device)

    def step(batch: tuple[Tensor, ...]) -> dict[str, Any]:
        (clean,) = batch
        noisy = add_noise(clean, cfg.noise, noise_gen)
        model.train()
        loss = mse(model(noisy), clean)  # noisy in, clean out
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    ctx.log(f"denoising autoencoder: code {cfg.bottleneck}, code maps "
            f"{'x'.join(map(str, model.code_shape))}, {n_parameters(model):,} parameters")
    result = fit(model, (xtr,), val=(noisy_va, xva), ctx=ctx, epochs=cfg.epochs, optimizer=opt,
                 loss_fn=mse, step=step, batch_size=cfg.batch_size, name="denoiser")

    model.eval()
    denoised = apply(model, noisy_te, ctx.device)
    clean_np, noisy_np, den_np = (t.numpy().astype(np.float64) for t in (xte, noisy_te,
                                                                           denoised))
    test_mse = float(np.mean((den_np - clean_np) ** 2))
    psnr_noisy, psnr_denoised = psnr(clean_np, noisy_np), psnr(clean_np, den_np)

    # feature quality: logistic regression on codes of clean digits
    n_probe = min(cfg.probe_train or len(xtr), len(xtr))
    ptr_x, ptr_y = xtr[:n_probe], d["y_train"][:n_probe]
    codes_tr = apply(model.encode, ptr_x, ctx.device).numpy()  # (n, K)
    codes_te = apply(model.encode, xte, ctx.device).numpy()  # (M, K)
    probes = {"encoder": linear_probe(codes_tr, ptr_y, codes_te, d["y_test"], seed=ctx.seed)}
    if cfg.baselines:
        pix_tr = ptr_x.reshape(len(ptr_x), -1).numpy().astype(np.float64)  # (n, 784)
        pix_te = xte.reshape(len(xte), -1).numpy().astype(np.float64)
        probes["pixels"] = linear_probe(pix_tr, ptr_y, pix_te, d["y_test"], seed=ctx.seed)
        pca_tr, pca_te = pca_features(pix_tr, pix_te, cfg.bottleneck)
        probes["pca"] = linear_probe(pca_tr, ptr_y, pca_te, d["y_test"], seed=ctx.seed)
    manual_n, manual_shape = manual_feature_count()

    ctx.metrics.update({
        "test_mse": test_mse, "psnr_noisy": psnr_noisy, "psnr_denoised": psnr_denoised,
        "psnr_gain": psnr_denoised - psnr_noisy,
        "noisy_test_mse": float(np.mean((noisy_np - clean_np) ** 2)),
        "probe_encoder": probes["encoder"], "bottleneck": cfg.bottleneck,
        "parameters": n_parameters(model), "probe_train_digits": int(n_probe),
        "train_seconds": round(result.seconds, 2), "manual_features_per_image": manual_n,
        "pixels_per_image": PIXELS,
    })
    if cfg.baselines:
        ctx.metrics["probe_pixels"], ctx.metrics["probe_pca"] = probes["pixels"], probes["pca"]

    ctx.table("Denoising the test digits (pixels in [0, 1])",
              ["images compared with the clean digits", "MSE per pixel", "PSNR (dB)"],
              [["noisy input", ctx.metrics["noisy_test_mse"], psnr_noisy],
               ["denoised output", test_mse, psnr_denoised]])
    rows = [["encoder code (this model)", cfg.bottleneck, probes["encoder"]]]
    if cfg.baselines:
        rows += [["raw pixels", PIXELS, probes["pixels"]],
                 [f"PCA, {cfg.bottleneck} components", cfg.bottleneck, probes["pca"]]]
    ctx.table(f"Linear probe: logistic regression fit on {n_probe:,} training digits, test "
              "accuracy", ["features", "numbers per image", "test accuracy"], rows)
    ctx.table("Size of the features", ["encoder", "features per image", "vs 784 pixels"],
              [["manual's layer sizes (conv 32, 64, 128 with two pools)",
                f"{manual_n:,} ({'x'.join(map(str, manual_shape))})", manual_n / PIXELS],
               ["this model's bottleneck", cfg.bottleneck, cfg.bottleneck / PIXELS]])

    pick = spread_over_classes(d["y_test"], cfg.n_show)
    ctx.figure(image_rows([("noisy", noisy_np[pick, 0]), ("denoised", den_np[pick, 0]),
                           ("clean", clean_np[pick, 0])],
                          f"PSNR {psnr_noisy:.1f} dB noisy -> {psnr_denoised:.1f} dB denoised"),
               "denoising.png", f"{cfg.n_show} test digits (one per class in turn): noisy "
               f"input (noise factor {cfg.noise}), the autoencoder's output, the clean digit.")
    ctx.figure(_code_figure(codes_te, d["y_test"], cfg.bottleneck), "bottleneck.png",
               f"Bottleneck codes ({cfg.bottleneck} numbers) of five test digits per class, "
               "one row each, grouped by class; colour is the value of each code unit.")
    ctx.figure(loss_curves(result.history, "denoising autoencoder (noisy -> clean)"), "loss.png",
               "Training and validation error (MSE of the output against the clean digit).")
    ctx.save_model(model, input="MNIST pixels / 255, shape (1, 28, 28), noisy",
                   output="denoised image", channels=cfg.channels, depth=cfg.depth,
                   bottleneck=cfg.bottleneck, activation=cfg.activation)

    better = psnr_denoised > psnr_noisy
    ctx.infer(f"The autoencoder {'raises' if better else 'lowers'} the PSNR of the "
              f"{len(xte):,} noisy test digits from {psnr_noisy:.2f} dB to {psnr_denoised:.2f} "
              f"dB ({psnr_denoised - psnr_noisy:+.2f} dB): the MSE against the clean digits "
              f"{'falls' if better else 'rises'} from {ctx.metrics['noisy_test_mse']:.4f} to "
              f"{test_mse:.4f}" + ("." if better else "; at this training budget it does not "
                                   "denoise."))
    if cfg.baselines:
        order = sorted(probes, key=probes.get, reverse=True)
        names = {"encoder": f"the {cfg.bottleneck}-number code", "pixels": "the 784 raw pixels",
                 "pca": f"{cfg.bottleneck} PCA features"}
        gap = probes["encoder"] - probes["pca"]
        ctx.infer("Linear-probe test accuracy: " + ", ".join(
            f"{names[k]} {probes[k]:.3f}" for k in order) + "; the code "
            + ("beats" if gap > 0 else "does not beat") + " PCA features of the same size "
            f"({gap:+.3f}) and is {probes['encoder'] - probes['pixels']:+.3f} against the raw "
            f"pixels, with {PIXELS / cfg.bottleneck:.1f} times fewer numbers.")
    else:
        ctx.infer(f"A logistic regression on the {cfg.bottleneck}-number code reaches "
                  f"{probes['encoder']:.3f} test accuracy.")
    ctx.infer(f"An encoder with the manual's layer sizes outputs {manual_n:,} numbers per image "
              f"({'x'.join(map(str, manual_shape))}), {manual_n / PIXELS:.1f} times the "
              f"{PIXELS} pixels: no bottleneck. This model's code has {cfg.bottleneck}.")


def _code_figure(codes: np.ndarray, labels: np.ndarray, k: int, per_class: int = 5) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, ticks = [], []
    for c in range(10):
        idx = np.flatnonzero(labels == c)[:per_class]
        ticks.append((len(rows) + (len(idx) - 1) / 2, str(c)))
        rows += [codes[i] for i in idx]
    mat = np.array(rows)  # (<= 50, K)
    fig, ax = plt.subplots(figsize=(min(1.5 + 0.18 * k, 12), 5))
    lim = float(np.abs(mat).max()) or 1.0
    im = ax.imshow(mat, aspect="auto", cmap="coolwarm", vmin=-lim, vmax=lim,
                   interpolation="nearest")
    ax.set_yticks([t for t, _ in ticks], [lab for _, lab in ticks])
    ax.set_ylabel("test digit (by class)")
    ax.set_xlabel("code unit")
    fig.colorbar(im, ax=ax, fraction=0.04)
    ax.set_title(f"Bottleneck codes ({k} numbers per image)", fontsize=9)
    fig.tight_layout()
    return fig


DENOISING = Implementation(
    config=DenoisingConfig, run=run_denoising,
    profiles={
        "smoke": {"epochs": 1, "n_train": 500, "channels": 8, "probe_train": 300, "n_show": 5},
        # the manual's Keras example: 50 epochs of batch 128 (its conv widths 32/64/128 are
        # the defect; the bottleneck here replaces them)
        "full": {"epochs": 50, "batch_size": 128, "channels": 32, "probe_train": 10000},
    },
)


# ----------------------------------------------------------------- 13.2 the study


@dataclass
class DAEStudyConfig(StudySettings):
    trial_epochs: int = 3  # epochs of every trial
    bottlenecks: tuple[int, ...] = (8, 16, 32, 64)  # code sizes
    depths: tuple[int, ...] = (1, 2, 3)  # conv blocks on each side
    activations: tuple[str, ...] = ("relu", "leaky_relu", "tanh", "sigmoid")

    def validate(self) -> None:
        super().validate()
        bad = [a for a in self.activations if a not in ACTIVATIONS]
        if bad:
            raise ValueError(f"activations {bad}: use {', '.join(ACTIVATIONS)}")


def dae_study(cfg: DAEStudyConfig) -> Study:
    """The 13.2 study over 13.1's settings: reconstruction error and probe accuracy."""
    return Study(program="13.1", base_profile=cfg.trial_profile,
                 base={"epochs": cfg.trial_epochs, "baselines": False},
                 space={"bottleneck": cfg.bottlenecks, "depth": cfg.depths,
                        "activation": cfg.activations},
                 metric="test_mse", direction="minimize", mode=cfg.mode,
                 n_trials=cfg.n_trials, report=("probe_encoder", "psnr_denoised", "parameters"),
                 plot=("test_mse", "probe_encoder"))


def run_dae_study(cfg: DAEStudyConfig, ctx: RunContext) -> None:
    result = execute(dae_study(cfg), ctx, workers=cfg.workers, storage=cfg.storage or None)
    record(result, ctx)
    done = result.complete
    if len(done) >= 2:
        best_probe = max(done, key=lambda r: r["probe_encoder"])
        best_mse = min(done, key=lambda r: r["test_mse"])
        same = best_probe["trial"] == best_mse["trial"]
        ctx.metrics["best_probe_encoder"] = best_probe["probe_encoder"]
        ctx.infer(f"The best probe accuracy, {best_probe['probe_encoder']:.3f}, comes from "
                  f"trial {best_probe['trial']}; the lowest reconstruction error from trial "
                  f"{best_mse['trial']}: " + ("the same setting." if same else
                                                "a better denoiser is not the better feature "
                                                "extractor here."))


DAE_STUDY = Implementation(
    config=DAEStudyConfig, run=run_dae_study,
    profiles={
        "smoke": {"trial_profile": "smoke", "trial_epochs": 1, "bottlenecks": (8, 32),
                  "depths": (2,), "activations": ("relu", "tanh")},
        "full": {"trial_profile": "full", "trial_epochs": 50},
    },
)
