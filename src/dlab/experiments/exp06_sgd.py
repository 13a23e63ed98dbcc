"""Experiment 6: stochastic gradient descent and input normalisation.

6.1 One network (`dlab.scratch`, NumPy), one data set (breast cancer), trained by the
    same update W <- W - a dW, b <- b - a db with the gradient of the mean loss over
    1 sample (stochastic gradient descent, Robbins and Monro 1951), a mini-batch, or all
    training samples (full-batch gradient descent); loss against epochs and wall time,
    and the weights before and after.
6.2 A 32-16-1 binary classifier with and without standardised inputs (scaler fit on the
    training rows only), in PyTorch and in Keras 3 (`dlab.keras_programs.breast_cancer`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from dlab.experiments.exp05_gradient_descent import gd_epoch, make_net, standardise
from dlab.registry import Implementation
from dlab.runs import RunContext

# =============================================== 6.1 SGD, mini-batch and full batch


def breast_cancer_split(seed: int, test_fraction: float):
    """Breast cancer (569 tumours, 30 features), stratified split, standardised with the
    training rows' statistics: X (N, 30) float64, y (N,) of 0 (malignant) / 1 (benign)."""
    from sklearn.model_selection import train_test_split

    from dlab.data.tabular import breast_cancer

    frame = breast_cancer().frame
    X = frame.drop(columns=["target"]).to_numpy(np.float64)
    y = frame["target"].to_numpy().astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_fraction, stratify=y,
                                              random_state=seed)
    X_tr, X_te = standardise(X_tr, X_te)
    return X_tr, X_te, y_tr, y_te


def time_to_reach(losses: np.ndarray, seconds: np.ndarray, target: float) -> float:
    """Wall time (s) at the first evaluation where the loss is <= target (inf if never)."""
    hit = np.nonzero(losses <= target)[0]
    return float(seconds[hit[0]]) if len(hit) else float("inf")


@dataclass
class SGDConfig:
    hidden: int = 16  # hidden units of the 30-hidden-2 network
    activation: str = "tanh"  # hidden activation
    epochs: int = 30  # passes over the training rows, for every method
    minibatch: int = 32  # rows per step of mini-batch descent
    lrs: tuple[float, ...] = (0.01, 0.1, 1.0)  # learning rates: SGD, mini-batch, full batch
    test_fraction: float = 0.25  # held-out tumours (stratified)

    def validate(self) -> None:
        if len(self.lrs) != 3 or min(self.lrs) <= 0:
            raise ValueError("lrs must be three positive rates (SGD, mini-batch, full batch)")
        if self.minibatch < 2:
            raise ValueError("minibatch must be at least 2 (1 is SGD)")
        if self.activation not in ("tanh", "sigmoid", "relu"):
            raise ValueError("activation must be tanh, sigmoid or relu")
        if not 0 < self.test_fraction < 1:
            raise ValueError("test_fraction must be in (0, 1)")


