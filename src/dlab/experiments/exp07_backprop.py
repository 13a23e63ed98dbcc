"""Experiment 7: back-propagation, the forward and the backward pass.

7.1 `dlab.scratch`'s Keras-like API (Sequential, Dense, compile, fit, evaluate, predict,
    summary, History) trains XOR; the back-propagated gradients are checked by finite
    differences; and the manual's 2-2-1 network with 0.01-scale weights is run as it
    was meant to run, and measured.
7.2 A second hidden layer: its forward and backward equations written out (in the
    record and in `forward_two_hidden` / `backward_two_hidden` below), checked by finite
    differences and against `dlab.scratch`; one against two hidden layers on XOR.

Each program reads: load data -> build the model -> train -> score (a dict of measured
values) -> judge (targets on the Implementation, claims from the scores) -> write (tables,
figures).

Rumelhart, Hinton and Williams (1986), "Learning representations by back-propagating
errors", Nature 323; the equations follow Goodfellow, Bengio and Courville (2016),
"Deep Learning", section 6.5 (algorithms 6.3 and 6.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.uncertainty import Difference, over_seeds
from dlab.verdicts import Target


def xor_data() -> tuple[np.ndarray, np.ndarray]:
    """The four XOR points (4, 2) and targets (4, 1), float32."""
    from dlab.data.synthetic import xor

    return xor()


def xor_net(hidden: tuple[int, ...], activation: str, seed, loss: str = "binary_crossentropy",
            optimizer=None, dtype=np.float32, kernel_initializer="glorot_uniform"):
    """A compiled `dlab.scratch` network 2 -> hidden... -> 1 (sigmoid output)."""
    from dlab.scratch import SGD, Dense, Sequential

    layers = [Dense(hidden[0], activation, input_dim=2, kernel_initializer=kernel_initializer)]
    layers += [Dense(h, activation, kernel_initializer=kernel_initializer) for h in hidden[1:]]
    layers.append(Dense(1, "sigmoid", kernel_initializer=kernel_initializer))
    model = Sequential(layers, seed=seed, dtype=dtype)
    model.compile(loss=loss, optimizer=optimizer if optimizer is not None else SGD(0.5),
                  metrics=["accuracy"])
    return model


def solves(model, X: np.ndarray, y: np.ndarray) -> bool:
    """All outputs on the right side of 0.5."""
    return bool(np.all((model.predict(X) > 0.5) == (y > 0.5)))


def train_until(model, X, y, epochs: int, check_every: int) -> tuple[list[float], int | None]:
    """`fit` full-batch in chunks of `check_every` epochs; returns the per-epoch losses
    and the first checked epoch at which all outputs are right (None if never)."""
    losses: list[float] = []
    solved = None
    done = 0
    while done < epochs:
        k = min(check_every, epochs - done)
        losses += model.fit(X, y, epochs=k, batch_size=None, shuffle=False).history["loss"]
        done += k
        if solved is None and solves(model, X, y):
            solved = done
    return losses, solved


def summary_rows(model) -> list[list]:
    """Layer, output shape and parameter count of each layer, as `summary()` prints them."""
    return [[f"{layer.name} (Dense, {layer.activation.name})", f"(None, {layer.units})",
             layer.count_params()] for layer in model.layers]


# ============================================================ 7.1 Keras-like API


@dataclass
class KerasLikeConfig:
    hidden: int = 4  # hidden units of the 2-hidden-1 network
    activation: Literal["tanh", "sigmoid", "relu"] = "tanh"  # hidden activation
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.5  # learning rate
    epochs: int = 2000  # full-batch epochs per seed
    n_seeds: int = 10  # initialisations
    manual_epochs: int = 5000  # epochs for the manual's 2-2-1 network, its own (0: skip it)
    manual_lr: float = 0.5  # its learning rate, the manual's (plain gradient descent, MSE)
    manual_seeds: int = 5  # initialisations of the manual's network

    def validate(self) -> None:
        if self.manual_epochs < 0 or self.manual_seeds < 1:
            raise ValueError("manual_epochs must be >= 0 and manual_seeds >= 1")


def small_normal(shape, rng, dtype):
    """The manual's initial weights: 0.01 * N(0, 1), shape (in, out)."""
    return (0.01 * rng.standard_normal(shape)).astype(dtype)


# An output within this distance of 0.5 on every input counts as "stuck at 0.5".
STUCK = 0.01


def keras_like_net(cfg: KerasLikeConfig, seed: int, k: int):
    """The compiled 2-hidden-1 network of seed number k (binary cross-entropy, the
    configured optimizer), initial weights from the NumPy generator (seed, k)."""
    from dlab.scratch import SGD, Adam

    opt = SGD(cfg.lr) if cfg.optimizer == "sgd" else Adam(cfg.lr)
    return xor_net((cfg.hidden,), cfg.activation, np.random.default_rng((seed, k)),
                   optimizer=opt)


