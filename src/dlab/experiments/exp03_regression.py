"""Experiment 3: a 64-32-1 regression network, in Keras (3.1) and PyTorch (3.2).

Preprocessing (`dlab.data.tabular.prepare`) is fit on the training rows only and then
applied, unchanged, to the validation and test rows: median imputation and
standardisation z = (x - mean) / std of numeric columns, one-hot codes (categories seen
in training) of the others. The target is standardised with its training mean and
standard deviation for the network, and every score is computed after mapping
predictions back to the target's own units.

Scores on the test rows: MSE = mean (y - yhat)^2, RMSE = sqrt(MSE), MAE = mean |y - yhat|,
R^2 = 1 - sum (y - yhat)^2 / sum (y - mean(y))^2.

Each program reads: load data -> build the model(s) -> train -> score (a dict of measured
values) -> judge (targets on the Implementation, claims from the scores) -> write (tables,
figures), one `# step` of its run function each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dlab.data.tabular import Split, TableData, TablePreprocessor, auto_mpg, prepare, read_csv
from dlab.errors import DataError
from dlab.figures import pyplot
from dlab.keras_programs import regression as kr
from dlab.models import count_parameters
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.uncertainty import Difference, paired_bootstrap
from dlab.verdicts import Target

NET = "network"  # key of the network's scores; the baselines are "linear" and "mean"


@dataclass
class RegressionConfig:
    csv: str = ""  # a CSV file to use instead of Auto MPG (with target=COLUMN)
    target: str = ""  # the column of `csv` to predict
    widths: tuple[int, ...] = (64, 32)  # hidden layers: 64-32-1
    epochs: int = 100  # training epochs (3.2: the most; early stopping may end sooner)
    batch_size: int = 32  # mini-batch size
    lr: float = 1e-3  # Adam learning rate
    patience: int = 10  # 3.2: stop after this many epochs without a better validation loss
    test_fraction: float = 0.2  # rows held out for the test scores
    val_fraction: float = 0.2  # of the remaining rows: validation (curves, early stopping)

    def validate(self) -> None:
        if bool(self.csv) != bool(self.target):
            raise ValueError("give both --set csv=PATH and --set target=COLUMN, or neither")
        for name in ("test_fraction", "val_fraction"):
            v = getattr(self, name)
            if not 0.0 < v < 0.5:
                raise ValueError(f"{name} must be between 0 and 0.5, got {v}")
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}")
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must be positive, got {self.widths}")


# ------------------------------------------------------------------ data and scores


def load_table(cfg: RegressionConfig) -> TableData:
    """Auto MPG, or the user's CSV (checked before anything is trained)."""
    table = read_csv(cfg.csv, cfg.target) if cfg.csv else auto_mpg()
    if not pd.api.types.is_numeric_dtype(table.frame[table.target]):
        raise DataError(f"target column {table.target!r} of {cfg.csv or 'the table'} is not "
                        "numeric; a regression needs a numeric target")
    if table.frame.shape[1] < 2:
        raise DataError(f"{cfg.csv}: no feature columns besides the target {table.target!r}")
    return table


def load_split(cfg: RegressionConfig, ctx: RunContext) -> tuple[TableData, Split]:
    """The table split at random into training, validation and test rows, preprocessed
    with statistics of the training rows; targets as float64 in their own units."""
    table = load_table(cfg)
    s = prepare(table, cfg.test_fraction, cfg.val_fraction, seed=ctx.seed, stratify=False)
    for part in ("y_train", "y_val", "y_test"):
        setattr(s, part, getattr(s, part).astype(np.float64))
    gaps = int(table.frame.drop(columns=[table.target]).isna().sum().sum())
    ctx.data(table.describe())
    ctx.data(f"Rows split at random (seed {ctx.seed}): {s.sizes()}; the test rows are "
             f"scored once, all of them. Imputation medians, means, standard deviations "
             f"and categories come from the {len(s.y_train)} training rows only; {gaps} "
             f"feature gaps filled. {s.x_train.shape[1]} features after one-hot coding: "
             f"{', '.join(s.feature_names)}.")
    return table, s


def target_scale(s: Split) -> tuple[float, float]:
    """Mean and standard deviation of the training targets: the network learns
    (y - mean) / std."""
    std = float(s.y_train.std())
    return float(s.y_train.mean()), std if std > 0 else 1.0


