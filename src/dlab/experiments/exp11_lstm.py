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
mean. A control run on targets that do not depend on the inputs measures what the same
model does when there is nothing to learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlab.data import sequences as seq
from dlab.errors import DataError
from dlab.figures import pyplot
from dlab.models import count_parameters
from dlab.models.rnn import SequenceConfig, SequenceRegressor
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.training import FitResult, evaluate, fit, predict
from dlab.uncertainty import Difference, paired_bootstrap, paired_bootstrap_statistic
from dlab.verdicts import Target

PERSISTENCE = "persistence (tomorrow = today)"
SEASONAL = "seasonal (day-of-year mean of training years)"
KEYS = {"PyTorch LSTM": "pytorch", "Keras 3 LSTM": "keras", PERSISTENCE: "persistence",
        SEASONAL: "seasonal"}


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
    forget_bias: float = 0.0  # added to the PyTorch LSTM's forget-gate bias at start (Keras
    # starts it at 1; at 1 here seed 2 stopped early at RMSE 3.97, worse than persistence)
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


@dataclass
class WeatherData:
    series: seq.DailySeries
    split: seq.WindowSplit  # min-max scaled windows (scaler fit on the training period)
    scaler: seq.MinMaxScaler
    cut: int  # index of the first test day
    n_val: int  # last training windows kept for early stopping
    unit: str
    scored: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # observed test days


def load_series(cfg: WeatherConfig) -> seq.DailySeries:
    """The daily series named by the config: a user CSV or the bundled Seattle weather."""
    if cfg.csv:
        return seq.read_daily_csv(cfg.csv, cfg.date_column, cfg.value_column)
    from dlab.data.tabular import seattle_weather

    table = seattle_weather()
    return seq.daily_series(table.frame, cfg.date_column, cfg.value_column, table.provenance)


def load_weather(cfg: WeatherConfig, ctx: RunContext) -> WeatherData:
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
    unit = "°C" if not cfg.csv and cfg.value_column.startswith("temp") else "units"
    dates = series.dates
    ctx.data(series.describe())
    ctx.data(f"Training period {dates[0]} to {dates[cut - 1]} ({cut} days, "
             f"{len(split.y_train) - n_val} training windows, the last {n_val} windows for "
             f"early stopping); test period {dates[cut]} to {dates[-1]} ({cfg.test_days} days, "
             f"every day forecast from the {cfg.window} days before it).")
    ctx.data(f"Min-max scaler fit on the training period only: min {scaler.lo:.2f}, max "
             f"{scaler.hi:.2f} {unit}.")
    return WeatherData(series, split, scaler, cut, n_val, unit,
                       scored=series.observed[split.t_test])  # never score a filled-in day


def _windows(a: np.ndarray, device: str) -> torch.Tensor:
    """Windows (N, w) as a float32 tensor (N, w, 1) on `device`."""
    return torch.from_numpy(np.ascontiguousarray(a[..., None], dtype=np.float32)).to(device)


def weather_net(cfg: WeatherConfig, ctx: RunContext) -> SequenceRegressor:
    """The PyTorch forecaster: two LSTM layers of cfg.hidden units, Dense(cfg.dense) and
    Dense(1), on the run's device; its initial weights depend on the run's seed only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed)
        return SequenceRegressor(SequenceConfig(cell="lstm", hidden=cfg.hidden, num_layers=2,
                                                dense=(cfg.dense,),
                                                forget_bias=cfg.forget_bias)).to(ctx.device)


def keras_twin(cfg: WeatherConfig, ctx: RunContext) -> Any:
    """The same forecaster in Keras 3 (its backend: torch unless KERAS_BACKEND says
    otherwise), seeded with the run's seed; Keras's version and backend go into the notes."""
    from dlab.keras_programs import weather_lstm as kw

    keras = kw.load_keras()
    ctx.note(f"Keras {keras.__version__} on the {keras.backend.backend()} backend.")
    return kw.build_forecaster(cfg.window, 1, cfg.hidden, cfg.dense, seed=ctx.seed)


def train_weather(cfg: WeatherConfig, model: nn.Module, split: seq.WindowSplit, n_val: int,
                  ctx: RunContext, name: str) -> FitResult:
    """Adam on the scaled training windows but the last `n_val`, early-stopped on those;
    trains `model` in place and returns fit's history."""
    n_fit = len(split.y_train) - n_val
    x = _windows(split.x_train, ctx.device)                                     # (N, w, 1)
    y = torch.from_numpy(np.ascontiguousarray(split.y_train, dtype=np.float32)).to(ctx.device)
    train = (x[:n_fit], y[:n_fit])
    val = (x[n_fit:], y[n_fit:]) if n_val else None
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return fit(model, train, val=val, ctx=ctx, epochs=cfg.epochs, optimizer=opt,
               loss_fn=nn.functional.mse_loss, batch_size=cfg.batch_size,
               patience=cfg.patience if (cfg.patience and n_val) else None, name=name)