def train_xor_seeds(cfg: KerasLikeConfig, ctx: RunContext, model) -> list[dict]:
    """`model` (seed 0) and the networks of seeds 1 .. n_seeds - 1 (`keras_like_net`)
    trained full batch, gradients checked by finite differences before and after
    training. Returns one dict per seed: the model, its History losses, evaluate()'s
    loss and accuracy, the outputs and the two gradient checks."""
    from dlab.scratch import gradcheck

    X, y = xor_data()
    runs = []
    for k in range(cfg.n_seeds):
        net = model if k == 0 else keras_like_net(cfg, ctx.seed, k)
        err0 = gradcheck(net, X, y)
        history = net.fit(X, y, epochs=cfg.epochs, batch_size=None, shuffle=False)
        loss, acc = net.evaluate(X, y)
        runs.append({"seed": k, "model": net, "history": history.history["loss"],
                     "loss": loss, "acc": acc, "p": net.predict(X).ravel(),
                     "ok": solves(net, X, y), "grad0": err0, "grad1": gradcheck(net, X, y)})
    return runs


def backward_before_forward() -> str:
    """What dlab.scratch says when backward() comes before any forward() (the manual's
    order of calls)."""
    from dlab.scratch import Dense

    layer = Dense(2, "sigmoid", input_dim=2, seed=0)
    layer.build((None, 2))
    try:
        layer.backward(np.zeros((4, 2), np.float32))
        return "no error"
    except RuntimeError as exc:
        return str(exc)


class CachedPassNet:
    """A 2-2-1 sigmoid network laid out as the manual lays out its own: `forward` keeps
    its activations as attributes, `backward` reads them, and `train` gathers the losses
    in a list comprehension whose filter calls `backward`. Counts the forward calls."""

    def __init__(self, rng: np.random.Generator, lr: float = 0.5):
        self.W1, self.b1 = 0.01 * rng.standard_normal((2, 2)), np.zeros((1, 2))
        self.W2, self.b2 = 0.01 * rng.standard_normal((2, 1)), np.zeros((1, 1))
        self.lr, self.forward_calls = lr, 0

    def forward(self, X: np.ndarray) -> np.ndarray:
        self.forward_calls += 1
        self.hidden = act("sigmoid", X @ self.W1 + self.b1)         # (N, 2)
        self.output = act("sigmoid", self.hidden @ self.W2 + self.b2)  # (N, 1)
        return self.output

    def backward(self, X: np.ndarray, Y: np.ndarray) -> None:
        d2 = (self.output - Y) * self.output * (1 - self.output)    # reads forward's cache
        d1 = (d2 @ self.W2.T) * self.hidden * (1 - self.hidden)
        self.W2 -= self.lr * self.hidden.T @ d2
        self.b2 -= self.lr * d2.sum(axis=0, keepdims=True)
        self.W1 -= self.lr * X.T @ d1
        self.b1 -= self.lr * d1.sum(axis=0, keepdims=True)

    def train(self, X: np.ndarray, Y: np.ndarray, epochs: int) -> list[float]:
        return [float(np.mean((Y - self.forward(X)) ** 2)) for _ in range(epochs)
                if not self.backward(X, Y)]


def manual_order(seed: int) -> dict:
    """Run `CachedPassNet.train` on XOR and record what happens: the exception it raises
    (type and message, or none) and how many forward passes ran before it."""
    X, y = (a.astype(np.float64) for a in xor_data())
    net = CachedPassNet(np.random.default_rng((seed, 99)))
    try:
        net.train(X, y, 10)
        error, message = "none", ""
    except Exception as exc:  # noqa: BLE001 - the point is to record whatever it raises
        error, message = type(exc).__name__, str(exc)
    return {"error": error, "message": message, "forward_calls": net.forward_calls}


def inside(model, X: np.ndarray, y: np.ndarray) -> dict:
    """Hidden activations and gradients of a 2-2-1 sigmoid network on the four inputs.

    hidden_spread: the largest, over hidden units, of max - min of the unit's activation
    across the four inputs (0: the unit answers the same for every input).
    grad_W1 / grad_W2: mean |dL/dW| of the first and second layer's kernel.
    """
    W1, b1 = model.get_weights()[:2]
    hidden = act("sigmoid", X @ W1 + b1)                            # (4, 2)
    g = model.gradients(X, y)                                      # [dW1, db1, dW2, db2]
    return {"hidden_spread": float((hidden.max(axis=0) - hidden.min(axis=0)).max()),
            "grad_W1": float(np.abs(g[0]).mean()), "grad_W2": float(np.abs(g[2]).mean())}


MANUAL_INITS = ("manual", "glorot")  # the manual's 0.01 N(0, 1) weights; Glorot uniform


def manual_net(cfg: KerasLikeConfig, seed: int, k: int, init: str):
    """The manual's compiled 2-2-1 sigmoid network (MSE, plain gradient descent at
    manual_lr) of seed number k, with `init` weights: 'manual' (`small_normal`) or
    'glorot' (Glorot uniform), both drawn from the NumPy generator (seed, 100 + k)."""
    from dlab.scratch import SGD

    return xor_net((2,), "sigmoid", np.random.default_rng((seed, 100 + k)), loss="mse",
                   optimizer=SGD(cfg.manual_lr),
                   kernel_initializer=small_normal if init == "manual" else "glorot_uniform")


