"""Experiment 6: stochastic gradient descent and input normalisation.

6.1 One network (`dlab.scratch`, NumPy), one data set (breast cancer), trained by the
    same update W <- W - a dW, b <- b - a db with the gradient of the mean loss over
    1 sample (stochastic gradient descent, Robbins and Monro 1951), a mini-batch, or all
    training samples (full-batch gradient descent); loss against epochs and wall time,
    and the weights before and after.
6.2 A 32-16-1 binary classifier with and without standardised inputs (scaler fit on the
    training rows only), in PyTorch and in Keras 3 (`dlab.keras_programs.breast_cancer`).

Each program reads: load data -> build the model -> train -> score (a dict of measured
values) -> judge (targets on the Implementation, claims from the scores) -> write (tables,
figures).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from dlab.data.subsets import class_counts
from dlab.data.tabular import Split, TableData, breast_cancer, prepare
from dlab.figures import pyplot
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.scratch.train import gd_epoch, make_net
from dlab.uncertainty import Difference, over_seeds
from dlab.verdicts import Target


def describe_split(ctx: RunContext, s: Split, what: str) -> None:
    """Sizes and class counts of the split for the record's Data section."""
    counts = ", ".join(f"class {c}: {k}" for c, k in class_counts(s.y_test).items())
    ctx.data(f"Stratified split: {s.sizes()} ({what}); the test rows ({counts}) are scored "
             "once, as a whole. Scaling (and any imputation or one-hot coding) is fit on "
             "the training rows only.")


# =============================================== 6.1 SGD, mini-batch and full batch


def time_to_reach(losses: np.ndarray, seconds: np.ndarray, target: float) -> float:
    """Wall time (s) at the first evaluation where the loss is <= target (inf if never)."""
    hit = np.nonzero(losses <= target)[0]
    return float(seconds[hit[0]]) if len(hit) else float("inf")


@dataclass
class SGDConfig:
    hidden: int = 16  # hidden units of the 30-hidden-2 network
    activation: Literal["tanh", "sigmoid", "relu"] = "tanh"  # hidden activation
    epochs: int = 30  # passes over the training rows, for every method
    minibatch: int = 32  # rows per step of mini-batch descent
    lrs: tuple[float, ...] = (0.01, 0.1, 1.0)  # learning rates: SGD, mini-batch, full batch
    test_fraction: float = 0.25  # held-out tumours (stratified)
    n_inits: int = 3  # initial weights (and shuffling orders) every method is run from

    def validate(self) -> None:
        if self.n_inits < 2:
            raise ValueError("n_inits must be at least 2: the comparisons need a spread")
        if len(self.lrs) != 3 or min(self.lrs) <= 0:
            raise ValueError("lrs must be three positive rates (SGD, mini-batch, full batch)")
        if self.minibatch < 2:
            raise ValueError("minibatch must be at least 2 (1 is SGD)")
        if not 0 < self.test_fraction < 1:
            raise ValueError("test_fraction must be in (0, 1)")


def descend(model, s: Split, cfg: SGDConfig, batch: int, lr: float,
            rng: np.random.Generator) -> dict[str, Any]:
    """cfg.epochs passes of `gd_epoch`; the training loss after each and the training
    time (the loss evaluations are not timed)."""
    Y = np.eye(2)[s.y_train]  # one-hot (N, 2)
    losses, clock, elapsed, steps = [model.evaluate(s.x_train, Y)], [0.0], 0.0, 0
    for _ in range(cfg.epochs):
        t0 = time.perf_counter()
        steps += gd_epoch(model, s.x_train, Y, lr, batch, rng)
        elapsed += time.perf_counter() - t0
        losses.append(model.evaluate(s.x_train, Y))
        clock.append(elapsed)
    acc = float((model.predict(s.x_test).argmax(axis=1) == s.y_test).mean())
    return {"losses": np.array(losses), "clock": np.array(clock), "acc": acc,
            "weights": model.get_weights(), "steps": steps}