def train_keras(cfg: WeatherConfig, kmodel: Any, w: WeatherData, ctx: RunContext
                ) -> list[dict[str, Any]]:
    """The Keras twin on the same windows in Keras's own loop, in place. Returns its
    history rows (one per epoch run), which also go into the run's history."""
    from dlab.keras_programs import weather_lstm as kw

    s, n_fit = w.split, len(w.split.y_train) - w.n_val
    rows = kw.train_forecaster(
        kmodel, s.x_train[:n_fit, :, None], s.y_train[:n_fit],
        s.x_train[n_fit:, :, None] if w.n_val else None, s.y_train[n_fit:] if w.n_val else None,
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, patience=cfg.patience,
        log=ctx.log)
    ctx.add_history(rows)
    return rows


def train_leaky(cfg: WeatherConfig, w: WeatherData, ctx: RunContext) -> np.ndarray | None:
    """With leak_check, and when the manual's scaler (fit on every day) has another range
    than the training period's: a PyTorch forecaster from `weather_net` trained on windows
    scaled with it. Returns its test forecasts in the series' units, else None."""
    raw = w.series.values
    leaky = seq.MinMaxScaler.fit(raw)
    if not cfg.leak_check or (leaky.lo, leaky.hi) == (w.scaler.lo, w.scaler.hi):
        return None
    leak_split = seq.split_windows(leaky.transform(raw), cfg.window, w.cut, True)
    model = weather_net(cfg, ctx)
    train_weather(cfg, model, leak_split, w.n_val, ctx, "pytorch-leaky-scaler")
    return leaky.inverse(predict(model, _windows(leak_split.x_test, ctx.device)))


def forecast_all(cfg: WeatherConfig, w: WeatherData, model: nn.Module, kmodel: Any,
                 ctx: RunContext) -> dict[str, np.ndarray]:
    """Test forecasts in the series' units: the PyTorch LSTM, the Keras twin (unless
    `kmodel` is None) and the two baselines."""
    x_test = w.split.x_test
    forecasts = {"PyTorch LSTM": w.scaler.inverse(predict(model, _windows(x_test, ctx.device)))}
    if kmodel is not None:
        from dlab.keras_programs import weather_lstm as kw

        forecasts["Keras 3 LSTM"] = w.scaler.inverse(kw.predict(kmodel, x_test[:, :, None]))
    else:
        ctx.note("The Keras variant was skipped (keras=false).")
    raw, dates, cut = w.series.values, w.series.dates, w.cut
    forecasts[PERSISTENCE] = raw[w.split.t_test - 1]
    obs = w.series.observed[:cut]
    forecasts[SEASONAL], uncovered = seq.seasonal_forecast(
        dates[:cut][obs], raw[:cut][obs], dates[w.split.t_test], cfg.seasonal_halfwidth)
    if uncovered:
        ctx.note(f"{uncovered} test days fall on calendar days with no training value; the "
                 "seasonal baseline uses the training mean there.")
    return forecasts


def model_info(model: nn.Module, res: FitResult, kmodel: Any, krows: list[dict[str, Any]]
               ) -> dict[str, Any]:
    """Parameter counts of both forecasters, the PyTorch model's best epoch and the epochs
    the Keras twin ran (0 when it was not trained)."""
    params = {"PyTorch": count_parameters(model)}
    if kmodel is not None:
        params["Keras"] = int(kmodel.count_params())
    return {"parameters": params, "pytorch_bias_hh_parameters": bias_vectors(model),
            "pytorch_best_epoch": res.best_epoch, "keras_epochs_run": len(krows)}