def manual_network(cfg: KerasLikeConfig, ctx: RunContext, nets: dict) -> dict:
    """The manual's 2-2-1 network with 0.01-scale and with Glorot-uniform initial weights:
    `nets` ({init: network}, seed 0) and seeds 1 .. manual_seeds - 1 (`manual_net`),
    trained; inside each, before and after training. Returns {init: [one dict per
    seed]}."""
    X, y = xor_data()
    runs: dict[str, list[dict]] = {name: [] for name in nets}
    for name in nets:
        for k in range(cfg.manual_seeds):
            m = nets[name] if k == 0 else manual_net(cfg, ctx.seed, k, name)
            start = inside(m, X, y)
            w1 = m.get_weights()[0].copy()
            g0 = float(np.sqrt(sum((g ** 2).sum() for g in m.gradients(X, y))))
            hist = m.fit(X, y, epochs=cfg.manual_epochs, batch_size=None, shuffle=False)
            runs[name].append({"seed": k, "start": start, "end": inside(m, X, y),
                               "w1_moved": float(np.linalg.norm(m.get_weights()[0] - w1)),
                               "grad_norm": g0, "p": m.predict(X).ravel(),
                               "solved": solves(m, X, y), "history": hist.history["loss"]})
    return runs


def manual_metrics(runs: dict) -> dict:
    """Plain numbers of the manual-network study (means over seeds)."""
    def mean(name: str, when: str, key: str) -> float:
        return float(np.mean([r[when][key] for r in runs[name]]))

    manual = np.array([r["p"] for r in runs["manual"]])            # (seeds, 4)
    glorot = np.array([r["p"] for r in runs["glorot"]])
    out = {
        "max_abs_output_minus_half": float(np.abs(manual - 0.5).max()),
        "seeds_stuck_at_half": int((np.abs(manual - 0.5).max(axis=1) < STUCK).sum()),
        "seeds": len(runs["manual"]),
        "glorot_solved": int(sum(r["solved"] for r in runs["glorot"])),
        "gradient_norm_at_start": float(np.mean([r["grad_norm"] for r in runs["manual"]])),
        "glorot_gradient_norm_at_start": float(np.mean([r["grad_norm"]
                                                        for r in runs["glorot"]])),
        "glorot_max_abs_output_minus_half": float(np.abs(glorot - 0.5).max()),
        "w1_moved": float(np.mean([r["w1_moved"] for r in runs["manual"]])),
        "glorot_w1_moved": float(np.mean([r["w1_moved"] for r in runs["glorot"]])),
    }
    for name, prefix in (("manual", ""), ("glorot", "glorot_")):
        for when in ("start", "end"):
            for key in ("hidden_spread", "grad_W1", "grad_W2"):
                out[f"{prefix}{key}_{when}"] = mean(name, when, key)
    out["all_stuck"] = out["seeds_stuck_at_half"] == out["seeds"]
    return out


def score_keras_like(cfg: KerasLikeConfig, runs: list[dict], message: str,
                     order: dict) -> dict:
    n_ok = sum(r["ok"] for r in runs)
    return {"success_rate": n_ok / cfg.n_seeds, "successes": n_ok, "n_seeds": cfg.n_seeds,
            "gradcheck_max_rel_error": max(max(r["grad0"], r["grad1"]) for r in runs),
            "final_loss_median": float(np.median([r["loss"] for r in runs])),
            "params": runs[0]["model"].count_params(), "backward_before_forward": message,
            "manual_order_error": order["error"], "manual_order_message": order["message"],
            "manual_order_forward_calls": order["forward_calls"]}


