"""Experiment 11: forecasting daily temperature with stacked LSTMs (11.1) and an LSTM
sequence model trained through a DataLoader (11.2).

11.1 reads the previous `window` days of a daily series and predicts the next day with
two LSTM(50) layers, Dense(25) and Dense(1) (LSTM: Hochreiter and Schmidhuber 1997),
in Keras 3 and in PyTorch. The series is min-max scaled with the range of the training
period only, and predictions are turned back into the series' units before scoring.
A forecast is only useful if it beats the forecasts that need no model:

    persistence  y_hat(t) = y(t - 1)                    ("tomorrow = today")
    seasonal     y_hat(t) = mean of y on the same calendar day in the training years

11.2 trains a two-layer LSTM of width 50 on sums of sines with random frequencies and
phases (a fresh signal in every sequence) to predict the next value, batches coming
from a torch DataLoader; the floor is the observation noise, the ceiling predicting the
mean. A control run on targets that do not depend on the inputs shows what a model
that "learns only the mean" looks like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlab.data import sequences as seq
from dlab.errors import DataError
from dlab.models.rnn import SequenceConfig, SequenceRegressor, count_parameters
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.training import evaluate, fit, predict


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------- 11.1 weather


@dataclass
class WeatherConfig:
    csv: str | None = None  # a CSV of daily values to forecast (default: Seattle, bundled)
    date_column: str = "date"  # the column holding dates
    value_column: str = "temp_max"  # the column forecast (Seattle: temp_max, in deg C)
    window: int = 60  # previous days the model reads
    test_days: int = 365  # last days held out (Seattle: all of 2015)
    val_fraction: float = 0.1  # last part of the training windows, for early stopping
    hidden: int = 50  # units of each of the two LSTM layers
    dense: int = 25  # units of the dense layer before the output
    epochs: int = 20  # passes over the training windows (each variant)
    batch_size: int = 32  # windows per gradient step
    lr: float = 0.003  # Adam learning rate
    patience: int = 8  # stop after this many epochs without a better val loss (0 = off)
    keras: bool = True  # also train the Keras 3 variant (slower on CPU; false skips it)
    seasonal_halfwidth: int = 0  # days each side averaged into the seasonal baseline
    leak_check: bool = False  # retrain PyTorch with the scaler fit on all data (as the manual)

    def validate(self) -> None:
        if self.window < 2 or self.test_days < 1:
            raise ValueError("window must be at least 2 and test_days at least 1")
        if not 0 <= self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in [0, 0.5), got {self.val_fraction}")
        if self.patience < 0 or self.seasonal_halfwidth < 0 or self.dense < 1:
            raise ValueError("patience and seasonal_halfwidth must be >= 0, dense >= 1")


def load_series(cfg: WeatherConfig) -> seq.DailySeries:
    """The daily series named by the config: a user CSV or the bundled Seattle weather."""
    if cfg.csv:
        return seq.read_daily_csv(cfg.csv, cfg.date_column, cfg.value_column)
    from dlab.data.tabular import seattle_weather

    table = seattle_weather()
    return seq.daily_series(table.frame, cfg.date_column, cfg.value_column, table.provenance)


def _torch_forecaster(cfg: WeatherConfig, split: seq.WindowSplit, n_val: int, ctx: RunContext,
                      name: str) -> tuple[SequenceRegressor, np.ndarray, object]:
    """Train the PyTorch twin on scaled windows; returns model, scaled test predictions."""
    dev = ctx.device

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(dev)

    n_fit = len(split.y_train) - n_val
    x, y = t(split.x_train[..., None]), t(split.y_train)        # (N, w, 1), (N,)
    train = (x[:n_fit], y[:n_fit])
    val = (x[n_fit:], y[n_fit:]) if n_val else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed)
        model = SequenceRegressor(SequenceConfig(cell="lstm", hidden=cfg.hidden, num_layers=2,
                                                 dense=(cfg.dense,))).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    res = fit(model, train, val=val, ctx=ctx, epochs=cfg.epochs, optimizer=opt,
              loss_fn=nn.functional.mse_loss, batch_size=cfg.batch_size,
              patience=cfg.patience if (cfg.patience and n_val) else None, name=name)
    return model, predict(model, t(split.x_test[..., None])), res


def run_weather(cfg: WeatherConfig, ctx: RunContext) -> None:
    plt = _plt()
    series = load_series(cfg)
    total = len(series.values)
    need = cfg.test_days + 2 * cfg.window + 20
    if total < need:
        raise DataError(f"{series.provenance.source}: {total} days; a window of {cfg.window} and "
                        f"{cfg.test_days} test days need at least {need} (lower --set "
                        "window=... or --set test_days=...)")
    cut = total - cfg.test_days
    split, scaler = seq.scaled_split(series.values, cfg.window, cut, test_history=True)
    n_val = int(round(len(split.y_train) * cfg.val_fraction))
    dates = series.dates
    unit = "°C" if not cfg.csv and cfg.value_column.startswith("temp") else "units"
    ctx.data(series.describe())
    ctx.data(f"Training period {dates[0]} to {dates[cut - 1]} ({cut} days, "
             f"{len(split.y_train) - n_val} training windows, the last {n_val} windows for "
             f"early stopping); test period {dates[cut]} to {dates[-1]} ({cfg.test_days} days, "
             f"every day forecast from the {cfg.window} days before it).")
    ctx.data(f"Min-max scaler fit on the training period only: min {scaler.lo:.2f}, max "
             f"{scaler.hi:.2f} {unit}.")

    # ---- PyTorch
    model, pred_torch_s, res_torch = _torch_forecaster(cfg, split, n_val, ctx, "pytorch")
    forecasts: dict[str, np.ndarray] = {"PyTorch LSTM": scaler.inverse(pred_torch_s)}
    params = {"PyTorch": count_parameters(model)}
    # ---- Keras 3
    keras_rows = []
    if cfg.keras:
        from dlab.keras_programs import weather_lstm as kw

        n_fit = len(split.y_train) - n_val
        kmodel, keras_rows = kw.train_forecaster(
            split.x_train[:n_fit, :, None], split.y_train[:n_fit],
            split.x_train[n_fit:, :, None] if n_val else None,
            split.y_train[n_fit:] if n_val else None, hidden=cfg.hidden, dense=cfg.dense,
            epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, patience=cfg.patience,
            seed=ctx.seed, log=ctx.log)
        ctx.add_history(keras_rows)
        forecasts["Keras 3 LSTM"] = scaler.inverse(kw.predict(kmodel, split.x_test[:, :, None]))
        params["Keras"] = kw.count_params(kmodel)
        import keras

        ctx.note(f"Keras {keras.__version__} on the {keras.backend.backend()} backend.")
    else:
        ctx.note("The Keras variant was skipped (keras=false).")

    # ---- baselines, on raw values
    raw = series.values
    forecasts["persistence (tomorrow = today)"] = raw[split.t_test - 1]
    train_obs = series.observed[:cut]
    seasonal, uncovered = seq.seasonal_forecast(dates[:cut][train_obs], raw[:cut][train_obs],
                                                dates[split.t_test], cfg.seasonal_halfwidth)
    season_name = "seasonal (day-of-year mean of training years)"
    forecasts[season_name] = seasonal
    if uncovered:
        ctx.note(f"{uncovered} test days fall on calendar days with no training value; the "
                 "seasonal baseline uses the training mean there.")

    scored = series.observed[split.t_test]             # never score an interpolated day
    truth = raw[split.t_test]
    scores = {k: seq.regression_scores(v[scored], truth[scored]) for k, v in forecasts.items()}
    pers = scores["persistence (tomorrow = today)"]
    ctx.table(f"Test period ({int(scored.sum())} observed days): errors in {unit}",
              ["forecast", "RMSE", "MAE", "RMSE relative to persistence"],
              [[k, s["rmse"], s["mae"], s["rmse"] / pers["rmse"]] for k, s in scores.items()])
    key = {"PyTorch LSTM": "pytorch", "Keras 3 LSTM": "keras",
           "persistence (tomorrow = today)": "persistence", season_name: "seasonal"}
    for k, s in scores.items():
        ctx.metrics[f"{key[k]}_rmse"] = s["rmse"]
        ctx.metrics[f"{key[k]}_mae"] = s["mae"]
    ctx.metrics.update({"test_days_scored": int(scored.sum()), "parameters": params,
                        "scaler_train_min": scaler.lo, "scaler_train_max": scaler.hi,
                        "pytorch_best_epoch": res_torch.best_epoch,
                        "keras_epochs_run": len(keras_rows)})

    # ---- the manual's scaler, fit on every day
    leaky = seq.MinMaxScaler.fit(raw)
    test_raw = raw[cut:]
    above = int((test_raw > scaler.hi).sum())
    below = int((test_raw < scaler.lo).sum())
    shift = np.abs(leaky.transform(raw) - scaler.transform(raw)).max()
    leak_rows = [["fit on the training period (dlab)", scaler.lo, scaler.hi],
                 ["fit on all days (the manual)", leaky.lo, leaky.hi]]
    ctx.metrics.update({"scaler_all_min": leaky.lo, "scaler_all_max": leaky.hi,
                        "test_days_outside_training_range": above + below})
    same_scaler = (leaky.lo, leaky.hi) == (scaler.lo, scaler.hi)
    if cfg.leak_check and not same_scaler:
        leak_split = seq.split_windows(leaky.transform(raw), cfg.window, cut, True)
        _, pred_leak, _ = _torch_forecaster(cfg, leak_split, n_val, ctx, "pytorch-leaky-scaler")
        leak_score = seq.regression_scores(leaky.inverse(pred_leak)[scored], truth[scored])
        ctx.metrics["pytorch_leaky_scaler_rmse"] = leak_score["rmse"]
        ctx.metrics["pytorch_leaky_scaler_mae"] = leak_score["mae"]
    ctx.table("Min-max scaler fit on the training period (dlab) and on all days (the manual)",
              ["scaler", f"min ({unit})", f"max ({unit})"], leak_rows)

    # ---- figure
    test_dates = dates[split.t_test]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(13, 7.5), height_ratios=[3, 1.3])
    ax1.plot(test_dates, truth, color="black", lw=1, label="actual")
    colours = {"PyTorch LSTM": "tab:red", "Keras 3 LSTM": "tab:blue", season_name: "tab:green"}
    for k, c in colours.items():
        if k in forecasts:
            ax1.plot(test_dates, forecasts[k], color=c, lw=1, alpha=0.85,
                     label=f"{k}: RMSE {scores[k]['rmse']:.2f}")
    if (~scored).any():
        ax1.plot(test_dates[~scored], truth[~scored], "x", color="grey",
                 label="filled gap (not scored)")
    ax1.set_ylabel(f"{cfg.value_column} ({unit})")
    ax1.set_title(f"Test period: persistence RMSE {pers['rmse']:.2f} {unit}")
    ax1.legend(fontsize=8, loc="best")
    import matplotlib.dates as mdates

    ax1.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    err = forecasts["PyTorch LSTM"] - truth
    ax2.plot(test_dates, err, color="tab:red", lw=0.8, label="PyTorch LSTM error")
    ax2.plot(test_dates, forecasts["persistence (tomorrow = today)"] - truth, color="grey",
             lw=0.6, alpha=0.7, label="persistence error")
    ax2.axhline(0, color="black", lw=0.6)
    ax2.set_ylabel(f"error ({unit})")
    ax2.legend(fontsize=8, loc="upper right")
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    fig.autofmt_xdate()
    ctx.figure(fig, "forecast.png", "Top: the actual daily values of the test period and "
               "the one-day-ahead forecasts (dates on the axis). Bottom: the forecast "
               "errors of the PyTorch LSTM and of persistence.")
    ctx.save_model(model, window=cfg.window, value_column=cfg.value_column,
                   scaler_min=scaler.lo, scaler_max=scaler.hi,
                   input="the previous `window` daily values, min-max scaled with "
                         "scaler_min/scaler_max, shape (B, window, 1)",
                   output="next day's scaled value; x * (max - min) + min gives the units")

    # ---- inferences from the numbers
    season = scores[season_name]
    for k in ("PyTorch LSTM", "Keras 3 LSTM"):
        if k not in scores:
            continue
        s = scores[k]
        ctx.infer(f"{k}: RMSE {s['rmse']:.2f} and MAE {s['mae']:.2f} {unit} against "
                  f"persistence {pers['rmse']:.2f} / {pers['mae']:.2f} and the seasonal mean "
                  f"{season['rmse']:.2f} / {season['mae']:.2f}: "
                  + _verdict(s, pers, "persistence") + "; "
                  + _verdict(s, season, "the seasonal baseline") + ".")
    if "Keras 3 LSTM" in scores:
        d = scores["Keras 3 LSTM"]["rmse"] - scores["PyTorch LSTM"]["rmse"]
        ctx.infer(f"The Keras and PyTorch versions differ by {d:+.2f} {unit} RMSE (same "
                  f"architecture, {params['Keras']:,} and {params['PyTorch']:,} parameters: "
                  "PyTorch keeps two bias vectors per LSTM gate, Keras one).")
    if same_scaler:
        ctx.infer(f"Fitting the scaler on all days, as the manual does, gives the same range "
                  f"here, [{scaler.lo:.1f}, {scaler.hi:.1f}] {unit}: the training period "
                  "already holds both extremes, so on this series and split the leak changes "
                  "no number. It is still a method error: the scaler reads the test period, "
                  "and a test period with a new record would be squeezed into [0, 1] and "
                  "look familiar to the model.")
    else:
        ctx.infer(f"Fitting the scaler on all days, as the manual does, moves its range from "
                  f"[{scaler.lo:.1f}, {scaler.hi:.1f}] to [{leaky.lo:.1f}, {leaky.hi:.1f}] "
                  f"{unit} (scaled values shift by up to {shift:.3f}): the test period's "
                  f"extremes are used before it is forecast. {above + below} test days lie "
                  "outside the training range, which only the honest scaler shows.")
    if "pytorch_leaky_scaler_rmse" in ctx.metrics:
        ls = ctx.metrics["pytorch_leaky_scaler_rmse"]
        ctx.infer(f"Retrained with the leaky scaler, the PyTorch model scores RMSE {ls:.2f} "
                  f"{unit} against {scores['PyTorch LSTM']['rmse']:.2f} with the honest one "
                  f"and {pers['rmse']:.2f} for persistence.")


def _verdict(model: dict[str, float], base: dict[str, float], name: str) -> str:
    """'x% lower RMSE and y% lower MAE than NAME', or which of the two is not lower."""
    parts = []
    for k in ("rmse", "mae"):
        rel = 100 * (base[k] - model[k]) / base[k]
        parts.append(f"{abs(rel):.1f}% {'lower' if rel > 0 else 'HIGHER'} {k.upper()}")
    better = all(model[k] < base[k] for k in ("rmse", "mae"))
    worse = all(model[k] >= base[k] for k in ("rmse", "mae"))
    tail = "better" if better else "no better" if worse else "mixed"
    return f"{' and '.join(parts)} than {name} ({tail})"


WEATHER = Implementation(
    config=WeatherConfig, run=run_weather,
    profiles={"smoke": {"window": 20, "test_days": 120, "hidden": 8, "dense": 4,
                        "epochs": 2, "batch_size": 64, "keras": False, "leak_check": True},
              "full": {"epochs": 60, "lr": 0.001, "patience": 15, "leak_check": True}},
)

# ------------------------------------------------------------- 11.2 sequence LSTM


@dataclass
class SequenceLSTMConfig:
    n_sequences: int = 4000  # synthetic sequences, split 70/15/15 into train/val/test
    length: int = 30  # time steps the model reads
    noise: float = 0.05  # standard deviation of the observation noise
    hidden: int = 50  # units of each LSTM layer
    num_layers: int = 2  # stacked LSTM layers
    epochs: int = 15  # passes over the training sequences
    batch_size: int = 64  # sequences per batch from the DataLoader
    lr: float = 0.003  # Adam learning rate
    patience: int = 5  # early stopping on the validation sequences (0 = off)
    control_epochs: int = 5  # epochs on targets independent of the inputs (0 = skip)
    n_shown: int = 10  # test sequences in the table of sample predictions

    def validate(self) -> None:
        if self.n_sequences < 40 or self.length < 2:
            raise ValueError("n_sequences must be at least 40 and length at least 2")
        if self.noise < 0 or self.patience < 0 or self.control_epochs < 0 or self.n_shown < 1:
            raise ValueError("noise, patience and control_epochs must be >= 0, n_shown >= 1")


def _loaders(x: np.ndarray, y: np.ndarray, n_train: int, n_val: int, batch_size: int,
             generator: torch.Generator) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Train (shuffled), validation and test DataLoaders over consecutive slices."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    parts = [slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, None)]
    sets = [TensorDataset(xt[p], yt[p]) for p in parts]
    return (DataLoader(sets[0], batch_size=batch_size, shuffle=True, generator=generator),
            DataLoader(sets[1], batch_size=1024), DataLoader(sets[2], batch_size=1024))


def run_sequence_lstm(cfg: SequenceLSTMConfig, ctx: RunContext) -> None:
    plt = _plt()
    dev = ctx.device
    x, y, clean = seq.random_sines(ctx.rng, cfg.n_sequences, cfg.length, cfg.noise)
    n_train = int(0.7 * cfg.n_sequences)
    n_val = int(0.15 * cfg.n_sequences)
    test = slice(n_train + n_val, None)
    train_dl, val_dl, test_dl = _loaders(x, y, n_train, n_val, cfg.batch_size,
                                         ctx.torch_generator(11))
    ctx.data(f"{cfg.n_sequences} sequences of {cfg.length} steps, each a fresh sum of two "
             f"sines (amplitudes U(0.2, 1), frequencies U(1/25, 1/6) per step, random phases) "
             f"plus N(0, {cfg.noise:g}^2) noise; target: the next value. Split {n_train} / "
             f"{n_val} / {cfg.n_sequences - n_train - n_val} (train / validation / test), "
             f"served by torch DataLoaders (batch {cfg.batch_size}, shuffled each epoch).")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed)
        model = SequenceRegressor(SequenceConfig(cell="lstm", hidden=cfg.hidden,
                                                 num_layers=cfg.num_layers)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    res = fit(model, train_dl, val=val_dl, ctx=ctx, epochs=cfg.epochs, optimizer=opt,
              loss_fn=nn.functional.mse_loss, batch_size=cfg.batch_size,
              patience=cfg.patience or None, name="lstm")
    test_mse = evaluate(model, test_dl, nn.functional.mse_loss, device=dev)["loss"]
    pred = predict(model, torch.from_numpy(x[test]).to(dev))
    y_test = y[test].astype(np.float64)
    train_mean = float(y[:n_train].mean())
    mean_mse = float(np.mean((y_test - train_mean) ** 2))
    floor = float(np.mean((y_test - clean[test]) ** 2))
    last_mse = float(np.mean((y_test - x[test][:, -1, 0]) ** 2))
    ctx.metrics.update({"test_mse": test_mse, "mean_prediction_mse": mean_mse,
                        "last_value_mse": last_mse, "noise_floor_mse": floor,
                        "noise_variance": cfg.noise ** 2, "parameters": count_parameters(model),
                        "epochs_run": len(res.history), "best_epoch": res.best_epoch})
    ctx.table("Held-out test MSE",
              ["predictor", "test MSE", "relative to predicting the mean"],
              [[f"LSTM {cfg.num_layers} x {cfg.hidden}", test_mse, test_mse / mean_mse],
               ["predict the training mean", mean_mse, 1.0],
               ["repeat the last value", last_mse, last_mse / mean_mse],
               ["the noise-free next value (floor)", floor, floor / mean_mse]])
    shown = min(cfg.n_shown, len(y_test))
    ctx.table(f"Sample predictions on the first {shown} test sequences",
              ["test sequence", "last input", "truth", "LSTM prediction", "error",
               "training mean"],
              [[i, float(x[test][i, -1, 0]), y_test[i], pred[i], pred[i] - y_test[i],
                train_mean] for i in range(shown)])

    control = None
    if cfg.control_epochs:
        rng = np.random.default_rng([ctx.seed, 11])
        xc = rng.normal(0, 1, x.shape).astype(np.float32)
        yc = rng.normal(0, 1, y.shape).astype(np.float32)     # independent of xc
        c_train, c_val, c_test = _loaders(xc, yc, n_train, n_val, cfg.batch_size,
                                          ctx.torch_generator(12))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed + 1)
            cmodel = SequenceRegressor(SequenceConfig(cell="lstm", hidden=cfg.hidden,
                                                      num_layers=cfg.num_layers)).to(dev)
        copt = torch.optim.Adam(cmodel.parameters(), lr=cfg.lr)
        fit(cmodel, c_train, val=c_val, ctx=ctx, epochs=cfg.control_epochs, optimizer=copt,
            loss_fn=nn.functional.mse_loss, batch_size=cfg.batch_size, name="control")
        c_mse = evaluate(cmodel, c_test, nn.functional.mse_loss, device=dev)["loss"]
        c_mean = float(np.mean((yc[test] - yc[:n_train].mean()) ** 2))
        control = (c_mse, c_mean)
        ctx.metrics.update({"control_test_mse": c_mse, "control_mean_prediction_mse": c_mean})

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4))
    for i in range(min(4, shown)):
        steps = np.arange(cfg.length)
        line, = ax1.plot(steps, x[test][i, :, 0], lw=1)
        ax1.plot(cfg.length, y_test[i], "o", color=line.get_color())
        ax1.plot(cfg.length, pred[i], "x", color=line.get_color(), ms=9, mew=2)
    ax1.set_xlabel("time step")
    ax1.set_title("Test sequences: next value (o) and LSTM prediction (x)")
    lim = [float(min(y_test.min(), pred.min())), float(max(y_test.max(), pred.max()))]
    ax2.scatter(y_test, pred, s=5, alpha=0.5)
    ax2.plot(lim, lim, color="black", lw=1)
    ax2.axhline(train_mean, color="grey", ls="--", lw=1, label="training mean")
    ax2.set_xlabel("truth")
    ax2.set_ylabel("prediction")
    ax2.set_title(f"All test sequences: MSE {test_mse:.4f} (mean: {mean_mse:.3f})")
    ax2.legend(fontsize=8)
    ctx.figure(fig, "sequence_predictions.png", "Left: four test sequences, their true next "
               "value (circle) and the LSTM's prediction (cross). Right: prediction against "
               "truth for every test sequence.")
    ctx.save_model(model, length=cfg.length, hidden=cfg.hidden, num_layers=cfg.num_layers,
                   input="raw sequence values, shape (B, length, 1)")

    ctx.infer(f"Held-out MSE {test_mse:.4f} against {mean_mse:.4f} for predicting the mean "
              f"({100 * (1 - test_mse / mean_mse):.1f}% lower) and {last_mse:.4f} for repeating "
              f"the last value; the noise sets the floor at {floor:.4f}.")
    if control is not None:
        c_mse, c_mean = control
        ctx.infer(f"Control: on targets independent of the inputs the same model scores "
                  f"{c_mse:.4f} against {c_mean:.4f} for the mean ({c_mse / c_mean:.3f} of "
                  "it): with nothing to learn it predicts the mean, the same signature as the "
                  "original program's model, which learns only the mean.")


SEQUENCE_LSTM = Implementation(
    config=SequenceLSTMConfig, run=run_sequence_lstm,
    profiles={"smoke": {"n_sequences": 400, "length": 12, "hidden": 8, "epochs": 2,
                        "control_epochs": 1},
              "full": {"n_sequences": 10000, "epochs": 40, "patience": 8}},
)