def regression_scores(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE and R^2 of predictions yhat (N,) of targets y (N,)."""
    y, yhat = np.asarray(y, np.float64), np.asarray(yhat, np.float64)
    err = y - yhat
    mse = float(np.mean(err ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(err))),
            "r2": 1.0 - float(np.sum(err ** 2)) / ss_tot if ss_tot > 0 else float("nan")}


def linear_baseline(s: Split) -> np.ndarray:
    """Least-squares linear regression on the same preprocessed training features;
    returns its test predictions (N_test,)."""
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(s.x_train, s.y_train).predict(s.x_test)


def squared_error_gap(y: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int
                      ) -> dict[str, Any]:
    """MSE(a) - MSE(b) of two predictions (N,) of the same targets y (N,), with the 95%
    interval of a paired bootstrap over the rows (Difference.as_dict())."""
    y = np.asarray(y, np.float64)
    return paired_bootstrap((y - a) ** 2, (y - b) ** 2, seed=seed,
                            what="test rows").as_dict()


def score_predictions(s: Split, pred: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """The network's test scores beside both baselines' (linear regression, and the
    training mean as a constant prediction); the flat keys are the network's. The gaps
    to both baselines carry their paired-bootstrap intervals (`seed` draws the resamples)."""
    base = linear_baseline(s)
    const = np.full(len(s.y_test), s.y_train.mean())
    net = regression_scores(s.y_test, pred)
    return {"test_mse": net["mse"], "test_rmse": net["rmse"], "test_mae": net["mae"],
            "test_r2": net["r2"], "baseline_linear": regression_scores(s.y_test, base),
            "baseline_mean": regression_scores(s.y_test, const),
            "test_mse_vs_linear": squared_error_gap(s.y_test, pred, base, seed),
            "test_mse_vs_mean": squared_error_gap(s.y_test, pred, const, seed),
            "n_test": len(s.y_test)}


def unit_of(cfg: RegressionConfig) -> str:
    """The target's unit in words: mpg for Auto MPG."""
    return "mpg" if not cfg.csv else f"units of {cfg.target}"


def judge_baselines(ctx: RunContext, name: str, m: dict[str, Any]) -> None:
    """The network against linear regression and the training mean, from the scores."""
    b, u = m["baseline_linear"], m["unit"]
    ctx.infer(f"In {u}: the {name} network's test RMSE is {m['test_rmse']:.3f} and MAE "
              f"{m['test_mae']:.3f} (R^2 {m['test_r2']:.3f}) on {m['n_test']} test rows; "
              f"linear regression on the same features gets RMSE {b['rmse']:.3f}, MAE "
              f"{b['mae']:.3f} (R^2 {b['r2']:.3f}).")
    ctx.compare("test MSE", f"The {name} network", m["test_mse"], "linear regression",
                b["mse"], diff=Difference.from_dict(m["test_mse_vs_linear"]), better="lower",
                unit=f"{u} squared")
    ctx.compare("test MSE", f"The {name} network", m["test_mse"],
                "the training mean (a constant)", m["baseline_mean"]["mse"],
                diff=Difference.from_dict(m["test_mse_vs_mean"]), better="lower",
                unit=f"{u} squared")


def write_results(ctx: RunContext, s: Split, preds: dict[str, np.ndarray],
                  scores: dict[str, dict[str, float]], unit: str) -> None:
    """The score table and the predicted-against-true scatter of the test rows."""
    ctx.table(f"Test scores ({unit})", ["model", "MSE", "RMSE", "MAE", "R^2"],
              [[k, v["mse"], v["rmse"], v["mae"], v["r2"]] for k, v in scores.items()])
    fig, ax = pyplot().subplots(figsize=(4.8, 4.6))
    lo, hi = float(s.y_test.min()), float(s.y_test.max())
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, label="perfect")
    for (name, p), marker in zip(preds.items(), "o^s", strict=False):
        ax.scatter(s.y_test, p, s=14, marker=marker, alpha=0.7, label=name)
    ax.set_xlabel(f"true ({unit})")
    ax.set_ylabel(f"predicted ({unit})")
    ax.legend(fontsize=8)
    ax.set_title("Test rows")
    ctx.figure(fig, "predicted_vs_true.png", "Predicted against true target on the test rows; "
               "points on the grey line are exact.")