def keras_like_figure(cfg: KerasLikeConfig, runs: list[dict], manual: dict | None) -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if manual else 1, figsize=(11, 4), squeeze=False)
    ax = axes[0, 0]
    for r in runs:
        ax.plot(np.arange(1, cfg.epochs + 1), r["history"], lw=1, label=f"seed {r['seed']}")
    ax.set(yscale="log", xlabel="epoch", ylabel="binary cross-entropy (History)",
           title=f"2-{cfg.hidden}-1 ({cfg.activation}) on XOR, {cfg.optimizer} lr {cfg.lr:g}")
    ax.legend(fontsize=7, ncol=2)
    if manual:
        for name, label in (("manual", "0.01 N(0, 1) (manual)"), ("glorot", "Glorot uniform")):
            axes[0, 1].plot(manual[name][0]["history"], label=label)
        axes[0, 1].set(xlabel="epoch", ylabel="MSE", title="The manual's 2-2-1 network (seed 0)")
        axes[0, 1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_keras_like(cfg: KerasLikeConfig, ctx: RunContext, runs: list[dict],
                     manual: dict | None) -> None:
    first = runs[0]["model"]
    ctx.log("\n" + first.summary())
    ctx.add_history([{"model": f"xor_seed{r['seed']}", "epoch": e + 1, "loss": v}
                     for r in runs for e, v in enumerate(r["history"])
                     if e % max(1, cfg.epochs // 200) == 0])
    ctx.table("model.summary() of the network", ["Layer (type)", "Output Shape", "Param #"],
              summary_rows(first) + [["Total params", "", first.count_params()]])
    ctx.table("Per seed: evaluate() after training, outputs and gradient checks",
              ["seed", "loss", "accuracy", "p(00)", "p(01)", "p(10)", "p(11)",
               "gradcheck at start", "gradcheck at end"],
              [[r["seed"], r["loss"], r["acc"], *np.round(r["p"], 4).tolist(), r["grad0"],
                r["grad1"]] for r in runs])
    if manual:
        ctx.table(f"The manual's 2-2-1 sigmoid network (MSE, gradient descent lr "
                  f"{cfg.manual_lr:g}, {cfg.manual_epochs} epochs), inside it before and after "
                  "training (spread: max - min of a hidden unit over the four inputs; "
                  "|dL/dW|: mean over the layer's kernel)",
                  ["initial weights", "seed", "p(00)", "p(01)", "p(10)", "p(11)", "solved",
                   "hidden spread start", "hidden spread end", "|dL/dW1| start",
                   "|dL/dW2| start", "|dL/dW1| end", "|dL/dW2| end"],
                  [[name, r["seed"], *np.round(r["p"], 4).tolist(), r["solved"],
                    r["start"]["hidden_spread"], r["end"]["hidden_spread"],
                    r["start"]["grad_W1"], r["start"]["grad_W2"], r["end"]["grad_W1"],
                    r["end"]["grad_W2"]] for name in manual for r in manual[name]])
    ctx.figure(keras_like_figure(cfg, runs, manual), "xor_loss.png",
               "Left: training loss from History for every seed. Right (when run): the "
               "manual's 2-2-1 network with 0.01-scale and with Glorot-uniform initial weights.")


def judge_keras_like(cfg: KerasLikeConfig, ctx: RunContext) -> None:
    m = ctx.metrics
    ctx.infer(f"{m['successes']} of {cfg.n_seeds} seeds solved XOR (all four outputs on the "
              f"right side of 0.5) after {cfg.epochs} epochs; median final loss "
              f"{m['final_loss_median']:.4f}.")
    ctx.claim(f"Back-propagated gradients agree with central finite differences (float64) to "
              f"a relative error of {m['gradcheck_max_rel_error']:.1e} or better, at the start "
              "and at the end of every run.", m["gradcheck_max_rel_error"] <= 1e-6,
              otherwise=f"Back-propagated gradients differ from central finite differences by "
              f"a relative error of up to {m['gradcheck_max_rel_error']:.1e} (above 1e-6).",
              gradcheck_max_rel_error=m["gradcheck_max_rel_error"])
    ctx.infer(f"Calling dlab.scratch's backward() before any forward pass raises: "
              f"\"{m['backward_before_forward']}\".")
    ctx.claim(f"A network laid out as the manual's (forward() keeps its activations, "
              f"backward() reads them, the losses gathered by a list comprehension whose "
              f"filter calls backward()) raised {m['manual_order_error']}: "
              f"\"{m['manual_order_message']}\" after {m['manual_order_forward_calls']} "
              "forward passes: the filter ran before the expression that calls forward().",
              m["manual_order_error"] != "none" and m["manual_order_forward_calls"] == 0,
              otherwise=f"A network laid out as the manual's ended with "
                        f"{m['manual_order_error']} "
                        f"{m['manual_order_message']!r} after "
                        f"{m['manual_order_forward_calls']} forward passes.",
              error=m["manual_order_error"], forward_calls=m["manual_order_forward_calls"])
    if "manual_net" in m:
        judge_manual_network(cfg, ctx, m["manual_net"])


def judge_manual_network(cfg: KerasLikeConfig, ctx: RunContext, mn: dict) -> None:
    ctx.claim(f"The manual's 2-2-1 network with 0.01-scale weights, trained for "
              f"{cfg.manual_epochs} epochs at lr {cfg.manual_lr:g}, stays at 0.5: its "
              f"outputs are within {mn['max_abs_output_minus_half']:.2g} of 0.5 on every "
              f"input in {mn['seeds']} of {mn['seeds']} seeds.", mn["all_stuck"],
              otherwise=f"The manual's 2-2-1 network with 0.01-scale weights does not stay at "
              f"0.5: {mn['seeds_stuck_at_half']} of {mn['seeds']} seeds end within {STUCK} of "
              f"0.5 on every input (largest distance {mn['max_abs_output_minus_half']:.2g}).",
              seeds_stuck=mn["seeds_stuck_at_half"], seeds=mn["seeds"])
    # Why: the hidden units answer (almost) the same for all four inputs and the first
    # layer's gradient is orders of magnitude smaller than with Glorot weights, so W1
    # never moves; the output settles on the best constant, where the gradient vanishes.
    cause = (mn["all_stuck"]
             and mn["hidden_spread_end"] < 0.1 * mn["glorot_hidden_spread_start"]
             and mn["grad_W1_start"] < 0.01 * mn["glorot_grad_W1_start"])
    ctx.claim(f"Why it is stuck, measured: its two hidden units vary by at most "
              f"{mn['hidden_spread_start']:.1e} across the four inputs at the start and "
              f"{mn['hidden_spread_end']:.1e} at the end "
              f"({mn['glorot_hidden_spread_start']:.2f} at the start with Glorot-uniform "
              "weights), so the output unit sees nearly the same hidden vector for every XOR "
              f"point; the first layer's mean |dL/dW| at the start is "
              f"{mn['grad_W1_start']:.1e} against {mn['glorot_grad_W1_start']:.1e} with Glorot "
              f"weights, and over training its kernel moved by {mn['w1_moved']:.2g} (Euclidean "
              f"norm; Glorot: {mn['glorot_w1_moved']:.2g}).", cause,
              otherwise=f"The measurements do not single out a cause: hidden spread "
              f"{mn['hidden_spread_start']:.2g} at the start and {mn['hidden_spread_end']:.2g} "
              f"at the end (Glorot: {mn['glorot_hidden_spread_start']:.2g}); first-layer mean "
              f"|dL/dW| {mn['grad_W1_start']:.2g} (Glorot: {mn['glorot_grad_W1_start']:.2g}).",
              **{k: mn[k] for k in ("hidden_spread_start", "hidden_spread_end",
                                    "glorot_hidden_spread_start", "grad_W1_start",
                                    "glorot_grad_W1_start")})
    end = max(mn["grad_W1_end"], mn["grad_W2_end"])
    ctx.claim(f"After {cfg.manual_epochs} epochs the output is the best constant (0.5) and the "
              f"mean |dL/dW| has fallen to {mn['grad_W1_end']:.1e} (first layer) and "
              f"{mn['grad_W2_end']:.1e} (second), under 1% of the first layer's "
              f"{mn['glorot_grad_W1_start']:.1e} at the start with Glorot weights.",
              mn["all_stuck"] and end < 0.01 * mn["glorot_grad_W1_start"],
              otherwise=f"After {cfg.manual_epochs} epochs the mean |dL/dW| is still "
              f"{mn['grad_W1_end']:.1e} (first layer) and {mn['grad_W2_end']:.1e} (second): "
              "not yet at a stationary point.",
              grad_W1_end=mn["grad_W1_end"], grad_W2_end=mn["grad_W2_end"],
              glorot_grad_W1_start=mn["glorot_grad_W1_start"])
    ctx.infer(f"With Glorot-uniform weights the same network solved XOR in "
              f"{mn['glorot_solved']} of {mn['seeds']} seeds.")
    ctx.background("With all weights near zero the hidden units of a sigmoid network compute "
                   "nearly the same function and receive nearly the same gradient, so the "
                   "symmetry between them is broken only slowly; the output then settles on "
                   "the best constant, where the gradient vanishes.",
                   "Goodfellow, Bengio and Courville 2016, Deep Learning, section 8.4; "
                   "Glorot and Bengio 2010")


def run_keras_like(cfg: KerasLikeConfig, ctx: RunContext) -> None:
    # step data: the four XOR points
    ctx.data("The four XOR points {0,1}^2 with targets 0, 1, 1, 0 (dlab.data.synthetic.xor); "
             "training is full batch.")
    # step model: the 2-hidden-1 network, and the manual's 2-2-1 network (first seed each)
    net = keras_like_net(cfg, ctx.seed, 0)
    manual_nets = ({init: manual_net(cfg, ctx.seed, 0, init) for init in MANUAL_INITS}
                   if cfg.manual_epochs else {})
    # step train: every seed with fit(), gradients checked; then the manual's network
    runs = train_xor_seeds(cfg, ctx, net)
    manual = manual_network(cfg, ctx, manual_nets) if manual_nets else None
    # step score: seeds solved, gradient checks, the manual's order of calls, its network
    ctx.metrics.update(score_keras_like(cfg, runs, backward_before_forward(),
                                        manual_order(ctx.seed)))
    if manual:
        ctx.metrics["manual_net"] = manual_metrics(manual)
    # step judge: sentences from the scores
    judge_keras_like(cfg, ctx)
    # step write: the summary, per-seed tables and the loss curves
    write_keras_like(cfg, ctx, runs, manual)


KERAS_LIKE = Implementation(
    config=KerasLikeConfig, run=run_keras_like,
    profiles={"smoke": {"epochs": 300, "n_seeds": 2, "manual_epochs": 200, "manual_seeds": 1},
              "full": {"epochs": 5000, "n_seeds": 10, "manual_epochs": 10000,
                       "manual_seeds": 10}},
    targets=(
        Target("gradcheck_max_rel_error", at_most=1e-6,
               why="back-propagation agrees with finite differences"),
        Target("success_rate", at_least=0.9, profiles=("quick", "full"),
               why="the 2-4-1 tanh network solves XOR from nearly every initialisation"),
        Target("manual_net.all_stuck", equals=True, when=lambda m: "manual_net" in m,
               when_text="the manual's network is run (manual_epochs > 0)",
               why="the manual's 0.01-scale network is shown to stay at 0.5"),
        Target("manual_order_error", equals="AttributeError",
               why="the manual's order of calls (backward before forward) is run and raises"),
    ),
    crippled={"epochs": 10, "manual_epochs": 100},
)

# ======================================================= 7.2 two hidden layers


def act(name: str, z: np.ndarray) -> np.ndarray:
    """f(z) for 'tanh', 'sigmoid', 'relu'."""
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * z))
    return np.maximum(z, 0.0)


def act_grad(name: str, a: np.ndarray) -> np.ndarray:
    """f'(z) written in terms of the output a = f(z)."""
    if name == "tanh":
        return 1.0 - a * a
    if name == "sigmoid":
        return a * (1.0 - a)
    return (a > 0).astype(a.dtype)


def forward_two_hidden(params: list[np.ndarray], X: np.ndarray, f: str) -> dict:
    """Forward pass with two hidden layers; params = [W1, b1, W2, b2, W3, b3] (Keras order).

        Z1 = X W1 + b1    A1 = f(Z1)          (N, H1)
        Z2 = A1 W2 + b2   A2 = f(Z2)          (N, H2)   <- the second hidden layer
        Z3 = A2 W3 + b3   P = sigmoid(Z3)     (N, 1)
    """
    W1, b1, W2, b2, W3, b3 = params
    A1 = act(f, X @ W1 + b1)
    A2 = act(f, A1 @ W2 + b2)
    Z3 = A2 @ W3 + b3
    return {"A1": A1, "A2": A2, "Z3": Z3, "P": act("sigmoid", Z3)}


def bce_from_logit(z: np.ndarray, y: np.ndarray) -> float:
    """L = -1/N sum [y log P + (1 - y) log(1 - P)] = 1/N sum [softplus(z) - y z]."""
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def backward_two_hidden(params: list[np.ndarray], cache: dict, X: np.ndarray,
                        y: np.ndarray, f: str) -> list[np.ndarray]:
    """Gradients of the mean binary cross-entropy, in params order:

        D3 = dL/dZ3 = (P - y) / N                       (N, 1)
        dW3 = A2^T D3,   db3 = sum_n D3                 (H2, 1), (1,)
        D2 = (D3 W3^T) * f'(Z2)                         (N, H2)   <- new
        dW2 = A1^T D2,   db2 = sum_n D2                 (H1, H2), (H2,)  <- new
        D1 = (D2 W2^T) * f'(Z1)                         (N, H1)   (was D3 W2^T * f'(Z1))
        dW1 = X^T D1,    db1 = sum_n D1                 (n_in, H1), (H1,)
    """
    W1, b1, W2, b2, W3, b3 = params
    A1, A2, P = cache["A1"], cache["A2"], cache["P"]
    D3 = (P - y) / X.shape[0]
    D2 = (D3 @ W3.T) * act_grad(f, A2)
    D1 = (D2 @ W2.T) * act_grad(f, A1)
    return [X.T @ D1, D1.sum(axis=0), A1.T @ D2, D2.sum(axis=0), A2.T @ D3, D3.sum(axis=0)]


def fd_two_hidden(params: list[np.ndarray], X: np.ndarray, y: np.ndarray, f: str,
                  eps: float = 1e-6) -> list[np.ndarray]:
    """Central finite differences of the loss for every entry of every parameter."""
    out = []
    for w in params:
        g = np.empty_like(w)
        fw, fg = w.reshape(-1), g.reshape(-1)  # views
        for i in range(fw.size):
            old = fw[i]
            fw[i] = old + eps
            up = bce_from_logit(forward_two_hidden(params, X, f)["Z3"], y)
            fw[i] = old - eps
            down = bce_from_logit(forward_two_hidden(params, X, f)["Z3"], y)
            fw[i] = old
            fg[i] = (up - down) / (2 * eps)
        out.append(g)
    return out


def max_rel_error(a: list[np.ndarray], b: list[np.ndarray], floor: float = 1e-3) -> float:
    """max |a - b| / max(|a|, |b|, floor) over all entries."""
    return max(float(np.max(np.abs(x - z) / np.maximum(np.maximum(np.abs(x), np.abs(z)),
                                                       floor))) for x, z in zip(a, b,
                                                                                strict=True))


EQUATIONS = [
    ["forward", r"$Z_1 = X W_1 + b_1,\ A_1 = f(Z_1)$", "(N, H1)", ""],
    ["forward", r"$Z_2 = A_1 W_2 + b_2,\ A_2 = f(Z_2)$", "(N, H2)", "new"],
    ["forward", r"$Z_3 = A_2 W_3 + b_3,\ P = \sigma(Z_3)$", "(N, 1)", "input A2, was A1"],
    ["loss", r"$L = -\frac{1}{N}\sum_n [y_n \log P_n + (1 - y_n)\log(1 - P_n)]$", "scalar",
     ""],
    ["backward", r"$\delta_3 = \partial L/\partial Z_3 = (P - y)/N$", "(N, 1)", ""],
    ["backward", r"$\partial L/\partial W_3 = A_2^\top \delta_3,\ "
                 r"\partial L/\partial b_3 = \sum_n \delta_3$", "(H2, 1), (1,)", ""],
    ["backward", r"$\delta_2 = (\delta_3 W_3^\top) \odot f'(Z_2)$", "(N, H2)", "new"],
    ["backward", r"$\partial L/\partial W_2 = A_1^\top \delta_2,\ "
                 r"\partial L/\partial b_2 = \sum_n \delta_2$", "(H1, H2), (H2,)", "new"],
    ["backward", r"$\delta_1 = (\delta_2 W_2^\top) \odot f'(Z_1)$", "(N, H1)",
     "from delta2, was from delta3"],
    ["backward", r"$\partial L/\partial W_1 = X^\top \delta_1,\ "
                 r"\partial L/\partial b_1 = \sum_n \delta_1$", "(n_in, H1), (H1,)", ""],
]


@dataclass
class TwoHiddenConfig:
    hidden: int = 4  # units per hidden layer: 2-h-1 against 2-h-h-1
    activation: Literal["tanh", "sigmoid", "relu"] = "tanh"  # hidden activation f
    lr: float = 0.5  # gradient-descent learning rate
    epochs: int = 2000  # most full-batch epochs per seed
    n_seeds: int = 10  # initialisations per architecture
    check_every: int = 10  # epochs between checks of whether XOR is solved

    def validate(self) -> None:
        if self.check_every < 1:
            raise ValueError("check_every must be at least 1")


def check_equations(cfg: TwoHiddenConfig, seed: int) -> list[list]:
    """The equations coded in this file against finite differences and dlab.scratch (same
    weights), for three random draws: [draw, rel. error vs FD, max |diff| vs scratch,
    scratch's own gradcheck]."""
    from dlab.scratch import gradcheck

    X, y = xor_data()
    X64, y64 = X.astype(np.float64), y.astype(np.float64)
    f, h = cfg.activation, cfg.hidden
    checks = []
    for k in range(3):
        twin = xor_net((h, h), f, np.random.default_rng((seed, 50 + k)), dtype=np.float64)
        params = twin.get_weights()
        mine = backward_two_hidden(params, forward_two_hidden(params, X64, f), X64, y64, f)
        fd = fd_two_hidden([p.copy() for p in params], X64, y64, f)
        lib = twin.gradients(X64, y64)
        checks.append([k, max_rel_error(mine, fd),
                       max(float(np.abs(a - b).max()) for a, b in zip(mine, lib, strict=True)),
                       gradcheck(twin, X64, y64)])
    return checks


def depth_nets(cfg: TwoHiddenConfig, seed: int, k: int) -> dict:
    """The compared networks of seed number k, {name: compiled network}: 2-h-1 and
    2-h-h-1 (gradient descent at cfg.lr), initial weights from the NumPy generators
    (seed, k, 0) and (seed, k, 1)."""
    from dlab.scratch import SGD

    h = cfg.hidden
    archs = {f"2-{h}-1": (h,), f"2-{h}-{h}-1": (h, h)}
    return {name: xor_net(hidden, cfg.activation, np.random.default_rng((seed, k, j)),
                          optimizer=SGD(cfg.lr))
            for j, (name, hidden) in enumerate(archs.items())}


def train_depths(cfg: TwoHiddenConfig, seed: int, nets: dict) -> dict[str, list[dict]]:
    """`nets` (seed 0, from `depth_nets`) and the same networks of seeds 1 .. n_seeds - 1,
    trained until solved or cfg.epochs: {name: [{"solved": epoch or None, "loss",
    "params", "curve"}]}."""
    X, y = xor_data()
    results: dict[str, list[dict]] = {name: [] for name in nets}
    for k in range(cfg.n_seeds):
        for name, model in (nets if k == 0 else depth_nets(cfg, seed, k)).items():
            losses, solved = train_until(model, X, y, cfg.epochs, cfg.check_every)
            results[name].append({"solved": solved, "loss": losses[-1],
                                  "params": model.count_params(), "curve": losses})
    return results


def score_depths(results: dict[str, list[dict]]) -> dict[str, dict]:
    out = {}
    for name, res in results.items():
        solved = [r["solved"] for r in res if r["solved"] is not None]
        out[name] = {"params": res[0]["params"], "solved": len(solved),
                     "solved_rate": len(solved) / len(res),
                     "epochs_to_solve": [r["solved"] for r in res],
                     "median_epochs_to_solve": float(np.median(solved)) if solved else None,
                     "median_final_loss": float(np.median([r["loss"] for r in res]))}
    return out


def compare_depths(depths: dict[str, dict]) -> dict:
    """Two hidden layers against one, paired by seed: the share of seeds solved (1 or 0
    per seed) and, over the seeds both solved, the mean epochs to solve, each with its
    paired t interval over the seeds."""
    (n1, d1), (n2, d2) = depths.items()
    e1, e2 = d1["epochs_to_solve"], d2["epochs_to_solve"]
    ok1 = [float(e is not None) for e in e1]
    ok2 = [float(e is not None) for e in e2]
    both = [(a, b) for a, b in zip(e1, e2, strict=True) if a is not None and b is not None]
    out = {"one_hidden": n1, "two_hidden": n2,
           "one_hidden_solved_rate": d1["solved_rate"], "two_hidden_solved_rate": d2["solved_rate"],
           "solved_two_vs_one": over_seeds(ok2, ok1).as_dict(), "seeds_both_solved": len(both)}
    if both:
        one, two = [float(a) for a, _ in both], [float(b) for _, b in both]
        out.update({"one_hidden_mean_epochs": float(np.mean(one)),
                    "two_hidden_mean_epochs": float(np.mean(two)),
                    "epochs_two_vs_one": over_seeds(two, one).as_dict()})
    return out


def depths_figure(cfg: TwoHiddenConfig, results: dict[str, list[dict]]) -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = np.arange(1, cfg.epochs + 1)
    for (name, res), color in zip(results.items(), ("tab:blue", "tab:red"), strict=True):
        arr = np.array([r["curve"] for r in res])  # (seeds, epochs)
        ax.plot(epochs, np.median(arr, axis=0), color=color,
                label=f"{name} (median of {cfg.n_seeds})")
        ax.fill_between(epochs, arr.min(axis=0), arr.max(axis=0), color=color, alpha=0.2)
    ax.set(yscale="log", xlabel="epoch", ylabel="binary cross-entropy",
           title="XOR: one against two hidden layers (band: all seeds)")
    ax.legend()
    return fig


def write_two_hidden(cfg: TwoHiddenConfig, ctx: RunContext, checks: list[list],
                     results: dict[str, list[dict]]) -> None:
    ctx.table("Forward and backward pass with two hidden layers (f: hidden activation, "
              f"f = {cfg.activation}; sigma: sigmoid; odot: elementwise product)",
              ["pass", "equation", "shape", "with the second hidden layer"], EQUATIONS)
    ctx.table("The equations coded here: finite differences and dlab.scratch (copied weights)",
              ["draw", "rel. error vs finite differences", "max |difference| vs dlab.scratch",
               "dlab.scratch gradcheck"], checks)
    ctx.add_history([{"model": f"{name}_seed{k}", "epoch": e + 1, "loss": v}
                     for name, res in results.items() for k, r in enumerate(res)
                     for e, v in enumerate(r["curve"]) if e % max(1, cfg.epochs // 200) == 0])
    ctx.table(f"One against two hidden layers on XOR ({cfg.activation}, gradient descent lr "
              f"{cfg.lr:g}, up to {cfg.epochs} epochs, checked every {cfg.check_every})",
              ["network", "parameters", "seeds solved", "seeds", "median epochs to solve",
               "median final loss"],
              [[name, d["params"], d["solved"], cfg.n_seeds, d["median_epochs_to_solve"],
                d["median_final_loss"]] for name, d in ctx.metrics["depths"].items()])
    ctx.figure(depths_figure(cfg, results), "one_vs_two.png", "Training loss of the one- and "
               "two-hidden-layer networks over all seeds: median line, band from the lowest to "
               "the highest seed.")


def judge_two_hidden(cfg: TwoHiddenConfig, ctx: RunContext) -> None:
    m = ctx.metrics
    ctx.claim(f"The two-hidden-layer backward pass coded from the equations agrees with "
              f"central finite differences to a relative error of {m['fd_max_rel_error']:.1e}, "
              f"and with dlab.scratch's gradients to {m['scratch_max_abs_diff']:.1e} "
              "(absolute).", m["fd_max_rel_error"] <= 1e-6 and m["scratch_max_abs_diff"] <= 1e-12,
              otherwise=f"The coded backward pass does NOT agree: relative error "
              f"{m['fd_max_rel_error']:.1e} against finite differences, "
              f"{m['scratch_max_abs_diff']:.1e} against dlab.scratch.",
              fd=m["fd_max_rel_error"], scratch=m["scratch_max_abs_diff"])
    (n1, d1), (n2, d2) = m["depths"].items()
    ctx.infer(f"{n1} solved {d1['solved']} of {cfg.n_seeds} seeds, {n2} {d2['solved']} of "
              f"{cfg.n_seeds}, within {cfg.epochs} epochs.")
    c = m["depth_comparison"]
    ctx.compare("share of seeds that solved XOR", n2, c["two_hidden_solved_rate"], n1,
                c["one_hidden_solved_rate"], better="higher",
                diff=Difference.from_dict(c["solved_two_vs_one"]))
    if c["seeds_both_solved"]:
        ctx.compare(f"mean epochs to solve XOR over the {c['seeds_both_solved']} seeds both "
                    "solved", n2, c["two_hidden_mean_epochs"], n1, c["one_hidden_mean_epochs"],
                    better="lower", diff=Difference.from_dict(c["epochs_two_vs_one"]))
    ctx.note("The manual's two-hidden-layer program defines its training function but never "
             "calls it; here every network is trained and measured.")


def run_two_hidden(cfg: TwoHiddenConfig, ctx: RunContext) -> None:
    # step data: the four XOR points
    ctx.data("The four XOR points {0,1}^2 with targets 0, 1, 1, 0 (dlab.data.synthetic.xor); "
             "full-batch training.")
    # step model: one against two hidden layers, with the first seed's weights
    nets = depth_nets(cfg, ctx.seed, 0)
    # step train: every seed of both networks, until XOR is solved or the epochs run out
    results = train_depths(cfg, ctx.seed, nets)
    # step score: the coded equations against finite differences and dlab.scratch, seeds solved
    checks = check_equations(cfg, ctx.seed)
    depths = score_depths(results)
    ctx.metrics.update({"fd_max_rel_error": max(c[1] for c in checks),
                        "scratch_max_abs_diff": max(c[2] for c in checks), **depths,
                        "depths": depths, "depth_comparison": compare_depths(depths)})
    # step judge: sentences from the scores
    judge_two_hidden(cfg, ctx)
    # step write: the equations, the checks, the comparison table and the loss curves
    write_two_hidden(cfg, ctx, checks, results)


TWO_HIDDEN = Implementation(
    config=TwoHiddenConfig, run=run_two_hidden,
    profiles={"smoke": {"epochs": 200, "n_seeds": 2}, "full": {"epochs": 5000,
                                                              "n_seeds": 20}},
    targets=(
        Target("fd_max_rel_error", at_most=1e-6,
               why="the two-hidden-layer equations agree with finite differences"),
        Target("scratch_max_abs_diff", at_most=1e-12,
               why="they give dlab.scratch's gradients with the same weights"),
        Target("depth_comparison.one_hidden_solved_rate", at_least=0.9,
               profiles=("quick", "full"),
               why="the one-hidden-layer network solves XOR from nearly every initialisation"),
        Target("depth_comparison.two_hidden_solved_rate", at_least=0.9,
               profiles=("quick", "full"),
               why="so does the two-hidden-layer network"),
    ),
    crippled={"epochs": 10},
)
