"""Experiment 3: a 64-32-1 regression network, in Keras (3.1) and PyTorch (3.2).

Preprocessing is fit on the training rows only and then applied, unchanged, to the
validation and test rows: median imputation and standardisation z = (x - mean) / std of
numeric columns, one-hot codes (categories seen in training) of the others. The target
is standardised with its training mean and standard deviation for the network, and
every score is computed after mapping predictions back to the target's own units.

Scores on the test rows: MSE = mean (y - yhat)^2, RMSE = sqrt(MSE), MAE = mean |y - yhat|,
R^2 = 1 - sum (y - yhat)^2 / sum (y - mean(y))^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dlab.data.tabular import TableData, auto_mpg, read_csv
from dlab.errors import DataError
from dlab.registry import Implementation
from dlab.runs import RunContext

MISSING = "(missing)"


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


# ------------------------------------------------------------------ preprocessing


@dataclass
class TablePreprocessor:
    """Imputation, standardisation and one-hot coding, fit on one set of rows.

    medians, means, stds: per numeric column (statistics of the fitting rows; std with
    ddof 0, taken after imputation); categories: per other column, the values seen in
    the fitting rows (a gap is its own category, MISSING). Unseen values code as zeros.
    """

    numeric: list[str]
    categorical: list[str]
    medians: dict[str, float]
    means: dict[str, float]
    stds: dict[str, float]
    categories: dict[str, list[str]]

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> TablePreprocessor:
        """Learn the statistics from `frame` (the training rows only)."""
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
                   and not pd.api.types.is_bool_dtype(frame[c])]
        categorical = [c for c in frame.columns if c not in numeric]
        medians, means, stds = {}, {}, {}
        for c in numeric:
            col = frame[c].astype(float)
            med = float(col.median()) if col.notna().any() else 0.0
            filled = col.fillna(med)
            medians[c], means[c] = med, float(filled.mean())
            std = float(filled.std(ddof=0))
            stds[c] = std if std > 0 else 1.0
        categories = {c: sorted(frame[c].astype("string").fillna(MISSING).unique().tolist())
                      for c in categorical}
        return cls(numeric, categorical, medians, means, stds, categories)

    @property
    def feature_names(self) -> list[str]:
        return self.numeric + [f"{c}={v}" for c in self.categorical for v in self.categories[c]]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows -> float64 features (N, F), F = len(feature_names)."""
        parts = []
        for c in self.numeric:
            col = frame[c].astype(float).fillna(self.medians[c]).to_numpy()
            parts.append(((col - self.means[c]) / self.stds[c])[:, None])  # (N, 1)
        for c in self.categorical:
            col = frame[c].astype("string").fillna(MISSING).to_numpy()
            cats = np.array(self.categories[c], dtype=object)
            parts.append((col[:, None] == cats[None, :]).astype(np.float64))  # (N, K)
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(frame), 0))

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Split:
    """Preprocessed rows. x_*: (N, F) features; y_*: (N,) target in its own units."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    pre: TablePreprocessor
    y_mean: float  # training target mean and std: the network's target is (y - mean) / std
    y_std: float
    rows: dict[str, np.ndarray]  # row indices of each part in the table


def split_rows(n: int, test_fraction: float, val_fraction: float,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random disjoint row indices {train, val, test}: test first, then val from the rest."""
    order = rng.permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    n_val = max(1, int(round((n - n_test) * val_fraction)))
    return {"test": np.sort(order[:n_test]), "val": np.sort(order[n_test:n_test + n_val]),
            "train": np.sort(order[n_test + n_val:])}


def preprocess(table: TableData, rows: dict[str, np.ndarray]) -> Split:
    """Fit the preprocessing on table rows `rows['train']` only; apply it to every part."""
    features = table.frame.drop(columns=[table.target])
    y = table.frame[table.target].astype(float).to_numpy()
    pre = TablePreprocessor.fit(features.iloc[rows["train"]])
    x = {k: pre.transform(features.iloc[idx]) for k, idx in rows.items()}
    ytr = y[rows["train"]]
    std = float(ytr.std())
    return Split(x["train"], ytr, x["val"], y[rows["val"]], x["test"], y[rows["test"]], pre,
                 float(ytr.mean()), std if std > 0 else 1.0, rows)


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


