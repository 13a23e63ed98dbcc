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

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from dlab.data import binary as binary_data
from dlab.data.binary import Binarization, Source
from dlab.data.subsets import spread_over_classes
from dlab.figures import pyplot, tile
from dlab.io import atomic_path
from dlab.metrics import bernoulli_baseline_nll, nats_to_bits_per_dim
from dlab.models import count_parameters
from dlab.models.autoencoder import DenseAutoencoder
from dlab.models.made import MADE, GaussianMADE
from dlab.models.nade import NADE
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.studies import Study, StudySettings, chosen_and_test_choice, execute, record
from dlab.training import FitResult, evaluate, fit, mean_nll, nll_step
from dlab.uncertainty import Difference, paired_bootstrap, widened_by_band
from dlab.verdicts import Target

Model = Literal["nade", "made"]
Activation = Literal["relu", "tanh", "sigmoid"]  # dlab.models.made.ACTIVATIONS
MASS_TOLERANCE = 1e-5  # |sum_x p(x) - 1| allowed for a model to count as normalised
MASS_CHECK_DIMS = 10  # bits of the freshly built models whose 2^d probabilities are summed
MARKOV_GAP = 0.1  # nats per vector a model may sit above the true chain on its test vectors
QUICK_NLL = 125.0  # nats per digit a quick run (4,500 bundled digits, 6 epochs) must reach
# nats per digit the 32-mask MADE reached at full on one CPU thread (all 60,000 digits, 30
# epochs, seed 0: 103.35), rounded up; NADE reached 88.25, within its published target
FULL_MADE_NLL = 104.0
PUBLISHED_EPOCHS = 200  # MADE's run long enough to set beside its published NLL
PER_DIGIT = "test_nll_per_digit.npz"  # each model's NLL of every test digit (nats, float64)

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


def training_log_prob(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The log p(x) (B,) a maximum-likelihood step uses for a batch x (B, D).

    A MADE with several masks is trained connectivity-agnostically (Germain et al.
    2015, Section 4.2): each call moves to the next mask and returns the likelihood of
    that single ordering (the ensemble is only for scoring). Other models: log_prob.
    """
    if isinstance(model, MADE | GaussianMADE) and model.num_masks > 1:
        def next_mask_log_prob(x: torch.Tensor) -> torch.Tensor:
            model.next_mask()
            return model.log_prob_single(x)  # (B,)

        return next_mask_log_prob
    return model.log_prob


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
    log_prob = training_log_prob(model)
    return fit(model, train, ctx=ctx, epochs=epochs, optimizer=opt,
               step=nll_step(model, opt, log_prob=log_prob),
               batch_size=batch_size, patience=patience,
               monitor="val_nll", name=name, on_epoch_end=on_epoch_end,
               validate=lambda: {"val_nll": scored_nll(model, x_val)})


@torch.inference_mode()
def scored_nll(model: nn.Module, x: torch.Tensor) -> float:
    """mean_nll of x (N, D) with no autograd record (scoring only)."""
    return mean_nll(model, x)


def nll_per_example(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """-log p(x_n) (N,) in nats, float64 on the CPU, for every row of x (N, D)."""
    with torch.inference_mode():
        return -log_probs(model, x).double().cpu().numpy()


def bernoulli_nll_per_example(train: np.ndarray, test: np.ndarray, eps: float = 1e-6
                              ) -> np.ndarray:
    """The independent-Bernoulli baseline's NLL (N,) of each test row (N, D): training
    frequencies clipped to [eps, 1 - eps], as `bernoulli_baseline_nll` (its mean)."""
    p = np.clip(np.asarray(train, dtype=np.float64).mean(axis=0), eps, 1 - eps)
    x = np.asarray(test, dtype=np.float64)
    return -(x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=1)


def nll_difference(a: np.ndarray, b: np.ndarray, seed: int, what: str = "test digits"
                   ) -> dict[str, Any]:
    """mean(a) - mean(b) of two per-example NLL arrays on the same examples, with its 95%
    paired-bootstrap interval, as Difference.as_dict() for metrics.json."""
    return paired_bootstrap(a, b, seed=seed, what=what).as_dict()


def save_per_example(ctx: RunContext, nlls: dict[str, np.ndarray]) -> None:
    """Every model's per-example test NLL into the run folder (PER_DIGIT), so that a study
    can pair two runs' scores digit by digit."""
    with atomic_path(ctx.path(PER_DIGIT)) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **nlls)


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


# ------------------------------------------------------------------- 14.1 the program


@dataclass
class DensityConfig:
    source: Source = "auto"  # MNIST: auto (full when present), bundled or full
    binarization: Binarization = "stochastic"  # one fixed Bernoulli draw, or threshold
    n_train: int = 0  # training digits used, validation included (0 = all)
    n_test: int = 0  # test digits scored, a stratified sample (0 = all)
    val_fraction: float = 0.1  # share of the training digits held out for validation
    models: tuple[Model, ...] = ("nade", "made")  # models fit to MNIST and the Markov set
    nade_hidden: int = 100  # NADE hidden units (Larochelle and Murray: 500)
    made_layers: int = 1  # MADE hidden layers (0 = a masked logistic-regression chain)
    made_width: int = 500  # units per MADE hidden layer (Germain et al.: 500 and 8000)
    made_activation: Activation = "relu"  # MADE hidden non-linearity
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
        binary_data.check_val_fraction(self.val_fraction)
        if not self.models:
            raise ValueError("models: name at least one of nade, made")
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


def load_mnist(cfg: DensityConfig, ctx: RunContext) -> tuple[dict[str, torch.Tensor],
                                                             binary_data.Splits]:
    """Binarised MNIST as float tensors (N, 784) on ctx.device (train, val, test), and
    the rows' labels; the Data section gets the sizes and the test class counts."""
    data = binary_data.binarized_mnist(cfg.source, ctx.data_dir, method=cfg.binarization)
    ctx.data(data.describe())
    split = binary_data.splits(data, cfg.n_train, cfg.val_fraction, cfg.n_test)
    ctx.data(split.describe() + " Each digit is a vector of 784 bits.")
    ctx.metrics.update({"data_source": data.source, "n_train": len(split.x["train"]),
                        "n_val": len(split.x["val"]), "n_test": len(split.x["test"]),
                        "test_total": split.test_total, "train_total": len(data.x_train),
                        "epoch_budget": cfg.epochs,
                        "test_class_counts": split.counts("test")})
    tensors = {k: torch.from_numpy(v).float().to(ctx.device) for k, v in split.x.items()}
    return tensors, split


def train_binary(kind: str, model: nn.Module, cfg: DensityConfig, ctx: RunContext,
                 data: dict[str, torch.Tensor], epochs: int, tag: str) -> FitResult:
    """Fit the NADE or MADE `model` to data["train"] (N, D) in place, early stopping on
    data["val"]; returns its FitResult."""
    ctx.log(f"{tag}: {describe_model(kind, cfg)}, {count_parameters(model):,} parameters")
    return train_density(model, data["train"], data["val"], ctx, epochs=epochs, lr=cfg.lr,
                         batch_size=cfg.batch_size, patience=cfg.patience, name=tag)


