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
gates can hold open. Whether that happens in a run is measured, not assumed: for every
cell the norm of the gradient of the validation loss with respect to the inputs,
||dL/dx_t||, at the first tenth of the time steps against the last tenth.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from dlab.data import sequences as seq
from dlab.data.synthetic import noisy_sine
from dlab.figures import pyplot
from dlab.models import count_parameters
from dlab.models.rnn import SequenceConfig, SequenceRegressor
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.training import FitResult, evaluate, fit, predict
from dlab.uncertainty import Difference, over_seeds, paired_bootstrap
from dlab.verdicts import Target

Cell = Literal["rnn", "lstm", "gru"]
SOLVED_AT = 0.1  # "learned": test MSE below a tenth of the trivial baseline
VANISHED_AT = 0.01  # "vanishes": early-step input gradient below 1% of the late-step one


# ------------------------------------------------------------- 10.1 noisy sine


@dataclass
class SineConfig:
    n_points: int = 1000  # length of the noisy sine series
    noise: float = 0.1  # standard deviation of the Gaussian noise
    # the manual's sin(t) at 1,000 points of t = 0..40: a period of 2 pi 999 / 40 steps
    period: float = 2 * math.pi * 999 / 40  # period of the sine, in time steps (156.9)
    window: int = 20  # past values the RNN reads to predict the next one
    test_fraction: float = 0.2  # last part of the series held out (chronological split)
    hidden: int = 16  # units of the simple RNN
    epochs: int = 100  # passes over the training windows (the manual's)
    batch_size: int = 1000  # windows per step; >= the ~780 training windows: full batch
    lr: float = 0.01  # Adam learning rate (the manual's)

    def validate(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be at least 1, got {self.window}")
        if not 0.05 <= self.test_fraction <= 0.5:
            raise ValueError(f"test_fraction must be in [0.05, 0.5], got {self.test_fraction}")
        if self.noise < 0 or self.period <= 0:
            raise ValueError(f"noise must be 0 or more and period positive, got noise "
                             f"{self.noise}, period {self.period}")
        test_len = int(round(self.n_points * self.test_fraction))
        if min(test_len, self.n_points - test_len) <= self.window + 10:
            raise ValueError(f"n_points={self.n_points} leaves fewer than window + 10 values "
                             "on one side of the split; use more points or a shorter window")


def load_sine(cfg: SineConfig, ctx: RunContext) -> dict[str, Any]:
    """The noisy series (T,), the clean sine (T,) and its chronological window split."""
    series = noisy_sine(ctx.rng, cfg.n_points, cfg.noise, cfg.period)              # (T,)
    clean = np.sin(2 * math.pi * np.arange(cfg.n_points) / cfg.period)              # (T,)
    cut = cfg.n_points - int(round(cfg.n_points * cfg.test_fraction))
    split = seq.split_windows(series, cfg.window, cut, test_history=False)
    ctx.data(f"Noisy sine: sin(2 pi t / {cfg.period:g}) + N(0, {cfg.noise:g}^2) for t = 0.."
             f"{cfg.n_points - 1}, drawn from the run's seed. Chronological split at t = {cut}: "
             f"{len(split.y_train)} training windows of {cfg.window} values (t < {cut}), "
             f"{len(split.y_test)} test windows built from t >= {cut} only, so no window "
             "touches both sides and nothing is shuffled across the boundary.")
    return {"series": series, "clean": clean, "split": split, "cut": cut}


def _tensors(split: seq.WindowSplit, device: str) -> tuple[torch.Tensor, ...]:
    x_tr = torch.from_numpy(split.x_train).float().unsqueeze(-1).to(device)   # (N, w, 1)
    y_tr = torch.from_numpy(split.y_train).float().to(device)                 # (N,)
    x_te = torch.from_numpy(split.x_test).float().unsqueeze(-1).to(device)
    return x_tr, y_tr, x_te


def sine_rnn(cfg: SineConfig, ctx: RunContext) -> SequenceRegressor:
    """The simple RNN (cfg.hidden units) and a linear output from h_T, on the run's device.
    Its initial weights come from the global torch generator, seeded with the run's seed."""
    return SequenceRegressor(cell="rnn", hidden=cfg.hidden).to(ctx.device)


def train_sine(cfg: SineConfig, model: nn.Module, d: dict[str, Any], ctx: RunContext
               ) -> FitResult:
    """Adam on the training windows, mean squared error; trains `model` in place and
    returns fit's history."""
    x_tr, y_tr, _ = _tensors(d["split"], ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return fit(model, (x_tr, y_tr), ctx=ctx, epochs=cfg.epochs, optimizer=opt,
               loss_fn=nn.functional.mse_loss, batch_size=cfg.batch_size, name="rnn")


def score_sine(cfg: SineConfig, model: nn.Module, result: FitResult, d: dict[str, Any],
               device: str, seed: int = 0) -> dict[str, Any]:
    """Test MSE/MAE of the RNN, of repeating the last value and of the clean sine (the
    realised noise), the training MSE and the noise variance sigma^2."""
    split = d["split"]
    x_tr, y_tr, x_te = _tensors(split, device)
    target = split.y_test.astype(np.float64)
    pred = predict(model, x_te)
    last = seq.persistence_forecast(split.x_test)
    rnn = seq.regression_scores(pred, target)
    naive = seq.regression_scores(last, target)
    oracle = seq.regression_scores(d["clean"][split.t_test], target)
    floor = cfg.noise ** 2
    return {
        "test_mse": rnn["mse"], "test_rmse": rnn["rmse"], "test_mae": rnn["mae"],
        "naive_mse": naive["mse"], "naive_mae": naive["mae"], "noise_variance": floor,
        "test_mse_vs_naive": paired_bootstrap((pred - target) ** 2, (last - target) ** 2,
                                              seed=seed, what="test windows").as_dict(),
        "realised_noise_mse": oracle["mse"], "realised_noise_mae": oracle["mae"],
        "mse_over_noise_variance": rnn["mse"] / floor if floor else math.nan,
        "train_mse": float(evaluate(model, (x_tr, y_tr), nn.functional.mse_loss,
                                    device=device)["loss"]),
        "parameters": count_parameters(model), "train_windows": len(split.y_train),
        "test_windows": len(split.y_test), "train_seconds": result.seconds,
        "predictions": pred.tolist(),
    }


def judge_sine(m: dict[str, Any], ctx: RunContext) -> None:
    ctx.compare("test MSE", "The RNN", m["test_mse"], "repeating the last value",
                m["naive_mse"], diff=Difference.from_dict(m["test_mse_vs_naive"]),
                better="lower")
    floor, real = m["noise_variance"], m["realised_noise_mse"]
    excess = (m["test_mse"] - real) / max(m["naive_mse"] - real, 1e-12)
    ctx.infer(f"The noise alone costs sigma^2 = {floor:.4f} (realised on these test points: "
              f"{real:.4f}); the RNN's test MSE is {m['test_mse']:.4f}, which leaves "
              f"{100 * excess:.0f}% of the naive forecast's error above the realised floor.")
    ctx.claim(f"Training MSE {m['train_mse']:.4f} against test MSE {m['test_mse']:.4f}: the "
              "test error is within 25% of the training error, no sign of overfitting.",
              holds=m["test_mse"] < 1.25 * m["train_mse"],
              otherwise=f"Training MSE {m['train_mse']:.4f} against test MSE "
              f"{m['test_mse']:.4f}: the test error is more than 25% above the training error.",
              train_mse=m["train_mse"], test_mse=m["test_mse"])


def write_sine(cfg: SineConfig, model: nn.Module, result: FitResult, d: dict[str, Any],
               m: dict[str, Any], ctx: RunContext) -> None:
    floor = m["noise_variance"]

    def ratio(v: float) -> float:
        return v / floor if floor else math.nan

    ctx.table("Test MSE on the held-out end of the series",
              ["forecast", "test MSE", "test MAE", "MSE / noise variance"],
              [[f"simple RNN (hidden {cfg.hidden})", m["test_mse"], m["test_mae"],
                ratio(m["test_mse"])],
               ["naive: repeat the last value", m["naive_mse"], m["naive_mae"],
                ratio(m["naive_mse"])],
               ["the clean sine itself (realised noise)", m["realised_noise_mse"],
                m["realised_noise_mae"], ratio(m["realised_noise_mse"])],
               ["noise variance sigma^2 (expected floor)", floor, "-", 1.0]])
    ctx.figure(_sine_figure(d, result, m), "sine_forecast.png", "Left: actual noisy values, "
               "the clean sine and the RNN's one-step predictions on the held-out test "
               "range. Right: training MSE per epoch against the noise floor and the naive "
               "forecast's test MSE.")
    ctx.save_model(model, window=cfg.window, cell="rnn", hidden=cfg.hidden,
                   input="the previous `window` raw values, shape (B, window, 1)")


def _sine_figure(d: dict[str, Any], result: FitResult, m: dict[str, Any]) -> Any:
    plt = pyplot()
    split, t = d["split"], d["split"].t_test
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [3, 1]})
    ax1.plot(t, split.y_test, ".", ms=3, color="grey", label="actual (noisy)")
    ax1.plot(t, d["clean"][t], "--", lw=1, color="black", label="clean sine")
    ax1.plot(t, m["predictions"], color="tab:red", lw=1.5, label="RNN prediction")
    ax1.set_xlabel("time step t (test range)")
    ax1.set_ylabel("value")
    ax1.set_title(f"Test range: RNN MSE {m['test_mse']:.4f}, naive {m['naive_mse']:.4f}, "
                  f"noise floor {m['noise_variance']:.4f}")
    ax1.legend(loc="upper right", fontsize=8)
    ax2.plot(result.column("epoch"), result.column("loss"), color="tab:blue", label="train MSE")
    ax2.axhline(m["noise_variance"], color="black", ls="--", lw=1, label="noise variance")
    ax2.axhline(m["naive_mse"], color="grey", ls=":", lw=1, label="naive (test)")
    ax2.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_title("Training loss")
    ax2.legend(fontsize=8)
    return fig