def leak_scores(w: WeatherData, leaky_forecast: np.ndarray | None) -> dict[str, Any]:
    """The manual's scaler, fit on every day: its range, the test days outside the training
    range, the largest shift of a scaled value; and, given the forecasts of the model
    trained with it, their RMSE and MAE on the observed test days."""
    raw = w.series.values
    leaky = seq.MinMaxScaler.fit(raw)
    test_raw = raw[w.cut:]
    out: dict[str, Any] = {
        "scaler_all_min": leaky.lo, "scaler_all_max": leaky.hi,
        "test_days_outside_training_range": int((test_raw > w.scaler.hi).sum()
                                                + (test_raw < w.scaler.lo).sum()),
        "scaled_shift": float(np.abs(leaky.transform(raw) - w.scaler.transform(raw)).max())}
    if leaky_forecast is not None:
        truth = raw[w.split.t_test][w.scored]
        s = seq.regression_scores(leaky_forecast[w.scored], truth)
        out["pytorch_leaky_scaler_rmse"], out["pytorch_leaky_scaler_mae"] = s["rmse"], s["mae"]
    return out


def score_weather(w: WeatherData, forecasts: dict[str, np.ndarray], seed: int = 0
                  ) -> dict[str, Any]:
    """RMSE and MAE of every forecast on the observed test days, in the series' units;
    and for each LSTM the gaps to both baselines with their paired-bootstrap intervals
    over the days (`gaps`)."""
    truth = w.series.values[w.split.t_test]
    m: dict[str, Any] = {"test_days_scored": int(w.scored.sum()),
                         "scaler_train_min": w.scaler.lo, "scaler_train_max": w.scaler.hi}
    for name, pred in forecasts.items():
        s = seq.regression_scores(pred[w.scored], truth[w.scored])
        m[f"{KEYS[name]}_rmse"], m[f"{KEYS[name]}_mae"] = s["rmse"], s["mae"]
    errors = {KEYS[k]: p[w.scored] - truth[w.scored] for k, p in forecasts.items()}
    for model in ("pytorch", "keras"):
        for base in ("persistence", "seasonal"):
            if model in errors:
                m |= gaps(errors[model], errors[base], f"{model}_vs_{base}", seed)
    return m


def gaps(a: np.ndarray, b: np.ndarray, key: str, seed: int) -> dict[str, dict[str, Any]]:
    """RMSE(a) - RMSE(b) and MAE(a) - MAE(b) of two forecasts' errors (N,) on the same
    days, each with the 95% interval of a paired bootstrap over the days:
    {key + "_rmse": Difference.as_dict(), key + "_mae": ...}."""
    def rmse_gap(sa: np.ndarray, sb: np.ndarray) -> float:
        return float(np.sqrt(sa.mean()) - np.sqrt(sb.mean()))

    what = "test days"
    return {f"{key}_rmse": paired_bootstrap_statistic(rmse_gap, a ** 2, b ** 2, seed=seed,
                                                      what=what).as_dict(),
            f"{key}_mae": paired_bootstrap(np.abs(a), np.abs(b), seed=seed, what=what).as_dict()}


def bias_vectors(model: nn.Module) -> int:
    """Parameters of the PyTorch LSTM's second bias vectors (bias_hh of every layer),
    which Keras's LSTM does not have."""
    return sum(p.numel() for n, p in model.named_parameters() if "bias_hh" in n)


def judge_weather(m: dict[str, Any], w: WeatherData, ctx: RunContext) -> None:
    u = w.unit
    for name, key in (("PyTorch LSTM", "pytorch"), ("Keras 3 LSTM", "keras")):
        if f"{key}_rmse" not in m:
            continue
        ctx.infer(f"{name}: RMSE {m[key + '_rmse']:.2f} and MAE {m[key + '_mae']:.2f} {u}; "
                  f"persistence {m['persistence_rmse']:.2f} / {m['persistence_mae']:.2f}, the "
                  f"seasonal mean {m['seasonal_rmse']:.2f} / {m['seasonal_mae']:.2f}.")
        for base, k, label in (("persistence", "rmse", "persistence"),
                               ("persistence", "mae", "persistence"),
                               ("seasonal", "rmse", "the seasonal mean")):
            ctx.compare(f"test {k.upper()}", name, m[f"{key}_{k}"], label, m[f"{base}_{k}"],
                        diff=Difference.from_dict(m[f"{key}_vs_{base}_{k}"]), better="lower",
                        digits=3, unit=u)
    if "keras_rmse" in m:
        _judge_parameters(m, u, ctx)
    lo, hi = w.scaler.lo, w.scaler.hi
    ctx.claim(f"Fitting the scaler on all days, as the manual does, gives the same range here, "
              f"[{lo:.1f}, {hi:.1f}] {u}: the training period already holds both extremes, so "
              "on this series and split the leak changes no number. It is still a method "
              "error: the scaler reads the test period before it is forecast.",
              holds=(m["scaler_all_min"], m["scaler_all_max"]) == (lo, hi),
              otherwise=f"Fitting the scaler on all days, as the manual does, moves its range "
              f"from [{lo:.1f}, {hi:.1f}] to [{m['scaler_all_min']:.1f}, "
              f"{m['scaler_all_max']:.1f}] {u} (scaled values shift by up to "
              f"{m['scaled_shift']:.3f}): the test period's extremes are used before it is "
              f"forecast. {m['test_days_outside_training_range']} test days lie outside the "
              "training range.", train_range=[lo, hi],
              all_days_range=[m["scaler_all_min"], m["scaler_all_max"]])
    if "pytorch_leaky_scaler_rmse" in m:
        ctx.infer(f"Retrained with the leaky scaler, the PyTorch model scores RMSE "
                  f"{m['pytorch_leaky_scaler_rmse']:.2f} {u} against {m['pytorch_rmse']:.2f} "
                  f"with the honest one and {m['persistence_rmse']:.2f} for persistence.")


