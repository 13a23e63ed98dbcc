"""Experiment 12: a dense autoencoder on MNIST (12.1) and the study of its settings (12.2).

12.1 trains the manual's 784-128-64-32-64-128-784 autoencoder (ReLU, sigmoid output,
mean squared error, Adam) and measures its test reconstruction error beside PCA with
as many components as the code has units: PCA is the best *linear* encoder-decoder
pair in squared error (Eckart-Young; an autoencoder with linear units learns the same
subspace, Baldi and Hornik 1989), so a non-linear autoencoder earns its keep only by
going below it. 12.2 runs the study the manual only describes (dlab.studies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dlab.data.mnist import load_mnist
from dlab.models.autoencoder import ACTIVATIONS, DenseAutoencoder, halving_widths
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.studies import Study, StudySettings, execute, record
from dlab.training import evaluate, fit

SOURCES = ("auto", "bundled", "full")


# ------------------------------------------------------------------ shared pieces


def mnist_split(source: str, data_dir: Any, n_train: int, val_fraction: float,
                rng: np.random.Generator, ctx: RunContext | None = None) -> dict[str, Any]:
    """MNIST scaled to [0, 1]: train/val/test images (N, 28, 28) float32 and labels.

    `n_train` training digits (0 = all) are drawn with `rng`; the last `val_fraction`
    of them is held out for validation curves. The test digits are never trained on.
    """
    data = load_mnist(source, data_dir)
    if ctx is not None:
        ctx.data(data.describe())
    order = rng.permutation(len(data.x_train))
    if n_train:
        order = order[:n_train]
    n_val = max(1, int(round(len(order) * val_fraction)))
    tr, va = order[:-n_val], order[-n_val:]
    x = data.x_train.astype(np.float32) / 255.0
    return {"x_train": x[tr], "y_train": data.y_train[tr], "x_val": x[va],
            "y_val": data.y_train[va], "x_test": data.x_test.astype(np.float32) / 255.0,
            "y_test": data.y_test}


def pca_basis(train: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and top-k principal directions (D, k) of the rows of `train` (N, D):
    eigenvectors of the scatter matrix (x - mean)^T (x - mean) with the largest eigenvalues
    (= the leading right singular vectors of the centred data)."""
    mean = train.mean(axis=0)
    centred = train - mean
    _, vecs = np.linalg.eigh(centred.T @ centred)  # (D, D), eigenvalues ascending
    return mean, vecs[:, ::-1][:, :k]


def pca_reconstruction_mse(train: np.ndarray, test: np.ndarray, k: int) -> float:
    """Per-pixel test MSE of PCA with k components fit on the training rows only.

    train (N, D), test (M, D): x_hat = mean + (x - mean) V V^T with V = pca_basis(train, k).
    """
    mean, v = pca_basis(train, k)
    recon = mean + (test - mean) @ v @ v.T  # (M, D)
    return float(np.mean((recon - test) ** 2))


def spread_over_classes(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of n examples taking the classes in turn (first of each class, then second...),
    so a figure shows every digit even when the test set is sorted by class."""
    groups = [list(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    out: list[int] = []
    for rank in range(max(len(g) for g in groups)):
        out += [g[rank] for g in groups if rank < len(g)]
        if len(out) >= n:
            break
    return np.array(out[:n], dtype=np.int64)


def image_rows(rows: list[tuple[str, np.ndarray]], title: str) -> Any:
    """A figure of labelled rows of images; each entry is (label, images (n, H, W))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(imgs) for _, imgs in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n, 1.25 * len(rows)), squeeze=False)
    for r, (label, imgs) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(imgs):
                ax.imshow(imgs[c], cmap="gray", vmin=0, vmax=1)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def loss_curves(history: list[dict[str, Any]], title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["loss"] for r in history], marker="o", label="training")
    if history and "val_loss" in history[0]:
        ax.plot(epochs, [r["val_loss"] for r in history], marker="o", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE per pixel")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- 12.1 the model


@dataclass
class AutoencoderConfig:
    epochs: int = 30  # passes over the training digits
    batch_size: int = 64  # digits per Adam step
    lr: float = 1e-3  # Adam learning rate
    depth: int = 2  # hidden layers on each side of the code (manual: 2)
    width: int = 128  # first hidden layer; each next one is half as wide (manual: 128, 64)
    latent: int = 32  # code size, also the number of PCA components compared (manual: 32)
    activation: str = "relu"  # relu, leaky_relu, tanh or sigmoid (manual: relu)
    n_train: int = 0  # training digits used (0 = all)
    val_fraction: float = 0.1  # share of the training digits kept for the validation curve
    source: str = "auto"  # MNIST: auto (full when present), bundled or full
    n_show: int = 10  # test digits drawn with their reconstructions

    def validate(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r}: use one of "
                             f"{', '.join(ACTIVATIONS)}")
        if self.depth < 1 or self.latent < 1 or self.width < 2 ** (self.depth - 1):
            raise ValueError(f"depth {self.depth}, width {self.width}, latent {self.latent}: "
                             "need depth >= 1, latent >= 1 and width >= 2^(depth-1)")
        if not 0 < self.val_fraction < 1 or self.n_train < 0 or self.n_show < 1:
            raise ValueError("val_fraction must be in (0, 1), n_train >= 0, n_show >= 1")
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r}: use auto, bundled or full")


