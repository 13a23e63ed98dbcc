"""Experiment 14: autoregressive density estimation with NADE and MADE (14.1), and the
study of MADE's depth, width, activation and masking (14.2).

Both models write p(x) = prod_d p(x_d | x_<d) for a binary vector x, so their
log-likelihood is exact and the training loss is the negative log-likelihood (NLL)
itself: loss = -(1/B) sum_b log p(x_b), in nats (Larochelle and Murray 2011, NADE;
Germain et al. 2015, MADE). A MADE trained with K > 1 masks (connectivity-agnostic
training, Germain et al. Section 4.2) switches to the next mask after every step and is
scored at test time as the ensemble log (1/K) sum_k p_k(x).

The manual's "NADE" and "MADE" are autoencoders trained with squared error. Read as a
likelihood (each output a Bernoulli probability for its pixel) such a model scores x by
prod_d Bern(x_d; f(x)_d), where f(x) has seen x_d itself; over all 2^D binary vectors
those numbers do not sum to one. `autoencoder_mass` computes that sum exactly for small D.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dlab.data import binary as binary_data
from dlab.metrics import bernoulli_baseline_nll, nats_to_bits_per_dim
from dlab.models.autoencoder import DenseAutoencoder
from dlab.models.made import ACTIVATIONS, MADE, GaussianMADE
from dlab.models.nade import NADE
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.studies import Study, StudySettings, execute, record
from dlab.training import FitResult, evaluate, fit

MODELS = ("nade", "made")

# ------------------------------------------------------------------ shared pieces


@torch.no_grad()
def log_probs(model: nn.Module, x: torch.Tensor, batch_size: int = 500,
              fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """log p(x) (N,) in nats for x (N, D), in batches, in eval mode; `fn` replaces
    `model.log_prob` (e.g. one mask of a MADE)."""
    was = model.training
    model.eval()
    fn = fn or model.log_prob
    out = torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was)
    return out


def mean_nll(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> float:
    """Mean negative log-likelihood in nats per example of x (N, D)."""
    return float(-log_probs(model, x, batch_size).double().mean())


def density_step(model: nn.Module, optimizer: torch.optim.Optimizer
                 ) -> Callable[[tuple[torch.Tensor, ...]], dict[str, Any]]:
    """One maximum-likelihood step on a batch (x,), x (B, D): loss = -mean log p(x).

    A MADE with several masks is trained connectivity-agnostically (Germain et al.
    2015, Section 4.2): each step uses the next mask in turn, with the likelihood of
    that single ordering (the ensemble is only for scoring).
    """
    multi = isinstance(model, MADE | GaussianMADE) and model.num_masks > 1

    def step(batch: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        (x,) = batch
        model.train()
        if multi:
            model.next_mask()
            lp = model.log_prob_single(x)  # (B,)
        else:
            lp = model.log_prob(x)  # (B,)
        loss = -lp.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    return step


@torch.no_grad()
def init_output_bias(model: nn.Module, x_train: torch.Tensor, eps: float = 1e-3) -> None:
    """Set a binary model's output biases to the log-odds of each dimension's training
    frequency, log(p_d / (1 - p_d)) with p_d clipped to [eps, 1 - eps].

    With zero biases an untrained model says p = 1/2 for every pixel (D log 2 = 543
    nats on MNIST); with these it starts near the independent-Bernoulli baseline, and
    the hidden units only have to learn the dependencies. Only the training rows are
    used. x_train: (N, D) binary.
    """
    p = x_train.double().mean(dim=0).clamp(eps, 1 - eps)  # (D,)
    logit = (p.log() - (-p).log1p()).to(x_train.dtype)
    if isinstance(model, NADE):
        model.b.copy_(logit)
    elif isinstance(model, MADE):
        model.out.bias.copy_(logit)  # output d is the logit of x_d under every mask
    else:
        raise TypeError(f"no binary output biases in {type(model).__name__}")


class RandomBatches:
    """`steps` batches (x[idx],) per pass, idx drawn without replacement within a pass
    from a generator seeded by (seed, pass number): short "epochs" over a large set.

    x: (N, D) tensor; each batch is a 1-tuple of a (batch_size, D) tensor.
    """

    def __init__(self, x: torch.Tensor, batch_size: int, steps: int, seed: int):
        self.x, self.batch_size, self.steps, self.seed = x, batch_size, steps, seed
        self.passes = 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.passes)
        self.passes += 1
        n = min(len(self.x), self.steps * self.batch_size)
        idx = torch.randperm(len(self.x), generator=g)[:n].to(self.x.device)  # (n,)
        for i in range(0, n, self.batch_size):
            yield (self.x[idx[i:i + self.batch_size]],)


def train_density(model: nn.Module, x_train: torch.Tensor, x_val: torch.Tensor,
                  ctx: RunContext, *, epochs: int, lr: float, batch_size: int,
                  patience: int | None, name: str,
                  on_epoch_end: Callable[[int, dict[str, Any]], dict[str, Any] | None]
                  | None = None, steps_per_epoch: int | None = None) -> FitResult:
    """Fit a density model by maximum likelihood with Adam; early stopping on val NLL.

    x_train (N, D), x_val (M, D) float tensors on ctx.device. The history gets
    `loss` (training NLL, nats, averaged over the epoch) and `val_nll` (nats, the
    model's own `log_prob`: for a multi-mask MADE the ensemble). The weights of the
    epoch with the lowest val_nll are restored at the end. Binary models (NADE, MADE)
    start from `init_output_bias`. `steps_per_epoch` makes an "epoch" that many random
    batches (validation, early stopping and checkpoints then come that often).
    """
    if isinstance(model, NADE | MADE):  # (on --resume, fit then loads the checkpoint)
        init_output_bias(model, x_train)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    train: Any = (x_train,)
    if steps_per_epoch:
        train = RandomBatches(x_train, batch_size, steps_per_epoch, ctx.seed)
    return fit(model, train, ctx=ctx, epochs=epochs, optimizer=opt,
               step=density_step(model, opt), batch_size=batch_size, patience=patience,
               monitor="val_nll", name=name, on_epoch_end=on_epoch_end,
               validate=lambda: {"val_nll": mean_nll(model, x_val)})


def all_binary(d: int) -> torch.Tensor:
    """Every binary vector of d bits in counting order, (2^d, d) float32."""
    codes = torch.arange(2 ** d)[:, None]  # (2^d, 1)
    return ((codes >> torch.arange(d - 1, -1, -1)) & 1).float()  # (2^d, d)


@torch.no_grad()
def total_mass(log_score: Callable[[torch.Tensor], torch.Tensor], d: int,
               device: str = "cpu", batch_size: int = 8192) -> float:
    """sum_x exp(log_score(x)) over all 2^d binary x (d <= 20): 1 for a distribution.

    The sum is a float64 logsumexp of the scores, exact up to rounding.
    """
    if d > 20:
        raise ValueError(f"enumerating 2^{d} vectors is too many; use d <= 20")
    x = all_binary(d)
    scores = torch.cat([log_score(x[i:i + batch_size].to(device)).double().cpu()
                        for i in range(0, len(x), batch_size)])  # (2^d,)
    return float(torch.logsumexp(scores, dim=0).exp())


def autoencoder_log_score(ae: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What an MSE autoencoder's output would give as a 'likelihood', (B, D) -> (B,).

    Each output f(x)_d in (0, 1) read as P(x_d = 1): sum_d log Bern(x_d; f(x)_d). The
    output for pixel d was computed from x_d itself, so nothing makes these numbers a
    distribution over x.
    """
    p = ae(x).double().clamp(1e-12, 1 - 1e-12)  # (B, D)
    xd = x.double()
    return (xd * p.log() + (1 - xd) * (-p).log1p()).sum(dim=1)


def markov_log_prob(x: np.ndarray, p_flip: float, p_first: float = 0.5) -> np.ndarray:
    """Exact log-probability (N,) of binary vectors x (N, d) under the Markov chain of
    dlab.data.synthetic.markov_chain_bits (x_0 ~ Bern(p_first), flips w.p. p_flip)."""
    x = np.asarray(x, dtype=np.int64)
    first = np.where(x[:, 0] == 1, math.log(p_first), math.log1p(-p_first))
    flips = (x[:, 1:] != x[:, :-1]).sum(axis=1)  # (N,)
    stays = x.shape[1] - 1 - flips
    return first + flips * math.log(p_flip) + stays * math.log1p(-p_flip)


def tile(images: np.ndarray, ncol: int, pad: int = 1) -> np.ndarray:
    """Images (N, H, W) in [0, 1] -> one picture (rows*(H+pad)+pad, ncol*(W+pad)+pad),
    row by row, with grey gaps (0.5)."""
    n, h, w = images.shape
    rows = max(1, math.ceil(n / ncol))
    out = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad), 0.5, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        out[pad + r * (h + pad):pad + r * (h + pad) + h,
            pad + c * (w + pad):pad + c * (w + pad) + w] = images[i]
    return out


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------- 14.1 the program


