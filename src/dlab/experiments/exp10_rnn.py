"""Experiment 10: a simple RNN forecasting a noisy sine (10.1) and RNN, LSTM and GRU on
tasks that need long memory (10.2).

10.1 predicts s[t] from the window s[t-20 .. t-1] of a sine with Gaussian noise of
standard deviation sigma. No forecaster can beat the noise: the best possible MSE is
sigma^2 (0.01 for sigma = 0.1), reached by a predictor that knows the clean sine. The
naive forecast s[t-1] pays the noise twice plus the sine's one-step change,
E[(s[t] - s[t-1])^2] ~ 2 sigma^2 + (2 pi / period)^2 / 2.

10.2 trains recurrent networks of equal width on the adding problem (Hochreiter and
Schmidhuber 1997) and on a running sum. In a simple RNN the gradient reaching step t
from the loss at step T is a product of T - t Jacobians diag(tanh') W_hh, which shrinks
geometrically (Bengio, Simard and Frasconi 1994); the LSTM's cell state c_t = f c_{t-1}
+ i g and the GRU's h_t = (1 - z) n + z h_{t-1} pass it through an additive path that
gates can hold open.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dlab.data import sequences as seq
from dlab.data.synthetic import noisy_sine
from dlab.models.rnn import SequenceConfig, SequenceRegressor, count_parameters
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.training import evaluate, fit, predict


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------- 10.1 noisy sine


@dataclass
class SineConfig:
    n_points: int = 1000  # length of the noisy sine series
    noise: float = 0.1  # standard deviation of the Gaussian noise
    period: float = 50.0  # period of the sine, in time steps
    window: int = 20  # past values the RNN reads to predict the next one
    test_fraction: float = 0.2  # last part of the series held out (chronological split)
    hidden: int = 16  # units of the simple RNN
    epochs: int = 40  # passes over the training windows
    batch_size: int = 32  # windows per gradient step
    lr: float = 0.005  # Adam learning rate

    def validate(self) -> None:
        if not 0.05 <= self.test_fraction <= 0.5:
            raise ValueError(f"test_fraction must be in [0.05, 0.5], got {self.test_fraction}")
        if self.noise < 0:
            raise ValueError(f"noise must be 0 or more, got {self.noise}")
        test_len = int(round(self.n_points * self.test_fraction))
        if min(test_len, self.n_points - test_len) <= self.window + 10:
            raise ValueError(f"n_points={self.n_points} leaves fewer than window + 10 values "
                             "on one side of the split; use more points or a shorter window")


def run_sine(cfg: SineConfig, ctx: RunContext) -> None:
    plt = _plt()
    series = noisy_sine(ctx.rng, cfg.n_points, cfg.noise, cfg.period)              # (T,)
    clean = np.sin(2 * math.pi * np.arange(cfg.n_points) / cfg.period)              # (T,)
    cut = cfg.n_points - int(round(cfg.n_points * cfg.test_fraction))
    split = seq.split_windows(series, cfg.window, cut, test_history=False)
    ctx.data(f"Noisy sine: sin(2 pi t / {cfg.period:g}) + N(0, {cfg.noise:g}^2) for t = 0.."
             f"{cfg.n_points - 1}, drawn from the run's seed. Chronological split at t = {cut}: "
             f"{len(split.y_train)} training windows of {cfg.window} values (t < {cut}), "
             f"{len(split.y_test)} test windows built from t >= {cut} only, so no window "
             "touches both sides and nothing is shuffled across the boundary.")

    dev = ctx.device
    x_tr = torch.from_numpy(split.x_train).float().unsqueeze(-1).to(dev)   # (N, w, 1)
    y_tr = torch.from_numpy(split.y_train).float().to(dev)                 # (N,)
    x_te = torch.from_numpy(split.x_test).float().unsqueeze(-1).to(dev)
    model = SequenceRegressor(cell="rnn", hidden=cfg.hidden).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    result = fit(model, (x_tr, y_tr), ctx=ctx, epochs=cfg.epochs, optimizer=opt,
                 loss_fn=nn.functional.mse_loss, batch_size=cfg.batch_size, name="rnn")

    pred = predict(model, x_te)
    target = split.y_test.astype(np.float64)
    rnn = seq.regression_scores(pred, target)
    naive = seq.regression_scores(seq.persistence_forecast(split.x_test), target)
    oracle = seq.regression_scores(clean[split.t_test], target)  # the realised noise
    train_mse = evaluate(model, (x_tr, y_tr), nn.functional.mse_loss, device=dev)["loss"]
    floor = cfg.noise ** 2
    ctx.metrics.update({
        "test_mse": rnn["mse"], "test_rmse": rnn["rmse"], "test_mae": rnn["mae"],
        "naive_mse": naive["mse"], "noise_variance": floor,
        "realised_noise_mse": oracle["mse"], "train_mse": float(train_mse),
        "parameters": count_parameters(model), "train_windows": len(split.y_train),
        "test_windows": len(split.y_test), "train_seconds": result.seconds,
    })
    ctx.table("Test MSE on the held-out end of the series",
              ["forecast", "test MSE", "test MAE", "MSE / noise variance"],
              [[f"simple RNN (hidden {cfg.hidden})", rnn["mse"], rnn["mae"], rnn["mse"] / floor
                if floor else math.nan],
               ["naive: repeat the last value", naive["mse"], naive["mae"],
                naive["mse"] / floor if floor else math.nan],
               ["the clean sine itself (realised noise)", oracle["mse"], oracle["mae"],
                oracle["mse"] / floor if floor else math.nan],
               ["noise variance sigma^2 (expected floor)", floor, "-", 1.0]])

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [3, 1]})
    ax1.plot(split.t_test, target, ".", ms=3, color="grey", label="actual (noisy)")
    ax1.plot(split.t_test, clean[split.t_test], "--", lw=1, color="black", label="clean sine")
    ax1.plot(split.t_test, pred, color="tab:red", lw=1.5, label="RNN prediction")
    ax1.set_xlabel("time step t (test range)")
    ax1.set_ylabel("value")
    ax1.set_title(f"Test range: RNN MSE {rnn['mse']:.4f}, naive {naive['mse']:.4f}, "
                  f"noise floor {floor:.4f}")
    ax1.legend(loc="upper right", fontsize=8)
    ax2.plot(result.column("epoch"), result.column("loss"), color="tab:blue", label="train MSE")
    ax2.axhline(floor, color="black", ls="--", lw=1, label="noise variance")
    ax2.axhline(naive["mse"], color="grey", ls=":", lw=1, label="naive (test)")
    ax2.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_title("Training loss")
    ax2.legend(fontsize=8)
    ctx.figure(fig, "sine_forecast.png", "Left: actual noisy values, the clean sine and the "
               "RNN's one-step predictions on the held-out test range. Right: training MSE "
               "per epoch against the noise floor and the naive forecast's test MSE.")
    ctx.save_model(model, window=cfg.window, cell="rnn", hidden=cfg.hidden,
                   input="the previous `window` raw values, shape (B, window, 1)")

    ratio_naive = naive["mse"] / rnn["mse"]
    ctx.infer(f"The RNN's test MSE is {rnn['mse']:.4f} against {naive['mse']:.4f} for repeating "
              f"the last value: {'lower' if rnn['mse'] < naive['mse'] else 'NOT lower'}, by a "
              f"factor of {ratio_naive:.2f}.")
    gap = rnn["mse"] - oracle["mse"]
    ctx.infer(f"The noise alone costs sigma^2 = {floor:.4f} (realised on these test points: "
              f"{oracle['mse']:.4f}); the RNN is {gap:+.4f} above the realised floor, i.e. "
              f"{100 * gap / max(naive['mse'] - oracle['mse'], 1e-12):.0f}% of the naive "
              "forecast's excess error remains.")
    ctx.infer(f"Training MSE {train_mse:.4f} against test MSE {rnn['mse']:.4f}: "
              + ("no sign of overfitting" if rnn["mse"] < 1.25 * train_mse else
                 "the test error is clearly higher than the training error")
              + " (both are bounded below by the noise).")


SINE_RNN = Implementation(
    config=SineConfig, run=run_sine,
    profiles={"smoke": {"n_points": 300, "epochs": 3}, "full": {"epochs": 100}},
)

# ------------------------------------------------------------- 10.2 long memory


@dataclass
class LongMemoryConfig:
    lengths: tuple[int, ...] = (10, 30)  # adding-problem sequence lengths
    running_sum_length: int = 30  # length of the running-sum task (0 = skip it)
    cells: tuple[str, ...] = ("rnn", "lstm", "gru")  # recurrent units compared
    hidden: int = 32  # width of every recurrent unit (equal for all cells)
    n_seeds: int = 2  # runs per cell and task (data, initialisation, order all differ)
    n_train: int = 3200  # training sequences per task and seed
    n_test: int = 1000  # held-out test sequences (a separate validation set of this size)
    epochs: int = 12  # passes over the training set
    batch_size: int = 64  # sequences per gradient step
    lr: float = 0.01  # Adam learning rate (the same for every cell)
    max_grad_norm: float = 1.0  # gradient clipping (the same for every cell)
    forget_bias: float = 1.0  # LSTM forget-gate bias at start (Gers et al. 2000; Jozefowicz 2015)
    manual_steps: int = 20  # the original program's full-batch training steps
    manual_hidden: int = 50  # the original program's layer width
    manual_n: int = 1000  # the original program's number of sequences

    def validate(self) -> None:
        bad = [c for c in self.cells if c not in ("rnn", "lstm", "gru")]
        if bad or not self.cells:
            raise ValueError(f"cells must be among rnn, lstm, gru; got {self.cells}")
        if any(n < 2 for n in self.lengths) or self.running_sum_length == 1:
            raise ValueError("sequence lengths must be at least 2")
        if not self.lengths and not self.running_sum_length:
            raise ValueError("no task: give lengths or a running_sum_length")
        if self.running_sum_length < 0 or self.n_test < 10 or self.n_train < 10:
            raise ValueError("running_sum_length >= 0, n_train >= 10 and n_test >= 10")
        if self.max_grad_norm <= 0 or self.manual_steps < 1 or self.manual_n < 10:
            raise ValueError("max_grad_norm > 0, manual_steps >= 1 and manual_n >= 10")


@dataclass
class Task:
    name: str  # "adding T=50"
    kind: str  # "adding" or "running_sum"
    length: int
    baseline: float  # MSE of the best constant prediction
    baseline_name: str


def _tasks(cfg: LongMemoryConfig) -> list[Task]:
    tasks = [Task(f"adding T={n}", "adding", n, seq.ADDING_BASELINE_MSE, "predict 1")
             for n in cfg.lengths]
    if cfg.running_sum_length:
        n = cfg.running_sum_length
        tasks.append(Task(f"running sum T={n}", "running_sum", n, seq.RUNNING_SUM_VARIANCE,
                          "predict 0"))
    return tasks


def _make(kind: str, rng: np.random.Generator, n: int, length: int, device: str):
    x, y = (seq.adding_problem if kind == "adding" else seq.running_sum)(rng, n, length)
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def _init_model(scfg: SequenceConfig, seed: int, device: str) -> SequenceRegressor:
    """A model whose initial weights depend on `seed` only (not on what ran before)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SequenceRegressor(scfg).to(device)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def run_long_memory(cfg: LongMemoryConfig, ctx: RunContext) -> None:
    plt = _plt()
    dev = ctx.device
    tasks = _tasks(cfg)
    ctx.data("Adding problem (Hochreiter and Schmidhuber 1997; form of Le et al. 2015): "
             "2 input channels, values from U(0, 1) and two markers (one in each half); "
             "target = sum of the two marked values. Predicting 1 scores MSE 1/6 = 0.1667.")
    if cfg.running_sum_length:
        ctx.data("Running sum: x_t from U(-1, 1), target = sum of all x_t / sqrt(T) (variance "
                 "1/3 at every length); predicting 0 scores MSE 1/3.")
    ctx.data(f"Per task and seed: {cfg.n_train} training, {cfg.n_test} validation and "
             f"{cfg.n_test} test sequences, freshly drawn; test MSE is measured once, after "
             "training, on sequences no model saw.")
    if cfg.n_seeds < 5:
        ctx.note(f"This profile runs {cfg.n_seeds} seed(s) per cell; the full profile runs 5 "
                 "(`--profile full`).")

    steps = math.ceil(cfg.n_train / cfg.batch_size) * cfg.epochs
    results: dict[str, dict[str, list[float]]] = {t.name: {c: [] for c in cfg.cells}
                                                  for t in tasks}
    curves: dict[str, dict[str, list[list[float]]]] = {t.name: {c: [] for c in cfg.cells}
                                                       for t in tasks}
    seconds: dict[str, float] = {c: 0.0 for c in cfg.cells}
    params: dict[str, int] = {}
    for ti, task in enumerate(tasks):
        for s in range(cfg.n_seeds):
            data_rng = np.random.default_rng([ctx.seed, ti, s])
            train = _make(task.kind, data_rng, cfg.n_train, task.length, dev)
            val = _make(task.kind, data_rng, cfg.n_test, task.length, dev)
            test = _make(task.kind, data_rng, cfg.n_test, task.length, dev)
            for ci, cell in enumerate(cfg.cells):
                scfg = SequenceConfig(cell=cell, input_size=train[0].shape[-1],
                                      hidden=cfg.hidden,
                                      forget_bias=cfg.forget_bias if cell == "lstm" else 0.0)
                model = _init_model(scfg, ctx.seed * 7919 + 131 * s + ci, dev)
                params[f"{cell} ({task.kind})"] = count_parameters(model)
                opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
                t0 = time.perf_counter()
                res = fit(model, train, val=val, ctx=ctx, epochs=cfg.epochs, optimizer=opt,
                          loss_fn=nn.functional.mse_loss, batch_size=cfg.batch_size,
                          max_grad_norm=cfg.max_grad_norm,
                          name=f"{task.name.replace(' ', '_')}-{cell}-s{s}")
                seconds[cell] += time.perf_counter() - t0
                mse = evaluate(model, test, nn.functional.mse_loss, device=dev)["loss"]
                results[task.name][cell].append(mse)
                curves[task.name][cell].append(res.column("val_loss"))
                ctx.log(f"{task.name} {cell} seed {s}: test MSE {mse:.4f}")

    # ---- the table and the explanation
    solved_at = 0.1  # "learned": test MSE below a tenth of the trivial baseline
    rows, summary = [], {}
    for task in tasks:
        row = [task.name, task.baseline]
        summary[task.name] = {}
        for cell in cfg.cells:
            m, sd = _mean_sd(results[task.name][cell])
            n_ok = sum(v < solved_at * task.baseline for v in results[task.name][cell])
            summary[task.name][cell] = {"mean": m, "sd": sd, "runs": results[task.name][cell],
                                        "learned": n_ok}
            row.append(f"{m:.4f} ± {sd:.4f} ({n_ok}/{cfg.n_seeds})")
        rows.append(row)
    ctx.table(f"Test MSE, mean ± sd over {cfg.n_seeds} seed(s), hidden {cfg.hidden}, {steps} "
              f"steps of batch {cfg.batch_size} (in brackets: runs below a tenth of the "
              "baseline)", ["task", "baseline MSE", *cfg.cells], rows)
    ctx.table("Parameters of each model (equal hidden width, so gated cells hold more)",
              ["model (task inputs)", "parameters"], [[k, v] for k, v in params.items()])
    ctx.metrics.update({"results": summary, "hidden": cfg.hidden, "n_seeds": cfg.n_seeds,
                        "steps_per_run": steps, "parameters": params,
                        "train_seconds_per_cell": seconds,
                        "adding_baseline_mse": seq.ADDING_BASELINE_MSE})

    for task in tasks:
        s = summary[task.name]
        best = min(cfg.cells, key=lambda c: s[c]["mean"])
        parts = [f"{c.upper()} {s[c]['mean']:.4f} ({s[c]['mean'] / task.baseline:.2f} of the "
                 f"baseline, {s[c]['learned']}/{cfg.n_seeds} runs learned)" for c in cfg.cells]
        ctx.infer(f"{task.name}: " + "; ".join(parts) + f". Best: {best.upper()}; "
                  f"'{task.baseline_name}' scores {task.baseline:.4f}.")
    adding = [t for t in tasks if t.kind == "adding"]
    if "rnn" in cfg.cells and adding:
        stuck = [t.name for t in adding
                 if summary[t.name]["rnn"]["mean"] > 0.5 * t.baseline]
        gated = [c for c in cfg.cells if c != "rnn"]
        learned_gated = [(t.name, c) for t in adding for c in gated
                         if summary[t.name][c]["learned"] > 0]
        if stuck:
            ctx.infer(f"The simple RNN stays above half of the trivial baseline on "
                      f"{', '.join(stuck)}: it predicts little more than the mean. Its "
                      "gradient to the early marker passes through one tanh' W_hh factor "
                      "per step and vanishes over the sequence (Bengio et al. 1994).")
        if learned_gated:
            ctx.infer("Gated cells that learned in at least one run: "
                      + ", ".join(f"{c.upper()} on {n}" for n, c in learned_gated)
                      + ". Their additive state update keeps the marked values and the "
                      "gradient alive over the whole sequence.")
        longest = max(adding, key=lambda t: t.length)
        per_epoch = steps / cfg.epochs
        plateau = {}
        for c in cfg.cells:  # first step at which validation MSE fell below half the baseline
            left = [next((per_epoch * (k + 1) for k, v in enumerate(curve)
                          if v < 0.5 * longest.baseline), None)
                    for curve in curves[longest.name][c]]
            plateau[c] = [v for v in left if v is not None]
        ctx.metrics["steps_to_leave_plateau"] = {
            longest.name: {c: (float(np.mean(v)) if v else None) for c, v in plateau.items()}}
        ctx.infer(f"{longest.name}, training steps until the validation MSE first fell "
                  "below half the baseline: "
                  + "; ".join(f"{c.upper()} {np.mean(v):.0f} on average "
                              f"({len(v)}/{cfg.n_seeds} runs)" if v else
                              f"{c.upper()} never" for c, v in plateau.items())
                  + f", out of {steps}.")
        failing = [c for c in gated if summary[longest.name][c]["learned"] < cfg.n_seeds]
        if failing:
            ctx.infer(f"At the longest length ({longest.length}) "
                      + ", ".join(f"{c.upper()} learned in {summary[longest.name][c]['learned']}"
                                  f"/{cfg.n_seeds} runs" for c in failing)
                      + f" within {steps} steps: gated cells first sit on the baseline "
                      "plateau, and the plateau lasts longer as sequences grow (see the "
                      "validation curves).")

    _manual_defect(cfg, ctx)

    # ---- figures: bars of mean ± sd, and validation curves
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    width = 0.8 / len(cfg.cells)
    xs = np.arange(len(tasks))
    for ci, cell in enumerate(cfg.cells):
        means = [summary[t.name][cell]["mean"] for t in tasks]
        sds = [summary[t.name][cell]["sd"] for t in tasks]
        axes[0].bar(xs + (ci - (len(cfg.cells) - 1) / 2) * width, means, width, yerr=sds,
                    capsize=3, label=cell.upper())
        for t_i, t in enumerate(tasks):
            axes[0].scatter(np.full(cfg.n_seeds, xs[t_i] + (ci - (len(cfg.cells) - 1) / 2)
                                    * width), summary[t.name][cell]["runs"], s=8,
                            color="black", zorder=3)
    for t_i, t in enumerate(tasks):
        axes[0].hlines(t.baseline, t_i - 0.45, t_i + 0.45, color="black", ls="--", lw=1)
    axes[0].set_xticks(xs, [t.name for t in tasks])
    axes[0].set_yscale("log")
    axes[0].set_ylabel("test MSE (log)")
    axes[0].set_title(f"Mean ± sd over {cfg.n_seeds} seeds (dots: runs; dashes: baseline)")
    axes[0].set_ylim(top=4 * max(t.baseline for t in tasks))
    axes[0].legend(loc="upper center", ncols=len(cfg.cells), fontsize=8)
    longest = tasks[len(adding) - 1] if adding else tasks[-1]
    for ci, cell in enumerate(cfg.cells):
        for k, curve in enumerate(curves[longest.name][cell]):
            axes[1].plot(np.arange(1, len(curve) + 1) * steps / cfg.epochs, curve,
                         color=f"C{ci}", alpha=0.7, label=cell.upper() if k == 0 else None)
    axes[1].axhline(longest.baseline, color="black", ls="--", lw=1, label="baseline")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel("validation MSE (log)")
    axes[1].set_title(f"{longest.name}: validation MSE during training")
    axes[1].legend()
    ctx.figure(fig, "long_memory.png", "Left: test MSE of each cell on each task, mean ± "
               "sd over seeds, single runs as dots, the trivial baseline dashed. Right: "
               "validation MSE during training on the longest adding task, one line per seed.")


