"""Experiment 15: PixelCNN and PixelRNN (Row LSTM) on binarised MNIST (15.1), and the
study of their depth, kernel size and recurrent unit (15.2).

Both models factorise an H x W binary image in raster order,
p(x) = prod_i p(x_i | x_1 .. x_{i-1}), with a Bernoulli per pixel whose logit comes
from masked convolutions (PixelCNN) or from a recurrence over rows (Row LSTM); van den
Oord, Kalchbrenner and Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016. The
log-likelihood is exact, so training minimises the negative log-likelihood itself,
loss = -(1/B) sum_b log p(x_b) in nats per image, and test NLL is reported in nats per
image and in bits per pixel (NLL / (784 ln 2)). Images are drawn pixel by pixel.

Profiles: `quick` trains small models (PixelCNN 32 channels x 3 blocks, one Row LSTM
layer of 16) on 1,350 digits; `full` trains the default models (PixelCNN 64 channels x 7
blocks, Row LSTM 2 layers of 64) on every training digit until early stopping. On one
CPU thread a full epoch over 54,000 digits takes about ten minutes for that PixelCNN and
most of an hour for that Row LSTM (bench/pixel_models.py measures the speed), so `full`
is meant for a GPU.

The manual's PixelCNN stacks masked convolutions with no non-linearity between them,
so the whole stack is one masked linear map of the image: `LinearPixelCNN` is that
model, read as Bernoulli logits so that its likelihood can be measured beside the real
one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dlab.data import binary as binary_data
from dlab.metrics import bernoulli_baseline_nll, nats_to_bits_per_dim
from dlab.models.pixelcnn import MaskedConv2d, PixelCNN, bernoulli_log_prob
from dlab.models.pixelrnn import PixelRNN
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.studies import Study, StudySettings, execute, record
from dlab.training import FitResult, fit

MODELS = ("pixelcnn", "pixelrnn")
CELLS = ("lstm", "gru")
LAYER_TYPES = ("row", "diagonal")

# ------------------------------------------------------------------ shared pieces


class LinearPixelCNN(nn.Module):
    """The manual's PixelCNN: masked convolutions stacked with nothing between them.

    A mask-A k0 x k0 convolution (1 -> c), `n_layers` mask-B k x k convolutions (c -> c)
    and a 1x1 convolution (c -> 1), all linear, so logits = W x + b for one masked
    (causal) matrix W: a logistic regression of each pixel on the earlier pixels inside
    the stack's receptive field. Read as Bernoulli logits it is still a normalised
    density, so its NLL can be compared with the real PixelCNN's.

    Shapes: x (B, 1, H, W) -> logits (B, 1, H, W).
    """

    def __init__(self, channels: int = 16, n_layers: int = 2, kernel_size: int = 3,
                 first_kernel_size: int = 7):
        super().__init__()
        layers: list[nn.Module] = [MaskedConv2d(1, channels, first_kernel_size, "A")]
        layers += [MaskedConv2d(channels, channels, kernel_size, "B") for _ in range(n_layers)]
        layers.append(nn.Conv2d(channels, 1, 1))
        self.net = nn.Sequential(*layers)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(2 * x - 1)  # (B, 1, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-likelihood (B,) in nats of binary images x (B, 1, H, W)."""
        return bernoulli_log_prob(self.logits(x), x)


