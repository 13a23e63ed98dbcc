"""Experiment 5: gradient descent.

5.1 The update W[l] <- W[l] - a dW[l], b[l] <- b[l] - a db[l] applied to every layer of a
    4-2-2 network (4 inputs, layers of 2 units) with gradients back-propagated from a
    real loss on real data (Iris, versicolor against virginica), for a too-small, a good
    and a too-large learning rate a; and the manual's bias step a^2 db, measured.
5.2 Full-batch gradient descent with torch.optim.SGD on all of Iris (PyTorch): test
    accuracy and confusion matrix.

Gradient descent goes back to Cauchy (1847); back-propagation of the gradients to
Rumelhart, Hinton and Williams (1986).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlab.registry import Implementation
from dlab.runs import RunContext

# ====================================================== 5.1 the update rule by hand


def standardise(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(X - mean) / sd with the mean and sd (N, F) -> (F,) of the training rows only."""
    mean, sd = X_train.mean(axis=0), X_train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (X_train - mean) / sd, (X_test - mean) / sd


def iris_two_classes(seed: int, test_fraction: float = 0.3):
    """Iris versicolor (0) against virginica (1): 100 flowers, 4 measurements in cm.

    The two species overlap, so unlike setosa they are not trivially separable.
    Returns X_train, X_test (N, 4) standardised on the training rows, y_train,
    y_test (N,) of 0/1, from a stratified split.
    """
    from sklearn.model_selection import train_test_split

    from dlab.data.tabular import iris

    frame = iris().frame
    frame = frame[frame["target"] > 0]
    X = frame.drop(columns=["target"]).to_numpy(np.float64)
    y = frame["target"].to_numpy() - 1
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_fraction, stratify=y,
                                              random_state=seed)
    X_tr, X_te = standardise(X_tr, X_te)
    return X_tr, X_te, y_tr, y_te


def gd_step(model, X: np.ndarray, Y: np.ndarray, lr: float,
            bias_lr: float | None = None) -> None:
    """One gradient-descent step on every layer of a `dlab.scratch` model, in place:

        W[l] <- W[l] - a dW[l]        b[l] <- b[l] - a db[l]

    where dW[l], db[l] are the back-propagated gradients of the mean loss over the batch
    X (B, n_in), Y (B, k). `bias_lr` replaces a for the biases (the manual's a^2, to
    measure its effect); None uses a.
    """
    grads = model.gradients(X, Y)  # [dW1, db1, dW2, db2, ...] in get_weights() order
    b_lr = lr if bias_lr is None else bias_lr
    for layer, dW, db in zip(model.layers, grads[0::2], grads[1::2], strict=True):
        layer.kernel -= lr * dW
        layer.bias -= b_lr * db


def gd_epoch(model, X: np.ndarray, Y: np.ndarray, lr: float, batch_size: int,
             rng: np.random.Generator) -> None:
    """One pass over (X (N, n_in), Y (N, k)) in a random order, one `gd_step` per batch
    of `batch_size` rows: 1 is stochastic gradient descent, N full-batch descent."""
    n = X.shape[0]
    if batch_size >= n:
        gd_step(model, X, Y, lr)
        return
    order = rng.permutation(n)
    Xs, Ys = X[order], Y[order]  # (N, n_in), (N, k): shuffled copies
    for start in range(0, n, batch_size):
        gd_step(model, Xs[start:start + batch_size], Ys[start:start + batch_size], lr)


def make_net(sizes: tuple[int, ...], activation: str, seed: int):
    """A `dlab.scratch` network sizes[0] -> ... -> sizes[-1] (softmax output, categorical
    cross-entropy; the optimizer is unused: the steps are taken by `gd_step`)."""
    from dlab.scratch import SGD, Dense, Sequential

    layers = [Dense(sizes[1], activation, input_dim=sizes[0])]
    layers += [Dense(n, activation) for n in sizes[2:-1]]
    layers.append(Dense(sizes[-1], "softmax"))
    model = Sequential(layers, seed=seed, dtype=np.float64)
    model.compile(loss="categorical_crossentropy", optimizer=SGD(0.1))
    return model


def oscillation(losses: np.ndarray) -> float:
    """Fraction of steps after which the loss went up (0 for a monotone descent)."""
    return float((np.diff(losses) > 0).mean()) if len(losses) > 1 else 0.0