@dataclass
class DensityConfig:
    source: str = "auto"  # MNIST: auto (full when present), bundled or full
    binarization: str = "stochastic"  # stochastic (one fixed Bernoulli draw) or threshold
    n_train: int = 0  # training digits used, validation included (0 = all)
    n_test: int = 0  # test digits scored (0 = all)
    val_fraction: float = 0.1  # share of the training digits held out for early stopping
    models: tuple[str, ...] = ("nade", "made")  # models fit to MNIST and the Markov set
    nade_hidden: int = 100  # NADE hidden units (Larochelle and Murray: 500)
    made_layers: int = 1  # MADE hidden layers (0 = a masked logistic-regression chain)
    made_width: int = 500  # units per MADE hidden layer (Germain et al.: 500 and 8000)
    made_activation: str = "relu"  # MADE hidden non-linearity
    made_masks: int = 4  # K orderings/connectivities (1 = one fixed mask)
    natural_ordering: bool = False  # MADE inputs in order 0..D-1 (else random per mask)
    epochs: int = 6  # maximum passes over the training digits (early stopping may end sooner)
    batch_size: int = 50  # examples per Adam step
    lr: float = 5e-3  # Adam learning rate (high for short runs; full uses 1e-3)
    patience: int = 5  # epochs without a better validation NLL before stopping
    n_samples: int = 36  # 28x28 samples drawn from each model (0 = none)
    markov: bool = True  # also fit the models to the Markov-chain set of known entropy
    markov_dims: int = 16  # bits per Markov vector (<= 20: every vector is enumerated)
    markov_flip: float = 0.1  # probability that a bit differs from the previous one
    markov_train: int = 4000  # Markov training vectors (plus a tenth more for validation)
    markov_test: int = 2000  # Markov test vectors
    markov_epochs: int = 20  # maximum epochs on the Markov set
    gaussian: bool = True  # fit a Gaussian MADE to the manual's two-Gaussian 2-D data
    gaussian_points: int = 2000  # 2-D training points (and half as many for val and test)
    gaussian_width: int = 64  # units in each of the Gaussian MADE's two hidden layers
    gaussian_epochs: int = 60  # maximum epochs of the Gaussian MADE
    defect: bool = True  # train the manual's kind of model (an MSE autoencoder) and sum it

    def validate(self) -> None:
        binary_data.check_settings(self.source, self.binarization, self.val_fraction)
        bad = [m for m in self.models if m not in MODELS]
        if bad or not self.models:
            raise ValueError(f"models {list(self.models)}: choose from {', '.join(MODELS)}")
        if self.made_activation not in ACTIVATIONS:
            raise ValueError(f"made_activation {self.made_activation!r}: use one of "
                             f"{', '.join(ACTIVATIONS)}")
        if self.made_layers < 0 or self.made_masks < 1:
            raise ValueError("made_layers must be >= 0 and made_masks >= 1")
        if self.n_train < 0 or self.n_test < 0 or self.n_samples < 0:
            raise ValueError("n_train, n_test and n_samples must be >= 0")
        if self.n_train and self.n_train < 20:
            raise ValueError(f"n_train must be 0 (all) or at least 20, got {self.n_train}")
        if not 2 <= self.markov_dims <= 20:
            raise ValueError(f"markov_dims must be 2 to 20 (all 2^d vectors are summed), "
                             f"got {self.markov_dims}")
        if not 0 < self.markov_flip < 1:
            raise ValueError(f"markov_flip must be in (0, 1), got {self.markov_flip}")
        if min(self.markov_train, self.markov_test, self.gaussian_points) < 10:
            raise ValueError("markov_train, markov_test and gaussian_points must be >= 10")