def write_curves(ctx: RunContext, history: list[dict[str, Any]], scale: float, unit: str,
                 best: int | None = None) -> None:
    from dlab.figures import loss_curves

    rows = [{**r, "loss": r["loss"] * scale, "val_loss": r["val_loss"] * scale}
            for r in history]
    fig = loss_curves(rows, "Training and validation error", ylabel=f"MSE ({unit} squared)")
    ax = fig.axes[0]
    ax.set_yscale("log")
    if best:
        ax.axvline(best, color="grey", ls="--", lw=1, label=f"best epoch ({best})")
        ax.legend()
    ctx.figure(fig, "loss_curves.png", "Training (mean during the epoch) and validation mean "
               "squared error per epoch, converted to the target's units (the network is "
               "trained on the standardised target).")


def table_scores(m: dict[str, Any], net: str) -> dict[str, dict[str, float]]:
    """The test scores of the network (named `net`) and of both baselines, by model."""
    return {net: {k: m[f"test_{k}"] for k in ("mse", "rmse", "mae", "r2")},
            "linear regression": m["baseline_linear"],
            "training mean (constant)": m["baseline_mean"]}


# ------------------------------------------------------------------- 3.1 Keras


def manual_leaky_split(table: TableData, rows: dict[str, np.ndarray]
                       ) -> tuple[Split, float, float]:
    """The manual's order: impute and standardise every column, target included, on all
    rows, then split. Returns the split with targets in standardised units, and the
    table-wide target mean and std that the standardisation used."""
    features = table.frame.drop(columns=[table.target])
    pre = TablePreprocessor.fit(features)             # sees the test rows
    y = table.frame[table.target].astype(float).to_numpy()
    mean, std = float(y.mean()), float(y.std())
    z = (y - mean) / std                              # test targets leak into mean and std
    x = pre.transform(features)
    split = Split(x[rows["train"]], z[rows["train"]], x[rows["val"]], z[rows["val"]],
                  x[rows["test"]], z[rows["test"]], pre, rows)
    return split, mean, std


def describe_leak(ctx: RunContext, table: TableData, mean: float, std: float) -> None:
    """The manual's preprocessing of the same rows, for the record's Data section."""
    ctx.data(f"For comparison, the manual's order on the same rows: imputation, "
             f"standardisation and the target's mean {mean:.3f} and standard deviation "
             f"{std:.3f} computed on all {len(table.frame)} rows, test rows included, before "
             "the split.")


def keras_net(cfg: RegressionConfig, ctx: RunContext, n_features: int):
    """The Keras 64-32-1 regressor for `n_features` inputs, its weights drawn after
    setting Keras's random seeds to the run's seed."""
    return kr.new_regressor(n_features, cfg.widths, ctx.seed)


def train_keras(cfg: RegressionConfig, ctx: RunContext, model, s: Split, name: str,
                scale: tuple[float, float] = (0.0, 1.0)) -> tuple[list[dict[str, Any]],
                                                                  np.ndarray]:
    """Train the Keras `model` in place on targets (y - mean) / std; returns its history
    rows and its test predictions (N_test,) in the targets' units."""
    mean, std = scale
    hist = kr.train_regressor(model, s.x_train, (s.y_train - mean) / std, s.x_val,
                              (s.y_val - mean) / std, epochs=cfg.epochs,
                              batch_size=cfg.batch_size, lr=cfg.lr, seed=ctx.seed,
                              log=ctx.log, name=name)
    return hist, kr.predict(model, s.x_test) * std + mean


def score_leak(s: Split, leak: Split, manual_z: np.ndarray, mean: float,
               std: float) -> dict[str, Any]:
    """What the manual's preprocessing prints and what it means in the target's units."""
    manual_std_mse = float(np.mean((leak.y_test - manual_z) ** 2))
    train_mean, train_std = target_scale(s)
    return {"manual_mse_standardised": manual_std_mse,
            "manual_mse_in_units": manual_std_mse * std ** 2,
            "manual_scores_in_units": regression_scores(s.y_test, manual_z * std + mean),
            "all_rows_target_mean": mean, "all_rows_target_std": std,
            "train_target_mean": train_mean, "train_target_std": train_std}


