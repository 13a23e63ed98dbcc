"""Keras 3 variant of the temperature forecaster (Experiment 11.1).

LSTM(50, return_sequences=True) -> LSTM(50) -> Dense(25) -> Dense(1) on windows of the
previous days, as in the original Keras program. Backend-agnostic (keras.layers,
keras.optimizers, keras.callbacks only): the torch backend by default, TensorFlow or JAX
when KERAS_BACKEND names them before the first `import keras`.

On the torch backend Keras runs its LSTM through cuDNN on a GPU and through a Python
loop over time steps on a CPU, so it is slower there than PyTorch's fused nn.LSTM.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from dlab.keras_programs import load_keras, to_numpy


def build_forecaster(window: int, features: int = 1, hidden: int = 50, dense: int = 25,
                     seed: int | None = None):
    """LSTM(hidden) x 2, Dense(dense), Dense(1): input (B, window, features) -> (B, 1).
    With a `seed`, Keras's random generators (and Python's, NumPy's and the backend's) are
    seeded with it first, so the initial weights and the later training shuffles follow
    from it."""
    keras = load_keras()
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((window, features)),
        keras.layers.LSTM(hidden, return_sequences=True),   # (B, window, hidden)
        keras.layers.LSTM(hidden),                          # (B, hidden): last step only
        keras.layers.Dense(dense),                          # linear, as in the original
        keras.layers.Dense(1),
    ], name="weather_lstm")


def train_forecaster(model: Any, x_train: np.ndarray, y_train: np.ndarray,
                     x_val: np.ndarray | None, y_val: np.ndarray | None, *, epochs: int,
                     batch_size: int, lr: float, patience: int,
                     log: Callable[[str], None] | None = None,
                     name: str = "keras") -> list[dict[str, Any]]:
    """Fit `model` (from `build_forecaster`) in place with mean squared error and Adam in
    Keras's own loop.

    x_train (N, window, 1), y_train (N,), x_val (M, window, 1), y_val (M,): scaled float
    arrays. With patience > 0 and validation data, training stops when val_loss has
    not improved for `patience` epochs and the best weights are restored.
    Returns one history row per epoch (model, epoch, loss, val_loss).
    """
    keras = load_keras()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="mse")
    rows: list[dict[str, Any]] = []

    def on_epoch_end(epoch: int, logs: dict[str, float]) -> None:
        row = {"model": name, "epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        rows.append(row)
        if log is not None:
            log(f"{name} epoch {epoch + 1}/{epochs}  loss {row['loss']:.4g}  "
                f"val_loss {row.get('val_loss', float('nan')):.4g}")

    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)]
    val = None
    if x_val is not None and len(x_val):
        val = (x_val.astype("float32"), y_val.astype("float32").reshape(-1, 1))
        if patience > 0:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True))
    with warnings.catch_warnings():
        # Keras's torch backend turns logged losses into NumPy with np.array(tensor),
        # which NumPy 2 flags; the values are unaffected.
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message="__array__ implementation doesn't accept a copy")
        model.fit(x_train.astype("float32"), y_train.astype("float32").reshape(-1, 1),
                  validation_data=val, epochs=epochs, batch_size=batch_size, shuffle=True,
                  verbose=0, callbacks=callbacks)
    return rows


def predict(model: Any, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Model outputs for x (N, window, 1) as a float64 array (N,)."""
    x = x.astype("float32")
    parts = [to_numpy(model(x[i:i + batch_size], training=False))
             for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).astype(np.float64).reshape(-1)


def count_params(model: Any) -> int:
    return int(model.count_params())


def torch_state_dict(model: Any) -> dict[str, Any]:
    """The Keras weights in the layout of dlab.models.rnn.SequenceRegressor (torch).

    Keras keeps LSTM kernels as (in, 4H) and (H, 4H) with gates in the order i, f, c, o
    and one bias; PyTorch keeps (4H, in) and (4H, H), gates i, f, g, o, and two biases,
    so the kernels are transposed, the bias goes to b_ih and b_hh is zero. Dense kernels
    (in, out) become Linear weights (out, in).
    """
    import torch

    lstms = [layer for layer in model.layers if layer.__class__.__name__ == "LSTM"]
    denses = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    state: dict[str, Any] = {}
    for k, layer in enumerate(lstms):
        kernel, recurrent, bias = (torch.as_tensor(to_numpy(w.value)) for w in layer.weights)
        state[f"rnn.weight_ih_l{k}"] = kernel.T.contiguous()
        state[f"rnn.weight_hh_l{k}"] = recurrent.T.contiguous()
        state[f"rnn.bias_ih_l{k}"] = bias.clone()
        state[f"rnn.bias_hh_l{k}"] = torch.zeros_like(bias)
    for k, layer in enumerate(denses):
        kernel, bias = (torch.as_tensor(to_numpy(w.value)) for w in layer.weights)
        state[f"head.{k}.weight"] = kernel.T.contiguous()
        state[f"head.{k}.bias"] = bias.clone()
    return state