def load_table(cfg: RegressionConfig, ctx: RunContext) -> TableData:
    """Auto MPG, or the user's CSV (checked before anything is trained)."""
    table = read_csv(cfg.csv, cfg.target) if cfg.csv else auto_mpg()
    if not pd.api.types.is_numeric_dtype(table.frame[table.target]):
        raise DataError(f"target column {table.target!r} of {cfg.csv or 'the table'} is not "
                        "numeric; a regression needs a numeric target")
    if table.frame.shape[1] < 2:
        raise DataError(f"{cfg.csv}: no feature columns besides the target {table.target!r}")
    ctx.data(table.describe())
    return table


def prepare_split(cfg: RegressionConfig, ctx: RunContext) -> tuple[TableData, Split]:
    table = load_table(cfg, ctx)
    rows = split_rows(len(table.frame), cfg.test_fraction, cfg.val_fraction, ctx.rng)
    s = preprocess(table, rows)
    gaps = int(table.frame.drop(columns=[table.target]).isna().sum().sum())
    ctx.data(f"Rows split at random (seed {ctx.seed}): {len(rows['train'])} training, "
             f"{len(rows['val'])} validation, {len(rows['test'])} test. Imputation medians, "
             f"means, standard deviations and categories come from the {len(rows['train'])} "
             f"training rows only; {gaps} feature gaps filled. {s.x_train.shape[1]} features "
             f"after one-hot coding: {', '.join(s.pre.feature_names)}.")
    return table, s


def _unit(table: TableData, cfg: RegressionConfig) -> str:
    return "mpg" if not cfg.csv else f"units of {table.target}"


def _scatter(ctx: RunContext, s: Split, preds: dict[str, np.ndarray], unit: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 4.6))
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


