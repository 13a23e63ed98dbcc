"""Experiment 7: back-propagation, the forward and the backward pass.

7.1 `dlab.scratch`'s Keras-like API (Sequential, Dense, compile, fit, evaluate, predict,
    summary, History) trains XOR; the back-propagated gradients are checked by finite
    differences; and the manual's 2-2-1 network with 0.01-scale weights is run as it
    was meant to run, and measured.
7.2 A second hidden layer: its forward and backward equations written out (in the
    record and in `forward_two_hidden` / `backward_two_hidden` below), checked by finite
    differences and against `dlab.scratch`; one against two hidden layers on XOR.

Rumelhart, Hinton and Williams (1986), "Learning representations by back-propagating
errors", Nature 323; the equations follow Goodfellow, Bengio and Courville (2016),
"Deep Learning", section 6.5 (algorithms 6.3 and 6.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlab.registry import Implementation
from dlab.runs import RunContext

ACTIVATIONS = ("tanh", "sigmoid", "relu")


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
    activation: str = "tanh"  # hidden activation
    optimizer: str = "sgd"  # 'sgd' or 'adam'
    lr: float = 0.5  # learning rate
    epochs: int = 2000  # full-batch epochs per seed
    n_seeds: int = 10  # initialisations
    manual_epochs: int = 10000  # epochs for the manual's 2-2-1 network (0: skip it)
    manual_lr: float = 0.1  # its learning rate (plain gradient descent, MSE loss)
    manual_seeds: int = 5  # initialisations of the manual's network

    def validate(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError("optimizer must be 'sgd' or 'adam'")
        if self.manual_epochs < 0 or self.manual_seeds < 1:
            raise ValueError("manual_epochs must be >= 0 and manual_seeds >= 1")


def small_normal(shape, rng, dtype):
    """The manual's initial weights: 0.01 * N(0, 1), shape (in, out)."""
    return (0.01 * rng.standard_normal(shape)).astype(dtype)