def _judge_parameters(m: dict[str, Any], u: str, ctx: RunContext) -> None:
    """Keras against PyTorch: RMSE and parameter counts, and what the counts' gap is."""
    p, extra = m["parameters"], m["pytorch_bias_hh_parameters"]
    gap = p["PyTorch"] - p["Keras"]
    ctx.infer(f"Keras and PyTorch RMSE: {m['keras_rmse']:.2f} and {m['pytorch_rmse']:.2f} "
              f"{u}, with {p['Keras']:,} and {p['PyTorch']:,} parameters for the same "
              "architecture.")
    ctx.claim(f"The PyTorch model has {gap:,} parameters more, exactly the {extra:,} of its "
              "LSTM layers' second bias vectors (bias_hh, 4 x units per layer), which Keras's "
              "LSTM does not have: PyTorch adds two bias vectors per gate, Keras one.",
              holds=gap == extra, otherwise=f"The PyTorch model has {gap:,} parameters more "
              f"than the Keras one; its second bias vectors (bias_hh) hold {extra:,}, so they "
              "do not account for the whole gap.", gap=gap, bias_hh=extra)


def _forecast_figure(cfg: WeatherConfig, w: WeatherData, forecasts: dict[str, np.ndarray],
                     m: dict[str, Any]) -> Any:
    import matplotlib.dates as mdates

    plt = pyplot()
    test_dates, truth = w.series.dates[w.split.t_test], w.series.values[w.split.t_test]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(13, 7.5), height_ratios=[3, 1.3])
    ax1.plot(test_dates, truth, color="black", lw=1, label="actual")
    for k, c in {"PyTorch LSTM": "tab:red", "Keras 3 LSTM": "tab:blue",
                 SEASONAL: "tab:green"}.items():
        if k in forecasts:
            ax1.plot(test_dates, forecasts[k], color=c, lw=1, alpha=0.85,
                     label=f"{k}: RMSE {m[KEYS[k] + '_rmse']:.2f}")
    if (~w.scored).any():
        ax1.plot(test_dates[~w.scored], truth[~w.scored], "x", color="grey",
                 label="filled gap (not scored)")
    ax1.set_ylabel(f"{cfg.value_column} ({w.unit})")
    ax1.set_title(f"Test period: persistence RMSE {m['persistence_rmse']:.2f} {w.unit}")
    ax1.legend(fontsize=8, loc="best")
    ax2.plot(test_dates, forecasts["PyTorch LSTM"] - truth, color="tab:red", lw=0.8,
             label="PyTorch LSTM error")
    ax2.plot(test_dates, forecasts[PERSISTENCE] - truth, color="grey", lw=0.6, alpha=0.7,
             label="persistence error")
    ax2.axhline(0, color="black", lw=0.6)
    ax2.set_ylabel(f"error ({w.unit})")
    ax2.legend(fontsize=8, loc="upper right")
    for ax in (ax1, ax2):
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    fig.autofmt_xdate()
    return fig