@torch.no_grad()
def mean_nll(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> float:
    """Mean negative log-likelihood in nats per image of x (N, 1, H, W), in eval mode."""
    was = model.training
    model.eval()
    total = 0.0
    for i in range(0, len(x), batch_size):
        total += float(-model.log_prob(x[i:i + batch_size]).double().sum())
    model.train(was)
    return total / max(len(x), 1)


def nll_step(model: nn.Module, optimizer: torch.optim.Optimizer,
             max_grad_norm: float | None = None
             ) -> Callable[[tuple[torch.Tensor, ...]], dict[str, Any]]:
    """One maximum-likelihood step on a batch (x,), x (B, 1, H, W) binary:
    loss = -(1/B) sum_b log p(x_b), nats per image (van den Oord et al. 2016, eq. 1)."""

    def step(batch: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        (x,) = batch
        model.train()
        loss = -model.log_prob(x).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        return {"loss": loss.detach()}

    return step


def train_pixel(model: nn.Module, train: Any, x_val: torch.Tensor, ctx: RunContext, *,
                epochs: int, lr: float, batch_size: int, patience: int | None, name: str,
                max_grad_norm: float | None = 1.0,
                on_epoch_end: Callable[[int, dict[str, Any]], dict[str, Any] | None]
                | None = None) -> FitResult:
    """Fit a pixel model by maximum likelihood with Adam; early stopping on val NLL.

    train: (x,) with x (N, 1, H, W) on ctx.device, or an iterable of such batches.
    x_val: (M, 1, H, W). The history gets `loss` (training NLL, nats per image, averaged
    over the epoch) and `val_nll`; the weights of the best val_nll epoch are restored.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return fit(model, train, ctx=ctx, epochs=epochs, optimizer=opt,
               step=nll_step(model, opt, max_grad_norm), batch_size=batch_size,
               patience=patience, monitor="val_nll", name=name, on_epoch_end=on_epoch_end,
               validate=lambda: {"val_nll": mean_nll(model, x_val)})


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tile(images: np.ndarray, ncol: int, pad: int = 1) -> np.ndarray:
    """Images (N, H, W) in [0, 1] -> one picture, row by row, with grey (0.5) gaps."""
    n, h, w = images.shape
    rows = max(1, math.ceil(n / ncol))
    out = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad), 0.5, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        out[pad + r * (h + pad):pad + r * (h + pad) + h,
            pad + c * (w + pad):pad + c * (w + pad) + w] = images[i]
    return out


# ------------------------------------------------------------------- 15.1 the program


@dataclass
class PixelConfig:
    source: str = "auto"  # MNIST: auto (full when present), bundled or full
    binarization: str = "stochastic"  # stochastic (one fixed Bernoulli draw) or threshold
    n_train: int = 1500  # training digits used, validation included (0 = all)
    n_test: int = 500  # test digits scored (0 = all)
    val_fraction: float = 0.1  # share of the training digits held out for early stopping
    models: tuple[str, ...] = ("pixelcnn", "pixelrnn")  # models trained
    cnn_channels: int = 32  # PixelCNN residual-stream width (paper's Figure 5: 2h)
    cnn_layers: int = 3  # PixelCNN residual blocks (each one mask-B k x k convolution)
    cnn_kernel: int = 3  # k of PixelCNN's mask-B convolutions (odd)
    rnn_hidden: int = 16  # PixelRNN hidden channels h
    rnn_layers: int = 1  # PixelRNN recurrent layers
    rnn_cell: str = "lstm"  # recurrent unit: lstm or gru
    rnn_layer_type: str = "row"  # row (Row LSTM) or diagonal (Diagonal BiLSTM)
    epochs: int = 4  # maximum passes over the training digits (early stopping may end sooner)
    batch_size: int = 32  # images per Adam step
    lr: float = 2e-3  # Adam learning rate
    patience: int = 3  # epochs without a better validation NLL before stopping
    n_samples: int = 8  # images drawn pixel by pixel from each model (0 = none)
    sample_size: int = 28  # height and width of the drawn images
    linear_defect: bool = True  # also fit the manual's PixelCNN (no non-linearities)

    def validate(self) -> None:
        binary_data.check_settings(self.source, self.binarization, self.val_fraction)
        bad = [m for m in self.models if m not in MODELS]
        if bad or not self.models:
            raise ValueError(f"models {list(self.models)}: choose from {', '.join(MODELS)}")
        if self.rnn_cell not in CELLS:
            raise ValueError(f"rnn_cell {self.rnn_cell!r}: use lstm or gru")
        if self.rnn_layer_type not in LAYER_TYPES:
            raise ValueError(f"rnn_layer_type {self.rnn_layer_type!r}: use row or diagonal")
        if self.cnn_kernel % 2 == 0 or self.cnn_kernel < 1:
            raise ValueError(f"cnn_kernel must be odd and positive, got {self.cnn_kernel}")
        if self.cnn_channels < 2 or self.cnn_layers < 0:
            raise ValueError("cnn_channels must be >= 2 and cnn_layers >= 0")
        if self.rnn_hidden < 1 or self.rnn_layers < 1:
            raise ValueError("rnn_hidden and rnn_layers must be >= 1")
        if self.n_train < 0 or self.n_test < 0 or self.n_samples < 0:
            raise ValueError("n_train, n_test and n_samples must be >= 0")
        if self.n_train and self.n_train < 20:
            raise ValueError(f"n_train must be 0 (all) or at least 20, got {self.n_train}")
        if not 1 <= self.sample_size <= 64:
            raise ValueError(f"sample_size must be 1 to 64, got {self.sample_size}")


def build_model(kind: str, cfg: PixelConfig) -> nn.Module:
    if kind == "pixelcnn":
        return PixelCNN(cfg.cnn_channels, cfg.cnn_layers, cfg.cnn_kernel)
    return PixelRNN(cfg.rnn_hidden, cfg.rnn_layers, cfg.rnn_cell, cfg.rnn_layer_type)


def describe_model(kind: str, cfg: PixelConfig) -> str:
    if kind == "pixelcnn":
        return (f"PixelCNN, {cfg.cnn_channels} channels, {cfg.cnn_layers} residual blocks of "
                f"{cfg.cnn_kernel}x{cfg.cnn_kernel} mask-B convolutions")
    unit = "LSTM" if cfg.rnn_cell == "lstm" else "GRU"
    kind_name = f"Row {unit}" if cfg.rnn_layer_type == "row" else f"Diagonal Bi{unit}"
    return f"PixelRNN ({kind_name}), {cfg.rnn_layers} layer(s) of {cfg.rnn_hidden} channels"


def _mnist(cfg: PixelConfig, ctx: RunContext) -> dict[str, torch.Tensor]:
    """Binarised MNIST as float images (N, 1, 28, 28) on ctx.device: train, val, test."""
    data = binary_data.binarized_mnist(cfg.source, ctx.data_dir, method=cfg.binarization)
    ctx.data(data.describe())
    h, w = data.shape
    out = binary_data.splits(data, cfg.n_train, cfg.val_fraction, cfg.n_test)
    ctx.data(f"Used: {len(out['train']):,} training digits, {len(out['val']):,} validation "
             "digits (early stopping; held out of the training rows with a fixed seed) and "
             f"{len(out['test']):,} test digits, each a {h}x{w} binary image.")
    return {k: torch.from_numpy(v).float().reshape(-1, 1, h, w).to(ctx.device)  # (N, 1, H, W)
            for k, v in out.items()}


def _fit_one(model: nn.Module, label: str, tag: str, cfg: PixelConfig, ctx: RunContext,
             data: dict[str, torch.Tensor]) -> tuple[FitResult, float]:
    ctx.log(f"{tag}: {label}, {n_parameters(model):,} parameters")
    result = train_pixel(model, (data["train"],), data["val"], ctx, epochs=cfg.epochs,
                         lr=cfg.lr, batch_size=cfg.batch_size, patience=cfg.patience, name=tag)
    return result, mean_nll(model, data["test"])


def run_pixel(cfg: PixelConfig, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    data = _mnist(cfg, ctx)
    d = data["train"][0].numel()
    flat = {k: v.reshape(len(v), -1).cpu().numpy() for k, v in data.items()}  # (N, 784)
    baseline = bernoulli_baseline_nll(flat["train"], flat["test"])
    ctx.metrics["bernoulli_test_nll"] = baseline
    ctx.metrics["bernoulli_test_bits_per_dim"] = nats_to_bits_per_dim(baseline, d)
    rows = [["independent Bernoulli per pixel (training frequencies)", d, "-", "-", "-",
             baseline, nats_to_bits_per_dim(baseline, d)]]
    models: dict[str, nn.Module] = {}
    curves: dict[str, list[float]] = {}
    for kind in cfg.models:
        model = build_model(kind, cfg).to(ctx.device)
        label = describe_model(kind, cfg)
        result, nll = _fit_one(model, label, kind, cfg, ctx, data)
        models[kind] = model
        curves[label] = result.column("val_nll")
        per_epoch = float(np.mean(result.column("seconds")))
        ctx.metrics.update({
            f"{kind}_test_nll": nll, f"{kind}_test_bits_per_dim": nats_to_bits_per_dim(nll, d),
            f"{kind}_params": n_parameters(model), f"{kind}_seconds": round(result.seconds, 2),
            f"{kind}_seconds_per_epoch": round(per_epoch, 3),
            f"{kind}_epochs_run": len(result.history), f"{kind}_best_epoch": result.best_epoch,
            f"{kind}_below_baseline": bool(nll < baseline),
        })
        rows.append([label, n_parameters(model), f"{result.best_epoch} of {len(result.history)}",
                     round(per_epoch, 2), round(result.seconds, 1), nll,
                     nats_to_bits_per_dim(nll, d)])
        ctx.save_model(model, name=f"{kind}.pt", architecture=label,
                       input="binarised MNIST images (1, 28, 28), pixels 0/1, fed as 2x - 1",
                       binarization=cfg.binarization, seed=binary_data.BINARIZE_SEED)
        ctx.infer(f"{label}: test NLL {nll:.2f} nats per image "
                  f"({nats_to_bits_per_dim(nll, d):.4f} bits/pixel) on {len(data['test']):,} "
                  f"test digits, {abs(baseline - nll):.2f} nats "
                  + ("below" if nll < baseline else "ABOVE")
                  + f" the independent-Bernoulli baseline ({baseline:.2f}); "
                  f"{per_epoch:.1f} s per epoch over {len(data['train']):,} digits, best "
                  f"validation NLL at epoch {result.best_epoch} of {len(result.history)}.")
    if cfg.linear_defect:
        rows.append(_linear_defect(cfg, ctx, data, baseline, d, curves))
    ctx.table("Test negative log-likelihood on binarised MNIST (nats per image; lower is "
              "better)", ["model", "parameters", "best epoch", "s per epoch", "training s",
                          "test NLL (nats)", "bits per pixel"], rows)
    if len(models) == 2:
        a, b = ctx.metrics["pixelcnn_test_nll"], ctx.metrics["pixelrnn_test_nll"]
        ra = ctx.metrics["pixelcnn_seconds_per_epoch"]
        rb = ctx.metrics["pixelrnn_seconds_per_epoch"]
        ctx.infer(f"The PixelCNN scores {a:.2f} and the PixelRNN {b:.2f} nats: the "
                  f"{'PixelCNN' if a < b else 'PixelRNN'} is {abs(a - b):.2f} nats better at "
                  f"these sizes; an epoch took {ra:.1f} s and {rb:.1f} s "
                  f"(the PixelRNN's {rb / max(ra, 1e-9):.2f} times the PixelCNN's"
                  + ("; its rows are computed one after another)." if rb > ra else ")."))
    ctx.infer("Published NLLs (full 60,000/10,000 set, large models trained to convergence): "
              "PixelCNN 81.30 nats, Row LSTM 80.54, Diagonal BiLSTM 79.20 (van den Oord et al. "
              "2016, Table 2). " + ("This run used the full set." if len(data["train"]) > 40_000
                                    else f"This run trained on {len(data['train']):,} digits "
                                    "with small models, so its numbers are not comparable."))
    ctx.note("Time per epoch includes scoring the validation digits; timings are wall-clock "
             "on a machine that may be shared with other work.")
    if cfg.n_samples and models:
        _sample_figure(cfg, ctx, models, data["test"])
    if curves:
        fig, ax = plt.subplots(figsize=(6, 3.4))
        for label, ys in curves.items():
            ax.plot(range(1, len(ys) + 1), ys, marker="o", ms=3, label=label)
        ax.axhline(baseline, color="grey", ls="--", lw=1, label="independent Bernoulli (test)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation NLL (nats per image)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title("Validation negative log-likelihood per epoch", fontsize=9)
        fig.tight_layout()
        ctx.figure(fig, "val_nll.png", "Validation NLL per epoch of each model (the weights "
                   "of the lowest point are kept), with the Bernoulli baseline's test NLL.")


def _linear_defect(cfg: PixelConfig, ctx: RunContext, data: dict[str, torch.Tensor],
                   baseline: float, d: int, curves: dict[str, list[float]]) -> list[Any]:
    """Fit the manual's PixelCNN (masked convolutions, nothing between them); adds its
    validation curve to `curves` and returns its row of the results table."""
    model = LinearPixelCNN(cfg.cnn_channels, cfg.cnn_layers, cfg.cnn_kernel).to(ctx.device)
    label = (f"the manual's PixelCNN: {cfg.cnn_layers + 2} masked convolutions without "
             "non-linearities (one linear map)")
    result, nll = _fit_one(model, label, "linear-pixelcnn", cfg, ctx, data)
    curves["the manual's PixelCNN (no non-linearities)"] = result.column("val_nll")
    ctx.metrics.update({"linear_pixelcnn_test_nll": nll,
                        "linear_pixelcnn_params": n_parameters(model)})
    line = (f"The manual's PixelCNN, the same masked convolutions with no non-linearity "
            f"between them, is one linear map of the earlier pixels; read as Bernoulli logits "
            f"and trained the same way it scores {nll:.2f} nats")
    if "pixelcnn_test_nll" in ctx.metrics:
        real = ctx.metrics["pixelcnn_test_nll"]
        line += (f", {nll - real:+.2f} nats against the PixelCNN with ReLUs ({real:.2f})")
    ctx.infer(line + f" (baseline {baseline:.2f}). The manual also trains against grey levels "
              "rather than binary pixels, so its loss is no likelihood at all.")
    per_epoch = float(np.mean(result.column("seconds")))
    return [label, n_parameters(model), f"{result.best_epoch} of {len(result.history)}",
            round(per_epoch, 2), round(result.seconds, 1), nll, nats_to_bits_per_dim(nll, d)]


def _sample_figure(cfg: PixelConfig, ctx: RunContext, models: dict[str, nn.Module],
                   x_test: torch.Tensor) -> None:
    import matplotlib.pyplot as plt

    n, s = cfg.n_samples, cfg.sample_size
    ncol = math.ceil(math.sqrt(n))
    spread = np.linspace(0, len(x_test) - 1, n).astype(int)  # the test set is sorted by class
    panels = [("binarised test digits", x_test[spread, 0].cpu().numpy())]
    for i, (kind, model) in enumerate(models.items()):
        model.eval()
        g = ctx.torch_generator(100 + i, device=ctx.device)
        t0 = time.perf_counter()
        imgs = model.sample(n, s, s, generator=g)  # (n, 1, s, s)
        ctx.metrics[f"{kind}_sample_seconds"] = round(time.perf_counter() - t0, 3)
        ctx.metrics[f"{kind}_sample_mean_pixel"] = float(imgs.mean())
        panels.append((f"{kind} samples ({s}x{s})", imgs[:, 0].cpu().numpy()))
    ctx.metrics["test_mean_pixel"] = float(x_test.mean())
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.5))
    for ax, (title, imgs) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(tile(imgs, ncol), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    ctx.figure(fig, "samples.png", f"{n} binarised test digits beside {n} images drawn pixel "
               "by pixel (one forward pass per pixel, raster order) from each trained model.")
    times = ", ".join(f"{k} {ctx.metrics[f'{k}_sample_seconds']:.1f} s" for k in models)
    ctx.infer(f"Drawing {n} images of {s}x{s} pixels ({s * s} sequential steps) took {times}; "
              f"the mean pixel of the samples is "
              + ", ".join(f"{k} {ctx.metrics[f'{k}_sample_mean_pixel']:.3f}" for k in models)
              + f" against {ctx.metrics['test_mean_pixel']:.3f} for test digits.")


PIXEL = Implementation(
    config=PixelConfig, run=run_pixel,
    profiles={
        "smoke": {"source": "bundled", "n_train": 40, "n_test": 20, "cnn_channels": 8,
                  "cnn_layers": 1, "rnn_hidden": 4, "epochs": 1, "batch_size": 36,
                  "n_samples": 2, "sample_size": 6, "patience": 2},
        "full": {"n_train": 0, "n_test": 0, "cnn_channels": 64, "cnn_layers": 7,
                 "rnn_hidden": 64, "rnn_layers": 2, "epochs": 100, "batch_size": 64,
                 "lr": 1e-3, "patience": 5, "n_samples": 16},
    },
)


# --------------------------------------------------------------------- 15.2 the study


@dataclass
class PixelStudyConfig(StudySettings):
    trial_epochs: int = 3  # maximum epochs of every trial (early stopping may end sooner)
    parts: tuple[str, ...] = ("pixelcnn", "pixelrnn")  # which model's study to run
    cnn_layers: tuple[int, ...] = (1, 3, 5)  # PixelCNN residual blocks tried
    cnn_kernels: tuple[int, ...] = (3, 5)  # PixelCNN mask-B kernel sizes tried
    rnn_cells: tuple[str, ...] = ("lstm", "gru")  # PixelRNN recurrent units tried
    rnn_layers: tuple[int, ...] = (1, 2)  # PixelRNN layers tried

    def validate(self) -> None:
        super().validate()
        if self.trial_epochs < 1:
            raise ValueError(f"trial_epochs must be >= 1, got {self.trial_epochs}")
        bad = [p for p in self.parts if p not in MODELS]
        if bad or not self.parts:
            raise ValueError(f"parts {list(self.parts)}: choose from {', '.join(MODELS)}")
        if any(c not in CELLS for c in self.rnn_cells):
            raise ValueError(f"rnn_cells {list(self.rnn_cells)}: use lstm and/or gru")
        if any(k % 2 == 0 or k < 1 for k in self.cnn_kernels):
            raise ValueError(f"cnn_kernels must be odd, got {list(self.cnn_kernels)}")
        if any(n < 0 for n in self.cnn_layers) or any(n < 1 for n in self.rnn_layers):
            raise ValueError("cnn_layers must be >= 0 and rnn_layers >= 1")
        if not (self.cnn_layers and self.cnn_kernels and self.rnn_cells and self.rnn_layers):
            raise ValueError("every list of values tried needs at least one value")


def pixel_studies(cfg: PixelStudyConfig) -> dict[str, Study]:
    """One study per model: each trial is a run of 15.1 that trains only that model."""
    space = {"pixelcnn": {"cnn_layers": cfg.cnn_layers, "cnn_kernel": cfg.cnn_kernels},
             "pixelrnn": {"rnn_cell": cfg.rnn_cells, "rnn_layers": cfg.rnn_layers}}
    return {part: Study(program="15.1", base_profile=cfg.trial_profile,
                        base={"epochs": cfg.trial_epochs, "models": (part,),
                              "linear_defect": False},
                        space=space[part], metric=f"{part}_test_nll", direction="minimize",
                        mode=cfg.mode, n_trials=cfg.n_trials,
                        report=(f"{part}_seconds_per_epoch", f"{part}_params",
                                f"{part}_sample_seconds", "bernoulli_test_nll"))
            for part in cfg.parts}


def run_pixel_study(cfg: PixelStudyConfig, ctx: RunContext) -> None:
    for part, study in pixel_studies(cfg).items():
        result = execute(study, ctx, workers=cfg.workers, storage=cfg.storage or None)
        record(result, ctx)
        ctx.metrics[f"{part}_study"] = ctx.metrics.pop("study")
        _study_samples(part, result, ctx)


def _study_samples(part: str, result: Any, ctx: RunContext) -> None:
    """The sample grid of every completed trial side by side, titled by its settings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [(r, result.folder / r["run_folder"] / "samples.png") for r in result.complete
             if r.get("run_folder")]
    shown = [(r, f) for r, f in shown if f.exists()]
    if not shown:
        return
    fig, axes = plt.subplots(len(shown), 1, figsize=(7, 2.4 * len(shown)))
    for ax, (r, f) in zip(np.atleast_1d(axes), shown, strict=True):
        ax.imshow(plt.imread(f))
        settings = ", ".join(f"{k}={r[k]}" for k in result.params)
        ax.set_title(f"trial {r['trial']}: {settings}; test NLL "
                     f"{r[result.study.metric]:.2f} nats", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    ctx.figure(fig, f"study-{part}-samples.png", f"Test digits and {part} samples of each "
               "completed trial (each row is that trial's own samples.png).")


PIXEL_STUDY = Implementation(
    config=PixelStudyConfig, run=run_pixel_study,
    profiles={
        "smoke": {"trial_profile": "smoke", "trial_epochs": 1, "parts": ("pixelcnn",),
                  "cnn_layers": (0, 1), "cnn_kernels": (3,)},
        "full": {"trial_profile": "full", "trial_epochs": 20},
    },
)