def _manual_defect(cfg: LongMemoryConfig, ctx: RunContext) -> None:
    """The original program's regime: 20 full-batch steps, scored on its training data."""
    dev = ctx.device
    length = cfg.running_sum_length or (cfg.lengths[0] if cfg.lengths else 10)
    rng = np.random.default_rng([ctx.seed, 99])
    train = _make("running_sum", rng, cfg.manual_n, length, dev)
    test = _make("running_sum", rng, cfg.manual_n, length, dev)
    var_train = float(train[1].double().var(unbiased=False))
    var_test = float(test[1].double().var(unbiased=False))
    rows = []
    out = {}
    for ci, cell in enumerate(("rnn", "lstm")):
        model = _init_model(SequenceConfig(cell=cell, hidden=cfg.manual_hidden),
                            ctx.seed * 7919 + 77 + ci, dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        fit(model, train, ctx=ctx, epochs=cfg.manual_steps, optimizer=opt,
            loss_fn=nn.functional.mse_loss, batch_size=cfg.manual_n, shuffle=False,
            checkpoint=False, name=f"manual-{cell}")
        tr = evaluate(model, train, nn.functional.mse_loss, device=dev)["loss"]
        te = evaluate(model, test, nn.functional.mse_loss, device=dev)["loss"]
        out[cell] = {"train_mse": tr, "test_mse": te, "train_mse_over_variance": tr / var_train}
        rows.append([f"{cell.upper()} ({cfg.manual_hidden} units)", tr, var_train,
                     tr / var_train, te, var_test])
    ctx.table(f"The original program's regime on the running sum (T={length}): "
              f"{cfg.manual_steps} full-batch Adam steps (lr 0.001) on {cfg.manual_n} sequences",
              ["model", "MSE on its training data", "training targets' variance",
               "ratio", "MSE on held-out data", "held-out targets' variance"], rows)
    ctx.metrics["manual_regime"] = {"length": length, "steps": cfg.manual_steps,
                                    "target_variance_train": var_train, **out}
    worst = min(v["train_mse_over_variance"] for v in out.values())
    ctx.infer(f"In the original program's regime ({cfg.manual_steps} full-batch steps) the "
              f"RNN and LSTM reach training MSEs of {out['rnn']['train_mse']:.4f} and "
              f"{out['lstm']['train_mse']:.4f} against a target variance of {var_train:.4f} "
              f"(at least {worst:.2f} of it): "
              + ("neither has learned anything beyond the mean" if worst > 0.8 else
                 "some learning happened, far from the trained runs above")
              + ". Scoring on the training data, as it does, would hide overfitting; on "
              f"held-out data the MSEs are {out['rnn']['test_mse']:.4f} and "
              f"{out['lstm']['test_mse']:.4f}.")


LONG_MEMORY = Implementation(
    config=LongMemoryConfig, run=run_long_memory,
    profiles={
        "smoke": {"lengths": (8,), "running_sum_length": 8, "n_seeds": 2, "n_train": 256,
                  "n_test": 128, "epochs": 2, "hidden": 8, "manual_n": 128,
                  "manual_steps": 3, "manual_hidden": 8},
        "full": {"lengths": (50, 100), "running_sum_length": 50, "n_seeds": 5,
                 "n_train": 8000, "n_test": 1000, "epochs": 10},
    },
)