def _made_masks_nlls(model: MADE, x: torch.Tensor) -> dict[int, np.ndarray]:
    """Per-example NLL (N,) of the ensemble of the first k masks, log (1/k) sum_j p_j(x),
    for k = 1, 2, 4, ..., K (and K)."""
    lp = torch.stack([log_probs(model, x, fn=lambda b, k=k: model.log_prob_single(b, k))
                      for k in range(model.num_masks)]).double()  # (K, N)
    ks = sorted({2 ** i for i in range(int(math.log2(model.num_masks)) + 1)} |
                {model.num_masks})
    return {k: -(torch.logsumexp(lp[:k], dim=0) - math.log(k)).cpu().numpy() for k in ks}


def _made_masks_nll(model: MADE, x: torch.Tensor) -> dict[int, float]:
    """Test NLL of the ensemble of the first k masks, for k = 1, 2, 4, ..., K (and K)."""
    return {k: float(v.mean()) for k, v in _made_masks_nlls(model, x).items()}


def mnist_nlls(models: dict[str, nn.Module], data: dict[str, torch.Tensor]
               ) -> dict[str, np.ndarray]:
    """Per-digit test NLLs (N,) in nats: each model's, the Bernoulli baseline's
    ("bernoulli") and, for a MADE with several masks, its first mask's alone
    ("made_mask1")."""
    out = {"bernoulli": bernoulli_nll_per_example(data["train"].cpu().numpy(),
                                                  data["test"].cpu().numpy())}
    out |= {kind: nll_per_example(model, data["test"]) for kind, model in models.items()}
    made = models.get("made")
    if isinstance(made, MADE) and made.num_masks > 1:
        out["made_mask1"] = _made_masks_nlls(made, data["test"])[1]
    return out


def score_mnist(models: dict[str, nn.Module], fits: dict[str, FitResult],
                data: dict[str, torch.Tensor], nlls: dict[str, np.ndarray] | None = None,
                seed: int = 0) -> dict[str, Any]:
    """Measured values of the MNIST part: NLLs (nats per digit) on validation and test
    digits, the Bernoulli baseline, sizes and times; and under "nll_diff" each paired
    difference of per-digit test NLLs with its bootstrap interval (`nll_diffs`).
    nlls: `mnist_nlls` of the same models (computed here when None)."""
    nlls = mnist_nlls(models, data) if nlls is None else nlls
    d = data["train"].shape[1]
    train = data["train"].cpu().numpy()
    baseline = float(nlls["bernoulli"].mean())
    out: dict[str, Any] = {
        "bernoulli_test_nll": baseline,
        "bernoulli_test_bits_per_dim": nats_to_bits_per_dim(baseline, d),
        "val_bernoulli_nll": bernoulli_baseline_nll(train, data["val"].cpu().numpy())}
    for kind, model in models.items():
        nll, result = float(nlls[kind].mean()), fits[kind]
        out.update({
            f"{kind}_test_nll": nll, f"{kind}_test_bits_per_dim": nats_to_bits_per_dim(nll, d),
            f"val_{kind}_nll": scored_nll(model, data["val"]),
            f"{kind}_params": count_parameters(model),
            f"{kind}_seconds": round(result.seconds, 2),
            f"{kind}_epochs_run": len(result.history), f"{kind}_best_epoch": result.best_epoch,
            f"{kind}_below_baseline": bool(nll < baseline)})
    made = models.get("made")
    if isinstance(made, MADE) and made.num_masks > 1:
        by_k = _made_masks_nll(made, data["test"])
        out["made_single_mask_nll"] = float(nlls["made_mask1"].mean())
        out["made_ensemble_nll"] = {str(k): v for k, v in by_k.items()}
    elif isinstance(made, MADE):
        out["made_single_mask_nll"] = out["made_test_nll"]
    out["nll_diff"] = nll_diffs(nlls, seed)
    return out


def nll_diffs(nlls: dict[str, np.ndarray], seed: int) -> dict[str, dict[str, Any]]:
    """Paired differences of per-digit test NLLs (first minus second) with 95% bootstrap
    intervals: each model against the baseline, NADE against MADE, and a multi-mask
    MADE's ensemble against its first mask."""
    pairs = [(k, "bernoulli") for k in ("nade", "made") if k in nlls]
    pairs += [("nade", "made")] if "nade" in nlls and "made" in nlls else []
    pairs += [("made", "made_mask1")] if "made_mask1" in nlls else []
    return {f"{a}_vs_{b}": nll_difference(nlls[a], nlls[b], seed) for a, b in pairs}


def judge_mnist(cfg: DensityConfig, ctx: RunContext, m: dict[str, Any]) -> None:
    """Sentences on the MNIST part, each from the measured values in `m`."""
    for kind in cfg.models:
        label = describe_model(kind, cfg)
        ctx.infer(f"{label}: test NLL {m[f'{kind}_test_nll']:.2f} nats "
                  f"({m[f'{kind}_test_bits_per_dim']:.4f} bits/pixel) on {m['n_test']:,} test "
                  f"digits; validation NLL {m[f'val_{kind}_nll']:.2f}, best at epoch "
                  f"{m[f'{kind}_best_epoch']} of {m[f'{kind}_epochs_run']}, "
                  f"{m[f'{kind}_seconds']:.0f} s of training.")
        ctx.compare("test NLL", f"The {kind.upper()}", m[f"{kind}_test_nll"],
                    "the independent-Bernoulli baseline", m["bernoulli_test_nll"],
                    diff=_diff(m, f"{kind}_vs_bernoulli"), better="lower", unit="nats")
    if "nade_vs_made" in m.get("nll_diff", {}):
        ctx.compare("test NLL", "The NADE", m["nade_test_nll"], "the MADE",
                    m["made_test_nll"], diff=_diff(m, "nade_vs_made"), better="lower",
                    unit="nats")
    ens = m.get("made_ensemble_nll")
    if ens and "made_vs_made_mask1" in m.get("nll_diff", {}):
        k = max(int(key) for key in ens)
        ctx.compare("test NLL", f"The {k}-mask MADE ensemble", m["made_test_nll"],
                    "its first mask alone", m["made_single_mask_nll"],
                    diff=_diff(m, "made_vs_made_mask1"), better="lower", unit="nats")
    ctx.background("Published NLLs (full 60,000/10,000 set, trained to convergence): NADE "
                   "500 hidden units 88.86 nats; MADE one hidden layer of 500, one mask, "
                   "88.40.", "Larochelle and Murray 2011; Germain et al. 2015, Table 6")
    ctx.claim("This run trained on the full binarised MNIST and scored all 10,000 test "
              "digits, so its numbers can be set beside the published ones (Background).",
              holds=binary_data.all_digits(m),
              otherwise=f"This run trained on {m['n_train']:,} {m['data_source']} digits and "
              f"scored {m['n_test']:,} test digits, so its numbers are not comparable with "
              "the published ones (Background).", data_source=m["data_source"],
              n_test=m["n_test"])


