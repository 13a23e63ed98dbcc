"""Experiment 2: multi-layer perceptrons.

2.1 XOR with a 2-4-1 sigmoid network whose initialisation, forward pass, backward pass
    and loss are written out below in NumPy (the point of the program), checked by
    central finite differences and against `dlab.scratch` with copied weights.
2.2 A credit-risk MLP on the German credit data (PyTorch), with every layer's weights
    printed and drawn as the network trains, against a majority-class baseline and a
    logistic regression; and the manual's raw-feature sigmoid network, measured.

Each program reads: load data -> train -> score (a dict of measured values) -> judge
(targets on the Implementation, claims from the scores) -> write (tables, figures).

Back-propagation: Rumelhart, Hinton and Williams (1986), "Learning representations by
back-propagating errors", Nature 323.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from dlab.data.subsets import class_counts
from dlab.data.tabular import Split, german_credit, prepare
from dlab.figures import pyplot
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.uncertainty import Difference, against_reference, over_seeds
from dlab.verdicts import Target

# ====================================================================== 2.1 XOR
# Parameters are a dict in Keras order: W1 (n_in, H), b1 (H,), W2 (H, 1), b2 (1,).
ORDER = ("W1", "b1", "W2", "b2")


def init_params(n_in: int, n_hidden: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Glorot-uniform kernels and zero biases (Glorot and Bengio 2010, eq. 16).

    W ~ U(-l, l) with l = sqrt(6 / (fan_in + fan_out)), so Var W = 2 / (fan_in + fan_out)
    keeps the variance of activations and gradients roughly equal across layers.
    Returns W1 (n_in, n_hidden), b1 (n_hidden,), W2 (n_hidden, 1), b2 (1,), float64.
    """
    l1 = math.sqrt(6.0 / (n_in + n_hidden))
    l2 = math.sqrt(6.0 / (n_hidden + 1))
    return {"W1": rng.uniform(-l1, l1, (n_in, n_hidden)), "b1": np.zeros(n_hidden),
            "W2": rng.uniform(-l2, l2, (n_hidden, 1)), "b2": np.zeros(1)}


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), written as (1 + tanh(z / 2)) / 2 so that no exp overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def forward(params: dict[str, np.ndarray], X: np.ndarray) -> dict[str, np.ndarray]:
    """Forward pass of the one-hidden-layer sigmoid network.

        z1 = X W1 + b1    (N, H)        h = sigmoid(z1)   (N, H)
        z2 = h W2 + b2    (N, 1)        p = sigmoid(z2)   (N, 1)

    X: inputs (N, n_in). Returns the cache {z1, h, z2, p} the backward pass needs.
    """
    z1 = X @ params["W1"] + params["b1"]
    h = sigmoid(z1)
    z2 = h @ params["W2"] + params["b2"]
    return {"z1": z1, "h": h, "z2": z2, "p": sigmoid(z2)}


def loss_value(cache: dict[str, np.ndarray], y: np.ndarray, kind: str) -> float:
    """Mean loss over the N samples; y (N, 1) of 0/1.

    mse: L = 1/N sum (p - y)^2.
    bce: L = -1/N sum [y log p + (1 - y) log(1 - p)], computed from the logit z2 as
         1/N sum [softplus(z2) - y z2] (log p = -softplus(-z2)), which never takes log 0.
    """
    if kind == "mse":
        return float(np.mean((cache["p"] - y) ** 2))
    z = cache["z2"]
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def backward(params: dict[str, np.ndarray], cache: dict[str, np.ndarray], X: np.ndarray,
             y: np.ndarray, kind: str) -> dict[str, np.ndarray]:
    """Gradients of the mean loss by the chain rule, from the output back.

        mse: dL/dp = 2 (p - y) / N,  dL/dz2 = dL/dp * p (1 - p)      (N, 1)
        bce: dL/dz2 = (p - y) / N    (the sigmoid's p(1-p) cancels)  (N, 1)
        dL/dW2 = h^T dL/dz2          (H, 1)     dL/db2 = sum_n dL/dz2   (1,)
        dL/dh  = dL/dz2 W2^T         (N, H)
        dL/dz1 = dL/dh * h (1 - h)   (N, H)     (sigmoid' = sigmoid (1 - sigmoid))
        dL/dW1 = X^T dL/dz1          (n_in, H)  dL/db1 = sum_n dL/dz1   (H,)
    """
    n = X.shape[0]
    p, h = cache["p"], cache["h"]
    if kind == "mse":
        dz2 = 2.0 * (p - y) / n * p * (1.0 - p)
    else:
        dz2 = (p - y) / n
    dh = dz2 @ params["W2"].T
    dz1 = dh * h * (1.0 - h)
    return {"W1": X.T @ dz1, "b1": dz1.sum(axis=0), "W2": h.T @ dz2, "b2": dz2.sum(axis=0)}


def numerical_gradients(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                        kind: str, eps: float = 1e-6) -> dict[str, np.ndarray]:
    """Central differences (L(w + eps) - L(w - eps)) / (2 eps) for every parameter."""
    out = {}
    for name in ORDER:
        w = params[name]
        g = np.empty_like(w)
        flat_w, flat_g = w.reshape(-1), g.reshape(-1)  # views of w and g
        for i in range(flat_w.size):
            old = flat_w[i]
            flat_w[i] = old + eps
            up = loss_value(forward(params, X), y, kind)
            flat_w[i] = old - eps
            down = loss_value(forward(params, X), y, kind)
            flat_w[i] = old
            flat_g[i] = (up - down) / (2 * eps)
        out[name] = g
    return out


def relative_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-3) -> float:
    """max_i |a_i - b_i| / max(|a_i|, |b_i|, floor) (the floor keeps rounding noise of a
    finite difference, about 1e-10, from dominating where a gradient is nearly 0)."""
    denom = np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
    return float(np.max(np.abs(a - b) / denom))