def judge_leak(ctx: RunContext, m: dict[str, Any]) -> None:
    u, correct, leaky = m["unit"], m["test_mse"], m["manual_scores_in_units"]["mse"]
    ctx.infer(f"The manual reports its test MSE in standardised units: here that number is "
              f"{m['manual_mse_standardised']:.4f}, which is {m['manual_mse_in_units']:.3f} "
              f"{u} squared once multiplied by the table-wide target variance; the correct "
              f"pipeline's test MSE is {correct:.3f} {u} squared. Fitting the scaler on all "
              f"rows moved the target mean by "
              f"{abs(m['all_rows_target_mean'] - m['train_target_mean']):.3f} and its "
              f"standard deviation by "
              f"{abs(m['all_rows_target_std'] - m['train_target_std']):.3f}.")
    rel = abs(leaky - correct) / correct
    ctx.claim(f"On this table the leak changed the test MSE by less than 5% ({leaky:.3f} "
              f"against {correct:.3f} {u} squared): the printed number misleads mainly by "
              "its unit, though the scaler still saw the test rows.", rel < 0.05,
              otherwise=f"On this table the leaky pipeline's test MSE is {leaky:.3f} {u} "
                        f"squared, {rel:.1%} {'higher' if leaky > correct else 'lower'} than "
                        f"the correct pipeline's {correct:.3f}.",
              leaky_mse=leaky, correct_mse=correct)


def write_leak(ctx: RunContext, m: dict[str, Any]) -> None:
    """The manual's printed test MSE against the correct one, and the scaler's statistics."""
    u, mean, std = m["unit"], m["all_rows_target_mean"], m["all_rows_target_std"]
    ctx.table("The manual's preprocessing, measured", ["what", "value"], [
        ["manual's test MSE as it prints it (standardised units)", m["manual_mse_standardised"]],
        [f"the same, in {u} squared (times the table-wide variance {std ** 2:.3f})",
         m["manual_mse_in_units"]],
        [f"correct pipeline's test MSE ({u} squared)", m["test_mse"]],
        ["target mean: all rows (manual) / training rows only",
         f"{mean:.3f} / {m['train_target_mean']:.3f}"],
        ["target std: all rows (manual) / training rows only",
         f"{std:.3f} / {m['train_target_std']:.3f}"]])


def run_keras(cfg: RegressionConfig, ctx: RunContext) -> None:
    # step data: Auto MPG split at random, preprocessed on the training rows; the manual's way
    table, s = load_split(cfg, ctx)
    leak, leak_mean, leak_std = manual_leaky_split(table, s.rows)
    describe_leak(ctx, table, leak_mean, leak_std)
    # step model: the 64-32-1 Keras network, once for each preprocessing
    models = {"keras": keras_net(cfg, ctx, s.x_train.shape[1]),
              "keras_manual": keras_net(cfg, ctx, leak.x_train.shape[1])}
    # step train: Keras's own fit loop, on the correct and on the manual's preprocessing
    ctx.log("training the Keras network (preprocessing fit on training rows)")
    hist, pred = train_keras(cfg, ctx, models["keras"], s, "keras", target_scale(s))
    ctx.log("training the same network the manual's way (scaled before the split)")
    lhist, manual_z = train_keras(cfg, ctx, models["keras_manual"], leak, "keras_manual")
    # step score: test scores beside the baselines, and the manual's printed number unpacked
    backend, version = kr.backend_info()
    ctx.metrics.update({**score_predictions(s, pred, ctx.seed),
                        **score_leak(s, leak, manual_z, leak_mean, leak_std),
                        "parameters": kr.count_params(models["keras"]), "unit": unit_of(cfg),
                        "keras_backend": backend})
    # step judge: the network against the baselines, and what the leak changed
    judge_baselines(ctx, "Keras", ctx.metrics)
    judge_leak(ctx, ctx.metrics)
    # step write: the score tables, the predictions and the loss curves
    m = ctx.metrics
    ctx.add_history(hist + lhist)
    scores = {**table_scores(m, "Keras 64-32-1"),
              "Keras, manual preprocessing (leaky)": m["manual_scores_in_units"]}
    write_results(ctx, s, {"Keras network": pred, "linear regression": linear_baseline(s)},
                  scores, m["unit"])
    write_leak(ctx, m)
    write_curves(ctx, hist, m["train_target_std"] ** 2, m["unit"])
    ctx.note(f"Keras {version} on the {backend} backend; Keras's own fit loop.")


# ----------------------------------------------------------------- 3.2 PyTorch


def torch_net(cfg: RegressionConfig, ctx: RunContext, n_features: int):
    """The PyTorch 64-32-1 MLP for `n_features` inputs, initialised from the run's
    generator 1, on the run's device."""
    from dlab.models.mlp import MLP

    return MLP((n_features, *cfg.widths, 1), generator=ctx.torch_generator(1)).to(ctx.device)