def run_sine(cfg: SineConfig, ctx: RunContext) -> None:
    # step data: the noisy sine, cut in time into training and test windows
    d = load_sine(cfg, ctx)
    # step model: the simple RNN that reads a window and predicts the next value
    model = sine_rnn(cfg, ctx)
    # step train: Adam on the training windows, mean squared error
    result = train_sine(cfg, model, d, ctx)
    # step score: test MSE of the RNN, of repeating the last value and of the clean sine
    m = score_sine(cfg, model, result, d, ctx.device, ctx.seed)
    ctx.metrics.update({k: v for k, v in m.items() if k != "predictions"})
    # step judge: the RNN against the naive forecast, the noise floor and its training error
    judge_sine(m, ctx)
    # step write: the table of forecasts, the forecast figure and the saved model
    write_sine(cfg, model, result, d, m, ctx)


def _noisy(m: dict[str, Any]) -> bool:
    return m["noise_variance"] > 0


SINE_RNN = Implementation(
    config=SineConfig, run=run_sine,
    profiles={"smoke": {"n_points": 300, "epochs": 3}},
    crippled={"epochs": 1},
    targets=(
        Target("test_mse", below="naive_mse", profiles=("quick", "full"),
               interval="test_mse_vs_naive",
               why="a forecaster must beat repeating the last value, beyond the spread of a "
                   "paired bootstrap over the test windows"),
        Target("mse_over_noise_variance", at_most=2.0, profiles=("quick", "full"),
               when=_noisy, when_text="the series has noise (noise > 0)",
               why="nearer the noise floor sigma^2 than repeating the last value can be: that "
                   "pays the noise twice (2 sigma^2) before the sine's own step"),
    ),
)