def gradcheck_own(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                  kind: str) -> float:
    """Largest relative error of `backward` against `numerical_gradients`."""
    analytic = backward(params, forward(params, X), X, y, kind)
    numeric = numerical_gradients({k: v.copy() for k, v in params.items()}, X, y, kind)
    return max(relative_error(analytic[k], numeric[k]) for k in ORDER)


def all_right(p: np.ndarray, y: np.ndarray) -> bool:
    """Every output on the right side of 0.5."""
    return bool(np.all((p > 0.5) == (y > 0.5)))


def train_xor(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, lr: float,
              epochs: int, kind: str) -> tuple[np.ndarray, int | None]:
    """Full-batch gradient descent w <- w - lr dL/dw, in place on `params`.

    Returns the loss at the start of every epoch (epochs,) and the first epoch after
    whose update all outputs are right (None if never).
    """
    losses = np.empty(epochs)
    solved = None
    for epoch in range(epochs):
        cache = forward(params, X)
        losses[epoch] = loss_value(cache, y, kind)
        if solved is None and epoch > 0 and all_right(cache["p"], y):
            solved = epoch
        grads = backward(params, cache, X, y, kind)
        for name in ORDER:
            params[name] -= lr * grads[name]
    if solved is None and all_right(forward(params, X)["p"], y):
        solved = epochs
    return losses, solved


def scratch_twin(params: dict[str, np.ndarray], kind: str, lr: float):
    """The same network in `dlab.scratch` (float64) with `params` copied in."""
    from dlab.scratch import SGD, Dense, Sequential

    n_in, n_hidden = params["W1"].shape
    model = Sequential([Dense(n_hidden, "sigmoid", input_dim=n_in), Dense(1, "sigmoid")],
                       seed=0, dtype=np.float64)
    model.compile(loss="mse" if kind == "mse" else "binary_crossentropy",
                  optimizer=SGD(lr))
    model.set_weights([params[k] for k in ORDER])
    return model


def compare_with_scratch(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                         kind: str, lr: float, epochs: int) -> dict[str, float]:
    """Largest absolute differences between this file's network and `dlab.scratch`:
    outputs and gradients at `params`, and weights after `epochs` of the same descent."""
    model = scratch_twin(params, kind, lr)
    ours = forward(params, X)
    out_diff = float(np.abs(model.predict(X) - ours["p"]).max())
    g_ours = backward(params, ours, X, y, kind)
    g_scr = model.gradients(X, y)
    grad_diff = max(float(np.abs(g_ours[k] - g).max()) for k, g in zip(ORDER, g_scr,
                                                                          strict=True))
    mine = {k: v.copy() for k, v in params.items()}
    train_xor(mine, X, y, lr, epochs, kind)
    model.fit(X, y, epochs=epochs, batch_size=None, shuffle=False)
    train_diff = max(float(np.abs(mine[k] - w).max())
                     for k, w in zip(ORDER, model.get_weights(), strict=True))
    return {"outputs": out_diff, "gradients": grad_diff, "trained_weights": train_diff}



@dataclass
class XORConfig:
    hidden: int = 4  # hidden sigmoid units (the manual's 2-4-1 network)
    epochs: int = 10000  # full-batch gradient-descent steps per seed (the manual's)
    # the manual's lr 0.1 on the summed half squared error: on the mean squared error of
    # its 4 rows the same steps take lr 0.2 (d/dp of mean (p - y)^2 is (p - y) / 2)
    lr: float = 0.2  # learning rate
    loss: Literal["mse", "bce"] = "mse"  # mean squared error or binary cross-entropy
    n_seeds: int = 10  # initialisations tried; success = all four outputs right
    crosscheck_epochs: int = 200  # epochs trained side by side with dlab.scratch

    def validate(self) -> None:
        if self.crosscheck_epochs < 0:
            raise ValueError("crosscheck_epochs must be 0 or more")


def xor_net(cfg: XORConfig, seed: int, k: int) -> dict[str, np.ndarray]:
    """Initialisation k of the 2-hidden-1 sigmoid network for the run's `seed`: its
    parameters W1 (2, H), b1 (H,), W2 (H, 1), b2 (1,) from `init_params`."""
    return init_params(2, cfg.hidden, np.random.default_rng((seed, k)))


def train_seeds(cfg: XORConfig, X: np.ndarray, y: np.ndarray, first: dict[str, np.ndarray],
                seed: int) -> list[dict]:
    """Train from cfg.n_seeds initialisations: `first` (trained in place) and then
    `xor_net(cfg, seed, k)` for k = 1, 2, ...; gradients checked before and after.
    Returns one dict per initialisation."""
    runs = []
    for k in range(cfg.n_seeds):
        params = first if k == 0 else xor_net(cfg, seed, k)
        start = {n: v.copy() for n, v in params.items()}
        err_init = gradcheck_own(params, X, y, cfg.loss)
        losses, solved = train_xor(params, X, y, cfg.lr, cfg.epochs, cfg.loss)
        cache = forward(params, X)
        runs.append({"seed": k, "start": start, "params": params, "losses": losses,
                     "solved": solved, "p": cache["p"].ravel(),
                     "final_loss": loss_value(cache, y, cfg.loss),
                     "ok": all_right(cache["p"], y),
                     "gradcheck": max(err_init, gradcheck_own(params, X, y, cfg.loss))})
    return runs


def score_xor(cfg: XORConfig, runs: list[dict], cross: dict[str, float]) -> dict[str, Any]:
    n_ok = sum(r["ok"] for r in runs)
    solved = [r["solved"] for r in runs if r["solved"] is not None]
    return {
        "success_rate": n_ok / cfg.n_seeds, "successes": n_ok, "n_seeds": cfg.n_seeds,
        "gradcheck_max_rel_error": max(r["gradcheck"] for r in runs),
        "median_epochs_to_solve": float(np.median(solved)) if solved else None,
        "final_loss_median": float(np.median([r["final_loss"] for r in runs])),
        "outputs_seed0": np.round(runs[0]["p"], 4).tolist(),
        "scratch_max_abs_diff": cross, "scratch_agreement": max(cross.values()),
    }