def write_weather(cfg: WeatherConfig, w: WeatherData, forecasts: dict[str, np.ndarray],
                  model: nn.Module, m: dict[str, Any], ctx: RunContext) -> None:
    u, pers = w.unit, m["persistence_rmse"]
    ctx.table(f"Test period ({m['test_days_scored']} observed days): errors in {u}",
              ["forecast", "RMSE", "MAE", "RMSE relative to persistence"],
              [[k, m[f"{KEYS[k]}_rmse"], m[f"{KEYS[k]}_mae"], m[f"{KEYS[k]}_rmse"] / pers]
               for k in forecasts])
    ctx.table("Min-max scaler fit on the training period (dlab) and on all days (the manual)",
              ["scaler", f"min ({u})", f"max ({u})"],
              [["fit on the training period (dlab)", w.scaler.lo, w.scaler.hi],
               ["fit on all days (the manual)", m["scaler_all_min"], m["scaler_all_max"]]])
    ctx.figure(_forecast_figure(cfg, w, forecasts, m), "forecast.png", "Top: the actual daily "
               "values of the test period and the one-day-ahead forecasts (dates on the "
               "axis). Bottom: the forecast errors of the PyTorch LSTM and of persistence.")
    ctx.save_model(model, window=cfg.window, value_column=cfg.value_column,
                   scaler_min=w.scaler.lo, scaler_max=w.scaler.hi,
                   input="the previous `window` daily values, min-max scaled with "
                         "scaler_min/scaler_max, shape (B, window, 1)",
                   output="next day's scaled value; x * (max - min) + min gives the units")


def run_weather(cfg: WeatherConfig, ctx: RunContext) -> None:
    # step data: the daily series, split in time, scaled with the training period's range
    w = load_weather(cfg, ctx)
    # step model: the PyTorch LSTM forecaster and, with keras=true, its Keras 3 twin
    model = weather_net(cfg, ctx)
    kmodel = keras_twin(cfg, ctx) if cfg.keras else None
    # step train: each LSTM on the scaled training windows; with leak_check, the leaky scaler
    res = train_weather(cfg, model, w.split, w.n_val, ctx, "pytorch")
    krows = train_keras(cfg, kmodel, w, ctx) if kmodel is not None else []
    leaky_forecast = train_leaky(cfg, w, ctx)
    # step score: RMSE and MAE of the LSTMs and of the two baselines on the observed test days
    forecasts = forecast_all(cfg, w, model, kmodel, ctx)
    m = {**score_weather(w, forecasts, ctx.seed), **model_info(model, res, kmodel, krows),
         **leak_scores(w, leaky_forecast)}
    ctx.metrics.update(m)
    # step judge: each LSTM against persistence and the seasonal mean; the scaler's leak
    judge_weather(m, w, ctx)
    # step write: the table of errors, the scalers, the forecast figure and the saved model
    write_weather(cfg, w, forecasts, model, m, ctx)


def _keras_ran(m: dict[str, Any]) -> bool:
    return "keras_rmse" in m