def sgd_net(cfg: SGDConfig, s: Split, seed: int, k: int = 0):
    """The n_features-hidden-2 `dlab.scratch` network (float64, softmax output) of
    initialisation k (k = 0: from `seed`; k >= 1: the NumPy generator (seed, k, 7)),
    whose initial weights every method starts from."""
    return make_net((s.x_train.shape[1], cfg.hidden, 2), cfg.activation,
                    seed if k == 0 else np.random.default_rng((seed, k, 7)))


def train_inits(cfg: SGDConfig, s: Split, net, seed: int) -> list[list[dict[str, Any]]]:
    """`train_methods` from `net` (initialisation 0) and from cfg.n_inits - 1 further
    initialisations (`sgd_net`), each with its own shuffling: one list of runs per
    initialisation, the first from `net`."""
    return [train_methods(cfg, s, net, seed)] + [
        train_methods(cfg, s, sgd_net(cfg, s, seed, k), seed + 7919 * k)
        for k in range(1, cfg.n_inits)]


def train_methods(cfg: SGDConfig, s: Split, net, seed: int) -> list[dict[str, Any]]:
    """SGD, mini-batch and full-batch descent, each on its own copy of `net` (same
    initial weights; `net` is left as it is). Returns one dict per method: its key,
    label, batch size, rate and what `descend` measured."""
    n = len(s.y_train)
    methods = [("sgd", "SGD (batch 1)", 1, cfg.lrs[0]),
               ("minibatch", f"mini-batch ({cfg.minibatch})", min(cfg.minibatch, n),
                cfg.lrs[1]),
               ("fullbatch", f"full batch ({n})", n, cfg.lrs[2])]
    runs = []
    for k, (key, label, batch, lr) in enumerate(methods):
        r = descend(copy.deepcopy(net), s, cfg, batch, lr, np.random.default_rng((seed, k)))
        runs.append({"key": key, "label": label, "batch": batch, "lr": lr, **r})
    return runs


def score_sgd(inits: list[list[dict[str, Any]]], s: Split) -> dict[str, Any]:
    """The first initialisation's values (drawn and tabled), and over every
    initialisation the means and paired intervals the comparisons and targets use."""
    runs = inits[0]
    for one in inits:
        common = max(r["losses"][-1] for r in one)  # a loss every method reached
        for r in one:
            r["reach"] = time_to_reach(r["losses"], r["clock"], common)
            r["reach_epoch"] = int(np.nonzero(r["losses"] <= common)[0][0])
    out: dict[str, Any] = {
        "final_loss": {r["label"]: float(r["losses"][-1]) for r in runs},
        "test_accuracy": {r["label"]: r["acc"] for r in runs},
        "train_seconds": {r["label"]: float(r["clock"][-1]) for r in runs},
        "seconds_to_common_loss": {r["label"]: r["reach"] for r in runs},
        "common_loss": float(max(r["losses"][-1] for r in runs)),
        "initial_loss": float(runs[0]["losses"][0]),
        "majority_accuracy": float(max(np.mean(s.y_test == c) for c in (0, 1))),
        "n_train": len(s.y_train), "n_test": len(s.y_test), "n_inits": len(inits)}
    for i, r in enumerate(runs):
        col = [one[i] for one in inits]
        final = [float(x["losses"][-1]) for x in col]
        first = [float(x["losses"][1]) for x in col]
        out.update({f"{r['key']}_final_loss": float(r["losses"][-1]),
                    f"{r['key']}_test_accuracy": r["acc"], f"{r['key']}_updates": r["steps"],
                    f"{r['key']}_seconds_per_update": float(np.mean(
                        [x["clock"][-1] / x["steps"] for x in col])),
                    f"{r['key']}_mean_final_loss": float(np.mean(final)),
                    f"{r['key']}_mean_epoch1_loss": float(np.mean(first)),
                    f"{r['key']}_final_vs_epoch1": over_seeds(final, first).as_dict(),
                    f"{r['key']}_final_losses": final,
                    f"{r['key']}_seconds_to_common_loss": [x["reach"] for x in col]})
    out["worst_mean_final_loss"] = max(out[f"{r['key']}_mean_final_loss"] for r in runs)
    out["sgd_vs_fullbatch"] = over_seeds(out["sgd_final_losses"],
                                         out["fullbatch_final_losses"]).as_dict()
    return out