@dataclass
class GDConfig:
    hidden: int = 2  # units in the hidden layer (the output layer has 2: two species)
    activation: str = "tanh"  # hidden activation
    lrs: tuple[float, ...] = (0.01, 0.5, 30.0)  # too small, good, too large
    epochs: int = 500  # full-batch steps per learning rate
    bias_lr_demo: float = 0.1  # rate a at which the manual's bias step a^2 db is measured
    test_fraction: float = 0.3  # held-out flowers (stratified)

    def validate(self) -> None:
        if self.activation not in ("tanh", "sigmoid", "relu"):
            raise ValueError("activation must be tanh, sigmoid or relu")
        if not self.lrs or min(self.lrs) <= 0:
            raise ValueError("lrs must list positive learning rates, e.g. 0.01,0.5,30")
        if not 0 < self.test_fraction < 1:
            raise ValueError("test_fraction must be in (0, 1)")
        if self.bias_lr_demo <= 0:
            raise ValueError("bias_lr_demo must be positive")


def run_gd(cfg: GDConfig, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X_tr, X_te, y_tr, y_te = iris_two_classes(ctx.seed, cfg.test_fraction)
    Y_tr = np.eye(2)[y_tr]  # one-hot (N, 2)
    ctx.data(f"Iris (scikit-learn load_iris), versicolor against virginica: {len(y_tr)} "
             f"training and {len(y_te)} test flowers (stratified), 4 measurements "
             "standardised with the training rows' mean and standard deviation.")
    sizes = (4, cfg.hidden, 2)
    init = make_net(sizes, cfg.activation, ctx.seed).get_weights()

    def train(lr: float, bias_lr: float | None = None):
        model = make_net(sizes, cfg.activation, ctx.seed)
        model.set_weights(init)  # every run starts from the same weights
        losses = np.empty(cfg.epochs + 1)
        for epoch in range(cfg.epochs):
            losses[epoch] = model.evaluate(X_tr, Y_tr)
            gd_step(model, X_tr, Y_tr, lr, bias_lr)
        losses[-1] = model.evaluate(X_tr, Y_tr)
        acc = float((model.predict(X_te).argmax(axis=1) == y_te).mean())
        return model, losses, acc

    runs = []
    for lr in cfg.lrs:
        model, losses, acc = train(lr)
        runs.append({"lr": lr, "losses": losses, "acc": acc, "osc": oscillation(losses)})
        ctx.add_history([{"model": f"lr_{lr:g}", "epoch": e, "loss": v}
                         for e, v in enumerate(losses)])
        ctx.log(f"lr {lr:g}: loss {losses[0]:.4f} -> {losses[-1]:.4f}, test accuracy {acc:.3f}")
    best = min(runs, key=lambda r: r["losses"][-1])
    ctx.table(f"Full-batch gradient descent on the {'-'.join(map(str, sizes))} network, "
              f"{cfg.epochs} steps from the same initial weights",
              ["learning rate", "initial loss", "final loss", "lowest loss",
               "steps where the loss rose", "test accuracy"],
              [[r["lr"], r["losses"][0], r["losses"][-1], r["losses"].min(), r["osc"], r["acc"]]
               for r in runs])

    # The manual's bias step a^2 db against a db.
    lr = cfg.bias_lr_demo
    m_right, l_right, _ = train(lr)
    m_wrong, l_wrong, _ = train(lr, bias_lr=lr ** 2)
    b0 = np.concatenate([w for w in init[1::2]])
    moved = {name: float(np.abs(np.concatenate(m.get_weights()[1::2]) - b0).sum())
             for name, m in (("a", m_right), ("a^2", m_wrong))}
    ctx.table(f"Bias step at learning rate a = {lr:g}: a db (right) against the manual's "
              "a^2 db", ["bias step", "total |b - b0| after training", "final loss"],
              [[f"a db = {lr:g} db", moved["a"], l_right[-1]],
               [f"a^2 db = {lr ** 2:g} db", moved["a^2"], l_wrong[-1]]])
    ctx.metrics.update({
        "sizes": list(sizes),
        "final_loss": {f"{r['lr']:g}": float(r["losses"][-1]) for r in runs},
        "rising_steps": {f"{r['lr']:g}": r["osc"] for r in runs},
        "test_accuracy": {f"{r['lr']:g}": r["acc"] for r in runs},
        "best_lr": best["lr"],
        "bias_a_final_loss": float(l_right[-1]), "bias_a2_final_loss": float(l_wrong[-1]),
    })

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for r in runs:
        ax1.plot(r["losses"], label=f"a = {r['lr']:g}", lw=1.2)
    ax1.set_yscale("log")
    ax1.set_xlabel("gradient-descent step (full batch)")
    ax1.set_ylabel("training cross-entropy")
    ax1.set_title("Learning rate: too small, good, too large")
    ax1.legend()
    ax2.plot(l_right, label=f"b -= a db (a = {lr:g})")
    ax2.plot(l_wrong, "--", label=f"b -= a^2 db (manual, a^2 = {lr ** 2:g})")
    ax2.set_yscale("log")
    ax2.set_xlabel("step")
    ax2.set_title("Bias update: a against a^2")
    ax2.legend()
    fig.tight_layout()
    ctx.figure(fig, "learning_rates.png", "Left: training loss of the same network from the "
               "same weights for each learning rate. Right: the right bias step against the "
               "manual's squared one.")

    small, large = min(runs, key=lambda r: r["lr"]), max(runs, key=lambda r: r["lr"])
    ctx.infer(f"From the same initial loss {best['losses'][0]:.3f}, learning rate "
              f"{best['lr']:g} reached the lowest final loss ({best['losses'][-1]:.4f}) in "
              f"{cfg.epochs} steps; the smallest rate, {small['lr']:g}, ended at "
              f"{small['losses'][-1]:.4f}.")
    ctx.infer(f"At the largest rate, {large['lr']:g}, the loss rose after "
              f"{large['osc']:.0%} of the steps (largest value "
              f"{large['losses'].max():.3f}, final {large['losses'][-1]:.4f}); at "
              f"{best['lr']:g} it rose after {best['osc']:.0%} of them.")
    ctx.infer(f"With the manual's bias step a^2 db (a = {lr:g}) the biases moved "
              f"{moved['a^2']:.3f} in total instead of {moved['a']:.3f}, and the final loss "
              f"was {l_wrong[-1]:.4f} instead of {l_right[-1]:.4f}.")


GD_SCRATCH = Implementation(
    config=GDConfig, run=run_gd,
    profiles={"smoke": {"epochs": 60}, "full": {"epochs": 2000}},
)

# ============================================== 5.2 full-batch SGD on Iris (PyTorch)


@dataclass
class IrisConfig:
    hidden: int = 16  # hidden ReLU units of the 4-hidden-3 network
    epochs: int = 300  # full-batch gradient steps (one step = one pass over the data)
    log_every: int = 10  # steps per history row
    lr: float = 0.1  # torch.optim.SGD learning rate
    test_fraction: float = 0.2  # 30 of 150 flowers held out (stratified)
    n_repeats: int = 5  # further stratified splits and initialisations for a spread

    def validate(self) -> None:
        if not 0 < self.test_fraction < 1:
            raise ValueError("test_fraction must be in (0, 1)")
        if self.n_repeats < 0:
            raise ValueError("n_repeats must be 0 or more")
        if self.log_every < 1 or self.epochs % self.log_every:
            raise ValueError(f"epochs ({self.epochs}) must be a multiple of log_every "
                             f"({self.log_every})")


class RepeatBatch:
    """The same batch `k` times: handed to `fit` as its data, one fit 'epoch' is `k`
    full-batch steps, so the history gets one row per `k` steps instead of one per step."""

    def __init__(self, batch: tuple, k: int):
        self.batch, self.k = batch, k

    def __iter__(self):
        for _ in range(self.k):
            yield self.batch

    def __len__(self) -> int:
        return self.k


def iris_split(seed: int, test_fraction: float):
    """All of Iris, stratified split, standardised on the training rows: X (N, 4) float32,
    y (N,) int64 in {0, 1, 2}."""
    from sklearn.model_selection import train_test_split

    from dlab.data.tabular import iris

    frame = iris().frame
    X = frame.drop(columns=["target"]).to_numpy(np.float64)
    y = frame["target"].to_numpy().astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_fraction, stratify=y,
                                              random_state=seed)
    X_tr, X_te = standardise(X_tr, X_te)
    return X_tr.astype(np.float32), X_te.astype(np.float32), y_tr, y_te