def build_model(kind: str, cfg: DensityConfig, d: int, seed: int) -> nn.Module:
    """NADE(d, nade_hidden) or MADE(d, (made_width,) * made_layers, ...) from the config."""
    if kind == "nade":
        return NADE(d, cfg.nade_hidden)
    return MADE(d, (cfg.made_width,) * cfg.made_layers, num_masks=cfg.made_masks,
                natural_ordering=cfg.natural_ordering, seed=seed,
                activation=cfg.made_activation)


def describe_model(kind: str, cfg: DensityConfig) -> str:
    if kind == "nade":
        return f"NADE, {cfg.nade_hidden} sigmoid hidden units"
    layers = "-".join([str(cfg.made_width)] * cfg.made_layers) or "no hidden layer"
    order = "natural order" if cfg.natural_ordering else "random order"
    masks = (f"{cfg.made_masks} masks, ensemble at test" if cfg.made_masks > 1
             else "1 mask")
    return f"MADE {layers} ({cfg.made_activation}), {order}, {masks}"


def _mnist(cfg: DensityConfig, ctx: RunContext) -> dict[str, torch.Tensor]:
    """Binarised MNIST as float tensors (N, 784) on ctx.device: train, val, test."""
    data = binary_data.binarized_mnist(cfg.source, ctx.data_dir, method=cfg.binarization)
    ctx.data(data.describe())
    out = binary_data.splits(data, cfg.n_train, cfg.val_fraction, cfg.n_test)
    ctx.data(f"Used: {len(out['train']):,} training digits, {len(out['val']):,} validation "
             "digits (early stopping; held out of the training rows with a fixed seed) and "
             f"{len(out['test']):,} test digits, each a vector of 784 bits.")
    return {k: torch.from_numpy(v).float().to(ctx.device) for k, v in out.items()}