def judge_sgd(ctx: RunContext, cfg: SGDConfig, runs: list[dict[str, Any]],
              m: dict[str, Any]) -> None:
    n = m["n_inits"]
    ctx.infer(f"After {cfg.epochs} epochs from the same weights (training loss "
              f"{m['initial_loss']:.4f}) the final training losses are "
              + ", ".join(f"{r['label']} {r['losses'][-1]:.4f}" for r in runs)
              + f"; the means over {n} initialisations are "
              + ", ".join(f"{r['label']} {m[r['key'] + '_mean_final_loss']:.4f}" for r in runs)
              + " (after the first epoch: "
              + ", ".join(f"{m[r['key'] + '_mean_epoch1_loss']:.4f}" for r in runs) + ").")
    ctx.compare(f"mean training loss after {cfg.epochs} epochs over {n} initialisations",
                "SGD", m["sgd_mean_final_loss"], "full-batch descent",
                m["fullbatch_mean_final_loss"],
                diff=Difference.from_dict(m["sgd_vs_fullbatch"]),
                then=f"Per epoch SGD makes {m['sgd_updates'] // cfg.epochs} updates against "
                     "one.")
    judge_wall_time(ctx, runs, m)
    a, b, k = m["sgd_seconds_per_update"], m["fullbatch_seconds_per_update"], m["n_train"]
    ctx.claim(f"Per row, an SGD update costs more time: {a * 1e6:.0f} us for 1 row against "
              f"{b * 1e6:.0f} us for a full-batch update of {k} rows (means over {n} "
              f"initialisations), so per row SGD cost {a * k / b:.0f}x as much.",
              a * k > 10 * b,
              otherwise=f"Per row, an SGD update ({a * 1e6:.0f} us for 1 row) did not cost "
                        f"ten times a full-batch update ({b * 1e6:.0f} us for {k} rows).",
              sgd_seconds_per_update=a, fullbatch_seconds_per_update=b, n_train=k)
    ctx.background("Each NumPy call has a fixed overhead of microseconds whatever the size of "
                   "its arrays, so a one-row step pays it once per row and a full-batch step "
                   "once per epoch.", "Harris et al. 2020, Array programming with NumPy, "
                                      "Nature 585")
    ctx.infer("Test accuracy: " + ", ".join(f"{r['label']} {r['acc']:.3f}" for r in runs)
              + f" (always predicting the larger class: {m['majority_accuracy']:.3f}).")


def judge_wall_time(ctx: RunContext, runs: list[dict[str, Any]], m: dict[str, Any]) -> None:
    """The wall time each method took to reach the worst final loss, and which was
    quickest only where the lead over the runner-up exceeds its interval."""
    times = {r["key"]: m[f"{r['key']}_seconds_to_common_loss"] for r in runs}
    order = sorted(runs, key=lambda r: np.mean(times[r["key"]]))
    fast, second = order[0], order[1]
    lead = over_seeds(times[fast["key"]], times[second["key"]])
    ctx.infer(f"To reach loss {m['common_loss']:.4f} (the worst final loss of the first "
              "initialisation), "
              + ", ".join(f"{r['label']} needed {r['reach_epoch']} epochs and "
                          f"{r['reach']:.3f} s" for r in runs) + ".")
    ctx.compare(f"mean wall time to the worst final loss over {m['n_inits']} initialisations",
                fast["label"], float(np.mean(times[fast["key"]])), second["label"],
                float(np.mean(times[second["key"]])), diff=lead, unit="s")


def write_sgd(ctx: RunContext, cfg: SGDConfig, init, runs: list[dict[str, Any]],
              m: dict[str, Any]) -> None:
    target = m["common_loss"]
    for r in runs:
        ctx.add_history([{"model": r["label"], "epoch": e, "loss": v, "seconds": c}
                         for e, (v, c) in enumerate(zip(r["losses"], r["clock"], strict=True))])
    ctx.table(f"The {init[0].shape[0]}-{cfg.hidden}-2 network, {cfg.epochs} epochs from the "
              "same weights (training time excludes the loss evaluations)",
              ["method", "learning rate", "updates", "final training loss", "test accuracy",
               "training seconds", f"epochs to loss {target:.4f}",
               f"seconds to loss {target:.4f}"],
              [[r["label"], r["lr"], r["steps"], r["losses"][-1], r["acc"], r["clock"][-1],
                r["reach_epoch"], r["reach"]] for r in runs])
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(11, 4))
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
    fig.tight_layout()
    ctx.figure(fig, "sgd_loss.png", "Training loss of the same network from the same weights "
               "under SGD, mini-batch and full-batch descent, against epochs (left) and "
               "cumulative training wall time after each epoch (right, log axis); the dotted "
               "line is the loss all three reached.")
    ctx.figure(weight_panels([("before (all)", init)]
                             + [(r["label"], r["weights"]) for r in runs]),
               "weights.png", "Kernels of both layers (rows: inputs, columns: units) before "
               "training and after each method; red positive, blue negative, one colour "
               "scale per layer.")