def _diff(m: dict[str, Any], key: str) -> Difference:
    """The paired difference m["nll_diff"][key] (first minus second) as a Difference."""
    return Difference.from_dict(m["nll_diff"][key])


def write_mnist(cfg: DensityConfig, ctx: RunContext, m: dict[str, Any],
                models: dict[str, nn.Module], nlls: dict[str, np.ndarray]) -> None:
    """The MNIST results table (and the mask-ensemble table), the saved models and every
    test digit's NLL under each model (PER_DIGIT)."""
    d = 784
    save_per_example(ctx, nlls)
    rows = [["independent Bernoulli per pixel (training frequencies)", d, "-", "-",
             m["bernoulli_test_nll"], m["val_bernoulli_nll"], m["bernoulli_test_bits_per_dim"]]]
    for kind, model in models.items():
        rows.append([describe_model(kind, cfg), m[f"{kind}_params"],
                     f"{m[f'{kind}_best_epoch']} of {m[f'{kind}_epochs_run']}",
                     round(m[f"{kind}_seconds"], 1), m[f"{kind}_test_nll"], m[f"val_{kind}_nll"],
                     m[f"{kind}_test_bits_per_dim"]])
        ctx.save_model(model, name=f"{kind}.pt", architecture=describe_model(kind, cfg),
                       input="binarised MNIST, 784 bits in raster order (row by row)",
                       binarization=cfg.binarization, seed=binary_data.BINARIZE_SEED)
    ctx.table("Negative log-likelihood on binarised MNIST (nats per digit; lower is better)",
              ["model", "parameters", "best epoch", "training s", "test NLL (nats)",
               "validation NLL (nats)", "test bits per pixel"], rows)
    ens = m.get("made_ensemble_nll")
    if ens:
        ctx.table(f"MADE trained with {cfg.made_masks} masks: test NLL of the ensemble of "
                  "the first k masks, log (1/k) sum_j p_j(x)", ["masks k", "test NLL (nats)"],
                  [[int(k), v] for k, v in ens.items()])