def architecture(cfg: AutoencoderConfig, n_in: int = 784) -> str:
    hidden = halving_widths(cfg.width, cfg.depth)
    return "-".join(map(str, [n_in, *hidden, cfg.latent, *reversed(hidden), n_in]))


def run_autoencoder(cfg: AutoencoderConfig, ctx: RunContext) -> None:
    d = mnist_split(cfg.source, ctx.data_dir, cfg.n_train, cfg.val_fraction, ctx.rng, ctx)
    flat = {k: torch.from_numpy(d[k].reshape(len(d[k]), -1)) for k in
            ("x_train", "x_val", "x_test")}  # (N, 784)
    xtr, xva, xte = flat["x_train"], flat["x_val"], flat["x_test"]
    ctx.data(f"Used: {len(xtr):,} training digits, {len(xva):,} validation digits (curves "
             f"only), {len(xte):,} test digits; pixels scaled to [0, 1] and flattened to 784.")

    arch = architecture(cfg)
    model = DenseAutoencoder(784, halving_widths(cfg.width, cfg.depth), cfg.latent,
                             cfg.activation).to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    mse = nn.functional.mse_loss  # mean over pixels and images
    ctx.log(f"autoencoder {arch} ({cfg.activation}), {n_parameters(model):,} parameters")
    result = fit(model, (xtr, xtr), val=(xva, xva), ctx=ctx, epochs=cfg.epochs, optimizer=opt,
                 loss_fn=mse, batch_size=cfg.batch_size, name="autoencoder")
    test_mse = evaluate(model, (xte, xte), mse, device=ctx.device)["loss"]
    train_mse = evaluate(model, (xtr, xtr), mse, device=ctx.device)["loss"]

    xtr_np, xte_np = xtr.numpy().astype(np.float64), xte.numpy().astype(np.float64)
    pca_mse = pca_reconstruction_mse(xtr_np, xte_np, cfg.latent)
    mean_mse = float(np.mean((xte_np - xtr_np.mean(axis=0)) ** 2))

    ctx.metrics.update({
        "test_mse": test_mse, "train_mse": train_mse, "pca_test_mse": pca_mse,
        "mean_image_test_mse": mean_mse, "beats_pca": bool(test_mse < pca_mse),
        "architecture": arch, "parameters": n_parameters(model),
        "train_seconds": round(result.seconds, 2), "epochs_run": len(result.history),
    })
    ctx.table("Test reconstruction error (MSE per pixel, pixels in [0, 1])",
              ["model", "code size", "test MSE"],
              [[f"autoencoder {arch} ({cfg.activation})", cfg.latent, test_mse],
               [f"PCA, {cfg.latent} components (fit on the training digits)", cfg.latent,
                pca_mse],
               ["mean training image (no code)", 0, mean_mse]])

    pick = torch.from_numpy(spread_over_classes(d["y_test"], cfg.n_show))
    with torch.inference_mode():
        model.eval()
        recon = model(xte[pick].to(ctx.device)).cpu().numpy().reshape(-1, 28, 28)
    ctx.figure(image_rows([("test digit", d["x_test"][pick.numpy()]), ("reconstruction", recon)],
                          f"{arch} autoencoder: test MSE {test_mse:.4f}"),
               "reconstructions.png",
               f"Top: {cfg.n_show} test digits (one per class in turn); bottom: the "
               f"autoencoder's reconstructions from {cfg.latent} numbers each.")
    ctx.figure(loss_curves(result.history, f"{arch} autoencoder"), "loss.png",
               "Training and validation reconstruction error (MSE per pixel) per epoch.")
    ctx.save_model(model, input="MNIST pixels / 255, flattened to 784", architecture=arch,
                   activation=cfg.activation, hidden=list(halving_widths(cfg.width, cfg.depth)),
                   latent=cfg.latent)

    rel = (pca_mse - test_mse) / pca_mse * 100
    ctx.infer(f"The {arch} autoencoder reconstructs the {len(xte):,} test digits with MSE "
              f"{test_mse:.5f} per pixel; PCA with {cfg.latent} components, the best linear "
              f"code of that size, gives {pca_mse:.5f}, so the autoencoder is "
              + (f"{rel:.1f}% below the linear bound." if test_mse < pca_mse else
                 f"{-rel:.1f}% above it: at this training budget it has not beaten PCA."))
    ctx.infer(f"Predicting the mean training digit gives {mean_mse:.5f}, "
              f"{mean_mse / test_mse:.1f} times the autoencoder's error. Its training MSE is "
              f"{train_mse:.5f} against {test_mse:.5f} on test digits "
              f"({(test_mse - train_mse) / train_mse * 100:+.0f}%).")