def weight_panels(panels: list[tuple[str, list[np.ndarray]]]):
    """Heat maps of the two kernels (rows) of each set of weights (columns)."""
    n_in, n_hidden = panels[0][1][0].shape
    fig, axes = pyplot().subplots(2, len(panels), figsize=(3.2 * len(panels), 6.5),
                                gridspec_kw={"height_ratios": [n_in, n_hidden * 1.5]},
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
    return fig


def run_sgd(cfg: SGDConfig, ctx: RunContext) -> None:
    # step data: breast cancer, a stratified split, standardised on the training rows
    s = prepare(breast_cancer(), cfg.test_fraction, seed=ctx.seed)
    ctx.data(breast_cancer().describe())
    describe_split(ctx, s, "tumours")
    # step model: the 30-hidden-2 network whose initial weights every method starts from
    net = sgd_net(cfg, s, ctx.seed)
    # step train: SGD, mini-batch and full batch on copies of it and of further initialisations
    inits = train_inits(cfg, s, net, ctx.seed)
    runs = inits[0]
    for r in runs:
        ctx.log(f"{r['label']}: loss {r['losses'][0]:.4f} -> {r['losses'][-1]:.4f} in "
                f"{r['clock'][-1]:.2f}s, test accuracy {r['acc']:.3f}")
    # step score: final losses, test accuracies and the time each method took
    ctx.metrics.update(score_sgd(inits, s))
    # step judge: sentences from the scores
    judge_sgd(ctx, cfg, runs, ctx.metrics)
    # step write: the table, the loss curves and the weights before and after
    write_sgd(ctx, cfg, net.get_weights(), runs, ctx.metrics)


SGD_COMPARE = Implementation(
    config=SGDConfig, run=run_sgd,
    profiles={"smoke": {"epochs": 2, "n_inits": 2}, "full": {"epochs": 100, "n_inits": 5}},
    targets=tuple(
        Target(f"{key}_mean_final_loss", below=f"{key}_mean_epoch1_loss",
               interval=f"{key}_final_vs_epoch1",
               why=f"{label} keeps lowering the training loss after its first epoch")
        for key, label in (("sgd", "SGD"), ("minibatch", "mini-batch descent"),
                           ("fullbatch", "full-batch descent"))) + (
        Target("worst_mean_final_loss", at_most=0.06, profiles=("quick", "full"),
               why="every method reaches a training loss that one epoch of any of them does "
                   "not"),),
    crippled={"epochs": 1},
)

# ============================================ 6.2 normalisation, Keras and PyTorch

FRAMEWORK_NAMES = {"torch": "PyTorch", "keras": "Keras"}


@dataclass
class NormConfig:
    widths: tuple[int, ...] = (32, 16)  # hidden ReLU layers (the manual's 32-16-1)
    epochs: int = 50  # training epochs
    batch_size: int = 32  # mini-batch size
    lr: float = 0.001  # Adam learning rate
    test_fraction: float = 0.25  # held-out rows (stratified)
    n_seeds: int = 3  # splits and initialisations; each trains raw and standardised
    frameworks: Literal["both", "torch", "keras"] = "both"  # which implementations run
    csv: str = ""  # a CSV with a binary target instead of breast cancer ('' = breast cancer)
    target: str = ""  # the CSV's target column

    def validate(self) -> None:
        if bool(self.csv) != bool(self.target):
            raise ValueError("csv and target go together: --set csv=FILE --set target=COLUMN")
        if not 0 < self.test_fraction < 1:
            raise ValueError("test_fraction must be in (0, 1)")
        if not self.widths or min(self.widths) < 1:
            raise ValueError("widths must list positive widths, e.g. 32,16")


def load_binary_table(cfg: NormConfig) -> tuple[TableData, list | None]:
    """Breast cancer, or the user's CSV with a two-valued target mapped to 0/1 (the
    values' sorted order). Raises DataError for a target without exactly two values."""
    from dlab.data.tabular import read_csv
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


def chosen_frameworks(cfg: NormConfig) -> list[str]:
    """The frameworks the run trains in, in training order: ['torch', 'keras'] for both."""
    return ["torch", "keras"] if cfg.frameworks == "both" else [cfg.frameworks]


def norm_splits(cfg: NormConfig, table: TableData, seed: int) -> dict[str, Split]:
    """One stratified split of `table` (seed `seed`) twice: {'raw': unscaled inputs,
    'standardised': the same rows scaled with the training rows' mean and sd}."""
    raw = prepare(table, cfg.test_fraction, seed=seed, scale=False, stratify=True)
    return {"raw": raw, "standardised": prepare(table, 0, scale=True, rows=raw.rows)}


def keras_seed(ctx: RunContext, k: int) -> int:
    """The Keras global seed of seed number k (initial weights and shuffling)."""
    return ctx.seed * 1000 + k


def norm_net(fw: str, cfg: NormConfig, ctx: RunContext, n_inputs: int, k: int):
    """The n_inputs-32-16-1 network of seed number k in framework `fw`: a PyTorch `MLP`
    (one logit out, initial weights from the run's generator 200 + k) or a Keras
    `Sequential` (sigmoid out, initial weights from `keras_seed`)."""
    if fw == "keras":
        from dlab.keras_programs.breast_cancer import seeded_model

        return seeded_model(n_inputs, cfg.widths, keras_seed(ctx, k))
    from dlab.models.mlp import MLP

    return MLP((n_inputs, *cfg.widths, 1), "relu",
               generator=ctx.torch_generator(200 + k)).to(ctx.device)


def train_torch(model, s: Split, cfg: NormConfig, ctx: RunContext, name: str) -> float:
    """Trains the PyTorch `model` in place (BCE with logits, Adam, mini-batches); returns
    its test accuracy."""
    import torch
    import torch.nn.functional as F

    from dlab.data.tabular import as_tensors
    from dlab.training import accuracy, evaluate, fit

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    fit(model, as_tensors(s.x_train, s.y_train, ctx.device, binary=True), ctx=ctx,
        epochs=cfg.epochs, optimizer=opt, loss_fn=F.binary_cross_entropy_with_logits,
        batch_size=cfg.batch_size, metrics={"acc": accuracy}, name=name, checkpoint=False)
    test = evaluate(model, as_tensors(s.x_test, s.y_test, ctx.device, binary=True),
                    F.binary_cross_entropy_with_logits, {"acc": accuracy}, device=ctx.device)
    return float(test["acc"])


def train_one(fw: str, model, s: Split, cfg: NormConfig, ctx: RunContext, k: int,
              name: str, save: bool) -> float:
    """Train `model` (framework `fw`, seed number k) on the split in place; returns its
    test accuracy. `save`: write the PyTorch network and its scaler to model.json."""
    if fw == "keras":
        from dlab.keras_programs.breast_cancer import train_and_test

        return train_and_test(model, s.x_train, s.y_train, s.x_test, s.y_test,
                              seed=keras_seed(ctx, k), epochs=cfg.epochs,
                              batch_size=cfg.batch_size, lr=cfg.lr, ctx=ctx,
                              name=name)["test_accuracy"]
    acc = train_torch(model, s, cfg, ctx, name)
    if save:
        ctx.save_model(model, sizes=[s.x_train.shape[1], *cfg.widths, 1],
                       output="logit of class 1", features=s.feature_names,
                       scaler_mean=[s.pre.means[c] for c in s.pre.numeric],
                       scaler_scale=[s.pre.stds[c] for c in s.pre.numeric],
                       preprocessing=s.pre.to_dict())
    return acc


def train_norm(cfg: NormConfig, ctx: RunContext, table: TableData, splits: dict[str, Split],
               models: dict[str, Any]) -> dict[tuple[str, str], list[float]]:
    """Every seed: one split, raw and standardised, each trained in every framework of
    `models`. The first seed uses `splits` and trains `models` (its networks) on the
    standardised inputs; every other network comes from `norm_net` with the same seed's
    initial weights. Returns {(framework, 'raw' | 'standardised'): [test accuracy per
    seed]}."""
    results: dict[tuple[str, str], list[float]] = {}
    for k in range(cfg.n_seeds):
        preps = splits if k == 0 else norm_splits(cfg, table, ctx.seed + k)
        for fw in models:
            for label, s in preps.items():
                main = k == 0 and label == "standardised"
                model = models[fw] if main else norm_net(fw, cfg, ctx, s.x_train.shape[1], k)
                acc = train_one(fw, model, s, cfg, ctx, k, f"{fw}_{label}_seed{k}",
                                save=main)
                results.setdefault((fw, label), []).append(acc)
                ctx.log(f"seed {k} {fw} {label}: test accuracy {acc:.4f}")
    return results


def score_norm(results: dict, raw: Split, frameworks: list[str]) -> dict[str, Any]:
    sd = raw.x_train.std(axis=0)
    sd = sd[sd > 0]
    out: dict[str, Any] = {
        "largest_raw_input": float(np.abs(raw.x_train).max()),
        "feature_sd_ratio": float(sd.max() / sd.min()),
        "majority_accuracy": float(max(np.mean(raw.y_test == c) for c in (0, 1)))}
    for fw in frameworks:
        r, s = np.array(results[(fw, "raw")]), np.array(results[(fw, "standardised")])
        out[fw] = {"raw_accuracy": float(r.mean()), "standardised_accuracy": float(s.mean()),
                   "raw_accuracy_sd": float(r.std()), "standardised_accuracy_sd": float(s.std()),
                   "seeds_standardised_better": int((s > r).sum()),
                   "seeds_tied": int((s == r).sum()),
                   "raw_accuracies": r.tolist(), "standardised_accuracies": s.tolist(),
                   "standardised_vs_raw": over_seeds(s, r).as_dict(),
                   "raw_seeds_at_a_class_share": int(np.isclose(
                       r[:, None], [out["majority_accuracy"], 1 - out["majority_accuracy"]],
                       atol=1e-6).any(axis=1).sum())}
    return out


def judge_norm(ctx: RunContext, cfg: NormConfig, m: dict[str, Any],
               frameworks: list[str]) -> None:
    ctx.infer(f"Raw inputs span up to {m['largest_raw_input']:,.1f} and their standard "
              f"deviations differ by a factor of {m['feature_sd_ratio']:,.0f} between "
              "features.")
    for fw in frameworks:
        f = m[fw]
        ctx.compare(f"mean test accuracy over {cfg.n_seeds} seed(s)",
                    f"The standardised-input {FRAMEWORK_NAMES[fw]} network",
                    f["standardised_accuracy"], "the raw-input network", f["raw_accuracy"],
                    better="higher", diff=Difference.from_dict(f["standardised_vs_raw"]))
        ctx.infer(f"{FRAMEWORK_NAMES[fw]}: standardised inputs scored above raw ones in "
                  f"{f['seeds_standardised_better']} of {cfg.n_seeds} seeds (ties: "
                  f"{f['seeds_tied']}); the majority class scores "
                  f"{m['majority_accuracy']:.4f}; in {f['raw_seeds_at_a_class_share']} of "
                  f"{cfg.n_seeds} seeds the raw-input network's accuracy equals the share of "
                  "one class, what answering that class every time scores.")
    if len(frameworks) == 2:
        gap = abs(m["torch"]["standardised_accuracy"] - m["keras"]["standardised_accuracy"])
        ctx.infer(f"With standardised inputs the mean test accuracies of PyTorch and Keras "
                  f"are {gap:.4f} apart (same network, optimiser and data; each framework "
                  "draws its own initial weights).")


def write_norm(ctx: RunContext, cfg: NormConfig, results: dict, m: dict[str, Any],
               frameworks: list[str]) -> None:
    ctx.table("Test accuracy per seed (same split and initial weights for raw and "
              "standardised inputs)", ["seed", "framework", "raw inputs", "standardised"],
              [[k, fw, results[(fw, "raw")][k], results[(fw, "standardised")][k]]
               for k in range(cfg.n_seeds) for fw in frameworks])
    ctx.table(f"Mean test accuracy over {cfg.n_seeds} seeds",
              ["framework", "raw mean", "raw sd", "standardised mean", "standardised sd",
               "seeds where standardised is higher", "ties"],
              [[fw, m[fw]["raw_accuracy"], m[fw]["raw_accuracy_sd"],
                m[fw]["standardised_accuracy"], m[fw]["standardised_accuracy_sd"],
                m[fw]["seeds_standardised_better"], m[fw]["seeds_tied"]] for fw in frameworks])
    fig, ax = pyplot().subplots(figsize=(6, 4))
    for i, fw in enumerate(frameworks):
        for j, label in enumerate(("raw", "standardised")):
            accs = np.array(results[(fw, label)])
            ax.bar(i * 3 + j, accs.mean(), color=("tab:orange", "tab:blue")[j],
                   label=label if i == 0 else None)
            ax.scatter(np.full(len(accs), i * 3 + j), accs, color="k", s=12, zorder=3)
    ax.set_xticks([i * 3 + 0.5 for i in range(len(frameworks))], frameworks)
    ax.set_ylim(max(0.0, min(min(v) for v in results.values()) - 0.05), 1.0)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"32-16-1 network, {cfg.epochs} epochs: mean over {cfg.n_seeds} seeds")
    ax.legend()
    ctx.figure(fig, "normalisation.png", "Test accuracy with raw and standardised inputs "
               "(bars: mean; dots: seeds) for each framework.")