def sample_figure(cfg: DensityConfig, ctx: RunContext, models: dict[str, nn.Module],
                  x_test: torch.Tensor, y_test: np.ndarray) -> None:
    """Test digits (every class) beside samples drawn pixel by pixel from each model."""
    n = cfg.n_samples
    ncol = math.ceil(math.sqrt(n))
    shown = x_test[torch.from_numpy(spread_over_classes(y_test, n)).to(x_test.device)]
    panels = [("binarised test digits", shown.cpu().numpy())]
    for i, (kind, model) in enumerate(models.items()):
        model.eval()
        g = ctx.torch_generator(100 + i, device=ctx.device)
        s = model.sample(n, generator=g).cpu().numpy()  # (n, 784)
        ctx.metrics[f"{kind}_sample_mean_pixel"] = float(s.mean())
        panels.append((f"{kind.upper()} samples", s))
    fig, axes = pyplot().subplots(1, len(panels), figsize=(3.2 * len(panels), 3.5))
    for ax, (title, imgs) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(tile(imgs.reshape(-1, 28, 28), ncol), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    ctx.figure(fig, "samples.png", f"{len(shown)} binarised test digits (classes in turn) "
               f"beside {n} samples drawn pixel by pixel (ancestral sampling) from each "
               "trained model.")
    ctx.metrics["test_mean_pixel"] = float(x_test.mean())


def run_density(cfg: DensityConfig, ctx: RunContext) -> None:
    # step data: binarised MNIST, digits of 784 bits for training, validation and test
    mnist, split = load_mnist(cfg, ctx)
    # step model: a NADE and a MADE over the 784 bits of a digit
    models = {kind: build_model(kind, cfg, mnist["train"].shape[1], ctx.seed).to(ctx.device)
              for kind in cfg.models}
    # step train: maximum likelihood on the training digits, early stopping on validation
    fits = {kind: train_binary(kind, model, cfg, ctx, mnist, cfg.epochs, f"{kind}-mnist")
            for kind, model in models.items()}
    # step score: test NLLs digit by digit, the Bernoulli baseline's, paired differences
    # with bootstrap intervals, and each model's total probability
    nlls = mnist_nlls(models, mnist)
    ctx.metrics.update(score_mnist(models, fits, mnist, nlls, ctx.seed))
    ctx.metrics.update(mass_check(cfg, ctx))
    # step judge: sentences from the MNIST scores and from the sums over every input
    judge_mnist(cfg, ctx, ctx.metrics)
    judge_mass(cfg, ctx, ctx.metrics)
    # step write: the NLL tables, the saved models and samples drawn pixel by pixel
    write_mnist(cfg, ctx, ctx.metrics, models, nlls)
    if cfg.n_samples and models:
        sample_figure(cfg, ctx, models, mnist["test"], split.y["test"])
    # step data: bit vectors from a Markov chain of known entropy (markov)
    chain, bits = markov_data(cfg, ctx) if cfg.markov else (None, {})
    # step model: a NADE and a MADE over the chain's bits, and the manual's MSE autoencoder
    chain_models = markov_models(cfg, ctx) if cfg.markov else {}
    # step train: the NADE and MADE by maximum likelihood, the autoencoder by squared error
    chain_fits = train_markov(cfg, ctx, chain_models, bits) if cfg.markov else {}
    # step score: test NLLs against the true chain's, and each model's sum over all vectors
    if cfg.markov:
        ctx.metrics.update(score_markov(cfg, chain, bits, chain_models, ctx.device))
    # step judge: has each model learnt the chain; is the autoencoder a distribution
    if cfg.markov:
        judge_markov(cfg, ctx, ctx.metrics)
    # step write: the Markov-chain table, and every model's validation NLL per epoch
    if cfg.markov:
        write_markov(cfg, ctx, ctx.metrics)
    ctx.figure(curves_figure(curve_panels(cfg, ctx.metrics, fits, chain_fits)), "val_nll.png",
               "Validation NLL per epoch of each model (the weights of the lowest point are "
               "kept), with the independent-Bernoulli baseline's validation NLL on MNIST and "
               "the true entropy of the Markov chain.")
    # step data: the manual's two-Gaussian 2-D points (gaussian)
    points = gaussian_data(cfg, ctx) if cfg.gaussian else {}
    # step model: a MADE with a Gaussian conditional for each of the two coordinates
    made_2d = gaussian_made(cfg, ctx) if cfg.gaussian else None
    # step train: maximum likelihood on the training points, early stopping on validation
    made_2d_fit = train_gaussian(cfg, ctx, made_2d, points) if cfg.gaussian else None
    # step score: test NLLs of the MADE, the true density and one Gaussian; the MADE's modes
    if cfg.gaussian:
        gaussian_scores, grids = score_gaussian(made_2d, made_2d_fit, points, ctx.device,
                                                ctx.seed)
        ctx.metrics.update(gaussian_scores)
    # step judge: can Gaussian conditionals split the two clusters
    if cfg.gaussian:
        judge_gaussian(ctx, ctx.metrics)
    # step write: the data, the MADE's density and the true density
    if cfg.gaussian:
        ctx.figure(gaussian_figure(points["train"], grids, ctx.metrics),
                   "gaussian_density.png", "The manual's two-Gaussian data, the density "
                   "learnt by a MADE with Gaussian conditionals, and the true density, on the "
                   "same colour scale.")


def curve_panels(cfg: DensityConfig, m: dict[str, Any], fits: dict[str, FitResult],
                 chain_fits: dict[str, FitResult]
                 ) -> list[tuple[str, dict[str, list[float]], float, str]]:
    """The panels of `curves_figure`: MNIST and, when fitted, the Markov chain; each with
    its models' validation NLL per epoch and a reference line."""
    panels = [(f"binarised MNIST ({m['n_train']:,} training digits)",
               {k.upper(): r.column("val_nll") for k, r in fits.items()},
               m["val_bernoulli_nll"], "independent Bernoulli (validation)")]
    if cfg.markov:
        panels.append((f"Markov chain, {cfg.markov_dims} bits",
                       {k.upper(): chain_fits[k].column("val_nll") for k in cfg.models},
                       m["markov_entropy"], "true entropy"))
    return panels


def curves_figure(panels: list[tuple[str, dict[str, list[float]], float, str]]) -> Any:
    """One panel per data set: validation NLL per epoch of each model and a reference."""
    fig, axes = pyplot().subplots(1, len(panels), figsize=(5.2 * len(panels), 3.4), squeeze=False)
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
    return fig


# ------------------------------------------------------- 14.1 normalisation and Markov


@torch.no_grad()
def exact_mass(model: nn.Module, d: int) -> float:
    """sum_x p(x) over all 2^d binary vectors, computed on a float64 copy of the model
    on the CPU, so that 1 is met to rounding (about 1e-12) by a normalised model."""
    twin = copy.deepcopy(model).double().cpu().eval()
    return total_mass(twin.log_prob, d, "cpu")


def mass_check(cfg: DensityConfig, ctx: RunContext) -> dict[str, float]:
    """Build each model with this run's settings on MASS_CHECK_DIMS bits and sum its
    probabilities over every input: the check behind "each is a normalised distribution".
    Returns each model's sum ({kind}_mass_check) and the largest |sum - 1|."""
    d = MASS_CHECK_DIMS
    out = {}
    for i, kind in enumerate(cfg.models):
        torch.manual_seed(ctx.seed * 1_000_003 + 300 + i)  # the tiny model's initial weights
        out[f"{kind}_mass_check"] = exact_mass(build_model(kind, cfg, d, ctx.seed), d)
    out["max_mass_error"] = max(abs(v - 1) for v in out.values())
    return out


def judge_mass(cfg: DensityConfig, ctx: RunContext, m: dict[str, Any]) -> None:
    """The claim that each model, built afresh on MASS_CHECK_DIMS bits, sums to one."""
    d, error = MASS_CHECK_DIMS, m["max_mass_error"]
    masses = {kind: m[f"{kind}_mass_check"] for kind in cfg.models}
    sums = ", ".join(f"{k.upper()} {v:.12f}" for k, v in masses.items())
    ctx.claim(f"Built with this run's settings on {d} bits and summed over all {2 ** d:,} "
              f"inputs, exp(log p) totals {sums}: each model is a normalised distribution "
              f"(to {MASS_TOLERANCE:g}), so its NLL is a real measure.",
              holds=error <= MASS_TOLERANCE,
              otherwise=f"Built with this run's settings on {d} bits and summed over all "
              f"{2 ** d:,} inputs, exp(log p) totals {sums}: at least one model is NOT "
              f"normalised (error {error:.3g} > {MASS_TOLERANCE:g}).", max_mass_error=error)


def _above_below(gap: float) -> str:
    return f"{abs(gap):.3f} nats {'above' if gap >= 0 else 'below'}"


def markov_data(cfg: DensityConfig, ctx: RunContext
                ) -> tuple[binary_data.BinaryVectors, dict[str, torch.Tensor]]:
    """The Markov-chain set (vectors of markov_dims bits, its entropy), and its training,
    validation and test vectors as float tensors (N, d) on ctx.device."""
    n_val = max(10, cfg.markov_train // 10)
    mc = binary_data.markov_chain_set(np.random.default_rng([ctx.seed, 14]), cfg.markov_train,
                                      n_val, cfg.markov_test, cfg.markov_dims,
                                      cfg.markov_flip)
    ctx.data(mc.describe())
    bits = {k: torch.from_numpy(v).float().to(ctx.device)
            for k, v in (("train", mc.x_train), ("val", mc.x_val), ("test", mc.x_test))}
    return mc, bits


def markov_models(cfg: DensityConfig, ctx: RunContext) -> dict[str, nn.Module]:
    """The models of the config over markov_dims bits and, when `defect`, the manual's kind
    of model ("autoencoder"): a dense autoencoder d -> 4d -> d/2 -> 4d -> d with sigmoid
    outputs. Built in this order, their weights from torch's global generator."""
    d = cfg.markov_dims
    out = {kind: build_model(kind, cfg, d, ctx.seed).to(ctx.device) for kind in cfg.models}
    if cfg.defect:
        out["autoencoder"] = DenseAutoencoder(d, (4 * d,), max(2, d // 2)).to(ctx.device)
    return out


def train_markov(cfg: DensityConfig, ctx: RunContext, models: dict[str, nn.Module],
                 bits: dict[str, torch.Tensor]) -> dict[str, FitResult]:
    """Fit each of `models` in place to the chain's training vectors: the NADE and MADE by
    maximum likelihood, the autoencoder by squared error; returns their FitResults."""
    return {kind: train_autoencoder(cfg, ctx, model, bits) if kind == "autoencoder" else
            train_binary(kind, model, cfg, ctx, bits, cfg.markov_epochs, f"{kind}-markov")
            for kind, model in models.items()}


def score_markov(cfg: DensityConfig, mc: binary_data.BinaryVectors,
                 bits: dict[str, torch.Tensor], models: dict[str, nn.Module], device: str
                 ) -> dict[str, Any]:
    """The chain's entropy, the test NLLs of the true chain, of independent Bernoullis and
    of each model with its gap to the true chain and its sum of exp(log p) over all 2^d
    vectors; and the autoencoder's values (`score_autoencoder`) when it was trained."""
    true_nll = float(-markov_log_prob(mc.x_test, cfg.markov_flip).mean())
    m: dict[str, Any] = {"markov_entropy": mc.entropy, "markov_true_model_test_nll": true_nll,
                         "markov_bernoulli_test_nll": bernoulli_baseline_nll(mc.x_train,
                                                                             mc.x_test)}
    for kind in cfg.models:
        nll = scored_nll(models[kind], bits["test"])
        m.update({f"markov_{kind}_test_nll": nll, f"markov_{kind}_gap": nll - true_nll,
                  f"markov_{kind}_mass": exact_mass(models[kind], mc.dims)})
    if "autoencoder" in models:
        m.update(score_autoencoder(models["autoencoder"], bits, device))
    return m


def judge_markov(cfg: DensityConfig, ctx: RunContext, m: dict[str, Any]) -> None:
    d = cfg.markov_dims
    true_nll = m["markov_true_model_test_nll"]
    ctx.infer(f"On {d}-bit Markov-chain vectors the true entropy is {m['markov_entropy']:.3f} "
              f"nats and the true chain scores {true_nll:.3f} on these test vectors; "
              f"independent Bernoullis score {m['markov_bernoulli_test_nll']:.3f}.")
    for kind in cfg.models:
        nll, gap = m[f"markov_{kind}_test_nll"], m[f"markov_{kind}_gap"]
        ctx.claim(f"{kind.upper()} scores {nll:.3f}, {_above_below(gap)} the true chain on "
                  f"the same vectors, within {MARKOV_GAP} nats: it has learnt the chain.",
                  holds=gap <= MARKOV_GAP,
                  otherwise=f"{kind.upper()} scores {nll:.3f}, {_above_below(gap)} the true "
                  f"chain on the same vectors, more than {MARKOV_GAP} nats: it has not "
                  "learnt the chain fully.", gap=gap)
        mass = m[f"markov_{kind}_mass"]
        ctx.infer(f"The trained {kind.upper()}'s probabilities over all {2 ** d:,} vectors "
                  f"sum to {mass:.9f}.")
    if "autoencoder_mass" in m:
        score, mass, ent = m["autoencoder_pseudo_nll"], m["autoencoder_mass"], m["markov_entropy"]
        ctx.infer(f"The manual's kind of model, an autoencoder trained with MSE (test MSE "
                  f"{m['autoencoder_test_mse']:.4f}), read as a likelihood gives {score:.3f} "
                  f"'nats' per test vector and its scores sum to {mass:.4g} over all "
                  f"{2 ** d:,} vectors.")
        ctx.claim(f"That score is below the true entropy ({ent:.3f}).", holds=score < ent,
                  otherwise=f"That score is not below the true entropy ({ent:.3f}).",
                  score=score, entropy=ent)
        ctx.claim(f"Its scores sum to {mass:.4g}, not one: read as a likelihood it defines no "
                  "distribution.", holds=m["autoencoder_mass_error"] > 1e-3,
                  otherwise=f"Its scores sum to one within {m['autoencoder_mass_error']:.2g} "
                  "in this run.", mass=mass)
        ctx.background("No normalised model has an expected NLL below the true entropy "
                       "(Gibbs' inequality). An autoencoder's output for each bit is computed "
                       "from that bit itself, so nothing makes its outputs the conditionals "
                       "of one distribution; MADE's masks remove exactly those connections.",
                       "Cover and Thomas 2006, Theorem 2.6.3; Germain et al. 2015, Section 3")


def write_markov(cfg: DensityConfig, ctx: RunContext, m: dict[str, Any]) -> None:
    d = cfg.markov_dims
    rows = [["true entropy H(p) (the lowest expected NLL)", m["markov_entropy"], 1.0],
            ["the true chain's NLL on these test vectors", m["markov_true_model_test_nll"], 1.0],
            ["independent Bernoulli per bit", m["markov_bernoulli_test_nll"], 1.0]]
    rows += [[describe_model(k, cfg), m[f"markov_{k}_test_nll"], m[f"markov_{k}_mass"]]
             for k in cfg.models]
    if "autoencoder_mass" in m:
        rows.append(["the manual's kind of model: autoencoder with MSE, outputs read as "
                     "Bernoulli probabilities", m["autoencoder_pseudo_nll"],
                     m["autoencoder_mass"]])
    ctx.table(f"Markov-chain bits (d = {d}, flip probability {cfg.markov_flip}): test NLL in "
              f"nats per vector, and the total of exp(score) over all {2 ** d:,} vectors",
              ["model", "test NLL (nats)", "sum over all vectors"], rows)


def train_autoencoder(cfg: DensityConfig, ctx: RunContext, ae: nn.Module,
                      bits: dict[str, torch.Tensor]) -> FitResult:
    """The manual's 'NADE'/'MADE' training: Adam on the mean squared error between each
    vector and its reconstruction, markov_epochs epochs (no early stopping)."""
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
    return fit(ae, (bits["train"], bits["train"]), val=(bits["val"], bits["val"]), ctx=ctx,
               epochs=cfg.markov_epochs, optimizer=opt, loss_fn=nn.functional.mse_loss,
               batch_size=cfg.batch_size, name="mse-autoencoder-markov")


def score_autoencoder(ae: nn.Module, bits: dict[str, torch.Tensor], device: str
                      ) -> dict[str, float]:
    """The trained autoencoder's test MSE; its outputs read as Bernoulli probabilities
    give a score: its mean over the test vectors ('NLL') and the total of exp(score)
    over all 2^d vectors, with that total's distance from one."""
    d = bits["test"].shape[1]
    test_mse = evaluate(ae, (bits["test"], bits["test"]), nn.functional.mse_loss,
                        device=device)["loss"]
    ae.eval()
    with torch.no_grad():
        score = float(-autoencoder_log_score(ae, bits["test"]).mean())
    mass = total_mass(lambda x: autoencoder_log_score(ae, x), d, device)
    return {"autoencoder_test_mse": test_mse, "autoencoder_pseudo_nll": score,
            "autoencoder_mass": mass, "autoencoder_mass_error": abs(mass - 1)}


# ----------------------------------------------------------------- 14.1 Gaussian MADE


def _modes(curve: np.ndarray) -> int:
    """Local maxima of a 1-D density curve (N,) higher than 5% of its peak."""
    inner = (curve[1:-1] > curve[:-2]) & (curve[1:-1] >= curve[2:])
    return int((inner & (curve[1:-1] > 0.05 * curve.max())).sum())


def gaussian_data(cfg: DensityConfig, ctx: RunContext) -> dict[str, np.ndarray]:
    """The manual's two-Gaussian 2-D points (N, 2): gaussian_points for training and half
    as many each for validation and test."""
    rng = np.random.default_rng([ctx.seed, 2])
    n = cfg.gaussian_points
    pts = {k: binary_data.two_gaussians(rng, m) for k, m in
           (("train", n), ("val", n // 2), ("test", n // 2))}
    ctx.data(f"Two-Gaussian 2-D data: equal mixture of N((-2, 0), 0.5^2 I) and "
             f"N((2, 0), 0.5^2 I); {n:,} training, {n // 2:,} validation and {n // 2:,} test "
             "points.")
    return pts


def gaussian_made(cfg: DensityConfig, ctx: RunContext) -> GaussianMADE:
    """A MADE with Gaussian conditionals over (x, y) in natural order, two hidden layers of
    gaussian_width units; its weights from torch's global generator."""
    return GaussianMADE(2, (cfg.gaussian_width,) * 2, natural_ordering=True,
                        seed=ctx.seed).to(ctx.device)


def train_gaussian(cfg: DensityConfig, ctx: RunContext, model: nn.Module,
                   pts: dict[str, np.ndarray]) -> FitResult:
    """Fit the Gaussian MADE in place to the training points by maximum likelihood, early
    stopping on the validation points."""
    x = {k: torch.from_numpy(pts[k]).to(ctx.device) for k in ("train", "val")}
    return train_density(model, x["train"], x["val"], ctx, epochs=cfg.gaussian_epochs,
                         lr=3e-3, batch_size=cfg.batch_size, patience=cfg.patience,
                         name="gaussian-made")


def score_gaussian(model: nn.Module, result: FitResult, pts: dict[str, np.ndarray],
                   device: str, seed: int = 0) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Test NLLs of the MADE, the true density and one 2-D Gaussian (with the paired
    bootstrap interval of MADE minus Gaussian over the test points); the MADE's density
    on a grid, its mass there, the modes of its marginal along x and its epochs run."""
    made_nlls = nll_per_example(model, torch.from_numpy(pts["test"]).to(device))  # (N,)
    true_nll = float(-binary_data.two_gaussians_log_density(pts["test"]).mean())
    # the best single 2-D Gaussian (full covariance) fit to the training points
    mu, cov = pts["train"].mean(0), np.cov(pts["train"], rowvar=False)
    diff = pts["test"] - mu  # (N, 2)
    maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)  # (N,)
    gauss_nlls = 0.5 * (maha + np.log(np.linalg.det(cov)) + 2 * np.log(2 * np.pi))  # (N,)
    nll, gauss_nll = float(made_nlls.mean()), float(gauss_nlls.mean())
    xs, ys = np.linspace(-5, 5, 201), np.linspace(-3, 3, 121)
    gx, gy = np.meshgrid(xs, ys)  # (121, 201) each
    grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1)).float()  # (121*201, 2)
    dens = log_probs(model, grid.to(device)).exp().cpu().numpy().reshape(gx.shape)
    true = np.exp(binary_data.two_gaussians_log_density(grid.numpy())).reshape(gx.shape)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    m = {"gaussian_made_test_nll": nll, "gaussian_true_test_nll": true_nll,
         "single_gaussian_test_nll": gauss_nll,
         "gaussian_made_mass_on_grid": float(dens.sum() * cell),
         "gaussian_made_modes_x": _modes(dens.sum(axis=0)),  # marginal over y, (201,)
         "gaussian_true_modes_x": _modes(true.sum(axis=0)),
         "gaussian_made_epochs_run": len(result.history),
         "gaussian_made_vs_single": nll_difference(made_nlls, gauss_nlls, seed, "test points")}
    return m, {"x": gx, "y": gy, "made": dens, "true": true}


def gaussian_figure(train: np.ndarray, g: dict[str, np.ndarray], m: dict[str, Any]) -> Any:
    fig, axes = pyplot().subplots(1, 3, figsize=(13, 3.3), sharey=True)
    axes[0].scatter(train[:, 0], train[:, 1], s=3, alpha=0.4)
    axes[0].set_title(f"training data ({len(train):,} points)", fontsize=9)
    top = max(g["made"].max(), g["true"].max())
    panels = ((axes[1], g["made"], f"Gaussian MADE density (test NLL "
               f"{m['gaussian_made_test_nll']:.3f})"),
              (axes[2], g["true"], f"true density (test NLL {m['gaussian_true_test_nll']:.3f})"))
    for ax, z, title in panels:
        im = ax.pcolormesh(g["x"], g["y"], z, shading="auto", cmap="viridis", vmin=0, vmax=top)
        ax.contour(g["x"], g["y"], z, levels=6, colors="white", linewidths=0.5)
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="density")
    for ax in axes:
        ax.set_xlim(-5, 5)
        ax.set_ylim(-3, 3)
        ax.set_aspect("equal")
    return fig


def judge_gaussian(ctx: RunContext, m: dict[str, Any]) -> None:
    nll, true_nll = m["gaussian_made_test_nll"], m["gaussian_true_test_nll"]
    ctx.infer(f"The Gaussian MADE scores {nll:.3f} nats per test point, the true density "
              f"{true_nll:.3f} and one 2-D Gaussian fit to the training points "
              f"{m['single_gaussian_test_nll']:.3f}; the MADE's density integrates to "
              f"{m['gaussian_made_mass_on_grid']:.4f} over the plotted square [-5, 5] x "
              "[-3, 3] (a Riemann sum on a 201 x 121 grid).")
    ctx.compare("test NLL", "The Gaussian MADE", nll, "one 2-D Gaussian",
                m["single_gaussian_test_nll"],
                diff=Difference.from_dict(m["gaussian_made_vs_single"]), better="lower",
                unit="nats")
    made_modes, true_modes = m["gaussian_made_modes_x"], m["gaussian_true_modes_x"]
    ctx.claim(f"Along x the MADE's density has {made_modes} mode(s) where the true density "
              f"has {true_modes}: this MADE does not split the two clusters, which differ "
              "only in x.", holds=made_modes < true_modes,
              otherwise=f"Along x the MADE's density has {made_modes} mode(s), the true "
              f"density {true_modes}.", made_modes=made_modes, true_modes=true_modes)
    ctx.background("With one Gaussian conditional per coordinate, the first coordinate in "
                   "the order has a single Gaussian marginal, so a MADE of this kind cannot "
                   "give it two modes; mixture conditionals (as in RNADE) or a stack of such "
                   "layers (a masked autoregressive flow) can.",
                   "Germain et al. 2015; Uria, Murray and Larochelle 2013 (RNADE); "
                   "Papamakarios, Pavlakou and Murray 2017 (MAF)")


def _has(key: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: key in m


DENSITY = Implementation(
    config=DensityConfig, run=run_density,
    profiles={
        "smoke": {"source": "bundled", "n_train": 240, "n_test": 100, "nade_hidden": 8,
                  "made_width": 32, "made_masks": 2, "epochs": 1, "batch_size": 50,
                  "n_samples": 4, "markov_dims": 6, "markov_train": 300, "markov_test": 200,
                  "markov_epochs": 2, "gaussian_points": 200, "gaussian_width": 8,
                  "gaussian_epochs": 2, "patience": 2},
        # the papers' models for 30 epochs, which fit a laptop's afternoon (one NADE epoch
        # over the 54,000 digits took 140 s on one thread); the papers' length is
        # --set epochs=200, a GPU run
        "full": {"nade_hidden": 500, "made_masks": 32, "epochs": 30, "patience": 10,
                 "lr": 1e-3, "batch_size": 100,
                 "markov_dims": 20, "markov_train": 20000, "markov_test": 10000,
                 "markov_epochs": 100, "gaussian_points": 10000, "gaussian_epochs": 300},
    },
    crippled={"epochs": 1, "n_train": 300, "markov_epochs": 1, "markov_train": 300,
              "markov_test": 300, "gaussian_epochs": 1, "gaussian_points": 200,
              "n_samples": 4},
    targets=(
        Target("max_mass_error", at_most=MASS_TOLERANCE,
               why="each model, built with the run's settings, sums to one over every input"),
        *(Target(f"{k}_test_nll", below="bernoulli_test_nll", profiles=("quick", "full"),
                 interval=f"nll_diff.{k}_vs_bernoulli",
                 when=_has(f"{k}_test_nll"), when_text=f"{k.upper()} is trained",
                 why="a model of dependencies beats independent pixels (paired bootstrap "
                     "over the test digits)")
          for k in ("nade", "made")),
        *(Target(f"{k}_test_nll", at_most=QUICK_NLL, profiles=("quick",),
                 when=_has(f"{k}_test_nll"), when_text=f"{k.upper()} is trained",
                 why="the level the quick run reaches on the bundled digits; one epoch on "
                     "300 digits (the crippled run) stays above it")
          for k in ("nade", "made")),
        *(Target(f"markov_{k}_gap", at_most=MARKOV_GAP, profiles=("quick", "full"),
                 when=_has(f"markov_{k}_gap"), when_text=f"{k.upper()} is fit to the chain",
                 why="within 0.1 nats of the true chain's NLL on the same test vectors")
          for k in ("nade", "made")),
        Target("autoencoder_mass_error", at_least=1e-3, when=_has("autoencoder_mass_error"),
               when_text="the manual's autoencoder is trained",
               why="the manual's model is no distribution: its scores do not sum to one"),
        Target("made_test_nll", at_most=FULL_MADE_NLL, profiles=("full",),
               when=binary_data.full_mnist_when("made_test_nll"),
               when_text="the full binarised MNIST (all 10,000 test digits) is used",
               why="the level the full profile reached on one CPU thread (30 epochs, seed "
                   "0: 103.35); the published 88.40 needs the papers' length (below)"),
        Target("nade_test_nll", at_most=90.0, profiles=("full",),
               when=binary_data.full_mnist_when("nade_test_nll"),
               when_text="the full binarised MNIST (all 10,000 test digits) is used",
               why="within about 1 nat of the published 88.86 (measured at full on one CPU "
                   "thread, 30 epochs: 88.25)"),
        Target("made_test_nll", at_most=90.0, profiles=("full",),
               when=binary_data.full_mnist_when("made_test_nll", epochs=PUBLISHED_EPOCHS),
               when_text=f"MADE trains on all 60,000 digits for up to {PUBLISHED_EPOCHS} "
                         f"epochs (a GPU run: --set epochs={PUBLISHED_EPOCHS})",
               why="within about 1.5 nats of the published 88.40"),
    ),
)


# --------------------------------------------------------------------- 14.2 the study


@dataclass
class DensityStudyConfig(StudySettings):
    trial_epochs: int = 6  # maximum epochs of every trial (early stopping may end sooner)
    # quick: six trials around 14.1's MADE (1 x 500, relu, random order, 4 masks), each
    # factor moved once, and that base setting at spread_seeds more seeds (its seed
    # noise); full tries the longer lists in the comments
    layers: tuple[int, ...] = (1, 2)  # MADE hidden layers
    widths: tuple[int, ...] = (500, 1000)  # units per hidden layer (full: 250, 500, 1000)
    activations: tuple[Activation, ...] = ("relu", "sigmoid")  # hidden non-linearity
    # (full: relu, tanh, sigmoid)
    orders: tuple[bool, ...] = (True, False)  # natural input order (else random per mask)
    masks: tuple[int, ...] = (1, 4)  # 1 = one fixed mask; K > 1 = connectivity-agnostic
    # (full: 1, 8, 32)
    spread_seeds: int = 2  # further seeds the base setting runs at (the seed noise)
    trial_n_train: int = 0  # training digits of every trial, validation included (0 = all)

    def validate(self) -> None:
        super().validate()
        if any(k < 1 for k in self.masks) or any(n < 0 for n in self.layers):
            raise ValueError("masks must be >= 1 and layers >= 0")
        if self.spread_seeds < 0 or self.trial_n_train < 0:
            raise ValueError("spread_seeds and trial_n_train must be >= 0")


STUDY_REPORT = ("made_test_nll", "made_single_mask_nll", "val_bernoulli_nll",
                "bernoulli_test_nll", "made_params", "made_seconds")


def density_study(cfg: DensityStudyConfig) -> Study:
    """The 14.2 study: MADE on binarised MNIST only (no samples, no side data sets). Each
    setting is judged by its validation NLL (digits held out of the training rows); the
    test NLL is only reported."""
    return Study(program="14.1", base_profile=cfg.trial_profile,
                 base={"epochs": cfg.trial_epochs, "models": ("made",), "markov": False,
                       "gaussian": False, "defect": False, "n_samples": 0,
                       "n_train": cfg.trial_n_train},
                 space={"made_layers": cfg.layers, "made_width": cfg.widths,
                        "made_activation": cfg.activations, "natural_ordering": cfg.orders,
                        "made_masks": cfg.masks},
                 metric="val_made_nll", direction="minimize", mode=cfg.mode,
                 n_trials=cfg.n_trials, report=STUDY_REPORT,
                 spread_seeds=0 if cfg.mode == "sampled" else cfg.spread_seeds)


def score_choice(rows: list[dict[str, Any]], params: list[str], val: str, test: str
                 ) -> dict[str, Any]:
    """The setting chosen by the validation metric `val` (lowest) among completed rows,
    its test value, and the setting the test metric would have chosen instead."""
    chosen, by_test = chosen_and_test_choice(rows, val, test)
    return {"chosen_trial": chosen["trial"], "chosen_params": {f: chosen[f] for f in params},
            f"chosen_{val}": chosen[val], f"chosen_{test}": chosen[test],
            "test_choice_trial": by_test["trial"],
            "test_choice_params": {f: by_test[f] for f in params},
            f"test_choice_{test}": by_test[test],
            "choice_differs_on_test": chosen["trial"] != by_test["trial"]}


def judge_choice(ctx: RunContext, c: dict[str, Any], val: str, test: str) -> None:
    """Sentences on the chosen setting's test value and on what choosing on test would
    have done (the study's record already names the chosen trial)."""
    ctx.infer(f"The chosen trial {c['chosen_trial']} has validation NLL "
              f"{c[f'chosen_{val}']:.2f} nats and test NLL {c[f'chosen_{test}']:.2f} "
              "(the test NLL was not used for the choice).")
    other = ", ".join(f"{k}={v}" for k, v in c["test_choice_params"].items())
    ctx.claim("Choosing on the test NLL instead would have picked the same setting.",
              holds=not c["choice_differs_on_test"],
              otherwise=f"Choosing on the test NLL instead would have picked trial "
              f"{c['test_choice_trial']} ({other}, test NLL "
              f"{c[f'test_choice_{test}']:.2f}), a different setting.",
              chosen=c["chosen_trial"], by_test=c["test_choice_trial"])


def against_default(result: Any, chosen: dict[str, Any], key: str, seed: int
                    ) -> dict[str, Any]:
    """The chosen trial's test NLL against the default setting's (same seed, same digits):
    the default's trial and test NLL, and the paired difference chosen - default over the
    test digits widened by the seed noise (`widened_by_band`); {} where not measurable."""
    default = result.base_row
    if default is None:
        return {}
    a, b = (result.trial_arrays(r, PER_DIGIT) for r in (chosen, default))
    out: dict[str, Any] = {"default_trial": default["trial"],
                           "default_test_nll": default[f"{key}_test_nll"],
                           "chosen_is_default": chosen["trial"] == default["trial"]}
    if a is not None and b is not None:
        diff = paired_bootstrap(a[key], b[key], seed=seed, what="test digits")
        rank = result.ranking()
        out["chosen_vs_default"] = widened_by_band(diff, rank["noise_band"],
                                                rank["seeds"]).as_dict()
        out["chosen_vs_bernoulli"] = nll_difference(a[key], a["bernoulli"], seed)
    return out


def score_density_study(result: Any, seed: int = 0) -> dict[str, Any]:
    """The setting chosen by validation NLL among the completed trials (`score_choice`)
    with its Bernoulli baseline and 14.1's default setting at the same budget
    (`against_default`), and for every completed trial trained with several masks one
    mask's test NLL minus the ensemble's (ensemble_gain_nats)."""
    done, out = result.complete, {}
    if done:
        out.update(score_choice(done, result.params, "val_made_nll", "made_test_nll"))
        chosen = next(r for r in done if r["trial"] == out["chosen_trial"])
        out["chosen_bernoulli_test_nll"] = chosen["bernoulli_test_nll"]
        out.update(against_default(result, chosen, "made", seed))
    multi = [r for r in done if int(r.get("made_masks", 1)) > 1
             and r.get("made_single_mask_nll") is not None]
    if multi:
        out["ensemble_gain_nats"] = [float(r["made_single_mask_nll"]) - float(r["made_test_nll"])
                                     for r in multi]
    return out


def judge_against_default(ctx: RunContext, m: dict[str, Any], test: str, program: str,
                          subject: str = "The chosen setting") -> None:
    """The chosen setting against the base program's default setting at the same budget
    and against the Bernoulli baseline, each with its interval, from `m`."""
    if "chosen_vs_bernoulli" in m:
        ctx.compare("test NLL", subject, m[test], "the independent-Bernoulli baseline",
                    m["chosen_bernoulli_test_nll"],
                    diff=Difference.from_dict(m["chosen_vs_bernoulli"]), better="lower",
                    unit="nats")
    if "chosen_vs_default" not in m:
        return
    if m["chosen_is_default"]:
        ctx.infer(f"The chosen setting is {program}'s default (trial {m['default_trial']}): "
                  "no other setting studied had a lower validation NLL, so the study does "
                  "not beat the default at this budget.")
        return
    ctx.compare("test NLL", subject, m[test], f"{program}'s default setting (trial "
                f"{m['default_trial']}, same budget)", m["default_test_nll"],
                diff=Difference.from_dict(m["chosen_vs_default"]), better="lower",
                unit="nats")


def judge_density_study(ctx: RunContext, m: dict[str, Any]) -> None:
    """Sentences on the chosen setting and on the mask ensembles, from `m`."""
    if "chosen_trial" in m:
        judge_choice(ctx, m, "val_made_nll", "made_test_nll")
        judge_against_default(ctx, m, "chosen_made_test_nll", "14.1")
    gains = m.get("ensemble_gain_nats")
    if gains:
        wins = sum(g > 0 for g in gains)
        ctx.claim(f"In all {len(gains)} settings trained with several masks the ensemble's "
                  f"test NLL is lower than one mask's alone, by {min(gains):.2f} to "
                  f"{max(gains):.2f} nats.", holds=wins == len(gains),
                  otherwise=f"The ensemble's test NLL is lower than one mask's alone in "
                  f"{wins} of {len(gains)} settings trained with several masks (one mask minus "
                  f"ensemble: {min(gains):+.2f} to {max(gains):+.2f} nats).", gains=gains)
    ctx.note("'Connectivity-agnostic' training is the rows with more than one mask: each "
             "step uses the next mask (new hidden connectivity, and a new input order unless "
             "natural_ordering is true); one mask is ordinary, fixed-connectivity training.")
    ctx.note("Settings are compared by validation NLL (digits held out of the training "
             "rows); the test columns are shown for reading only, not used for the choice.")
    ctx.note("The chosen setting's interval against the default pairs the two trials' NLLs "
             "digit by digit (bootstrap over the test digits) and adds the seed noise "
             "measured on the base setting, since the two are single runs at one seed.")


def run_density_study(cfg: DensityStudyConfig, ctx: RunContext) -> None:
    # step train: one run of 14.1 per MADE setting, all with this run's seed
    result = execute(density_study(cfg), ctx, workers=cfg.workers,
                     storage=cfg.storage or None)
    # step score: the trials' table and plots, the setting chosen by validation NLL
    record(result, ctx)
    ctx.metrics.update(score_density_study(result, ctx.seed))
    # step judge: the chosen setting on the test digits; mask ensembles against one mask
    judge_density_study(ctx, ctx.metrics)


DENSITY_STUDY = Implementation(
    config=DensityStudyConfig, run=run_density_study,
    profiles={
        "smoke": {"trial_profile": "smoke", "trial_epochs": 1, "layers": (1,),
                  "widths": (32,), "activations": ("relu",), "orders": (False,),
                  "masks": (1, 2), "spread_seeds": 1},
        # a trial at full is the base program's full run with one setting changed: its
        # epochs, on fewer digits where the base run is long (bench/full_profile.py)
        "full": {"trial_profile": "full", "trial_epochs": 30, "trial_n_train": 20000,
                 "widths": (250, 500, 1000),
                 "activations": ("relu", "tanh", "sigmoid"), "masks": (1, 8, 32)},
    },
    targets=(
        Target("chosen_made_test_nll", below="default_test_nll", interval="chosen_vs_default",
               profiles=("quick", "full"), when=_has("default_test_nll"),
               when_text="14.1's default setting is among the completed trials",
               why="the setting chosen on validation beats 14.1's default at the same budget "
                   "on test, beyond the test-digit and seed noise"),
        Target("chosen_made_test_nll", at_most=QUICK_NLL, profiles=("quick",),
               why="the level a quick 14.1 run reaches; one epoch on 300 digits stays above"),
    ),
    crippled={"trial_epochs": 1, "trial_n_train": 300, "spread_seeds": 1},
)