WEATHER = Implementation(
    config=WeatherConfig, run=run_weather,
    profiles={"smoke": {"window": 20, "test_days": 120, "hidden": 8, "dense": 4,
                        "epochs": 2, "batch_size": 64, "keras": False, "leak_check": True},
              # full: the manual's 50 epochs of batch 16 at lr 0.001
              "full": {"epochs": 50, "lr": 0.001, "batch_size": 16, "patience": 15,
                       "leak_check": True}},
    crippled={"epochs": 1, "keras": False},
    targets=(
        Target("pytorch_rmse", below="persistence_rmse", profiles=("quick", "full"),
               interval="pytorch_vs_persistence_rmse",
               why="a forecast is useful only if it beats 'tomorrow = today', beyond the "
                   "spread of a paired bootstrap over the test days"),
        Target("pytorch_rmse", below="seasonal_rmse", profiles=("quick", "full"),
               interval="pytorch_vs_seasonal_rmse",
               why="and the calendar-day mean of the training years"),
        Target("keras_rmse", below="persistence_rmse", profiles=("quick", "full"),
               interval="keras_vs_persistence_rmse",
               when=_keras_ran, when_text="the Keras variant is trained (keras=true)",
               why="the Keras twin must beat 'tomorrow = today' too"),
    ),
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
    control: bool = True  # also train on targets independent of the inputs (false skips it)
    control_epochs: int = 5  # epochs of that control run
    n_shown: int = 10  # test sequences in the table of sample predictions

    def validate(self) -> None:
        if self.n_sequences < 40 or self.length < 2:
            raise ValueError("n_sequences must be at least 40 and length at least 2")
        if self.noise < 0 or self.patience < 0 or self.n_shown < 1:
            raise ValueError("noise and patience must be >= 0, n_shown >= 1")


def _loaders(x: np.ndarray, y: np.ndarray, n_train: int, n_val: int, batch_size: int,
             generator: torch.Generator) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Train (shuffled), validation and test DataLoaders over consecutive slices."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    parts = [slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, None)]
    sets = [TensorDataset(xt[p], yt[p]) for p in parts]
    return (DataLoader(sets[0], batch_size=batch_size, shuffle=True, generator=generator),
            DataLoader(sets[1], batch_size=1024), DataLoader(sets[2], batch_size=1024))


def load_sequences(cfg: SequenceLSTMConfig, ctx: RunContext) -> dict[str, Any]:
    """Sequences x (N, T, 1), next values y (N,) and their noise-free values; the split
    sizes; DataLoaders; and the training mean (in float32, the models' precision)."""
    x, y, clean = seq.random_sines(ctx.rng, cfg.n_sequences, cfg.length, cfg.noise)
    n_train, n_val = int(0.7 * cfg.n_sequences), int(0.15 * cfg.n_sequences)
    loaders = _loaders(x, y, n_train, n_val, cfg.batch_size, ctx.torch_generator(11))
    ctx.data(f"{cfg.n_sequences} sequences of {cfg.length} steps, each a fresh sum of two "
             f"sines (amplitudes U(0.2, 1), frequencies U(1/25, 1/6) per step, random phases) "
             f"plus N(0, {cfg.noise:g}^2) noise; target: the next value. Split {n_train} / "
             f"{n_val} / {cfg.n_sequences - n_train - n_val} (train / validation / test), "
             f"served by torch DataLoaders (batch {cfg.batch_size}, shuffled each epoch).")
    return {"x": x, "y": y, "clean": clean, "n_train": n_train, "n_val": n_val,
            "test": slice(n_train + n_val, None), "loaders": loaders,
            "train_mean": float(np.float32(y[:n_train].mean()))}


def sequence_net(cfg: SequenceLSTMConfig, ctx: RunContext, seed: int) -> SequenceRegressor:
    """cfg.num_layers LSTM layers of cfg.hidden units and a linear output from h_T, on the
    run's device; its initial weights depend on `seed` only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SequenceRegressor(SequenceConfig(cell="lstm", hidden=cfg.hidden,
                                                num_layers=cfg.num_layers)).to(ctx.device)


def train_lstm(cfg: SequenceLSTMConfig, model: nn.Module, d: dict[str, Any], ctx: RunContext
               ) -> FitResult:
    """Trains `model` in place through the DataLoader, early-stopped on the validation
    loader; returns fit's history."""
    train_dl, val_dl, _ = d["loaders"]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return fit(model, train_dl, val=val_dl, ctx=ctx, epochs=cfg.epochs, optimizer=opt,
               loss_fn=nn.functional.mse_loss, batch_size=cfg.batch_size,
               patience=cfg.patience or None, name="lstm")


def train_control(cfg: SequenceLSTMConfig, d: dict[str, Any], ctx: RunContext
                  ) -> dict[str, Any]:
    """The control: a network from `sequence_net` (seed + 1) trained for cfg.control_epochs
    on inputs and targets drawn independently of each other, so there is nothing to learn.
    Returns the trained model, its inputs x and targets y and its test loader."""
    rng = np.random.default_rng([ctx.seed, 11])
    xc = rng.normal(0, 1, d["x"].shape).astype(np.float32)
    yc = rng.normal(0, 1, d["y"].shape).astype(np.float32)     # independent of xc
    c_train, c_val, c_test = _loaders(xc, yc, d["n_train"], d["n_val"], cfg.batch_size,
                                      ctx.torch_generator(12))
    model = sequence_net(cfg, ctx, ctx.seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    fit(model, c_train, val=c_val, ctx=ctx, epochs=cfg.control_epochs, optimizer=opt,
        loss_fn=nn.functional.mse_loss, batch_size=cfg.batch_size, name="control")
    return {"model": model, "x": xc, "y": yc, "test_loader": c_test}


def score_control(control: dict[str, Any], d: dict[str, Any], device: str, seed: int = 0
                  ) -> dict[str, Any]:
    """The control's test MSE, the mean predictor's with the paired-bootstrap interval of
    the gap, and the spread of its predictions relative to the spread of the targets."""
    model, xc, yc, test = control["model"], control["x"], control["y"], d["test"]
    pred = predict(model, torch.from_numpy(xc[test]).to(device))
    y = yc[test].astype(np.float64)
    mean_err = (y - float(yc[:d["n_train"]].mean())) ** 2
    gap = paired_bootstrap((pred - y) ** 2, mean_err, seed=seed, what="test sequences")
    return {"control_test_mse": evaluate(model, control["test_loader"], nn.functional.mse_loss,
                                         device=device)["loss"],
            "control_mean_prediction_mse": float(mean_err.mean()),
            "control_vs_mean_prediction": gap.as_dict(),
            "control_prediction_spread": float(pred.std() / yc[test].std())}


def score_sequences(model: nn.Module, res: FitResult, d: dict[str, Any], device: str,
                    seed: int = 0) -> dict[str, Any]:
    """Test MSE of the LSTM and of the predictors that need no model (all in float64),
    the LSTM's gaps to them with paired-bootstrap intervals over the test sequences."""
    test = d["test"]
    x_test, y_test = d["x"][test], d["y"][test].astype(np.float64)
    pred = predict(model, torch.from_numpy(x_test).to(device))
    err, mean_err = (pred - y_test) ** 2, (y_test - d["train_mean"]) ** 2
    last_err = (y_test - x_test[:, -1, 0]) ** 2
    test_mse, mean_mse = float(err.mean()), float(mean_err.mean())
    return {"test_mse": test_mse, "mean_prediction_mse": mean_mse,
            "mse_over_mean_prediction": test_mse / mean_mse,
            "last_value_mse": float(last_err.mean()),
            "test_mse_vs_mean_prediction": paired_bootstrap(err, mean_err, seed=seed,
                                                            what="test sequences").as_dict(),
            "test_mse_vs_last_value": paired_bootstrap(err, last_err, seed=seed,
                                                       what="test sequences").as_dict(),
            "noise_floor_mse": float(np.mean((y_test - d["clean"][test]) ** 2)),
            "parameters": count_parameters(model), "epochs_run": len(res.history),
            "best_epoch": res.best_epoch, "test_sequences": len(y_test),
            "train_mean": d["train_mean"]}


def judge_sequences(cfg: SequenceLSTMConfig, m: dict[str, Any], ctx: RunContext) -> None:
    ctx.infer(f"Held-out MSE of the LSTM {m['test_mse']:.4f}; predicting the training mean "
              f"{m['mean_prediction_mse']:.4f}, repeating the last value "
              f"{m['last_value_mse']:.4f}; the noise sets the floor at "
              f"{m['noise_floor_mse']:.4f}.")
    ctx.compare("test MSE", f"The LSTM {cfg.num_layers} x {cfg.hidden}", m["test_mse"],
                "predicting the training mean", m["mean_prediction_mse"],
                diff=Difference.from_dict(m["test_mse_vs_mean_prediction"]), better="lower",
                then="It has learned more than the mean of the targets.")
    ctx.compare("test MSE", "The LSTM", m["test_mse"], "repeating the last value",
                m["last_value_mse"], diff=Difference.from_dict(m["test_mse_vs_last_value"]),
                better="lower")
    if "control_test_mse" in m:
        c, c_mean, spread = (m["control_test_mse"], m["control_mean_prediction_mse"],
                             m["control_prediction_spread"])
        gap = Difference.from_dict(m["control_vs_mean_prediction"])
        ctx.claim(f"Control: on targets independent of the inputs the same model scores "
                  f"{c:.4f} against {c_mean:.4f} for the mean (ratio {c / c_mean:.3f}; "
                  f"{gap.text()}), and its predictions spread {spread:.3f} times as widely as "
                  "the targets: with nothing to learn it does no better than the mean and "
                  "predicts close to it.",
                  holds=gap.verdict("lower") != "better" and spread < 0.25,
                  otherwise=f"Control: on targets independent of the inputs the same model "
                  f"scores {c:.4f} against {c_mean:.4f} for the mean (ratio {c / c_mean:.3f}); "
                  f"its predictions spread {spread:.3f} times as widely as the targets, so it "
                  "does not reduce to predicting the mean here.",
                  control_test_mse=c, control_mean_prediction_mse=c_mean,
                  control_prediction_spread=spread)


def _prediction_figure(cfg: SequenceLSTMConfig, d: dict[str, Any], pred: np.ndarray,
                       m: dict[str, Any]) -> Any:
    plt = pyplot()
    x_test, y_test = d["x"][d["test"]], d["y"][d["test"]].astype(np.float64)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4))
    for i in range(min(4, len(y_test))):
        line, = ax1.plot(np.arange(cfg.length), x_test[i, :, 0], lw=1)
        ax1.plot(cfg.length, y_test[i], "o", color=line.get_color())
        ax1.plot(cfg.length, pred[i], "x", color=line.get_color(), ms=9, mew=2)
    ax1.set_xlabel("time step")
    ax1.set_title("Test sequences: next value (o) and LSTM prediction (x)")
    lim = [float(min(y_test.min(), pred.min())), float(max(y_test.max(), pred.max()))]
    ax2.scatter(y_test, pred, s=5, alpha=0.5)
    ax2.plot(lim, lim, color="black", lw=1)
    ax2.axhline(d["train_mean"], color="grey", ls="--", lw=1, label="training mean")
    ax2.set_xlabel("truth")
    ax2.set_ylabel("prediction")
    ax2.set_title(f"All test sequences: MSE {m['test_mse']:.4f} "
                  f"(mean: {m['mean_prediction_mse']:.3f})")
    ax2.legend(fontsize=8)
    return fig