AUTOENCODER = Implementation(
    config=AutoencoderConfig, run=run_autoencoder,
    profiles={
        "smoke": {"epochs": 2, "n_train": 600, "batch_size": 64, "n_show": 6},
        # the Keras deep-autoencoder example the manual follows: 50 epochs of batch 256
        "full": {"epochs": 50, "batch_size": 256},
    },
)


# ----------------------------------------------------------------- 12.2 the study


@dataclass
class AEStudyConfig(StudySettings):
    trial_epochs: int = 8  # epochs of every trial
    depths: tuple[int, ...] = (1, 2, 3)  # hidden layers on each side
    widths: tuple[int, ...] = (64, 128, 256)  # first hidden layer (halving after it)
    activations: tuple[str, ...] = ("relu", "leaky_relu", "tanh", "sigmoid")
    latents: tuple[int, ...] = (8, 16, 32, 64)  # code sizes
    lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3)  # Adam learning rates

    def validate(self) -> None:
        super().validate()
        bad = [a for a in self.activations if a not in ACTIVATIONS]
        if bad:
            raise ValueError(f"activations {bad}: use {', '.join(ACTIVATIONS)}")


def ae_study(cfg: AEStudyConfig) -> Study:
    """The 12.2 study over 12.1's settings."""
    return Study(program="12.1", base_profile=cfg.trial_profile,
                 base={"epochs": cfg.trial_epochs},
                 space={"depth": cfg.depths, "width": cfg.widths,
                        "activation": cfg.activations, "latent": cfg.latents, "lr": cfg.lrs},
                 metric="test_mse", direction="minimize", mode=cfg.mode,
                 n_trials=cfg.n_trials, report=("pca_test_mse", "parameters"))


def run_ae_study(cfg: AEStudyConfig, ctx: RunContext) -> None:
    result = execute(ae_study(cfg), ctx, workers=cfg.workers, storage=cfg.storage or None)
    record(result, ctx)
    beat = [r for r in result.complete if r["test_mse"] < r["pca_test_mse"]]
    ctx.metrics["trials_beating_pca"] = len(beat)
    ctx.infer(f"{len(beat)} of {len(result.complete)} completed settings reconstruct the test "
              "digits better than PCA with as many components as their code"
              + (": " + "; ".join(f"trial {r['trial']} ({_changed(r)})" for r in beat)
                 if 0 < len(beat) <= 6 else "."))


def _changed(row: dict[str, Any]) -> str:
    v = row.get("varied")
    return "base setting" if v in ("base", "") else f"{v}={row[v]}"


AE_STUDY = Implementation(
    config=AEStudyConfig, run=run_ae_study,
    profiles={
        "smoke": {"trial_profile": "smoke", "trial_epochs": 1, "depths": (2,),
                  "widths": (128,), "activations": ("relu", "tanh"), "latents": (8, 32),
                  "lrs": (1e-3,)},
        "full": {"trial_profile": "full", "trial_epochs": 50},
    },
)