def run_keras_like(cfg: KerasLikeConfig, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlab.scratch import SGD, Adam, Dense, gradcheck

    X, y = xor_data()
    ctx.data("The four XOR points {0,1}^2 with targets 0, 1, 1, 0 (dlab.data.synthetic.xor); "
             "training is full batch.")

    def optimizer():
        return SGD(cfg.lr) if cfg.optimizer == "sgd" else Adam(cfg.lr)

    runs = []
    for k in range(cfg.n_seeds):
        model = xor_net((cfg.hidden,), cfg.activation, np.random.default_rng((ctx.seed, k)),
                        optimizer=optimizer())
        err0 = gradcheck(model, X, y)
        history = model.fit(X, y, epochs=cfg.epochs, batch_size=None, shuffle=False)
        loss, acc = model.evaluate(X, y)
        runs.append({"seed": k, "model": model, "history": history.history["loss"],
                     "loss": loss, "acc": acc, "p": model.predict(X).ravel(),
                     "ok": solves(model, X, y), "grad0": err0, "grad1": gradcheck(model, X, y)})
    ctx.add_history([{"model": f"xor_seed{r['seed']}", "epoch": e + 1, "loss": v}
                     for r in runs for e, v in enumerate(r["history"])
                     if e % max(1, cfg.epochs // 200) == 0])
    first = runs[0]["model"]
    ctx.log("\n" + first.summary())
    ctx.table("model.summary() of the network", ["Layer (type)", "Output Shape", "Param #"],
              summary_rows(first) + [["Total params", "", first.count_params()]])
    ctx.table("Per seed: evaluate() after training, outputs and gradient checks",
              ["seed", "loss", "accuracy", "p(00)", "p(01)", "p(10)", "p(11)",
               "gradcheck at start", "gradcheck at end"],
              [[r["seed"], r["loss"], r["acc"], *np.round(r["p"], 4).tolist(), r["grad0"],
                r["grad1"]] for r in runs])

    # The manual calls backward() before any forward(): dlab.scratch says what is wrong.
    layer = Dense(2, "sigmoid", input_dim=2, seed=0)
    layer.build((None, 2))
    try:
        layer.backward(np.zeros((4, 2), np.float32))
        message = "no error"
    except RuntimeError as exc:
        message = str(exc)

    n_ok = sum(r["ok"] for r in runs)
    worst = max(max(r["grad0"], r["grad1"]) for r in runs)
    ctx.metrics.update({"success_rate": n_ok / cfg.n_seeds, "successes": n_ok,
                        "n_seeds": cfg.n_seeds, "gradcheck_max_rel_error": worst,
                        "final_loss_median": float(np.median([r["loss"] for r in runs])),
                        "params": first.count_params(),
                        "backward_before_forward": message})

    fig, axes = plt.subplots(1, 2 if cfg.manual_epochs else 1, figsize=(11, 4), squeeze=False)
    ax = axes[0, 0]
    for r in runs:
        ax.plot(np.arange(1, cfg.epochs + 1), r["history"], lw=1, label=f"seed {r['seed']}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy (History)")
    ax.set_title(f"2-{cfg.hidden}-1 ({cfg.activation}) on XOR, {cfg.optimizer} lr {cfg.lr:g}")
    ax.legend(fontsize=7, ncol=2)

    ctx.infer(f"{n_ok} of {cfg.n_seeds} seeds solved XOR (all four outputs on the right side of "
              f"0.5) after {cfg.epochs} epochs; median final loss "
              f"{ctx.metrics['final_loss_median']:.4f}.")
    ctx.infer(f"Back-propagated gradients agree with central finite differences (float64) to a "
              f"relative error of {worst:.1e} or better, at the start and at the end of every "
              "run.")
    ctx.infer(f"Calling backward() before any forward pass raises: \"{message}\" (the manual's "
              "version fails with an AttributeError instead).")

    if cfg.manual_epochs:
        rows, outs = [], {}
        for init_name, init in (("0.01 N(0, 1) (manual)", small_normal),
                                ("Glorot uniform", "glorot_uniform")):
            outs[init_name] = []
            for k in range(cfg.manual_seeds):
                m = xor_net((2,), "sigmoid", np.random.default_rng((ctx.seed, 100 + k)),
                            loss="mse", optimizer=SGD(cfg.manual_lr),
                            kernel_initializer=init)
                g0 = float(np.sqrt(sum((g ** 2).sum() for g in m.gradients(X, y))))
                hist = m.fit(X, y, epochs=cfg.manual_epochs, batch_size=None, shuffle=False)
                p = m.predict(X).ravel()
                outs[init_name].append(p)
                rows.append([init_name, k, g0, *np.round(p, 4).tolist(),
                             float(np.abs(p - 0.5).max()), solves(m, X, y)])
                if k == 0:
                    axes[0, 1].plot(hist.history["loss"], label=init_name)
        ctx.table(f"The manual's 2-2-1 sigmoid network (MSE, gradient descent lr "
                  f"{cfg.manual_lr:g}, {cfg.manual_epochs} epochs), run as meant",
                  ["initial weights", "seed", "|gradient| at start", "p(00)", "p(01)", "p(10)",
                   "p(11)", "max |p - 0.5|", "solved"], rows)
        manual = np.array(outs["0.01 N(0, 1) (manual)"])  # (seeds, 4)
        glorot = np.array(outs["Glorot uniform"])
        stuck = int((np.abs(manual - 0.5).max(axis=1) < 0.01).sum())
        glorot_ok = int(sum(r[-1] for r in rows if r[0] == "Glorot uniform"))
        g_manual = float(np.mean([r[2] for r in rows if r[0] != "Glorot uniform"]))
        g_glorot = float(np.mean([r[2] for r in rows if r[0] == "Glorot uniform"]))
        ctx.metrics["manual_net"] = {
            "max_abs_output_minus_half": float(np.abs(manual - 0.5).max()),
            "seeds_stuck_at_half": stuck, "seeds": cfg.manual_seeds,
            "glorot_solved": glorot_ok, "gradient_norm_at_start": g_manual,
            "glorot_gradient_norm_at_start": g_glorot,
            "glorot_max_abs_output_minus_half": float(np.abs(glorot - 0.5).max()),
        }
        axes[0, 1].set_xlabel("epoch")
        axes[0, 1].set_ylabel("MSE")
        axes[0, 1].set_title("The manual's 2-2-1 network (seed 0)")
        axes[0, 1].legend(fontsize=8)
        ctx.infer(f"The manual's 2-2-1 network with 0.01-scale weights, trained for "
                  f"{cfg.manual_epochs} epochs at lr {cfg.manual_lr:g}, outputs within "
                  f"{np.abs(manual - 0.5).max():.2g} of 0.5 on every input ({stuck} of "
                  f"{cfg.manual_seeds} seeds stay within 0.01). Its gradient norm at the "
                  f"start is {g_manual:.1e} on average against {g_glorot:.1e} with "
                  "Glorot-uniform weights: every hidden unit outputs about 0.5 for every input "
                  "and the error reaching the first layer is scaled by the 0.01-size output "
                  f"weights. With Glorot-uniform weights the same network solved XOR in "
                  f"{glorot_ok} of {cfg.manual_seeds} seeds.")
    fig.tight_layout()
    ctx.figure(fig, "xor_loss.png", "Left: training loss from History for every seed. Right "
               "(when run): the manual's 2-2-1 network with 0.01-scale and with "
               "Glorot-uniform initial weights.")


KERAS_LIKE = Implementation(
    config=KerasLikeConfig, run=run_keras_like,
    profiles={"smoke": {"epochs": 300, "n_seeds": 2, "manual_epochs": 200, "manual_seeds": 1},
              "full": {"epochs": 5000, "n_seeds": 10, "manual_epochs": 10000,
                       "manual_seeds": 10}},
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
    activation: str = "tanh"  # hidden activation f
    lr: float = 0.5  # gradient-descent learning rate
    epochs: int = 2000  # most full-batch epochs per seed
    n_seeds: int = 10  # initialisations per architecture
    check_every: int = 10  # epochs between checks of whether XOR is solved

    def validate(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}")
        if self.check_every < 1:
            raise ValueError("check_every must be at least 1")


def run_two_hidden(cfg: TwoHiddenConfig, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlab.scratch import SGD, gradcheck

    X, y = xor_data()
    X64, y64 = X.astype(np.float64), y.astype(np.float64)
    h = cfg.hidden
    ctx.data("The four XOR points {0,1}^2 with targets 0, 1, 1, 0 (dlab.data.synthetic.xor); "
             "full-batch training.")
    ctx.table("Forward and backward pass with two hidden layers (f: hidden activation, "
              f"f = {cfg.activation}; sigma: sigmoid; odot: elementwise product)",
              ["pass", "equation", "shape", "with the second hidden layer"], EQUATIONS)

    # The equations above, coded in this file, against finite differences and dlab.scratch.
    checks = []
    for k in range(3):
        twin = xor_net((h, h), cfg.activation, np.random.default_rng((ctx.seed, 50 + k)),
                       dtype=np.float64)
        params = twin.get_weights()
        mine = backward_two_hidden(params, forward_two_hidden(params, X64, cfg.activation),
                                   X64, y64, cfg.activation)
        fd = fd_two_hidden([p.copy() for p in params], X64, y64, cfg.activation)
        lib = twin.gradients(X64, y64)
        checks.append([k, max_rel_error(mine, fd),
                       max(float(np.abs(a - b).max()) for a, b in zip(mine, lib, strict=True)),
                       gradcheck(twin, X64, y64)])
    ctx.table("The equations coded here: finite differences and dlab.scratch (copied weights)",
              ["draw", "rel. error vs finite differences", "max |difference| vs dlab.scratch",
               "dlab.scratch gradcheck"], checks)
    worst_fd = max(c[1] for c in checks)
    worst_lib = max(c[2] for c in checks)

    archs = {f"2-{h}-1": (h,), f"2-{h}-{h}-1": (h, h)}
    results = {name: [] for name in archs}
    curves = {name: [] for name in archs}
    for k in range(cfg.n_seeds):
        for j, (name, hidden) in enumerate(archs.items()):
            model = xor_net(hidden, cfg.activation, np.random.default_rng((ctx.seed, k, j)),
                            optimizer=SGD(cfg.lr))
            losses, solved = train_until(model, X, y, cfg.epochs, cfg.check_every)
            results[name].append({"solved": solved, "loss": losses[-1],
                                  "params": model.count_params()})
            curves[name].append(losses)
    ctx.add_history([{"model": f"{name}_seed{k}", "epoch": e + 1, "loss": v}
                     for name in archs for k, c in enumerate(curves[name])
                     for e, v in enumerate(c) if e % max(1, cfg.epochs // 200) == 0])
    rows = []
    for name, res in results.items():
        solved = [r["solved"] for r in res if r["solved"] is not None]
        rows.append([name, res[0]["params"], len(solved), cfg.n_seeds,
                     float(np.median(solved)) if solved else None,
                     float(np.median([r["loss"] for r in res]))])
        ctx.metrics[name] = {"params": res[0]["params"], "solved": len(solved),
                             "median_epochs_to_solve": rows[-1][4],
                             "median_final_loss": rows[-1][5]}
    ctx.table(f"One against two hidden layers on XOR ({cfg.activation}, gradient descent lr "
              f"{cfg.lr:g}, up to {cfg.epochs} epochs, checked every {cfg.check_every})",
              ["network", "parameters", "seeds solved", "seeds", "median epochs to solve",
               "median final loss"], rows)
    ctx.metrics.update({"fd_max_rel_error": worst_fd, "scratch_max_abs_diff": worst_lib})

    fig, ax = plt.subplots(figsize=(7, 4))
    for (name, c), color in zip(curves.items(), ("tab:blue", "tab:red"), strict=True):
        arr = np.array(c)  # (seeds, epochs)
        ax.plot(np.arange(1, cfg.epochs + 1), np.median(arr, axis=0), color=color,
                label=f"{name} (median of {cfg.n_seeds})")
        ax.fill_between(np.arange(1, cfg.epochs + 1), arr.min(axis=0), arr.max(axis=0),
                        color=color, alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy")
    ax.set_title("XOR: one against two hidden layers (band: all seeds)")
    ax.legend()
    ctx.figure(fig, "one_vs_two.png", "Training loss of the one- and two-hidden-layer networks "
               "over all seeds: median line, band from the lowest to the highest seed.")

    ctx.infer(f"The two-hidden-layer backward pass coded from the equations agrees with "
              f"central finite differences to a relative error of {worst_fd:.1e}, and with "
              f"dlab.scratch's gradients to {worst_lib:.1e} (absolute).")
    (n1, r1), (n2, r2) = results.items()
    s1 = [r["solved"] for r in r1 if r["solved"] is not None]
    s2 = [r["solved"] for r in r2 if r["solved"] is not None]
    text = (f"{n1} solved {len(s1)} of {cfg.n_seeds} seeds"
            + (f" (median {np.median(s1):.0f} epochs)" if s1 else "")
            + f"; {n2} solved {len(s2)} of {cfg.n_seeds}"
            + (f" (median {np.median(s2):.0f} epochs)" if s2 else "") + ".")
    if s1 and s2:
        if np.median(s1) == np.median(s2):
            text += " Both needed the same median number of epochs."
        else:
            faster = n2 if np.median(s2) < np.median(s1) else n1
            text += f" The faster to solve, by median, was {faster}."
    ctx.infer(text)
    ctx.note("The manual's two-hidden-layer program defines its training function but never "
             "calls it; here every network is trained and measured.")


TWO_HIDDEN = Implementation(
    config=TwoHiddenConfig, run=run_two_hidden,
    profiles={"smoke": {"epochs": 200, "n_seeds": 2}, "full": {"epochs": 5000,
                                                              "n_seeds": 20}},
)