def write_sequences(cfg: SequenceLSTMConfig, model: nn.Module, d: dict[str, Any],
                    m: dict[str, Any], ctx: RunContext) -> None:
    mean = m["mean_prediction_mse"]
    ctx.table("Held-out test MSE", ["predictor", "test MSE", "relative to predicting the mean"],
              [[f"LSTM {cfg.num_layers} x {cfg.hidden}", m["test_mse"], m["test_mse"] / mean],
               ["predict the training mean", mean, 1.0],
               ["repeat the last value", m["last_value_mse"], m["last_value_mse"] / mean],
               ["the noise-free next value (floor)", m["noise_floor_mse"],
                m["noise_floor_mse"] / mean]])
    x_test, y_test = d["x"][d["test"]], d["y"][d["test"]].astype(np.float64)
    pred = predict(model, torch.from_numpy(x_test).to(ctx.device))
    shown = min(cfg.n_shown, len(y_test))
    ctx.table(f"Sample predictions on the first {shown} test sequences",
              ["test sequence", "last input", "truth", "LSTM prediction", "error",
               "training mean"],
              [[i, float(x_test[i, -1, 0]), y_test[i], pred[i], pred[i] - y_test[i],
                d["train_mean"]] for i in range(shown)])
    ctx.figure(_prediction_figure(cfg, d, pred, m), "sequence_predictions.png", "Left: four "
               "test sequences, their true next value (circle) and the LSTM's prediction "
               "(cross). Right: prediction against truth for every test sequence.")
    ctx.save_model(model, length=cfg.length, hidden=cfg.hidden, num_layers=cfg.num_layers,
                   input="raw sequence values, shape (B, length, 1)")