def run_sgd(cfg: SGDConfig, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlab.data.tabular import breast_cancer

    X_tr, X_te, y_tr, y_te = breast_cancer_split(ctx.seed, cfg.test_fraction)
    Y_tr = np.eye(2)[y_tr]  # one-hot (N, 2)
    n = len(y_tr)
    ctx.data(breast_cancer().describe())
    ctx.data(f"Stratified split: {n} training and {len(y_te)} test tumours; features "
             "standardised with the training rows' mean and standard deviation.")
    sizes = (X_tr.shape[1], cfg.hidden, 2)
    init = make_net(sizes, cfg.activation, ctx.seed).get_weights()
    methods = [("SGD (batch 1)", 1, cfg.lrs[0]),
               (f"mini-batch ({cfg.minibatch})", min(cfg.minibatch, n), cfg.lrs[1]),
               (f"full batch ({n})", n, cfg.lrs[2])]

    runs = []
    for k, (label, batch, lr) in enumerate(methods):
        model = make_net(sizes, cfg.activation, ctx.seed)
        model.set_weights(init)  # same start for every method
        rng = np.random.default_rng((ctx.seed, k))  # the order of the samples
        losses, clock, elapsed = [model.evaluate(X_tr, Y_tr)], [0.0], 0.0
        for _ in range(cfg.epochs):
            t0 = time.perf_counter()
            gd_epoch(model, X_tr, Y_tr, lr, batch, rng)
            elapsed += time.perf_counter() - t0  # training time only, not the evaluation
            losses.append(model.evaluate(X_tr, Y_tr))
            clock.append(elapsed)
        acc = float((model.predict(X_te).argmax(axis=1) == y_te).mean())
        runs.append({"label": label, "batch": batch, "lr": lr, "losses": np.array(losses),
                     "clock": np.array(clock), "acc": acc, "weights": model.get_weights(),
                     "steps": -(-n // batch) * cfg.epochs})
        ctx.add_history([{"model": label, "epoch": e, "loss": v, "seconds": c}
                         for e, (v, c) in enumerate(zip(losses, clock, strict=True))])
        ctx.log(f"{label}: loss {losses[0]:.4f} -> {losses[-1]:.4f} in {elapsed:.2f}s, "
                f"test accuracy {acc:.3f}")

    target = max(r["losses"][-1] for r in runs)  # a loss every method reached
    for r in runs:
        r["reach"] = time_to_reach(r["losses"], r["clock"], target)
        r["reach_epoch"] = int(np.nonzero(r["losses"] <= target)[0][0])
    ctx.table(f"The {'-'.join(map(str, sizes))} network, {cfg.epochs} epochs from the same "
              f"weights (training time excludes the loss evaluations)",
              ["method", "learning rate", "updates", "final training loss", "test accuracy",
               "training seconds", f"epochs to loss {target:.4f}",
               f"seconds to loss {target:.4f}"],
              [[r["label"], r["lr"], r["steps"], r["losses"][-1], r["acc"], r["clock"][-1],
                r["reach_epoch"], r["reach"]] for r in runs])
    ctx.metrics.update({
        "final_loss": {r["label"]: float(r["losses"][-1]) for r in runs},
        "test_accuracy": {r["label"]: r["acc"] for r in runs},
        "train_seconds": {r["label"]: float(r["clock"][-1]) for r in runs},
        "seconds_to_common_loss": {r["label"]: r["reach"] for r in runs},
        "common_loss": float(target),
    })

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for r in runs:
        ax1.plot(np.arange(cfg.epochs + 1), r["losses"], marker=".", label=r["label"])
        ax2.plot(r["clock"][1:], r["losses"][1:], marker=".", label=r["label"])
    for ax, xlabel in ((ax1, "epoch"), (ax2, "training wall time (s)")):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training cross-entropy")
        ax.axhline(target, color="grey", lw=0.7, ls=":")
        ax.legend()
    ax2.set_xscale("log")
    ax1.set_title("Loss against epochs")
    ax2.set_title("Loss against wall time")
    fig.tight_layout()
    ctx.figure(fig, "sgd_loss.png", "Training loss of the same network from the same weights "
               "under SGD, mini-batch and full-batch descent, against epochs (left) and "
               "cumulative training wall time after each epoch (right, log axis); the dotted "
               "line is the loss all three reached.")

    panels = [("before (all)", init)] + [(r["label"], r["weights"]) for r in runs]
    fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels), 6.5),
                             gridspec_kw={"height_ratios": [sizes[0], sizes[1] * 1.5]},
                             squeeze=False, layout="constrained")
    for row, idx in enumerate((0, 2)):  # kernels of layers 1 and 2
        lim = max(float(np.abs(w[idx]).max()) for _, w in panels)
        for col, (title, weights) in enumerate(panels):
            im = axes[row, col].imshow(weights[idx], aspect="auto", cmap="RdBu_r",
                                       vmin=-lim, vmax=lim, interpolation="nearest")
            axes[row, col].set_title(f"{title}\nlayer {row + 1} {weights[idx].shape}",
                                     fontsize=8)
            axes[row, col].set_xticks(np.arange(weights[idx].shape[1])[::2])
            axes[row, col].tick_params(labelsize=6)
        fig.colorbar(im, ax=axes[row].tolist(), shrink=0.8)
    ctx.figure(fig, "weights.png", "Kernels of both layers (rows: inputs, columns: units) "
               "before training and after each method; red positive, blue negative, one "
               "colour scale per layer.")

    by_epoch = min(runs, key=lambda r: r["losses"][-1])
    by_time = min(runs, key=lambda r: r["reach"])
    sgd = runs[0]
    ctx.infer(f"After {cfg.epochs} epochs the lowest training loss came from "
              f"{by_epoch['label']} ({by_epoch['losses'][-1]:.4f}); final losses: "
              + ", ".join(f"{r['label']} {r['losses'][-1]:.4f}" for r in runs) + ".")
    ctx.infer(f"To reach loss {target:.4f} (the worst final loss), "
              + ", ".join(f"{r['label']} needed {r['reach_epoch']} epochs and "
                          f"{r['reach']:.3f} s" for r in runs)
              + f": fastest in wall time was {by_time['label']}.")
    ctx.infer(f"SGD takes {sgd['steps'] // cfg.epochs} updates per epoch against 1 for the full "
              f"batch, and spent {sgd['clock'][-1] / max(runs[2]['clock'][-1], 1e-9):.0f}x the "
              "full batch's training time: each NumPy step has a fixed cost that one-row "
              "batches cannot spread.")
    ctx.infer("Test accuracy: " + ", ".join(f"{r['label']} {r['acc']:.3f}" for r in runs)
              + ".")


SGD_COMPARE = Implementation(
    config=SGDConfig, run=run_sgd,
    profiles={"smoke": {"epochs": 2}, "full": {"epochs": 100}},
)

# ============================================ 6.2 normalisation, Keras and PyTorch

FRAMEWORKS = ("both", "torch", "keras")


@dataclass
class NormConfig:
    widths: tuple[int, ...] = (32, 16)  # hidden ReLU layers (the manual's 32-16-1)
    epochs: int = 50  # training epochs
    batch_size: int = 32  # mini-batch size
    lr: float = 0.001  # Adam learning rate
    test_fraction: float = 0.25  # held-out rows (stratified)
    n_seeds: int = 3  # splits and initialisations; each trains raw and standardised
    frameworks: str = "both"  # 'both', 'torch' or 'keras'
    csv: str = ""  # a CSV with a binary target instead of breast cancer ('' = breast cancer)
    target: str = ""  # the CSV's target column

    def validate(self) -> None:
        if self.frameworks not in FRAMEWORKS:
            raise ValueError(f"frameworks must be one of {', '.join(FRAMEWORKS)}")
        if bool(self.csv) != bool(self.target):
            raise ValueError("csv and target go together: --set csv=FILE --set target=COLUMN")
        if not 0 < self.test_fraction < 1:
            raise ValueError("test_fraction must be in (0, 1)")
        if not self.widths or min(self.widths) < 1:
            raise ValueError("widths must list positive widths, e.g. 32,16")


def load_binary_table(cfg: NormConfig):
    """Breast cancer, or the user's CSV with a two-valued target mapped to 0/1 (the
    values' sorted order). Raises DataError for a target without exactly two values."""
    from dlab.data.tabular import breast_cancer, read_csv
    from dlab.errors import DataError

    if not cfg.csv:
        return breast_cancer(), None
    table = read_csv(cfg.csv, cfg.target)
    values = sorted(table.frame[cfg.target].unique().tolist(), key=str)
    if len(values) != 2:
        raise DataError(f"--set target={cfg.target}: a binary classifier needs exactly two "
                        f"target values; {cfg.csv} has {len(values)}"
                        + (f" ({', '.join(map(str, values[:5]))}...)" if values else ""))
    table.frame[cfg.target] = (table.frame[cfg.target] == values[1]).astype(np.int64)
    return table, values


def train_torch(prep, cfg: NormConfig, ctx: RunContext, seed: int, name: str):
    """The 32-16-1 network in PyTorch with logits and BCEWithLogits; Adam; returns the
    model and its test accuracy."""
    import torch

    from dlab.experiments.exp02_mlp import bce_logits, to_tensors
    from dlab.models.mlp import MLP
    from dlab.training import accuracy, evaluate, fit

    model = MLP((prep.X_train.shape[1], *cfg.widths, 1), "relu",
                generator=ctx.torch_generator(200 + seed)).to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    fit(model, to_tensors(prep.X_train, prep.y_train, ctx.device), ctx=ctx, epochs=cfg.epochs,
        optimizer=opt, loss_fn=bce_logits, batch_size=cfg.batch_size,
        metrics={"acc": accuracy}, name=name, checkpoint=False)
    test = evaluate(model, to_tensors(prep.X_test, prep.y_test, ctx.device), bce_logits,
                    {"acc": accuracy}, device=ctx.device)
    return model, float(test["acc"])


def run_norm(cfg: NormConfig, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlab.experiments.exp02_mlp import prepare_table

    table, values = load_binary_table(cfg)
    ctx.data(table.describe())
    if values is not None:
        ctx.data(f"Target `{cfg.target}`: {values[0]!r} -> 0, {values[1]!r} -> 1.")
    frameworks = ["torch", "keras"] if cfg.frameworks == "both" else [cfg.frameworks]
    keras_run = None
    if "keras" in frameworks:
        from dlab.keras_programs.breast_cancer import train_and_test as keras_run

    results: dict[tuple[str, str], list[float]] = {}
    rows = []
    spread = None
    for k in range(cfg.n_seeds):
        split_seed = ctx.seed + k
        preps = {
            "raw": prepare_table(table.frame, table.target, cfg.test_fraction, split_seed,
                                 scale=False),
            "standardised": prepare_table(table.frame, table.target, cfg.test_fraction,
                                          split_seed, scale=True),
        }
        if spread is None:
            sd = preps["raw"].X_train.std(axis=0)
            sd = sd[sd > 0]
            spread = (float(np.abs(preps["raw"].X_train).max()), float(sd.max() / sd.min()))
            ctx.data(f"Stratified split per seed: {len(preps['raw'].y_train)} training and "
                     f"{len(preps['raw'].y_test)} test rows; the scaler (and any imputation "
                     "or one-hot encoding) is fit on the training rows only.")
        for fw in frameworks:
            accs = {}
            for label, prep in preps.items():
                name = f"{fw}_{label}_seed{k}"
                if fw == "torch":
                    model, acc = train_torch(prep, cfg, ctx, k, name)
                    if k == 0 and label == "standardised":
                        scaler = prep.preprocessor.named_transformers_["num"][-1]
                        ctx.save_model(model, sizes=[prep.X_train.shape[1], *cfg.widths, 1],
                                       output="logit of class 1",
                                       features=prep.feature_names,
                                       scaler_mean=scaler.mean_.tolist(),
                                       scaler_scale=scaler.scale_.tolist())
                else:
                    acc = keras_run(prep.X_train, prep.y_train, prep.X_test, prep.y_test,
                                    seed=ctx.seed * 1000 + k, epochs=cfg.epochs,
                                    batch_size=cfg.batch_size, lr=cfg.lr, widths=cfg.widths,
                                    ctx=ctx, name=name)["test_accuracy"]
                accs[label] = acc
                results.setdefault((fw, label), []).append(acc)
                ctx.log(f"seed {k} {fw} {label}: test accuracy {acc:.4f}")
            rows.append([k, fw, accs["raw"], accs["standardised"],
                         accs["standardised"] - accs["raw"]])
    ctx.table("Test accuracy per seed (same split and initial weights for raw and "
              "standardised inputs)", ["seed", "framework", "raw inputs", "standardised",
                                       "gain"], rows)
    summary = []
    for fw in frameworks:
        raw, std = np.array(results[(fw, "raw")]), np.array(results[(fw, "standardised")])
        summary.append([fw, raw.mean(), raw.std(), std.mean(), std.std(),
                        int((std > raw).sum()), int((std == raw).sum())])
        ctx.metrics[fw] = {"raw_accuracy": float(raw.mean()),
                           "standardised_accuracy": float(std.mean()),
                           "raw_accuracy_sd": float(raw.std()),
                           "standardised_accuracy_sd": float(std.std()),
                           "seeds_standardised_better": int((std > raw).sum())}
    ctx.table(f"Mean test accuracy over {cfg.n_seeds} seeds",
              ["framework", "raw mean", "raw sd", "standardised mean", "standardised sd",
               "seeds where standardised is better", "ties"], summary)
    ctx.metrics["largest_raw_input"], ctx.metrics["feature_sd_ratio"] = spread

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, fw in enumerate(frameworks):
        for j, label in enumerate(("raw", "standardised")):
            accs = np.array(results[(fw, label)])
            x = i * 3 + j
            ax.bar(x, accs.mean(), color=("tab:orange", "tab:blue")[j],
                   label=label if i == 0 else None)
            ax.scatter(np.full(len(accs), x), accs, color="k", s=12, zorder=3)
    ax.set_xticks([i * 3 + 0.5 for i in range(len(frameworks))], frameworks)
    lo = min(min(v) for v in results.values())
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"32-16-1 network, {cfg.epochs} epochs: mean over {cfg.n_seeds} seeds")
    ax.legend()
    ctx.figure(fig, "normalisation.png", "Test accuracy with raw and standardised inputs "
               "(bars: mean; dots: seeds) for each framework.")

    ctx.infer(f"Raw inputs span up to {spread[0]:,.1f} and their standard deviations differ "
              f"by a factor of {spread[1]:,.0f} between features.")
    for fw, raw_m, _, std_m, _, better, ties in summary:
        ctx.infer(f"{fw}: standardisation changed mean test accuracy from {raw_m:.4f} to "
                  f"{std_m:.4f} ({std_m - raw_m:+.4f}); it was better in {better} of "
                  f"{cfg.n_seeds} seeds (ties: {ties}).")
    if len(summary) == 2:
        gap = abs(summary[0][3] - summary[1][3])
        ctx.infer(f"With standardised inputs PyTorch and Keras differ by {gap:.4f} in mean "
                  "accuracy (same network, optimiser and data; different initial draws).")


NORMALISATION = Implementation(
    config=NormConfig, run=run_norm,
    profiles={"smoke": {"epochs": 2, "n_seeds": 1}, "full": {"epochs": 50, "n_seeds": 5}},
)