def _fit_binary(kind: str, cfg: DensityConfig, ctx: RunContext, data: dict[str, torch.Tensor],
                epochs: int, tag: str) -> tuple[nn.Module, FitResult]:
    model = build_model(kind, cfg, data["train"].shape[1], ctx.seed).to(ctx.device)
    ctx.log(f"{tag}: {describe_model(kind, cfg)}, {n_parameters(model):,} parameters")
    result = train_density(model, data["train"], data["val"], ctx, epochs=epochs, lr=cfg.lr,
                           batch_size=cfg.batch_size, patience=cfg.patience, name=tag)
    return model, result


def _made_masks_nll(model: MADE, x: torch.Tensor) -> dict[int, float]:
    """Test NLL of the ensemble of the first k masks, for k = 1, 2, 4, ..., K (and K)."""
    lp = torch.stack([log_probs(model, x, fn=lambda b, k=k: model.log_prob_single(b, k))
                      for k in range(model.num_masks)]).double()  # (K, N)
    ks = sorted({2 ** i for i in range(int(math.log2(model.num_masks)) + 1)} |
                {model.num_masks})
    return {k: float(-(torch.logsumexp(lp[:k], dim=0) - math.log(k)).mean()) for k in ks}


def run_density(cfg: DensityConfig, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = _mnist(cfg, ctx)
    xtr_np = data["train"].cpu().numpy()
    baseline = bernoulli_baseline_nll(xtr_np, data["test"].cpu().numpy())
    d = data["train"].shape[1]
    ctx.metrics["bernoulli_test_nll"] = baseline
    rows = [["independent Bernoulli per pixel (training frequencies)", d, "-", "-", baseline,
             nats_to_bits_per_dim(baseline, d)]]
    models: dict[str, nn.Module] = {}
    curves: dict[str, list[float]] = {}
    for kind in cfg.models:
        model, result = _fit_binary(kind, cfg, ctx, data, cfg.epochs, f"{kind}-mnist")
        models[kind] = model
        curves[kind.upper()] = result.column("val_nll")
        nll = mean_nll(model, data["test"])
        ctx.metrics.update({
            f"{kind}_test_nll": nll, f"{kind}_test_bits_per_dim": nats_to_bits_per_dim(nll, d),
            f"{kind}_params": n_parameters(model), f"{kind}_seconds": round(result.seconds, 2),
            f"{kind}_epochs_run": len(result.history), f"{kind}_best_epoch": result.best_epoch,
            f"{kind}_below_baseline": bool(nll < baseline),
        })
        rows.append([describe_model(kind, cfg), n_parameters(model),
                     f"{result.best_epoch} of {len(result.history)}",
                     round(result.seconds, 1), nll, nats_to_bits_per_dim(nll, d)])
        ctx.save_model(model, name=f"{kind}.pt", architecture=describe_model(kind, cfg),
                       input="binarised MNIST, 784 bits in raster order (row by row)",
                       binarization=cfg.binarization, seed=binary_data.BINARIZE_SEED)
        ctx.infer(f"{describe_model(kind, cfg)}: test NLL {nll:.2f} nats "
                  f"({nats_to_bits_per_dim(nll, d):.4f} bits/pixel) on {len(data['test']):,} "
                  f"test digits, {baseline - nll:.2f} nats "
                  + ("below" if nll < baseline else "ABOVE")
                  + f" the independent-Bernoulli baseline ({baseline:.2f}); best validation "
                  f"NLL at epoch {result.best_epoch} of {len(result.history)}, "
                  f"{result.seconds:.0f} s of training.")
    ctx.table("Test negative log-likelihood on binarised MNIST (nats per digit; lower is "
              "better)", ["model", "parameters", "best epoch", "training s", "test NLL (nats)",
                          "bits per pixel"], rows)
    ctx.infer("Published NLLs (full 60,000/10,000 set, trained to convergence): NADE 500 "
              "hidden units 88.86 nats (Larochelle and Murray 2011); MADE one hidden layer of "
              "500, one mask, 88.40 (Germain et al. 2015). "
              + ("This run used the full set." if len(data["train"]) > 40_000 else
                 f"This run trained on {len(data['train']):,} digits, so its numbers are not "
                 "comparable with them."))

    made = models.get("made")
    if isinstance(made, MADE) and made.num_masks > 1:
        by_k = _made_masks_nll(made, data["test"])
        ctx.metrics["made_single_mask_nll"] = by_k[1]
        ctx.metrics["made_ensemble_nll"] = {str(k): v for k, v in by_k.items()}
        ctx.table(f"MADE trained with {made.num_masks} masks: test NLL of the ensemble of "
                  "the first k masks, log (1/k) sum_j p_j(x)", ["masks k", "test NLL (nats)"],
                  [[k, v] for k, v in by_k.items()])
        ctx.infer(f"One mask of the connectivity-agnostic MADE scores {by_k[1]:.2f} nats; the "
                  f"ensemble of all {made.num_masks} scores {by_k[made.num_masks]:.2f} "
                  f"({by_k[1] - by_k[made.num_masks]:+.2f} nats better).")
    elif isinstance(made, MADE):
        ctx.metrics["made_single_mask_nll"] = ctx.metrics["made_test_nll"]

    if cfg.n_samples and models:
        _sample_figure(cfg, ctx, models, data["test"])
    markov_curves: dict[str, list[float]] = {}
    if cfg.markov:
        markov_curves = _markov_part(cfg, ctx)
    panels = [(f"binarised MNIST ({len(data['train']):,} training digits)", curves, baseline,
               "independent Bernoulli (test)")]
    if markov_curves:
        panels.append((f"Markov chain, {cfg.markov_dims} bits", markov_curves,
                       ctx.metrics["markov_entropy"], "true entropy"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.4), squeeze=False)
    for ax, (title, group, ref, ref_label) in zip(axes[0], panels, strict=True):
        for label, ys in group.items():
            ax.plot(range(1, len(ys) + 1), ys, marker="o", ms=3, label=label)
        ax.axhline(ref, color="grey", ls="--", lw=1, label=ref_label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation NLL (nats per example)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    ctx.figure(fig, "val_nll.png", "Validation NLL per epoch of each model (the weights of "
               "the lowest point are kept), with the independent-Bernoulli baseline on MNIST "
               "and the true entropy of the Markov chain.")
    if cfg.gaussian:
        _gaussian_part(cfg, ctx)


def _sample_figure(cfg: DensityConfig, ctx: RunContext, models: dict[str, nn.Module],
                   x_test: torch.Tensor) -> None:
    import matplotlib.pyplot as plt

    n = cfg.n_samples
    ncol = math.ceil(math.sqrt(n))
    shown = x_test[torch.linspace(0, len(x_test) - 1, n).long()]  # spread over the set
    panels = [("binarised test digits", shown.cpu().numpy())]
    for i, (kind, model) in enumerate(models.items()):
        model.eval()
        g = ctx.torch_generator(100 + i, device=ctx.device)
        s = model.sample(n, generator=g).cpu().numpy()  # (n, 784)
        ctx.metrics[f"{kind}_sample_mean_pixel"] = float(s.mean())
        panels.append((f"{kind.upper()} samples", s))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.5))
    for ax, (title, imgs) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(tile(imgs.reshape(-1, 28, 28), ncol), cmap="gray", vmin=0, vmax=1)  # (N, 28, 28)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    ctx.figure(fig, "samples.png", f"{n} binarised test digits beside {n} samples drawn "
               "pixel by pixel (ancestral sampling) from each trained model.")
    ctx.metrics["test_mean_pixel"] = float(x_test.mean())


