"""Figures more than one program draws: learning curves, confusion matrices, rows and
grids of images. Each function returns a matplotlib figure; the caller saves it with
`ctx.figure(fig, name, caption)`, which writes the PNG atomically and closes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (figures go to files, never a window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(history: list[dict[str, Any]], *, acc: bool = True,
                    train_label: str = "training (mean during epoch)",
                    loss_label: str = "cross-entropy") -> Any:
    """Loss (and accuracy when `acc`) per epoch from fit's history rows
    (keys epoch, loss, val_loss and, for accuracy, acc and val_acc)."""
    plt = pyplot()
    ep = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 2 if acc else 1, figsize=(10 if acc else 5, 3.6),
                             squeeze=False)
    a1 = axes[0][0]
    a1.plot(ep, [r["loss"] for r in history], "o-", label=train_label)
    if history and "val_loss" in history[0]:
        a1.plot(ep, [r["val_loss"] for r in history], "s-", label="validation")
    a1.set_ylabel(loss_label)
    if acc:
        a2 = axes[0][1]
        a2.plot(ep, [100 * r["acc"] for r in history], "o-", label=train_label)
        if history and "val_acc" in history[0]:
            a2.plot(ep, [100 * r["val_acc"] for r in history], "s-", label="validation")
        a2.set_ylabel("accuracy (%)")
    for ax in axes[0]:
        ax.set_xlabel("epoch")
        if len(ep) <= 30:
            ax.set_xticks(ep)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def confusion_figure(cm: np.ndarray, classes: list[str], title: str) -> Any:
    """A confusion matrix (rows true classes, columns predicted) with counts written in."""
    plt = pyplot()
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * k, 1.2 + 0.5 * k))
    ax.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def tile(images: np.ndarray, ncol: int, pad: int = 1) -> np.ndarray:
    """Images (N, H, W) in [0, 1] -> one picture (rows*(H+pad)+pad, ncol*(W+pad)+pad),
    filled row by row, with grey (0.5) gaps."""
    n, h, w = images.shape
    rows = max(1, math.ceil(n / ncol))
    out = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad), 0.5, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        out[pad + r * (h + pad):pad + r * (h + pad) + h,
            pad + c * (w + pad):pad + c * (w + pad) + w] = images[i]
    return out


def by_class_figure(images: Any, labels: np.ndarray, names: list[str], per_class: int,
                    title: str, gap: float = 0.5,
                    to_pixels: Callable[[Any], np.ndarray] = np.asarray) -> Any:
    """The first `per_class` images of every class, one row per class labelled with its
    name, drawn as one picture (a grid of axes is slow). `to_pixels` turns the chosen
    images (`images[idx]`, any array type) into (n, H, W) grey or (n, H, W, 3) colour
    pixels in [0, 1]; labels (N,) are class indices; `gap` is the grey between images."""
    plt = pyplot()
    rows = [np.flatnonzero(labels == k)[:per_class] for k in range(len(names))]
    pixels = to_pixels(images[np.concatenate(rows)])
    h, w = pixels.shape[1:3]
    pad = 2
    grid = np.full((len(names) * (h + pad) + pad, per_class * (w + pad) + pad,
                    *pixels.shape[3:]), gap, dtype=np.float32)
    i = 0
    for k, row in enumerate(rows):
        for j in range(len(row)):
            r, c = pad + k * (h + pad), pad + j * (w + pad)
            grid[r:r + h, c:c + w] = pixels[i]
            i += 1
    fig, ax = plt.subplots(figsize=(0.5 + 0.42 * per_class, 0.3 + 0.42 * len(names)))
    ax.imshow(grid, cmap="gray" if pixels.ndim == 3 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([pad + k * (h + pad) + h / 2 for k in range(len(names))], names, fontsize=7)
    ax.set_title(title, fontsize=8)
    return fig


def image_rows(rows: list[tuple[str, np.ndarray]], title: str) -> Any:
    """Labelled rows of images; each entry is (label, images (n, H, W) in [0, 1])."""
    plt = pyplot()
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


def loss_curves(history: list[dict[str, Any]], title: str, ylabel: str = "MSE per pixel"
                ) -> Any:
    """Training and (when present) validation loss per epoch."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["loss"] for r in history], marker="o", label="training")
    if history and "val_loss" in history[0]:
        ax.plot(epochs, [r["val_loss"] for r in history], marker="o", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