def run_norm(cfg: NormConfig, ctx: RunContext) -> None:
    # step data: breast cancer (or the CSV), the first seed's split, raw and standardised
    table, values = load_binary_table(cfg)
    ctx.data(table.describe())
    if values is not None:
        ctx.data(f"Target `{cfg.target}`: {values[0]!r} -> 0, {values[1]!r} -> 1.")
    splits = norm_splits(cfg, table, ctx.seed)
    describe_split(ctx, splits["raw"], f"seed {ctx.seed}; each further seed draws its own "
                   "split")
    # step model: the 32-16-1 network in each framework, with the first seed's weights
    models = {fw: norm_net(fw, cfg, ctx, splits["raw"].x_train.shape[1], 0)
              for fw in chosen_frameworks(cfg)}
    # step train: raw and standardised inputs, every seed, in every framework
    results = train_norm(cfg, ctx, table, splits, models)
    # step score: mean test accuracy with raw and standardised inputs per framework
    ctx.metrics.update(score_norm(results, splits["raw"], list(models)))
    # step judge: sentences from the scores
    judge_norm(ctx, cfg, ctx.metrics, list(models))
    # step write: the accuracy tables and the bar chart
    write_norm(ctx, cfg, results, ctx.metrics, list(models))


def _norm_targets(fw: str) -> tuple[Target, Target]:
    when = {"when": lambda m: fw in m,
            "when_text": f"the {FRAMEWORK_NAMES[fw]} network is trained (frameworks both or "
                         f"{fw})"}
    return (Target(f"{fw}.standardised_accuracy", above=f"{fw}.raw_accuracy",
                   interval=f"{fw}.standardised_vs_raw", profiles=("quick", "full"), **when,
                   why="standardising the inputs helps a network on features of very "
                       "different scales, beyond the spread over seeds"),
            Target(f"{fw}.standardised_accuracy", at_least=0.94, profiles=("quick", "full"),
                   **when, why="the standardised network is trained far enough that one "
                               "epoch does not reach it"))


NORMALISATION = Implementation(
    config=NormConfig, run=run_norm,
    # full: the manual's batch of 10 (at quick it doubled the run's time, 35 s -> 70 s)
    profiles={"smoke": {"epochs": 2, "n_seeds": 1},
              "full": {"epochs": 50, "n_seeds": 5, "batch_size": 10}},
    targets=(*_norm_targets("torch"), *_norm_targets("keras")),
    crippled={"epochs": 1},
)