# ------------------------------------------------------------- 10.2 long memory


@dataclass
class LongMemoryConfig:
    lengths: tuple[int, ...] = (10, 30)  # adding-problem sequence lengths
    running_sum_length: int = 30  # length of the running-sum task (0 = skip it)
    cells: tuple[Cell, ...] = ("rnn", "lstm", "gru")  # recurrent units compared
    hidden: int = 32  # width of every recurrent unit (equal for all cells)
    n_seeds: int = 2  # runs per cell and task (data, initialisation, order all differ)
    n_train: int = 3200  # training sequences per task and seed
    n_test: int = 1000  # held-out test sequences (a separate validation set of this size)
    epochs: int = 12  # passes over the training set
    batch_size: int = 64  # sequences per gradient step
    lr: float = 0.01  # Adam learning rate (the same for every cell)
    max_grad_norm: float = 1.0  # gradient clipping (the same for every cell)
    forget_bias: float = 1.0  # LSTM forget-gate bias at start (Gers et al. 2000; Jozefowicz 2015)
    grad_batch: int = 256  # validation sequences the input gradients are measured on
    manual_steps: int = 20  # the original program's full-batch training steps
    manual_hidden: int = 16  # the original program's layer width (the manual's 16)
    manual_n: int = 1000  # the original program's number of sequences

    def validate(self) -> None:
        if any(n < 2 for n in self.lengths) or self.running_sum_length == 1:
            raise ValueError("sequence lengths must be at least 2")
        if not self.lengths and not self.running_sum_length:
            raise ValueError("no task: give lengths or a running_sum_length")
        if self.running_sum_length < 0 or self.n_test < 10 or self.n_train < 10:
            raise ValueError("running_sum_length >= 0, n_train >= 10 and n_test >= 10")
        if self.max_grad_norm <= 0 or self.manual_steps < 1 or self.manual_n < 10:
            raise ValueError("max_grad_norm > 0, manual_steps >= 1 and manual_n >= 10")
        if self.grad_batch < 1:
            raise ValueError("grad_batch must be at least 1")
        if len(set(self.cells)) != len(self.cells):
            raise ValueError(f"cells must differ, got {','.join(self.cells)}")


@dataclass
class Task:
    name: str  # "adding T=50"
    kind: str  # "adding" or "running_sum"
    length: int
    baseline: float  # MSE of the best constant prediction
    baseline_name: str
    inputs: int  # channels per time step (adding: the value and the marker)


def long_memory_tasks(cfg: LongMemoryConfig) -> list[Task]:
    """The adding problem at every length of cfg.lengths, then the running sum (if its
    length is not 0)."""
    tasks = [Task(f"adding T={n}", "adding", n, seq.ADDING_BASELINE_MSE, "predict 1", 2)
             for n in cfg.lengths]
    if cfg.running_sum_length:
        n = cfg.running_sum_length
        tasks.append(Task(f"running sum T={n}", "running_sum", n, seq.RUNNING_SUM_VARIANCE,
                          "predict 0", 1))
    return tasks