def _curves(ctx: RunContext, history: list[dict[str, Any]], name: str, scale: float,
            unit: str, best: int | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in history if r["model"] == name]
    ep = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(ep, [r["loss"] * scale for r in rows], label="training (mean during epoch)")
    ax.plot(ep, [r["val_loss"] * scale for r in rows], label="validation")
    if best:
        ax.axvline(best, color="grey", ls="--", lw=1, label=f"best epoch ({best})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"MSE ({unit} squared)")
    ax.legend(fontsize=8)
    ctx.figure(fig, "loss_curves.png", "Training and validation mean squared error per epoch, "
               "converted to the target's units (the network is trained on the standardised "
               "target).")


def _score_table(ctx: RunContext, unit: str, scores: dict[str, dict[str, float]]) -> None:
    ctx.table(f"Test scores ({unit})", ["model", "MSE", "RMSE", "MAE", "R^2"],
              [[k, v["mse"], v["rmse"], v["mae"], v["r2"]] for k, v in scores.items()])


def _compare(ctx: RunContext, net: str, scores: dict[str, dict[str, float]], unit: str) -> None:
    n, b = scores[net], scores["linear regression"]
    better = n["mse"] < b["mse"]
    ctx.infer(f"On {unit}: the network's test RMSE is {n['rmse']:.3f} and MAE {n['mae']:.3f} "
              f"(R^2 {n['r2']:.3f}); linear regression on the same features gets RMSE "
              f"{b['rmse']:.3f}, MAE {b['mae']:.3f} (R^2 {b['r2']:.3f}). The network's test MSE "
              f"is {'lower' if better else 'not lower'} than the baseline's "
              f"({n['mse']:.3f} against {b['mse']:.3f}, "
              f"{abs(100 * (1 - n['mse'] / b['mse'])):.1f}% {'lower' if better else 'higher'}).")


# ------------------------------------------------------------------- 3.1 Keras


def manual_leaky_split(table: TableData,
                       rows: dict[str, np.ndarray]) -> tuple[Split, float, float]:
    """The manual's order: impute and standardise every column, target included, on all
    rows, then split. Returns the split with targets in standardised units, and the
    table-wide target mean and std that the standardisation used."""
    every = np.arange(len(table.frame))
    features = table.frame.drop(columns=[table.target])
    pre = TablePreprocessor.fit(features)             # sees the test rows
    y = table.frame[table.target].astype(float).to_numpy()
    mean, std = float(y.mean()), float(y.std())
    z = (y - mean) / std                              # test targets leak into mean and std
    x = pre.transform(features.iloc[every])
    split = Split(x[rows["train"]], z[rows["train"]], x[rows["val"]], z[rows["val"]],
                  x[rows["test"]], z[rows["test"]], pre, 0.0, 1.0, rows)
    return split, mean, std


def run_keras(cfg: RegressionConfig, ctx: RunContext) -> None:
    from dlab.keras_programs import regression as kr

    table, s = prepare_split(cfg, ctx)
    unit = _unit(table, cfg)
    zt = (s.y_train - s.y_mean) / s.y_std
    zv = (s.y_val - s.y_mean) / s.y_std
    ctx.log("training the Keras network (preprocessing fit on training rows)")
    model, hist = kr.train_regressor(s.x_train, zt, s.x_val, zv, widths=cfg.widths,
                                     epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                                     seed=ctx.seed, log=ctx.log, name="keras")
    pred = kr.predict(model, s.x_test) * s.y_std + s.y_mean
    base = linear_baseline(s)

    ctx.log("training the same network the manual's way (scaled before the split)")
    leak, t_mean, t_std = manual_leaky_split(table, s.rows)
    lmodel, lhist = kr.train_regressor(leak.x_train, leak.y_train, leak.x_val, leak.y_val,
                                       widths=cfg.widths, epochs=cfg.epochs,
                                       batch_size=cfg.batch_size, lr=cfg.lr, seed=ctx.seed,
                                       name="keras_manual")
    lz = kr.predict(lmodel, leak.x_test)
    manual_std_mse = float(np.mean((leak.y_test - lz) ** 2))
    manual_scores = regression_scores(s.y_test, lz * t_std + t_mean)

    ctx.add_history(hist + lhist)
    scores = {"Keras 64-32-1": regression_scores(s.y_test, pred),
              "linear regression": regression_scores(s.y_test, base)}
    _score_table(ctx, unit, {**scores, "Keras, manual preprocessing (leaky)": manual_scores})
    ctx.table("The manual's preprocessing, measured", ["what", "value"], [
        ["manual's test MSE as it prints it (standardised units)", manual_std_mse],
        [f"the same, in {unit} squared (times the table-wide variance {t_std ** 2:.3f})",
         manual_std_mse * t_std ** 2],
        [f"correct pipeline's test MSE ({unit} squared)", scores["Keras 64-32-1"]["mse"]],
        ["target mean: all rows (manual) / training rows only", f"{t_mean:.3f} / "
         f"{s.y_mean:.3f}"],
        ["target std: all rows (manual) / training rows only", f"{t_std:.3f} / {s.y_std:.3f}"],
    ])
    _scatter(ctx, s, {"Keras network": pred, "linear regression": base}, unit)
    _curves(ctx, hist, "keras", s.y_std ** 2, unit)
    ctx.metrics.update({
        "test_mse": scores["Keras 64-32-1"]["mse"], "test_rmse": scores["Keras 64-32-1"]["rmse"],
        "test_mae": scores["Keras 64-32-1"]["mae"], "test_r2": scores["Keras 64-32-1"]["r2"],
        "baseline_linear": scores["linear regression"],
        "manual_mse_standardised": manual_std_mse,
        "manual_mse_in_units": manual_std_mse * t_std ** 2,
        "manual_scores_in_units": manual_scores,
        "parameters": kr.count_params(model), "unit": unit,
        "keras_backend": _backend(),
    })
    _compare(ctx, "Keras 64-32-1", scores, unit)
    correct = scores["Keras 64-32-1"]["mse"]
    diff = manual_scores["mse"] - correct
    ctx.infer(f"The manual reports its test MSE in standardised units: here that number is "
              f"{manual_std_mse:.4f}, which looks tiny but is {manual_std_mse * t_std ** 2:.3f} "
              f"{unit} squared once multiplied by the target's variance; the correct pipeline's "
              f"test MSE is {scores['Keras 64-32-1']['mse']:.3f} {unit} squared. Fitting the "
              f"scaler on all rows moved the target mean by {abs(t_mean - s.y_mean):.3f} and "
              f"its standard deviation by {abs(t_std - s.y_std):.3f} (test rows leaked into "
              f"both); on this table the leak changed the test MSE by {diff:+.3f} {unit} "
              f"squared ({100 * diff / correct:+.1f}%)"
              + (", so here the printed number misleads mainly by its unit, though the "
                 "scaler still saw the test rows." if abs(diff) < 0.05 * correct else "."))
    ctx.note(f"Keras {_keras_version()} on the {_backend()} backend; Keras's own fit loop.")


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _keras_version() -> str:
    import keras

    return keras.__version__


# ----------------------------------------------------------------- 3.2 PyTorch


def run_torch(cfg: RegressionConfig, ctx: RunContext) -> None:
    import torch
    import torch.nn.functional as F

    from dlab.models.mlp import MLP
    from dlab.training import fit

    table, s = prepare_split(cfg, ctx)
    unit = _unit(table, cfg)

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        z = (y - s.y_mean) / s.y_std
        return (torch.as_tensor(x, dtype=torch.float32),
                torch.as_tensor(z, dtype=torch.float32).reshape(-1, 1))  # (N, 1)

    sizes = (s.x_train.shape[1], *cfg.widths, 1)
    model = MLP(sizes, generator=ctx.torch_generator(1)).to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    result = fit(model, tensors(s.x_train, s.y_train), val=tensors(s.x_val, s.y_val), ctx=ctx,
                 epochs=cfg.epochs, optimizer=opt, loss_fn=F.mse_loss,
                 batch_size=cfg.batch_size, patience=cfg.patience, name="torch")
    model.eval()
    with torch.inference_mode():
        z = model(torch.as_tensor(s.x_test, dtype=torch.float32, device=ctx.device))
    pred = z.cpu().numpy().reshape(-1).astype(np.float64) * s.y_std + s.y_mean
    base = linear_baseline(s)
    scores = {"PyTorch 64-32-1": regression_scores(s.y_test, pred),
              "linear regression": regression_scores(s.y_test, base),
              "training mean (constant)": regression_scores(s.y_test,
                                                            np.full(len(s.y_test), s.y_mean))}
    _score_table(ctx, unit, scores)
    _scatter(ctx, s, {"PyTorch network": pred, "linear regression": base}, unit)
    _curves(ctx, result.history, "torch", s.y_std ** 2, unit, best=result.best_epoch)
    ctx.save_model(model, task="regression", architecture="mlp",
                   kwargs={"sizes": list(sizes), "activation": "relu"},
                   target=table.target, target_mean=s.y_mean, target_std=s.y_std,
                   preprocessing=s.pre.to_dict(), program=ctx.program.id)
    net = scores["PyTorch 64-32-1"]
    ctx.metrics.update({
        "test_mse": net["mse"], "test_rmse": net["rmse"], "test_mae": net["mae"],
        "test_r2": net["r2"], "baseline_linear": scores["linear regression"],
        "baseline_mean": scores["training mean (constant)"],
        "best_epoch": result.best_epoch, "epochs_run": len(result.history),
        "stopped_early": result.stopped_early, "unit": unit,
        "parameters": sum(p.numel() for p in model.parameters()),
    })
    _compare(ctx, "PyTorch 64-32-1", scores, unit)
    ctx.infer(f"Early stopping on the validation rows "
              f"{'ended training after' if result.stopped_early else 'did not trigger in'} "
              f"{len(result.history)} epochs; the weights of epoch {result.best_epoch} "
              f"(lowest validation MSE, "
              f"{min(r['val_loss'] for r in result.history) * s.y_std ** 2:.3f} {unit} "
              "squared) were restored and scored on the test rows.")


REGRESSION_KERAS = Implementation(config=RegressionConfig, run=run_keras, profiles={
    "smoke": {"epochs": 3},
    "full": {"epochs": 100},
})

REGRESSION_TORCH = Implementation(config=RegressionConfig, run=run_torch, profiles={
    "smoke": {"epochs": 3, "patience": 2},
    "full": {"epochs": 500, "patience": 20},
})