def judge_xor(ctx: RunContext, cfg: XORConfig, m: dict[str, Any]) -> None:
    median = m["median_epochs_to_solve"]
    ctx.infer(f"{m['successes']} of {cfg.n_seeds} initialisations solved XOR (all four "
              f"outputs on the right side of 0.5) after {cfg.epochs} epochs at learning rate "
              f"{cfg.lr:g}" + (f"; the median solved seed needed {median:.0f} epochs."
                               if median is not None else "."))
    ctx.infer(f"The hand-written backward pass agrees with central finite differences to a "
              f"relative error of {m['gradcheck_max_rel_error']:.1e} (at the initial and the "
              "trained weights of every seed).")
    cross = m["scratch_max_abs_diff"]
    facts = (f"outputs {cross['outputs']:.1e}, gradients {cross['gradients']:.1e}, weights "
             f"after {cfg.crosscheck_epochs} epochs of the same descent "
             f"{cross['trained_weights']:.1e}")
    ctx.claim(f"With copied weights this file's network and dlab.scratch agree to rounding "
              f"(largest differences: {facts}).", m["scratch_agreement"] < 1e-10,
              otherwise=f"With copied weights this file's network and dlab.scratch DIFFER "
                        f"(largest differences: {facts}).", **cross)


def write_xor(ctx: RunContext, cfg: XORConfig, runs: list[dict], X: np.ndarray,
              y: np.ndarray) -> None:
    cross = ctx.metrics["scratch_max_abs_diff"]
    step = max(1, cfg.epochs // 200)
    ctx.add_history([{"model": f"xor_seed{r['seed']}", "epoch": e + 1, "loss": r["losses"][e]}
                     for r in runs for e in range(0, cfg.epochs, step)])
    ctx.table("Outputs on 00, 01, 10, 11 after training, per seed",
              ["seed", "p(00)", "p(01)", "p(10)", "p(11)", "final loss", "all right",
               "epoch solved", "gradcheck rel. error"],
              [[r["seed"], *np.round(r["p"], 4).tolist(), r["final_loss"], r["ok"],
                r["solved"] if r["solved"] is not None else "never", r["gradcheck"]]
               for r in runs])
    ctx.table("This file's network against dlab.scratch with copied weights (largest "
              "absolute difference)", ["quantity", "max |difference|"],
              [["outputs at the initial weights", cross["outputs"]],
               ["gradients at the initial weights", cross["gradients"]],
               [f"weights after {cfg.crosscheck_epochs} epochs of the same descent",
                cross["trained_weights"]]])
    ctx.figure(xor_figure(cfg, runs, X, y), "xor_loss.png", "Left: training loss of every "
               "seed (log scale). Right: the trained network's output over the plane for "
               "seed 0; the four XOR points are coloured by their target.")


def xor_figure(cfg: XORConfig, runs: list[dict], X: np.ndarray, y: np.ndarray):
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(11, 4))
    for r in runs:
        ax1.plot(np.arange(1, cfg.epochs + 1), r["losses"], lw=1,
                 label=f"seed {r['seed']}" + ("" if r["ok"] else " (failed)"))
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel(f"{cfg.loss} loss")
    ax1.set_title(f"2-{cfg.hidden}-1 sigmoid network on XOR, lr {cfg.lr:g}")
    ax1.legend(fontsize=7, ncol=2)
    grid = np.linspace(-0.25, 1.25, 121)
    gx, gy = np.meshgrid(grid, grid)
    surface = forward(runs[0]["params"], np.c_[gx.ravel(), gy.ravel()])["p"].reshape(gx.shape)
    im = ax2.contourf(gx, gy, surface, levels=np.linspace(0, 1, 11), cmap="RdBu_r")
    ax2.contour(gx, gy, surface, levels=[0.5], colors="k")
    ax2.scatter(X[:, 0], X[:, 1], c=y.ravel(), cmap="RdBu_r", edgecolors="k", s=120,
                vmin=0, vmax=1)
    ax2.set_title("seed 0: output p(x); black line p = 0.5")
    ax2.set_aspect("equal")
    fig.colorbar(im, ax=ax2)
    return fig


def run_xor(cfg: XORConfig, ctx: RunContext) -> None:
    # step data: the four XOR points
    from dlab.data.synthetic import xor

    X, y = (a.astype(np.float64) for a in xor())  # (4, 2), (4, 1)
    ctx.data("The four XOR points {0,1}^2 with targets 0, 1, 1, 0 (dlab.data.synthetic.xor).")
    # step model: the 2-hidden-1 sigmoid network's parameters, first initialisation
    net = xor_net(cfg, ctx.seed, 0)
    # step train: full-batch gradient descent from this and the other initialisations
    runs = train_seeds(cfg, X, y, net, ctx.seed)
    for r in runs:
        ctx.log(f"seed {r['seed']}: final loss {r['final_loss']:.4g}, outputs "
                f"{np.round(r['p'], 3).tolist()}, all right {r['ok']}")
    # step score: successes, the gradient check, and the same network in dlab.scratch
    cross = compare_with_scratch(runs[0]["start"], X, y, cfg.loss, cfg.lr,
                                 cfg.crosscheck_epochs)
    ctx.metrics.update(score_xor(cfg, runs, cross))
    # step judge: sentences from the scores
    judge_xor(ctx, cfg, ctx.metrics)
    # step write: outputs per seed, the comparison with dlab.scratch, loss curves
    write_xor(ctx, cfg, runs, X, y)


XOR_SCRATCH = Implementation(
    config=XORConfig, run=run_xor,
    profiles={"smoke": {"epochs": 400, "n_seeds": 3, "lr": 2.0, "crosscheck_epochs": 20},
              "full": {"n_seeds": 10}},
    targets=(
        Target("success_rate", at_least=1.0, why="every initialisation solves XOR"),
        Target("gradcheck_max_rel_error", at_most=1e-6,
               why="the hand-written backward pass matches finite differences"),
        Target("scratch_agreement", at_most=1e-10,
               why="the same network in dlab.scratch gives the same numbers"),
    ),
    crippled={"epochs": 20},
)