def _make(kind: str, rng: np.random.Generator, n: int, length: int, device: str):
    x, y = (seq.adding_problem if kind == "adding" else seq.running_sum)(rng, n, length)
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def _init_model(scfg: SequenceConfig, seed: int, device: str) -> SequenceRegressor:
    """A model whose initial weights depend on `seed` only (not on what ran before)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SequenceRegressor(scfg).to(device)


def long_memory_nets(cfg: LongMemoryConfig, ctx: RunContext, task: Task, s: int
                     ) -> dict[str, SequenceRegressor]:
    """{cell: network} for every cell of cfg.cells on `task` and seed index `s`: one
    recurrent layer of cfg.hidden units (the LSTM's forget-gate bias raised by
    cfg.forget_bias) and a linear output from h_T. The initial weights depend only on the
    run's seed, `s` and the cell's place in cfg.cells."""
    return {cell: _init_model(SequenceConfig(cell=cell, input_size=task.inputs,
                                             hidden=cfg.hidden,
                                             forget_bias=cfg.forget_bias if cell == "lstm"
                                             else 0.0),
                              ctx.seed * 7919 + 131 * s + ci, ctx.device)
            for ci, cell in enumerate(cfg.cells)}


def _mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def input_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """||dL/dx_t|| of the mean squared error L over a batch x (B, T, C), y (B,), averaged
    over the first and over the last tenth of the time steps (at least one step each).

    In a simple RNN dL/dx_t carries the product of T - t Jacobians diag(tanh') W_hh,
    so a ratio early/late far below 1 is the vanishing gradient, measured.
    """
    was_training = model.training
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    with torch.backends.cudnn.flags(enabled=False):  # cuDNN RNNs refuse backward in eval
        loss = nn.functional.mse_loss(model(x), y)
        (grad,) = torch.autograd.grad(loss, x)                       # (B, T, C)
    model.train(was_training)
    per_step = grad.double().pow(2).sum(dim=(0, 2)).sqrt()           # (T,)
    k = max(1, len(per_step) // 10)
    early, late = float(per_step[:k].mean()), float(per_step[-k:].mean())
    return {"early": early, "late": late, "early_over_late": early / late if late else math.nan}


def _train_one(cfg: LongMemoryConfig, task: Task, cell: str, s: int, model: nn.Module,
               data: tuple[Any, Any, Any], ctx: RunContext) -> dict[str, Any]:
    """Train `model` (one cell) on one task and seed in place: its test MSE, validation
    curve and input gradients."""
    train, val, test = data
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    t0 = time.perf_counter()
    res = fit(model, train, val=val, ctx=ctx, epochs=cfg.epochs, optimizer=opt,
              loss_fn=nn.functional.mse_loss, batch_size=cfg.batch_size,
              max_grad_norm=cfg.max_grad_norm,
              name=f"{task.name.replace(' ', '_')}-{cell}-s{s}")
    seconds = time.perf_counter() - t0
    mse = evaluate(model, test, nn.functional.mse_loss, device=ctx.device)["loss"]
    grads = input_gradients(model, val[0][:cfg.grad_batch], val[1][:cfg.grad_batch])
    ctx.log(f"{task.name} {cell} seed {s}: test MSE {mse:.4f}, input gradient first/last "
            f"tenth {grads['early_over_late']:.2e}")
    y_test = test[1].double().cpu().numpy()
    return {"mse": mse, "curve": res.column("val_loss"), "seconds": seconds,
            "parameters": count_parameters(model), "grads": grads,
            "mean_mse": float(np.mean((y_test - float(train[1].double().mean())) ** 2))}


def train_all(cfg: LongMemoryConfig, tasks: list[Task], models: dict[str, nn.Module],
              ctx: RunContext) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every cell on every task and seed, on freshly drawn training, validation and test
    sequences; every cell sees the same data. `models` ({cell: network}) are trained on
    the first task at the first seed, the others are built by `long_memory_nets`.
    Returns {task name: {cell: [one result per seed]}}."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {t.name: {c: [] for c in cfg.cells}
                                                        for t in tasks}
    for ti, task in enumerate(tasks):
        for s in range(cfg.n_seeds):
            data_rng = np.random.default_rng([ctx.seed, ti, s])
            data = tuple(_make(task.kind, data_rng, n, task.length, ctx.device)
                         for n in (cfg.n_train, cfg.n_test, cfg.n_test))
            nets = models if (ti, s) == (0, 0) else long_memory_nets(cfg, ctx, task, s)
            for cell in cfg.cells:
                runs[task.name][cell].append(_train_one(cfg, task, cell, s, nets[cell], data,
                                                        ctx))
    return runs


def _plateau_steps(curves: list[list[float]], baseline: float, per_epoch: float
                   ) -> list[float]:
    """Training steps until the validation MSE first fell below half the baseline, for
    each run that got there."""
    left = [next((per_epoch * (k + 1) for k, v in enumerate(c) if v < 0.5 * baseline), None)
            for c in curves]
    return [v for v in left if v is not None]


def _geomean(values: list[float]) -> float:
    a = np.asarray([v for v in values if v > 0 and math.isfinite(v)], dtype=np.float64)
    return float(np.exp(np.log(a).mean())) if len(a) else math.nan


def score_long_memory(cfg: LongMemoryConfig, tasks: list[Task],
                      runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Measured values: test MSE per task and cell (mean, sd, runs, runs learned), input
    gradient ratios (geometric mean over seeds), steps to leave the plateau."""
    steps = math.ceil(cfg.n_train / cfg.batch_size) * cfg.epochs
    results, grads, plateau = {}, {}, {}
    for t in tasks:
        results[t.name], grads[t.name] = {}, {}
        for c in cfg.cells:
            mses = [r["mse"] for r in runs[t.name][c]]
            m, sd = _mean_sd(mses)
            mean_mses = [r["mean_mse"] for r in runs[t.name][c]]
            results[t.name][c] = {"mean": m, "sd": sd, "runs": mses,
                                  "learned": sum(v < SOLVED_AT * t.baseline for v in mses),
                                  "train_mean_mse": float(np.mean(mean_mses)),
                                  "vs_train_mean": over_seeds(mses, mean_mses).as_dict()}
            ratios = [r["grads"]["early_over_late"] for r in runs[t.name][c]]
            grads[t.name][c] = {"early_over_late": _geomean(ratios), "runs": ratios}
        if t.kind == "adding":
            plateau[t.name] = {c: _plateau_steps([r["curve"] for r in runs[t.name][c]],
                                                 t.baseline, steps / cfg.epochs)
                               for c in cfg.cells}
    adding = [t for t in tasks if t.kind == "adding"]
    longest = max(adding, key=lambda t: t.length) if adding else None
    gated = [c for c in cfg.cells if c != "rnn"]
    best_gated = (min(results[longest.name][c]["mean"] for c in gated) / longest.baseline
                  if longest and gated else None)
    first = next(iter(runs.values()))
    return {
        "results": results, "hidden": cfg.hidden, "n_seeds": cfg.n_seeds,
        "steps_per_run": steps, "adding_baseline_mse": seq.ADDING_BASELINE_MSE,
        "parameters": {f"{c} ({t.kind})": runs[t.name][c][0]["parameters"]
                       for t in tasks for c in cfg.cells},
        "train_seconds_per_cell": {c: sum(r["seconds"] for t in tasks for r in runs[t.name][c])
                                   for c in first},
        "input_gradient_early_over_late": grads,
        "steps_to_leave_plateau": {n: {c: (float(np.mean(v)) if v else None)
                                       for c, v in p.items()} for n, p in plateau.items()},
        "plateau_runs_left": {n: {c: len(v) for c, v in p.items()} for n, p in plateau.items()},
        "longest_adding": longest.name if longest else None,
        "longest_adding_best_gated_over_baseline": best_gated,
    }


def _judge_rnn(cfg: LongMemoryConfig, tasks: list[Task], m: dict[str, Any],
               ctx: RunContext) -> None:
    res, longest = m["results"], m["longest_adding"]
    for t in (t for t in tasks if t.kind == "adding"):
        r = res[t.name]["rnn"]
        _judge_against_mean(ctx, "The simple RNN", r["mean"], r["train_mean_mse"],
                            Difference.from_dict(r["vs_train_mean"]), f"on {t.name}",
                            quantity=f"test MSE on {t.name} (mean over seeds)")
    r = m["input_gradient_early_over_late"][longest]["rnn"]["early_over_late"]
    ctx.claim(f"On {longest} the simple RNN's input gradient ||dL/dx_t|| at the first tenth "
              f"of the steps is {r:.2e} times that at the last tenth (validation batch, "
              f"geometric mean over {cfg.n_seeds} seed(s)): below {VANISHED_AT}, the gradient "
              "vanishes over the sequence by this measure.",
              holds=r < VANISHED_AT,
              otherwise=f"On {longest} the simple RNN's input gradient at the first tenth of "
              f"the steps is {r:.2e} times that at the last tenth: it does not vanish by this "
              f"measure (a ratio below {VANISHED_AT}).", early_over_late=r)
    ctx.background("In a simple RNN the gradient that reaches step t from the loss at step T "
                   "is a product of T - t Jacobians diag(tanh') W_hh; when their norms stay "
                   "below 1 it shrinks geometrically with T - t (the vanishing gradient).",
                   "Bengio, Simard and Frasconi 1994; Pascanu, Mikolov and Bengio 2013")


def _judge_against_mean(ctx: RunContext, who: str, mse: float, mean_mse: float,
                        diff: Difference, where: str, quantity: str) -> None:
    """`who`'s MSE against predicting its training targets' mean; "has learned nothing
    beyond the mean" only when the two are not distinguishable."""
    ctx.compare(quantity, who, mse, "predicting the training mean", mean_mse, diff=diff,
                better="lower")
    word = diff.verdict("lower")
    if word == "not distinguishable":
        ctx.infer(f"{who} has learned nothing beyond the mean {where} that this comparison "
                  "can detect.")
    elif word == "worse":
        ctx.infer(f"{who} does worse than predicting the mean {where}.")


def _judge_gated(cfg: LongMemoryConfig, tasks: list[Task], m: dict[str, Any],
                 ctx: RunContext) -> None:
    res, longest = m["results"], m["longest_adding"]
    gated = [c for c in cfg.cells if c != "rnn"]
    ratio = {c: m["input_gradient_early_over_late"][longest][c]["early_over_late"]
             for c in gated}
    shown = ", ".join(f"{c.upper()} {ratio[c]:.2e}" for c in gated)
    ctx.claim(f"On {longest} the gated cells' input gradient at the first tenth of the steps "
              f"is at least a tenth of that at the last tenth ({shown}): by this measure it "
              "does not vanish over the sequence.",
              holds=all(ratio[c] >= 0.1 for c in gated),
              otherwise=f"On {longest} the gated cells' input gradient at the first tenth of "
              f"the steps relative to the last tenth: {shown}; not every one keeps it above a "
              "tenth.", **ratio)
    ctx.background("The LSTM's cell state c_t = f c_{t-1} + i g and the GRU's state h_t = "
                   "(1 - z) n + z h_{t-1} are updated additively, so gates held open pass a "
                   "gradient across many steps without the repeated tanh' W_hh factors of a "
                   "simple RNN.", "Hochreiter and Schmidhuber 1997; Gers, Schmidhuber and "
                   "Cummins 2000; Cho et al. 2014")
    if "rnn" in cfg.cells:
        for c in gated:
            a, b = res[longest][c], res[longest]["rnn"]
            ctx.compare(f"test MSE on {longest}", f"The {c.upper()}", a["mean"],
                        "the simple RNN", b["mean"], diff=over_seeds(a["runs"], b["runs"]),
                        better="lower")
    failing = [c for c in gated if res[longest][c]["learned"] < cfg.n_seeds]
    if failing:
        ctx.infer(f"On {longest} " + ", ".join(
            f"{c.upper()} learned in {res[longest][c]['learned']}/{cfg.n_seeds} runs"
            for c in failing) + f" within {m['steps_per_run']} steps.")


def _judge_plateau(cfg: LongMemoryConfig, tasks: list[Task], m: dict[str, Any],
                   ctx: RunContext) -> None:
    steps, left = m["steps_to_leave_plateau"], m["plateau_runs_left"]
    adding = sorted((t for t in tasks if t.kind == "adding"), key=lambda t: t.length)
    for t in adding:
        ctx.infer(f"{t.name}, training steps until the validation MSE first fell below half "
                  "the baseline: " + "; ".join(
                      f"{c.upper()} {steps[t.name][c]:.0f} on average ({left[t.name][c]}/"
                      f"{cfg.n_seeds} runs)" if steps[t.name][c] is not None else
                      f"{c.upper()} never" for c in cfg.cells) + f", out of {m['steps_per_run']}.")
    gated = [c for c in cfg.cells if c != "rnn"]
    if len(adding) < 2 or not gated:
        ctx.note("One adding-problem length was run, so whether the plateau grows with the "
                 "sequence length is not measured (give two or more `lengths`).")
        return

    def seen(c: str) -> list[float]:
        return [steps[t.name][c] if steps[t.name][c] is not None else math.inf for t in adding]

    grows = all(all(a < b for a, b in zip(seen(c), seen(c)[1:], strict=False))
                and math.isfinite(seen(c)[0]) for c in gated)
    table = "; ".join(f"{c.upper()} " + ", ".join("never" if math.isinf(v) else f"{v:.0f}"
                                                  for v in seen(c)) for c in gated)
    lengths = ", ".join(str(t.length) for t in adding)
    ctx.claim(f"Gated cells first sit on the baseline plateau, and the plateau lasts longer as "
              f"sequences grow: mean steps to leave it at T = {lengths}: {table} (means over "
              f"{cfg.n_seeds} seed(s); the growth is not tested against the seed spread).",
              holds=grows,
              otherwise=f"Steps to leave the baseline plateau at T = {lengths}: {table}; they "
              "do not grow with the length for every gated cell in this run.",
              lengths=[t.length for t in adding], steps={c: seen(c) for c in gated})


def judge_long_memory(cfg: LongMemoryConfig, tasks: list[Task], m: dict[str, Any],
                      ctx: RunContext) -> None:
    for t in tasks:
        s = m["results"][t.name]
        best = min(cfg.cells, key=lambda c: s[c]["mean"])
        parts = [f"{c.upper()} {s[c]['mean']:.4f} ({s[c]['mean'] / t.baseline:.2f} of the "
                 f"baseline, {s[c]['learned']}/{cfg.n_seeds} runs learned)" for c in cfg.cells]
        ctx.infer(f"{t.name}: " + "; ".join(parts) + f". Lowest mean: {best.upper()}; "
                  f"'{t.baseline_name}' scores {t.baseline:.4f}.")
    if m["longest_adding"] is None:
        return
    if "rnn" in cfg.cells:
        _judge_rnn(cfg, tasks, m, ctx)
    if any(c != "rnn" for c in cfg.cells):
        _judge_gated(cfg, tasks, m, ctx)
    _judge_plateau(cfg, tasks, m, ctx)


def write_long_memory(cfg: LongMemoryConfig, tasks: list[Task], m: dict[str, Any],
                      runs: dict[str, dict[str, list[dict[str, Any]]]], ctx: RunContext) -> None:
    res, g = m["results"], m["input_gradient_early_over_late"]
    ctx.table(f"Test MSE, mean ± sd over {cfg.n_seeds} seed(s), hidden {cfg.hidden}, "
              f"{m['steps_per_run']} steps of batch {cfg.batch_size} (in brackets: runs below a "
              "tenth of the baseline)", ["task", "baseline MSE", *cfg.cells],
              [[t.name, t.baseline, *(f"{res[t.name][c]['mean']:.4f} ± {res[t.name][c]['sd']:.4f}"
                                      f" ({res[t.name][c]['learned']}/{cfg.n_seeds})"
                                      for c in cfg.cells)] for t in tasks])
    ctx.table(f"Input gradient ||dL/dx_t|| on {cfg.grad_batch} validation sequences after "
              "training: mean over the first tenth of the steps / mean over the last tenth "
              "(geometric mean over seeds)", ["task", *cfg.cells],
              [[t.name, *(g[t.name][c]["early_over_late"] for c in cfg.cells)] for t in tasks])
    ctx.table("Parameters of each model (equal hidden width, so gated cells hold more)",
              ["model (task inputs)", "parameters"], [[k, v] for k, v in m["parameters"].items()])
    ctx.figure(_long_memory_figure(cfg, tasks, m, runs), "long_memory.png", "Left: test MSE of "
               "each cell on each task, mean ± sd over seeds, single runs as dots, the trivial "
               "baseline dashed. Right: validation MSE during training on the longest adding "
               "task, one line per seed.")


def _long_memory_figure(cfg: LongMemoryConfig, tasks: list[Task], m: dict[str, Any],
                        runs: dict[str, dict[str, list[dict[str, Any]]]]) -> Any:
    plt = pyplot()
    res = m["results"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    width = 0.8 / len(cfg.cells)
    xs = np.arange(len(tasks))
    for ci, cell in enumerate(cfg.cells):
        off = (ci - (len(cfg.cells) - 1) / 2) * width
        axes[0].bar(xs + off, [res[t.name][cell]["mean"] for t in tasks], width,
                    yerr=[res[t.name][cell]["sd"] for t in tasks], capsize=3, label=cell.upper())
        for t_i, t in enumerate(tasks):
            axes[0].scatter(np.full(cfg.n_seeds, xs[t_i] + off), res[t.name][cell]["runs"],
                            s=8, color="black", zorder=3)
    for t_i, t in enumerate(tasks):
        axes[0].hlines(t.baseline, t_i - 0.45, t_i + 0.45, color="black", ls="--", lw=1)
    axes[0].set_xticks(xs, [t.name for t in tasks])
    axes[0].set_yscale("log")
    axes[0].set_ylabel("test MSE (log)")
    axes[0].set_title(f"Mean ± sd over {cfg.n_seeds} seeds (dots: runs; dashes: baseline)")
    axes[0].set_ylim(top=4 * max(t.baseline for t in tasks))
    axes[0].legend(loc="upper center", ncols=len(cfg.cells), fontsize=8)
    shown = next((t for t in tasks if t.name == m["longest_adding"]), tasks[-1])
    for ci, cell in enumerate(cfg.cells):
        for k, r in enumerate(runs[shown.name][cell]):
            axes[1].plot(np.arange(1, len(r["curve"]) + 1) * m["steps_per_run"] / cfg.epochs,
                         r["curve"], color=f"C{ci}", alpha=0.7,
                         label=cell.upper() if k == 0 else None)
    axes[1].axhline(shown.baseline, color="black", ls="--", lw=1, label="baseline")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel("validation MSE (log)")
    axes[1].set_title(f"{shown.name}: validation MSE during training")
    axes[1].legend()
    return fig


def manual_data(cfg: LongMemoryConfig, ctx: RunContext) -> dict[str, Any]:
    """The original program's data: running-sum sequences (of the running-sum length, else
    the first adding length), `manual_n` to train on and as many more held out.
    Returns {"length", "train": (x, y), "test": (x, y)}."""
    length = cfg.running_sum_length or (cfg.lengths[0] if cfg.lengths else 10)
    rng = np.random.default_rng([ctx.seed, 99])
    train = _make("running_sum", rng, cfg.manual_n, length, ctx.device)
    test = _make("running_sum", rng, cfg.manual_n, length, ctx.device)
    ctx.data(f"The original program's regime: {cfg.manual_n} running-sum sequences of "
             f"{length} steps to train on, {cfg.manual_n} more held out.")
    return {"length": length, "train": train, "test": test}


def manual_nets(cfg: LongMemoryConfig, ctx: RunContext) -> dict[str, SequenceRegressor]:
    """The original program's models: {"rnn", "lstm"}, one layer of cfg.manual_hidden units
    and a linear output, each from its own seed."""
    return {cell: _init_model(SequenceConfig(cell=cell, hidden=cfg.manual_hidden),
                              ctx.seed * 7919 + 77 + ci, ctx.device)
            for ci, cell in enumerate(("rnn", "lstm"))}


def train_manual(cfg: LongMemoryConfig, nets: dict[str, nn.Module], manual: dict[str, Any],
                 ctx: RunContext) -> None:
    """The original program's training: cfg.manual_steps full-batch Adam steps (lr 0.001)
    for each of `nets`, in place."""
    for cell, model in nets.items():
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        fit(model, manual["train"], ctx=ctx, epochs=cfg.manual_steps, optimizer=opt,
            loss_fn=nn.functional.mse_loss, batch_size=cfg.manual_n, shuffle=False,
            checkpoint=False, name=f"manual-{cell}")


def score_manual(cfg: LongMemoryConfig, nets: dict[str, nn.Module], manual: dict[str, Any],
                 device: str, seed: int = 0) -> dict[str, Any]:
    """The original program's score, MSE on its training data, against the targets'
    variance (the MSE of predicting their mean), with the paired-bootstrap interval of
    the difference over the training sequences; and here also the MSE on held-out data."""
    train, test = manual["train"], manual["test"]
    y = train[1].double().cpu().numpy()
    out: dict[str, Any] = {"length": manual["length"], "steps": cfg.manual_steps,
                           "target_variance_train": float(y.var()),
                           "target_variance_test": float(test[1].double().var(unbiased=False))}
    for cell, model in nets.items():
        tr = evaluate(model, train, nn.functional.mse_loss, device=device)["loss"]
        te = evaluate(model, test, nn.functional.mse_loss, device=device)["loss"]
        err = (predict(model, train[0]) - y) ** 2
        gap = paired_bootstrap(err, (y - y.mean()) ** 2, seed=seed, what="training sequences")
        out[cell] = {"train_mse": tr, "test_mse": te,
                     "train_mse_over_variance": tr / out["target_variance_train"],
                     "train_mse_vs_mean": gap.as_dict()}
    return out


def judge_manual(cfg: LongMemoryConfig, mr: dict[str, Any], ctx: RunContext) -> None:
    var = mr["target_variance_train"]
    ctx.infer(f"In the original program's regime ({cfg.manual_steps} full-batch steps) the RNN "
              f"and LSTM reach training MSEs of {mr['rnn']['train_mse']:.4f} and "
              f"{mr['lstm']['train_mse']:.4f} against a target variance of {var:.4f}, the "
              "training MSE of predicting the targets' mean.")
    for cell in ("rnn", "lstm"):
        r = mr[cell]
        diff = Difference.from_dict(r["train_mse_vs_mean"])
        _judge_against_mean(ctx, f"The {cell.upper()}", var + diff.estimate, var, diff,
                            "in the original program's regime",
                            quantity="training MSE in the original program's regime")
    ctx.infer(f"On held-out data, which the original program never scores, the MSEs are "
              f"{mr['rnn']['test_mse']:.4f} and {mr['lstm']['test_mse']:.4f}.")


def write_manual(cfg: LongMemoryConfig, mr: dict[str, Any], ctx: RunContext) -> None:
    ctx.table(f"The original program's regime on the running sum (T={mr['length']}): "
              f"{cfg.manual_steps} full-batch Adam steps (lr 0.001) on {cfg.manual_n} sequences",
              ["model", "MSE on its training data", "training targets' variance", "ratio",
               "MSE on held-out data", "held-out targets' variance"],
              [[f"{c.upper()} ({cfg.manual_hidden} units)", mr[c]["train_mse"],
                mr["target_variance_train"], mr[c]["train_mse_over_variance"], mr[c]["test_mse"],
                mr["target_variance_test"]] for c in ("rnn", "lstm")])


def run_long_memory(cfg: LongMemoryConfig, ctx: RunContext) -> None:
    # step data: the adding problem and the running sum, and the original program's data
    tasks = long_memory_tasks(cfg)
    ctx.data("Adding problem (Hochreiter and Schmidhuber 1997; form of Le et al. 2015): "
             "2 input channels, values from U(0, 1) and two markers (one in each half); "
             "target = sum of the two marked values. Predicting 1 scores MSE 1/6 = 0.1667.")
    if cfg.running_sum_length:
        ctx.data("Running sum: x_t from U(-1, 1), target = sum of all x_t / sqrt(T) (variance "
                 "1/3 at every length); predicting 0 scores MSE 1/3.")
    ctx.data(f"Per task and seed: {cfg.n_train} training, {cfg.n_test} validation and "
             f"{cfg.n_test} test sequences, freshly drawn; test MSE is measured once, after "
             "training, on sequences no model saw; input gradients on the first "
             f"{cfg.grad_batch} validation sequences.")
    if cfg.n_seeds < 5:
        ctx.note(f"This profile runs {cfg.n_seeds} seed(s) per cell; the full profile runs 5 "
                 "(`--profile full`).")
    manual = manual_data(cfg, ctx)
    # step model: one network per cell (first task, first seed) and the original RNN and LSTM
    models = long_memory_nets(cfg, ctx, tasks[0], 0)
    manual_models = manual_nets(cfg, ctx)
    # step train: every cell on every task and seed, then the original program's few steps
    runs = train_all(cfg, tasks, models, ctx)
    train_manual(cfg, manual_models, manual, ctx)
    # step score: test MSE, input-gradient ratios, steps to leave the plateau; the original's
    m = score_long_memory(cfg, tasks, runs)
    mr = score_manual(cfg, manual_models, manual, ctx.device, ctx.seed)
    ctx.metrics.update({**m, "manual_regime": mr})
    # step judge: which cells learned, whether the gradient vanished, the original regime
    judge_long_memory(cfg, tasks, m, ctx)
    judge_manual(cfg, mr, ctx)
    # step write: the tables of test MSE, input gradients and parameters, and the figure
    write_long_memory(cfg, tasks, m, runs, ctx)
    write_manual(cfg, mr, ctx)


def _gated_on_adding(m: dict[str, Any]) -> bool:
    return m["longest_adding_best_gated_over_baseline"] is not None


LONG_MEMORY = Implementation(
    config=LongMemoryConfig, run=run_long_memory,
    profiles={
        "smoke": {"lengths": (8,), "running_sum_length": 8, "n_seeds": 2, "n_train": 256,
                  "n_test": 128, "epochs": 2, "hidden": 8, "manual_n": 128,
                  "manual_steps": 3, "manual_hidden": 8, "grad_batch": 64},
        "full": {"lengths": (50, 100), "running_sum_length": 50, "n_seeds": 5,
                 "n_train": 8000, "n_test": 1000, "epochs": 10},
    },
    crippled={"epochs": 1, "n_train": 320, "n_test": 200, "manual_n": 100},
    targets=(
        Target("longest_adding_best_gated_over_baseline", at_most=SOLVED_AT,
               profiles=("quick", "full"), when=_gated_on_adding,
               when_text="a gated cell (LSTM or GRU) runs the adding problem",
               why="a gated cell learns the longest adding problem: mean test MSE below a "
                   "tenth of predicting 1"),
    ),
)