def train_torch(cfg: RegressionConfig, ctx: RunContext, model, s: Split):
    """Train `model` in place on the standardised target with Adam, mini-batches and
    early stopping on the validation rows (the best epoch's weights are restored);
    returns fit's result."""
    import torch
    import torch.nn.functional as F

    from dlab.training import fit

    mean, std = target_scale(s)

    def tensors(x: np.ndarray, y: np.ndarray):
        return (torch.as_tensor(x, dtype=torch.float32),
                torch.as_tensor((y - mean) / std, dtype=torch.float32).reshape(-1, 1))

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return fit(model, tensors(s.x_train, s.y_train), val=tensors(s.x_val, s.y_val), ctx=ctx,
               epochs=cfg.epochs, optimizer=opt, loss_fn=F.mse_loss,
               batch_size=cfg.batch_size, patience=cfg.patience, name="torch")


def predict_torch(model, s: Split, device: str) -> np.ndarray:
    """The network's test predictions (N_test,) in the target's own units."""
    import torch

    from dlab.training import predict

    mean, std = target_scale(s)
    z = predict(model, torch.as_tensor(s.x_test, dtype=torch.float32, device=device))
    return z.reshape(-1) * std + mean


def judge_stopping(ctx: RunContext, m: dict[str, Any]) -> None:
    ctx.infer(f"Early stopping on the validation rows "
              f"{'ended training after' if m['stopped_early'] else 'did not trigger in'} "
              f"{m['epochs_run']} epochs; the weights of epoch {m['best_epoch']} (lowest "
              f"validation MSE, {m['best_val_mse']:.3f} {m['unit']} squared) were restored "
              "and scored once on the test rows.")


def run_torch(cfg: RegressionConfig, ctx: RunContext) -> None:
    # step data: Auto MPG split at random, preprocessed on the training rows only
    table, s = load_split(cfg, ctx)
    # step model: the 64-32-1 MLP
    model = torch_net(cfg, ctx, s.x_train.shape[1])
    # step train: Adam on the standardised target, early stopping on the validation rows
    result = train_torch(cfg, ctx, model, s)
    mean, std = target_scale(s)
    ctx.save_model(model, task="regression", architecture="mlp",
                   kwargs={"sizes": [s.x_train.shape[1], *cfg.widths, 1],
                           "activation": "relu"},
                   target=table.target, target_mean=mean, target_std=std,
                   preprocessing=s.pre.to_dict(), program=ctx.program.id)
    # step score: test scores in the target's units beside the baselines, the stopping epoch
    pred = predict_torch(model, s, ctx.device)
    ctx.metrics.update({
        **score_predictions(s, pred, ctx.seed), "unit": unit_of(cfg),
        "best_epoch": result.best_epoch, "epochs_run": len(result.history),
        "stopped_early": result.stopped_early, "parameters": count_parameters(model),
        "best_val_mse": min(r["val_loss"] for r in result.history) * std ** 2})
    # step judge: the network against the baselines, and where training stopped
    judge_baselines(ctx, "PyTorch", ctx.metrics)
    judge_stopping(ctx, ctx.metrics)
    # step write: the score table, the predictions and the loss curves
    m = ctx.metrics
    write_results(ctx, s, {"PyTorch network": pred, "linear regression": linear_baseline(s)},
                  table_scores(m, "PyTorch 64-32-1"), m["unit"])
    write_curves(ctx, result.history, std ** 2, m["unit"], best=result.best_epoch)


BEATS_LINEAR = Target("test_mse", below="baseline_linear.mse", profiles=("quick", "full"),
                      interval="test_mse_vs_linear",
                      why="a 64-32-1 network should beat least squares on the same features, "
                          "beyond the spread of a paired bootstrap over the test rows")

REGRESSION_KERAS = Implementation(config=RegressionConfig, run=run_keras, profiles={
    "smoke": {"epochs": 3},
    "full": {"epochs": 100},
}, targets=(BEATS_LINEAR,), crippled={"epochs": 1})

REGRESSION_TORCH = Implementation(config=RegressionConfig, run=run_torch, profiles={
    "smoke": {"epochs": 3, "patience": 2},
    "full": {"epochs": 500, "patience": 20},
}, targets=(BEATS_LINEAR,), crippled={"epochs": 1})