# ============================================================ 2.2 credit-risk MLP

Activation = Literal["relu", "tanh", "sigmoid", "leaky_relu", "gelu", "linear"]


def layer_weights(model) -> list[np.ndarray]:
    """Kernels of every linear layer as (in, out) arrays (PyTorch stores (out, in))."""
    return [lin.weight.detach().cpu().numpy().T.copy() for lin in model.linears]


def draw_weight_grid(snapshots: list[tuple[str, list[np.ndarray]]]):
    """A figure: one row per snapshot (epoch), one heat map per layer; colour scales are
    shared down each column and centred on 0."""
    n_rows, n_cols = len(snapshots), len(snapshots[0][1])
    ratios = [max(w.shape[1], 3) for w in snapshots[0][1]]
    fig, axes = pyplot().subplots(n_rows, n_cols,
                                figsize=(3.0 * n_cols + 2, 2.3 * n_rows + 0.8),
                                gridspec_kw={"width_ratios": ratios}, squeeze=False,
                                layout="constrained")
    limits = [max(float(np.abs(s[1][j]).max()) for s in snapshots) for j in range(n_cols)]
    for i, (epoch, weights) in enumerate(snapshots):
        for j, w in enumerate(weights):
            ax = axes[i, j]
            im = ax.imshow(w, aspect="auto", cmap="RdBu_r", vmin=-limits[j], vmax=limits[j],
                           interpolation="nearest")
            ax.set_title(f"epoch {epoch}: layer {j + 1} ({w.shape[0]}x{w.shape[1]})",
                         fontsize=8)
            ax.set_xticks(np.arange(w.shape[1])[:: max(1, w.shape[1] // 8)])
            ax.tick_params(labelsize=6)
            if j == 0:
                ax.set_ylabel("input", fontsize=7)
            if i == n_rows - 1:
                ax.set_xlabel("unit", fontsize=7)
                fig.colorbar(im, ax=axes[:, j].tolist(), location="bottom", shrink=0.8,
                             aspect=12)
    return fig


@dataclass
class CreditConfig:
    widths: tuple[int, ...] = (16, 8)  # hidden layer widths
    activation: Activation = "relu"  # hidden activation of the main network
    epochs: int = 100  # most training epochs
    patience: int = 10  # stop when validation loss has not improved this long (0: never)
    batch_size: int = 32  # mini-batch size
    lr: float = 0.001  # Adam learning rate
    show_every: int = 20  # print and draw every layer's weights every this many epochs
    test_fraction: float = 0.25  # held-out test rows (stratified)
    val_fraction: float = 0.2  # of the other rows: validation (curve, early stopping)
    raw_seeds: int = 5  # seeds of the manual's raw-feature sigmoid network (0: skip)
    raw_epochs: int = 30  # epochs of each raw / standardised sigmoid network
    n_repeats: int = 4  # further stratified splits, each with a new MLP and baselines

    def validate(self) -> None:
        if not (0 < self.test_fraction < 1 and 0 <= self.val_fraction < 1):
            raise ValueError("test_fraction must be in (0, 1) and val_fraction in [0, 1)")
        if self.show_every < 1 or self.raw_seeds < 0 or self.raw_epochs < 1:
            raise ValueError("show_every and raw_epochs must be >= 1, raw_seeds >= 0")
        if self.n_repeats < 1:
            raise ValueError("n_repeats must be at least 1: the comparisons need a spread "
                             "over splits")
        if self.patience < 0:
            raise ValueError("patience must be 0 (no early stopping) or more")
        if self.patience and not self.val_fraction:
            raise ValueError("early stopping (patience > 0) needs val_fraction > 0")
        if not self.widths or min(self.widths) < 1:
            raise ValueError("widths must list positive hidden-layer widths, e.g. 16,8")


def predict_proba(model, X: np.ndarray, device: str) -> np.ndarray:
    """Sigmoid of the logit for rows X (N, F) -> (N,)."""
    import torch

    model.eval()
    with torch.no_grad():
        out = model(torch.as_tensor(X, dtype=torch.float32, device=device))
    return torch.sigmoid(out).squeeze(-1).cpu().numpy()


def load_credit(cfg: CreditConfig, ctx: RunContext, scale: bool = True, k: int = 0) -> Split:
    """German credit, stratified training / validation / test rows (split number k: seed
    ctx.seed + k), preprocessed with statistics of the training rows only."""
    return prepare(german_credit(), cfg.test_fraction, cfg.val_fraction, seed=ctx.seed + k,
                   scale=scale)


def describe_credit(ctx: RunContext, cfg: CreditConfig, s: Split) -> None:
    counts = class_counts(s.y_test)
    ctx.data(german_credit().describe())
    ctx.data(f"Stratified split: {s.sizes()} (test: {counts.get(0, 0)} good and "
             f"{counts.get(1, 0)} bad risks, scored once, all of them); "
             f"{len(s.pre.numeric)} numeric columns standardised and the categorical "
             f"columns one-hot encoded ({s.x_train.shape[1]} inputs), all fit on the "
             f"training rows only. Bad risks: {s.y_train.mean():.1%} of training rows.")
    if not len(s.y_val):
        return
    if cfg.patience:
        use = (f"for early stopping: training stops after {cfg.patience} epochs without a "
               "lower validation loss and keeps the weights of the best epoch")
    else:
        use = "for the learning curve only (patience 0: no early stopping)"
    ctx.data(f"The {len(s.y_val)} validation rows come from the training part and are used "
             f"{use}; the test rows play no part in training or selection.")


class WeightLog:
    """Every layer's kernel, printed and kept for the figure, at chosen epochs."""

    def __init__(self, model, ctx: RunContext):
        self.model, self.ctx = model, ctx
        self.snapshots: list[tuple[str, list[np.ndarray]]] = []
        self.printed: list[str] = []

    def show(self, epoch: int | str) -> None:
        weights = layer_weights(self.model)
        self.snapshots.append((str(epoch), weights))
        text = [f"== epoch {epoch} =="]
        for j, w in enumerate(weights):
            text.append(f"layer {j + 1} kernel {w.shape}:\n"
                        + np.array2string(w, precision=3, suppress_small=True,
                                          max_line_width=180, threshold=10**6))
        self.printed.append("\n".join(text))
        self.ctx.log("\n".join(text))


def credit_net(cfg: CreditConfig, ctx: RunContext, n_inputs: int, k: int = 0):
    """The credit-risk MLP n_inputs-widths-1 (cfg.activation between the layers, one logit
    out) of split number k, initialised from the run's generator 1 (k = 0) or 1000 + k,
    on the run's device."""
    from dlab.models.mlp import MLP

    return MLP((n_inputs, *cfg.widths, 1), cfg.activation,
               generator=ctx.torch_generator(1 if k == 0 else 1000 + k)).to(ctx.device)


def fit_credit(cfg: CreditConfig, ctx: RunContext, model, s: Split, name: str,
               on_epoch_end=None, checkpoint: bool = True):
    """Adam on mini-batches of the training rows, with (given patience) early stopping on
    the validation rows; trains `model` in place and returns fit's result."""
    import torch
    import torch.nn.functional as F

    from dlab.data.tabular import as_tensors
    from dlab.training import accuracy, fit

    val = as_tensors(s.x_val, s.y_val, ctx.device, binary=True) if len(s.y_val) else None
    return fit(model, as_tensors(s.x_train, s.y_train, ctx.device, binary=True), val=val,
               ctx=ctx, epochs=cfg.epochs,
               optimizer=torch.optim.Adam(model.parameters(), lr=cfg.lr),
               loss_fn=F.binary_cross_entropy_with_logits, batch_size=cfg.batch_size,
               metrics={"acc": accuracy}, name=name, on_epoch_end=on_epoch_end,
               patience=cfg.patience or None, checkpoint=checkpoint)


def train_credit(cfg: CreditConfig, ctx: RunContext, model, s: Split):
    """Train `model` in place with Adam, mini-batches and (with patience) early stopping
    on the validation rows; its weights shown every cfg.show_every epochs. Returns fit's
    result and the WeightLog."""
    log = WeightLog(model, ctx)
    log.show(0)

    def on_epoch_end(epoch: int, row: dict) -> dict:
        if epoch % cfg.show_every == 0 or epoch == cfg.epochs:
            log.show(epoch)
        return {}

    result = fit_credit(cfg, ctx, model, s, "credit_mlp", on_epoch_end)
    if result.stopped_early or result.history[-1]["epoch"] % cfg.show_every:
        log.show(f"{result.best_epoch} (kept)" if result.stopped_early
                 else result.history[-1]["epoch"])
    return result, log


def split_scores(model, s: Split, device: str) -> dict[str, Any]:
    """Test accuracy and ROC AUC on one split's test rows of the trained MLP `model`, the
    majority class and logistic regression (both fit on the same training rows)."""
    from sklearn.linear_model import LogisticRegression

    from dlab.uncertainty import auc

    p_mlp = predict_proba(model, s.x_test, device)
    majority = int(np.bincount(s.y_train).argmax())
    logreg = LogisticRegression(max_iter=2000).fit(s.x_train, s.y_train)
    p_lr = logreg.predict_proba(s.x_test)[:, 1]
    eps = 1e-7
    loss = -np.mean(s.y_test * np.log(p_mlp + eps) + (1 - s.y_test) * np.log(1 - p_mlp + eps))
    return {"test_accuracy": float(((p_mlp > 0.5) == s.y_test).mean()),
            "test_auc": auc(s.y_test, p_mlp), "test_loss": float(loss),
            "majority_class": majority,
            "majority_accuracy": float((s.y_test == majority).mean()),
            "logreg_accuracy": float(((p_lr > 0.5) == s.y_test).mean()),
            "logreg_auc": auc(s.y_test, p_lr)}


def credit_repeats(cfg: CreditConfig, ctx: RunContext, n_inputs: int) -> list[dict[str, Any]]:
    """The MLP and both baselines on cfg.n_repeats further stratified splits (split k:
    seed ctx.seed + k, a new MLP `credit_net(..., k)`), trained as the first one is;
    returns `split_scores` of each split."""
    out = []
    for k in range(1, cfg.n_repeats + 1):
        sk = load_credit(cfg, ctx, k=k)
        model = credit_net(cfg, ctx, n_inputs, k)
        fit_credit(cfg, ctx, model, sk, f"credit_mlp_split{k}", checkpoint=False)
        out.append(split_scores(model, sk, ctx.device))
        ctx.log(f"split {k}: MLP accuracy {out[-1]['test_accuracy']:.3f}, AUC "
                f"{out[-1]['test_auc']:.3f}; logistic regression AUC "
                f"{out[-1]['logreg_auc']:.3f}")
    return out


def score_credit(model, result, s: Split, device: str,
                 repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """The first split's scores (the MLP shown and saved), and the means over it and the
    `repeats` with the paired intervals every comparison of 2.2 is decided by."""
    first = split_scores(model, s, device)
    splits = [first, *repeats]

    def col(key: str) -> list[float]:
        return [r[key] for r in splits]

    n = len(splits)
    return {**first, "majority_auc": 0.5,
            "n_inputs": s.x_train.shape[1], "n_test": len(s.y_test),
            "test_class_counts": class_counts(s.y_test),
            "epochs_trained": result.history[-1]["epoch"], "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early, "n_splits": n, "splits": splits,
            **{f"mean_{k}": float(np.mean(col(k))) for k in (
                "test_accuracy", "test_auc", "majority_accuracy", "logreg_accuracy",
                "logreg_auc")},
            "accuracy_vs_majority": over_seeds(col("test_accuracy"), col("majority_accuracy"),
                                               "splits").as_dict(),
            "auc_vs_chance": against_reference(col("test_auc"), 0.5,
                                               "splits").as_dict(),
            "auc_vs_logreg": over_seeds(col("test_auc"), col("logreg_auc"),
                                        "splits").as_dict()}


def judge_credit(ctx: RunContext, m: dict[str, Any], log: WeightLog) -> None:
    major = "bad" if m["majority_class"] else "good"
    ctx.infer(f"On the {m['n_test']} held-out applicants of the first split the MLP reaches "
              f"accuracy {m['test_accuracy']:.3f} and ROC AUC {m['test_auc']:.3f}; always "
              f"answering the majority class ({major} risk) scores "
              f"{m['majority_accuracy']:.3f} and AUC 0.5; logistic regression on the same "
              f"inputs scores {m['logreg_accuracy']:.3f} and AUC {m['logreg_auc']:.3f}.")
    n = m["n_splits"]
    ctx.compare(f"mean test accuracy over {n} splits", "The MLP", m["mean_test_accuracy"],
                "the majority class", m["mean_majority_accuracy"], better="higher",
                digits=3, diff=Difference.from_dict(m["accuracy_vs_majority"]))
    ctx.compare(f"mean ROC AUC over {n} splits", "The MLP", m["mean_test_auc"],
                "chance (a constant score)", 0.5, better="higher", digits=3,
                diff=Difference.from_dict(m["auc_vs_chance"]))
    ctx.compare(f"mean ROC AUC over {n} splits", "The MLP", m["mean_test_auc"],
                "logistic regression", m["mean_logreg_auc"], better="higher", digits=3,
                diff=Difference.from_dict(m["auc_vs_logreg"]))
    w0, w1 = log.snapshots[0][1][0], log.snapshots[-1][1][0]
    stop = (f"early stopping kept the weights of epoch {m['best_epoch']}, the lowest "
            f"validation loss, after {m['epochs_trained']} epochs" if m["stopped_early"]
            else f"training ran all {m['epochs_trained']} epochs")
    ctx.infer(f"The first layer's weights moved by "
              f"{np.linalg.norm(w1 - w0) / np.linalg.norm(w0):.2f} of their initial norm "
              f"({stop}).")


def write_credit(ctx: RunContext, cfg: CreditConfig, m: dict[str, Any], log: WeightLog,
                 features: list[str]) -> None:
    from dlab.io import atomic_write

    atomic_write(ctx.path("weights.txt"), "\n\n".join(log.printed) + "\n")
    sizes = "-".join(map(str, (m["n_inputs"], *cfg.widths, 1)))
    ctx.table("Test set of the first split (held out): MLP against the baselines",
              ["model", "accuracy", "ROC AUC"],
              [[f"MLP {sizes} ({cfg.activation})", m["test_accuracy"], m["test_auc"]],
               ["logistic regression (same inputs)", m["logreg_accuracy"], m["logreg_auc"]],
               [f"majority class (always '{'bad' if m['majority_class'] else 'good'}')",
                m["majority_accuracy"], 0.5]])
    ctx.table(f"Every split (stratified, seed {ctx.seed} + k; a new MLP each): test accuracy "
              "and ROC AUC", ["split", "MLP accuracy", "majority accuracy",
                              "logistic regression accuracy", "MLP AUC",
                              "logistic regression AUC"],
              [[k, r["test_accuracy"], r["majority_accuracy"], r["logreg_accuracy"],
                r["test_auc"], r["logreg_auc"]] for k, r in enumerate(m["splits"])])
    first = log.snapshots[0][1]
    ctx.table("Every layer's weights as training goes on (full matrices in weights.txt)",
              ["epoch", "layer", "shape", "mean", "std", "max |w|", "|W - W0| / |W0|"],
              [[epoch, j + 1, f"{w.shape[0]}x{w.shape[1]}", float(w.mean()), float(w.std()),
                float(np.abs(w).max()),
                float(np.linalg.norm(w - first[j]) / np.linalg.norm(first[j]))]
               for epoch, weights in log.snapshots for j, w in enumerate(weights)])
    w_first = log.snapshots[-1][1][0]
    order = np.argsort(-np.abs(w_first).mean(axis=1))[:10]
    ctx.table("Inputs with the largest mean |weight| into the first hidden layer (trained)",
              ["input", "mean |w|"],
              [[features[i], float(np.abs(w_first[i]).mean())] for i in order])
    snaps = log.snapshots
    shown = snaps if len(snaps) <= 6 else [
        snaps[i] for i in np.linspace(0, len(snaps) - 1, 6).round().astype(int)]
    ctx.figure(draw_weight_grid(shown), "weights.png",
               f"Every layer's kernel (rows: inputs, columns: units) at epochs "
               f"{', '.join(s[0] for s in shown)}; red positive, blue negative, one "
               "colour scale per layer.")


def run_credit(cfg: CreditConfig, ctx: RunContext) -> None:
    # step data: German credit, split and preprocessed on the training rows
    s = load_credit(cfg, ctx)
    describe_credit(ctx, cfg, s)
    # step model: the credit-risk MLP
    model = credit_net(cfg, ctx, s.x_train.shape[1])
    # step train: Adam with early stopping, weights shown as it goes; then further splits
    result, log = train_credit(cfg, ctx, model, s)
    repeats = credit_repeats(cfg, ctx, s.x_train.shape[1])
    ctx.save_model(model, sizes=[s.x_train.shape[1], *cfg.widths, 1],
                   activation=cfg.activation, features=s.feature_names,
                   output="logit of bad credit risk", preprocessing=s.pre.to_dict())
    # step score: test accuracy and ROC AUC against the majority class and logistic regression
    ctx.metrics.update(score_credit(model, result, s, ctx.device, repeats))
    # step judge: sentences from the scores
    judge_credit(ctx, ctx.metrics, log)
    # step write: the test table and every layer's weights
    write_credit(ctx, cfg, ctx.metrics, log, s.feature_names)
    # step data: the same applicants with raw and with standardised features
    raw, scaled = raw_and_standardised(cfg, ctx)
    describe_raw(ctx, cfg, raw)
    # step model: the manual's all-sigmoid network, twice from the same initial weights
    probe_nets = sigmoid_pair(cfg, ctx, raw, scaled, 0) if cfg.raw_seeds else {}
    # step train: the sigmoid networks, on each kind of features, for every seed
    probes = train_raw_probes(cfg, ctx, raw, scaled, probe_nets)
    # step score: saturation, weight change and output spread, raw against standardised
    if cfg.raw_seeds:
        ctx.metrics["raw_features"] = score_raw(cfg, probes)
    # step judge: the manual's defect, measured
    if cfg.raw_seeds:
        judge_raw(ctx, cfg, ctx.metrics["raw_features"])
    # step write: the table of the sigmoid networks
    if cfg.raw_seeds:
        write_raw(ctx, cfg, probes)


# ------------------------------------------- 2.2 the manual's raw-feature network


def raw_and_standardised(cfg: CreditConfig, ctx: RunContext) -> tuple[Split, Split]:
    """German credit split into training and test rows (no validation rows), once with
    the numeric columns as they are (raw) and once standardised: the same rows in both."""
    raw = prepare(german_credit(), cfg.test_fraction, seed=ctx.seed, scale=False)
    return raw, prepare(german_credit(), 0, scale=True, rows=raw.rows)


def describe_raw(ctx: RunContext, cfg: CreditConfig, raw: Split) -> None:
    """The raw-feature rows for the record's Data section (nothing when raw_seeds is 0)."""
    if cfg.raw_seeds:
        ctx.data(f"The manual's all-sigmoid network gets {raw.sizes()} with the numeric "
                 f"columns as they are (largest training value "
                 f"{np.abs(raw.x_train).max():,.0f}) and, for comparison, the same rows "
                 "standardised.")


def sigmoid_net(cfg: CreditConfig, ctx: RunContext, n_inputs: int, seed: int):
    """The manual's MLP n_inputs-widths-1 with sigmoid between the layers, initialised
    from the run's generator 10000 + seed, on the run's device."""
    from dlab.models.mlp import MLP

    return MLP((n_inputs, *cfg.widths, 1), "sigmoid",
               generator=ctx.torch_generator(10_000 + seed)).to(ctx.device)


def sigmoid_pair(cfg: CreditConfig, ctx: RunContext, raw: Split, scaled: Split,
                 seed: int) -> dict:
    """{"raw": network, "standardised": network}: the sigmoid network for each kind of
    features, both with the same initial weights (those of `seed`)."""
    return {"raw": sigmoid_net(cfg, ctx, raw.x_train.shape[1], seed),
            "standardised": sigmoid_net(cfg, ctx, scaled.x_train.shape[1], seed)}


def train_sigmoid_probe(model, s: Split, cfg: CreditConfig, ctx: RunContext,
                        name: str) -> dict[str, float]:
    """Train the all-sigmoid MLP `model` in place for cfg.raw_epochs and measure what the
    manual's network shows: the share of first-layer activations within 1e-3 of 0 or 1
    on the training rows (saturated) and of first-layer weights with |gradient| < 1e-6
    (frozen), both before training; the first layer's relative weight change
    |W1_end - W1_0| / |W1_0|; the mean and spread of the test outputs, the classes
    predicted, test accuracy."""
    import torch
    import torch.nn.functional as F

    from dlab.data.tabular import as_tensors
    from dlab.training import fit

    w0 = model.linears[0].weight.detach().clone()
    X, y = as_tensors(s.x_train, s.y_train, ctx.device, binary=True)
    with torch.no_grad():
        a = torch.sigmoid(model.linears[0](X))
    saturated = float(((a < 1e-3) | (a > 1 - 1e-3)).float().mean())
    F.binary_cross_entropy_with_logits(model(X), y).backward()  # gradient before any step
    frozen = float((model.linears[0].weight.grad.abs() < 1e-6).float().mean())
    model.zero_grad(set_to_none=True)
    fit(model, (X, y), ctx=ctx, epochs=cfg.raw_epochs,
        optimizer=torch.optim.Adam(model.parameters(), lr=cfg.lr),
        loss_fn=F.binary_cross_entropy_with_logits, batch_size=cfg.batch_size, name=name,
        checkpoint=False)
    p = predict_proba(model, s.x_test, ctx.device)
    pred = (p > 0.5).astype(np.int64)
    w1 = model.linears[0].weight.detach()
    return {"w1_change": float((w1 - w0).norm() / w0.norm()), "saturated": saturated,
            "frozen": frozen, "output_std": float(p.std()), "output_mean": float(p.mean()),
            "classes_predicted": len(np.unique(pred)),
            "accuracy": float((pred == s.y_test).mean())}


def train_raw_probes(cfg: CreditConfig, ctx: RunContext, raw: Split, scaled: Split,
                     first: dict) -> dict[str, Any]:
    """The sigmoid network on raw and on standardised features (same rows) for each of
    cfg.raw_seeds seeds: `first` (a `sigmoid_pair`, trained in place) for seed 0, then
    `sigmoid_pair(..., k)`. Returns the measurements per seed under "raw" and
    "standardised"."""
    out: dict[str, Any] = {"largest_raw_input": float(np.abs(raw.x_train).max()),
                           "raw": [], "standardised": []}
    for k in range(cfg.raw_seeds):
        nets = first if k == 0 else sigmoid_pair(cfg, ctx, raw, scaled, k)
        for label, s in (("raw", raw), ("standardised", scaled)):
            out[label].append(train_sigmoid_probe(nets[label], s, cfg, ctx,
                                                  f"sigmoid_{label}_{k}"))
    return out


def score_raw(cfg: CreditConfig, probes: dict[str, Any]) -> dict[str, Any]:
    """Means over the seeds of every measurement, raw and standardised, and for the four
    the record compares the paired interval of raw - standardised over the seeds."""
    def col(label: str, key: str) -> list[float]:
        return [r[key] for r in probes[label]]

    out: dict[str, Any] = {"seeds": cfg.raw_seeds,
                           "largest_raw_input": probes["largest_raw_input"],
                           "runs_predicting_one_class": sum(
                               r["classes_predicted"] == 1 for r in probes["raw"]),
                           "standardised_runs_predicting_one_class": sum(
                               r["classes_predicted"] == 1 for r in probes["standardised"])}
    keys = {"saturated_fraction": "saturated", "first_layer_change": "w1_change",
            "frozen_first_layer_weights": "frozen", "output_std": "output_std",
            "output_mean": "output_mean", "accuracy": "accuracy"}
    for name, key in keys.items():
        out[name] = float(np.mean(col("raw", key)))
        out[f"standardised_{name}"] = float(np.mean(col("standardised", key)))
    out["raw_minus_standardised"] = {
        name: over_seeds(col("raw", keys[name]), col("standardised", keys[name])).as_dict()
        for name in ("saturated_fraction", "first_layer_change", "output_std", "accuracy")}
    return out


def judge_raw(ctx: RunContext, cfg: CreditConfig, r: dict[str, Any]) -> None:
    """The manual's defect measured: each sentence is written in the form the numbers
    support, a difference only where its interval over the seeds excludes 0."""
    n = f"over {r['seeds']} seed(s), {cfg.raw_epochs} epochs of Adam (lr {cfg.lr:g})"
    d = {k: Difference.from_dict(v) for k, v in r["raw_minus_standardised"].items()}
    sat = d["saturated_fraction"]
    ctx.claim(f"With raw inputs (up to {r['largest_raw_input']:,.0f}) the first-layer sigmoid "
              f"units start saturated: {r['saturated_fraction']:.0%} of their activations "
              f"are within 1e-3 of 0 or 1, against {r['standardised_saturated_fraction']:.0%} "
              f"with standardised inputs ({n}; {sat.text()}).",
              r["saturated_fraction"] > 0.5 and sat.low > 0,
              otherwise=f"With raw inputs {r['saturated_fraction']:.0%} of the first-layer "
                        f"sigmoid activations start saturated (standardised: "
                        f"{r['standardised_saturated_fraction']:.0%}; {sat.text()}): not "
                        "shown to be a majority and more than with standardised inputs.",
              raw=r["saturated_fraction"], standardised=r["standardised_saturated_fraction"],
              difference=sat.as_dict())
    a, b, ch = r["first_layer_change"], r["standardised_first_layer_change"], \
        d["first_layer_change"]
    ctx.claim(f"The first layer's weights move less with raw inputs: by {a:.3f} of their "
              f"initial norm against {b:.3f} with standardised inputs ({ch.text()}); "
              f"{r['frozen_first_layer_weights']:.1%} of them start with a gradient below "
              f"1e-6 (standardised: {r['standardised_frozen_first_layer_weights']:.1%}).",
              ch.high < 0, otherwise=f"The first layer's weights are not shown to move less "
                                     f"with raw inputs ({a:.3f} of their initial norm against "
                                     f"{b:.3f} standardised; {ch.text()}).",
              raw=a, standardised=b, difference=ch.as_dict())
    sd = d["output_std"]
    ctx.claim(f"The raw-input network's test outputs vary less than half as much (standard "
              f"deviation {r['output_std']:.3f} around {r['output_mean']:.3f}, against "
              f"{r['standardised_output_std']:.3f} standardised; {sd.text()}); "
              f"{r['runs_predicting_one_class']} of {r['seeds']} raw runs predict a single "
              "class.", sd.high < 0 and r["output_std"] < 0.5 * r["standardised_output_std"],
              otherwise=f"The raw-input network's test outputs spread with standard deviation "
                        f"{r['output_std']:.3f} (standardised: "
                        f"{r['standardised_output_std']:.3f}; {sd.text()}): not shown to be "
                        f"under half; {r['runs_predicting_one_class']} of {r['seeds']} raw "
                        "runs predict a single class.",
              raw=r["output_std"], standardised=r["standardised_output_std"],
              difference=sd.as_dict())
    ctx.compare(f"mean test accuracy over {r['seeds']} seed(s)",
                "The raw-input sigmoid network", r["accuracy"], "the standardised-input one",
                r["standardised_accuracy"], better="higher", digits=3, diff=d["accuracy"])


def write_raw(ctx: RunContext, cfg: CreditConfig, probes: dict[str, Any]) -> None:
    rows = [[k, label, r["saturated"], r["frozen"], r["w1_change"], r["output_mean"],
             r["output_std"], r["classes_predicted"], r["accuracy"]]
            for k in range(cfg.raw_seeds) for label in ("raw", "standardised")
            for r in [probes[label][k]]]
    ctx.table(f"The manual's sigmoid network on raw against standardised features "
              f"({cfg.raw_epochs} epochs, Adam lr {cfg.lr:g})",
              ["seed", "features", "saturated first-layer units at start",
               "first-layer weights with |gradient| < 1e-6 at start",
               "first-layer |W - W0| / |W0|", "mean test output", "sd of test outputs",
               "classes predicted", "test accuracy"], rows)


CREDIT = Implementation(
    config=CreditConfig, run=run_credit,
    profiles={"smoke": {"epochs": 3, "show_every": 3, "raw_seeds": 2, "raw_epochs": 1,
                        "n_repeats": 1},
              "full": {"epochs": 200, "show_every": 20, "raw_seeds": 10, "n_repeats": 9}},
    targets=(
        Target("mean_test_accuracy", above="mean_majority_accuracy",
               interval="accuracy_vs_majority", profiles=("quick", "full"),
               why="the MLP must do better than always answering the majority class, "
                   "beyond the spread over splits"),
        Target("mean_test_auc", above="majority_auc", interval="auc_vs_chance",
               profiles=("quick", "full"),
               why="the MLP's scores must rank bad risks above good ones better than chance"),
    ),
    crippled={"epochs": 1, "raw_seeds": 0},
)