def _markov_part(cfg: DensityConfig, ctx: RunContext) -> dict[str, list[float]]:
    """Fit the models to the Markov-chain set; compare with its exact entropy."""
    n_val = max(10, cfg.markov_train // 10)
    mc = binary_data.markov_chain_set(np.random.default_rng([ctx.seed, 14]), cfg.markov_train,
                                      n_val, cfg.markov_test, cfg.markov_dims,
                                      cfg.markov_flip)
    ctx.data(mc.describe())
    data = {k: torch.from_numpy(v).float().to(ctx.device)
            for k, v in (("train", mc.x_train), ("val", mc.x_val), ("test", mc.x_test))}
    d = mc.dims
    true_nll = float(-markov_log_prob(mc.x_test, cfg.markov_flip).mean())
    baseline = bernoulli_baseline_nll(mc.x_train, mc.x_test)
    ctx.metrics.update({"markov_entropy": mc.entropy, "markov_true_model_test_nll": true_nll,
                        "markov_bernoulli_test_nll": baseline})
    rows = [["true entropy H(p) (the lowest expected NLL)", mc.entropy, 1.0],
            ["the true chain's NLL on these test vectors", true_nll, 1.0],
            ["independent Bernoulli per bit", baseline, 1.0]]
    curves = {}
    gaps = []
    for kind in cfg.models:
        model, result = _fit_binary(kind, cfg, ctx, data, cfg.markov_epochs, f"{kind}-markov")
        curves[kind.upper()] = result.column("val_nll")
        nll = mean_nll(model, data["test"])
        model.eval()
        mass = total_mass(model.log_prob, d, ctx.device)
        ctx.metrics[f"markov_{kind}_test_nll"] = nll
        ctx.metrics[f"markov_{kind}_mass"] = mass
        rows.append([describe_model(kind, cfg), nll, mass])
        gaps.append(f"{kind.upper()} {nll:.3f} ({nll - true_nll:+.3f})")
    if cfg.defect:
        ae_nll, ae_mass = _defect_autoencoder(cfg, ctx, data)
        rows.append(["the manual's kind of model: autoencoder with MSE, outputs read as "
                     "Bernoulli probabilities", ae_nll, ae_mass])
    ctx.table(f"Markov-chain bits (d = {d}, flip probability {cfg.markov_flip}): test NLL in "
              f"nats per vector, and the total of exp(score) over all {2 ** d:,} vectors",
              ["model", "test NLL (nats)", "sum over all vectors"], rows)
    ctx.infer(f"On {d}-bit Markov-chain vectors the true entropy is {mc.entropy:.3f} nats and "
              f"the true chain scores {true_nll:.3f} on these test vectors; test NLL (and gap "
              f"to the true chain): {', '.join(gaps)}; independent Bernoullis {baseline:.3f}.")
    masses = [ctx.metrics[f"markov_{k}_mass"] for k in cfg.models]
    ctx.infer(f"Summed over all {2 ** d:,} binary vectors, exp(log p) of the trained "
              f"models totals {', '.join(f'{m:.6f}' for m in masses)}: each is a normalised "
              "distribution, so its NLL is a real measure.")
    return curves


def _defect_autoencoder(cfg: DensityConfig, ctx: RunContext, data: dict[str, torch.Tensor]
                        ) -> tuple[float, float]:
    """The manual's 'NADE'/'MADE': an autoencoder trained with MSE. Its outputs, read as
    Bernoulli probabilities, give a score whose total over all vectors is not 1."""
    d = data["train"].shape[1]
    ae = DenseAutoencoder(d, (4 * d,), max(2, d // 2)).to(ctx.device)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
    mse = nn.functional.mse_loss
    fit(ae, (data["train"], data["train"]), val=(data["val"], data["val"]), ctx=ctx,
        epochs=cfg.markov_epochs, optimizer=opt, loss_fn=mse, batch_size=cfg.batch_size,
        name="mse-autoencoder-markov")
    test_mse = evaluate(ae, (data["test"], data["test"]), mse, device=ctx.device)["loss"]
    ae.eval()
    with torch.no_grad():
        score = float(-autoencoder_log_score(ae, data["test"]).mean())
    mass = total_mass(lambda x: autoencoder_log_score(ae, x), d, ctx.device)
    entropy = ctx.metrics["markov_entropy"]
    ctx.metrics.update({"autoencoder_test_mse": test_mse, "autoencoder_pseudo_nll": score,
                        "autoencoder_mass": mass})
    ctx.infer(f"The manual's kind of model, an autoencoder trained with MSE (test MSE "
              f"{test_mse:.4f}), read as a likelihood gives {score:.3f} 'nats' per test "
              f"vector, {'below' if score < entropy else 'above'} the true entropy "
              f"{entropy:.3f}"
              + (", which no normalised model can do on average" if score < entropy else "")
              + f"; its scores sum to {mass:.4g} over all {2 ** d:,} vectors instead of 1. "
              "Its output for each bit was computed from that bit itself, so it defines no "
              "distribution and has no likelihood.")
    return score, mass


def _gaussian_part(cfg: DensityConfig, ctx: RunContext) -> None:
    """A MADE with Gaussian conditionals on the two-Gaussian 2-D data; its density."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng([ctx.seed, 2])
    n = cfg.gaussian_points
    pts = {k: binary_data.two_gaussians(rng, m) for k, m in
           (("train", n), ("val", n // 2), ("test", n // 2))}
    ctx.data(f"Two-Gaussian 2-D data: equal mixture of N((-2, 0), 0.5^2 I) and "
             f"N((2, 0), 0.5^2 I); {n:,} training, {n // 2:,} validation and {n // 2:,} test "
             "points.")
    data = {k: torch.from_numpy(v).to(ctx.device) for k, v in pts.items()}
    model = GaussianMADE(2, (cfg.gaussian_width,) * 2, natural_ordering=True,
                         seed=ctx.seed).to(ctx.device)
    result = train_density(model, data["train"], data["val"], ctx, epochs=cfg.gaussian_epochs,
                           lr=3e-3, batch_size=cfg.batch_size, patience=cfg.patience,
                           name="gaussian-made")
    nll = mean_nll(model, data["test"])
    true_nll = float(-binary_data.two_gaussians_log_density(pts["test"]).mean())
    # the first coordinate in a Gaussian MADE's order has a Gaussian marginal, so the
    # model cannot put two modes along it; the single 2-D Gaussian fit to the training
    # points (full covariance) is what it can at best match here
    mu, cov = pts["train"].mean(0), np.cov(pts["train"], rowvar=False)
    diff = pts["test"] - mu  # (N, 2)
    maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)  # (N,)
    gauss_nll = float(0.5 * (maha + np.log(np.linalg.det(cov)) + 2 * np.log(2 * np.pi)).mean())
    xs, ys = np.linspace(-5, 5, 201), np.linspace(-3, 3, 121)
    gx, gy = np.meshgrid(xs, ys)  # (121, 201) each
    grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1)).float()  # (121*201, 2)
    dens = log_probs(model, grid.to(ctx.device)).exp().cpu().numpy().reshape(gx.shape)
    true = np.exp(binary_data.two_gaussians_log_density(grid.numpy())).reshape(gx.shape)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    mass = float(dens.sum() * cell)
    ctx.metrics.update({"gaussian_made_test_nll": nll, "gaussian_true_test_nll": true_nll,
                        "single_gaussian_test_nll": gauss_nll,
                        "gaussian_made_mass_on_grid": mass,
                        "gaussian_made_epochs_run": len(result.history)})
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.3), sharey=True)
    axes[0].scatter(pts["train"][:, 0], pts["train"][:, 1], s=3, alpha=0.4)
    axes[0].set_title(f"training data ({n:,} points)", fontsize=9)
    top = max(dens.max(), true.max())
    for ax, z, title in ((axes[1], dens, f"Gaussian MADE density (test NLL {nll:.3f})"),
                         (axes[2], true, f"true density (test NLL {true_nll:.3f})")):
        im = ax.pcolormesh(gx, gy, z, shading="auto", cmap="viridis", vmin=0, vmax=top)
        ax.contour(gx, gy, z, levels=6, colors="white", linewidths=0.5)
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="density")
    for ax in axes:
        ax.set_xlim(-5, 5)
        ax.set_ylim(-3, 3)
        ax.set_aspect("equal")
    ctx.figure(fig, "gaussian_density.png", "The manual's two-Gaussian data, the density "
               "learnt by a MADE with Gaussian conditionals, and the true density, on the "
               "same colour scale.")
    ctx.infer(f"The Gaussian MADE scores {nll:.3f} nats per test point against "
              f"{true_nll:.3f} for the true density ({nll - true_nll:+.3f}); its density "
              f"integrates to {mass:.4f} over the plotted square [-5, 5] x [-3, 3] "
              "(a Riemann sum on a 201 x 121 grid).")
    ctx.infer(f"One 2-D Gaussian fit to the training points scores {gauss_nll:.3f}; the "
              f"Gaussian MADE is {nll - gauss_nll:+.3f} nats from it and {nll - true_nll:+.3f} "
              "from the truth. With Gaussian conditionals the first coordinate in the order "
              "is a single Gaussian and, the two clusters differing only in x, the other "
              "conditional cannot split them either: one mode, not two. Mixture conditionals "
              "or a stack of such layers (a masked autoregressive flow) are needed.")


DENSITY = Implementation(
    config=DensityConfig, run=run_density,
    profiles={
        "smoke": {"source": "bundled", "n_train": 240, "n_test": 100, "nade_hidden": 8,
                  "made_width": 32, "made_masks": 2, "epochs": 1, "batch_size": 50,
                  "n_samples": 4, "markov_dims": 6, "markov_train": 300, "markov_test": 200,
                  "markov_epochs": 2, "gaussian_points": 200, "gaussian_width": 8,
                  "gaussian_epochs": 2, "patience": 2},
        "full": {"nade_hidden": 500, "made_masks": 32, "epochs": 200, "patience": 20,
                 "lr": 1e-3, "batch_size": 100,
                 "markov_dims": 20, "markov_train": 20000, "markov_test": 10000,
                 "markov_epochs": 100, "gaussian_points": 10000, "gaussian_epochs": 300},
    },
)


# --------------------------------------------------------------------- 14.2 the study


@dataclass
class DensityStudyConfig(StudySettings):
    trial_epochs: int = 6  # maximum epochs of every trial (early stopping may end sooner)
    layers: tuple[int, ...] = (1, 2)  # MADE hidden layers
    widths: tuple[int, ...] = (250, 500, 1000)  # units per hidden layer
    activations: tuple[str, ...] = ("relu", "tanh", "sigmoid")  # hidden non-linearity
    orders: tuple[bool, ...] = (True, False)  # natural input order (else random per mask)
    masks: tuple[int, ...] = (1, 8, 32)  # 1 = one fixed mask; K > 1 = connectivity-agnostic

    def validate(self) -> None:
        super().validate()
        bad = [a for a in self.activations if a not in ACTIVATIONS]
        if bad:
            raise ValueError(f"activations {bad}: use {', '.join(ACTIVATIONS)}")
        if any(k < 1 for k in self.masks) or any(n < 0 for n in self.layers):
            raise ValueError("masks must be >= 1 and layers >= 0")


def density_study(cfg: DensityStudyConfig) -> Study:
    """The 14.2 study: MADE on binarised MNIST only (no samples, no side data sets)."""
    return Study(program="14.1", base_profile=cfg.trial_profile,
                 base={"epochs": cfg.trial_epochs, "models": ("made",), "markov": False,
                       "gaussian": False, "defect": False, "n_samples": 0},
                 space={"made_layers": cfg.layers, "made_width": cfg.widths,
                        "made_activation": cfg.activations, "natural_ordering": cfg.orders,
                        "made_masks": cfg.masks},
                 metric="made_test_nll", direction="minimize", mode=cfg.mode,
                 n_trials=cfg.n_trials,
                 report=("made_single_mask_nll", "bernoulli_test_nll", "made_params",
                         "made_seconds"))


def run_density_study(cfg: DensityStudyConfig, ctx: RunContext) -> None:
    result = execute(density_study(cfg), ctx, workers=cfg.workers, storage=cfg.storage or None)
    record(result, ctx)
    multi = [r for r in result.complete if int(r.get("made_masks", 1)) > 1
             and r.get("made_single_mask_nll") is not None]
    if multi:
        gains = [float(r["made_single_mask_nll"]) - float(r["made_test_nll"]) for r in multi]
        ctx.metrics["ensemble_gain_nats"] = gains
        ctx.infer(f"In the {len(multi)} settings trained with several masks, the ensemble "
                  f"scores {min(gains):+.2f} to {max(gains):+.2f} nats better than one of its "
                  "masks alone (positive = ensemble better).")
    ctx.note("'Connectivity-agnostic' training is the rows with more than one mask: each "
             "step uses the next mask (new hidden connectivity, and a new input order unless "
             "natural_ordering is true); one mask is ordinary, fixed-connectivity training.")


DENSITY_STUDY = Implementation(
    config=DensityStudyConfig, run=run_density_study,
    profiles={
        "smoke": {"trial_profile": "smoke", "trial_epochs": 1, "layers": (1,),
                  "widths": (32,), "activations": ("relu",), "orders": (False,),
                  "masks": (1, 2)},
        "full": {"trial_profile": "full", "trial_epochs": 100},
    },
)