def train_iris(cfg: IrisConfig, ctx: RunContext, split_seed: int, name: str,
               checkpoint: bool = True):
    """Full-batch gradient descent: every step uses all training rows (batch size N).

    Returns the model, fit's result (one row per `log_every` steps), the test predictions
    (N_test,), the test labels (N_test,) and N.
    """
    import torch
    from torch import nn

    from dlab.models.mlp import MLP
    from dlab.training import accuracy, fit

    X_tr, X_te, y_tr, y_te = iris_split(split_seed, cfg.test_fraction)
    dev = ctx.device
    train = (torch.as_tensor(X_tr, device=dev), torch.as_tensor(y_tr, device=dev))
    test = (torch.as_tensor(X_te, device=dev), torch.as_tensor(y_te, device=dev))
    model = MLP((4, cfg.hidden, 3), "relu",
                generator=ctx.torch_generator(100 + split_seed)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    result = fit(model, RepeatBatch(train, cfg.log_every), val=test, ctx=ctx,
                 epochs=cfg.epochs // cfg.log_every, optimizer=opt,
                 loss_fn=nn.functional.cross_entropy, batch_size=len(y_tr), shuffle=False,
                 metrics={"acc": accuracy}, name=name, checkpoint=checkpoint)
    with torch.no_grad():
        pred = model(test[0]).argmax(dim=1).cpu().numpy()
    return model, result, pred, y_te, len(y_tr)


def run_iris(cfg: IrisConfig, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlab.data.tabular import iris
    from dlab.metrics import confusion_matrix

    ctx.data(iris().describe())
    model, result, pred, y_te, n_train = train_iris(cfg, ctx, ctx.seed, "iris_mlp")
    ctx.data(f"Stratified split: {n_train} training and {len(y_te)} test flowers; the 4 "
             "measurements standardised with training statistics. Every gradient step "
             f"uses all {n_train} training rows (batch size {n_train}); history.csv has "
             f"one row per {cfg.log_every} steps (mean training loss over them).")
    names = ["setosa", "versicolor", "virginica"]  # load_iris().target_names, in order
    acc = float((pred == y_te).mean())
    cm = confusion_matrix(pred, y_te, 3)
    ctx.save_model(model, sizes=[4, cfg.hidden, 3], activation="relu", classes=names,
                   preprocessing="standardised with the training rows' mean and sd")
    ctx.table("Confusion matrix on the test flowers (rows: true, columns: predicted)",
              ["true \\ predicted", *names], [[n, *cm[i].tolist()] for i, n in enumerate(names)])

    repeats = []
    for k in range(cfg.n_repeats):
        _, _, p, y, _ = train_iris(cfg, ctx, ctx.seed + 1 + k, f"iris_split{k + 1}",
                                   checkpoint=False)
        repeats.append(float((p == y).mean()))
    ctx.metrics.update({"test_accuracy": acc, "test_errors": int((pred != y_te).sum()),
                        "n_test": len(y_te), "final_train_loss": result.last("loss"),
                        "manual_accuracy": 0.9333, "confusion_matrix": cm.tolist()})
    if repeats:
        ctx.metrics["repeat_accuracy_mean"] = float(np.mean(repeats))
        ctx.metrics["repeat_accuracy_sd"] = float(np.std(repeats))
        ctx.table("Test accuracy on further stratified splits (new initial weights each)",
                  ["split seed", "test accuracy"],
                  [[ctx.seed + 1 + k, a] for k, a in enumerate(repeats)])

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    steps = np.array(result.column("epoch")) * cfg.log_every
    ax1.plot(steps, result.column("loss"), label="training loss")
    ax1.plot(steps, result.column("val_loss"), label="test loss")
    ax1.set_xlabel("full-batch gradient step")
    ax1.set_ylabel("cross-entropy")
    ax1.set_yscale("log")
    ax1.legend()
    ax2.imshow(cm, cmap="Blues")
    for i in range(3):
        for j in range(3):
            ax2.text(j, i, str(cm[i, j]), ha="center", va="center",
                     color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax2.set_xticks(range(3), names)
    ax2.set_yticks(range(3), names)
    ax2.set_xlabel("predicted")
    ax2.set_ylabel("true")
    ax2.set_title(f"test accuracy {acc:.4f}")
    fig.tight_layout()
    ctx.figure(fig, "iris.png", "Left: loss per full-batch step on the training and test "
               "flowers. Right: confusion matrix on the test flowers.")

    errors = int((pred != y_te).sum())
    ctx.infer(f"Full-batch torch.optim.SGD (lr {cfg.lr:g}, {cfg.epochs} steps) classifies "
              f"{len(y_te) - errors} of {len(y_te)} test flowers correctly: accuracy "
              f"{acc:.4f} (the manual printed 0.9333, i.e. 28 of 30); one flower is "
              f"{1 / len(y_te):.4f} of the test set.")
    off = [(names[i], names[j], int(cm[i, j])) for i in range(3) for j in range(3)
           if i != j and cm[i, j]]
    ctx.infer("Confusions: " + ("; ".join(f"{n} {a} taken for {b}" for a, b, n in off)
                                if off else "none") + ".")
    if repeats:
        ctx.infer(f"Over {len(repeats)} further splits the test accuracy was "
                  f"{np.mean(repeats):.4f} on average (sd {np.std(repeats):.4f}, range "
                  f"{min(repeats):.4f}-{max(repeats):.4f}), so a single split's accuracy "
                  "moves by whole flowers.")


GD_IRIS = Implementation(
    config=IrisConfig, run=run_iris,
    profiles={"smoke": {"epochs": 30, "n_repeats": 1}, "full": {"epochs": 1000,
                                                                "n_repeats": 10}},
)