def run_sequence_lstm(cfg: SequenceLSTMConfig, ctx: RunContext) -> None:
    # step data: sums of sines with random frequencies and phases, served by DataLoaders
    d = load_sequences(cfg, ctx)
    # step model: the stacked LSTM that reads a sequence and predicts its next value
    model = sequence_net(cfg, ctx, ctx.seed)
    # step train: through the DataLoader, early-stopped; then the control on unrelated targets
    res = train_lstm(cfg, model, d, ctx)
    control = train_control(cfg, d, ctx) if cfg.control else None
    # step score: test MSE against the mean, the last value and the noise floor; the control's
    m = score_sequences(model, res, d, ctx.device, ctx.seed)
    if control is not None:
        m.update(score_control(control, d, ctx.device, ctx.seed))
    ctx.metrics.update(m)
    # step judge: the LSTM against the predictors that need no model; what the control shows
    judge_sequences(cfg, m, ctx)
    # step write: the table of test MSEs, sample predictions, the figure and the saved model
    write_sequences(cfg, model, d, m, ctx)


SEQUENCE_LSTM = Implementation(
    config=SequenceLSTMConfig, run=run_sequence_lstm,
    profiles={"smoke": {"n_sequences": 400, "length": 12, "hidden": 8, "epochs": 2,
                        "control_epochs": 1},
              "full": {"n_sequences": 10000, "epochs": 40, "patience": 8}},
    crippled={"epochs": 1, "n_sequences": 600, "control": False},
    targets=(
        Target("test_mse", below="mean_prediction_mse", profiles=("quick", "full"),
               interval="test_mse_vs_mean_prediction",
               why="a sequence model must learn more than the mean of the targets, beyond "
                   "the spread of a paired bootstrap over the test sequences"),
        Target("mse_over_mean_prediction", at_most=0.1, profiles=("quick", "full"),
               why="far below predicting the mean: at most a tenth of its MSE"),
    ),
)
