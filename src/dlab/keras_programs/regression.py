"""Keras 3 variant of the 64-32-1 regression network (Experiment 3.1).

Backend-agnostic: only `keras.layers`, `keras.optimizers` and `keras.ops` are used, so
the same code runs on the torch backend (the default here), TensorFlow or JAX. The
backend is chosen by KERAS_BACKEND before the first `import keras`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dlab.keras_programs import load_keras, to_numpy


def build_regressor(n_features: int, widths: Sequence[int] = (64, 32)):
    """Dense(w, relu) for each width, then Dense(1): input (B, n_features) -> (B, 1)."""
    keras = load_keras()
    layers = [keras.Input((n_features,))]
    layers += [keras.layers.Dense(w, activation="relu") for w in widths]
    layers.append(keras.layers.Dense(1))
    return keras.Sequential(layers, name="regressor")


def new_regressor(n_features: int, widths: Sequence[int], seed: int):
    """The regressor of `build_regressor`, its initial weights drawn after
    `keras.utils.set_random_seed(seed)`, so they depend on the seed only."""
    load_keras().utils.set_random_seed(seed)
    return build_regressor(n_features, widths)


def train_regressor(model: Any, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                    y_val: np.ndarray, *, epochs: int, batch_size: int, lr: float, seed: int,
                    log: Callable[[str], None] | None = None,
                    name: str = "keras") -> list[dict[str, Any]]:
    """Fit `model` in place with mean squared error and Adam; Keras's own loop.

    x_train (N, F), y_train (N,), x_val (M, F), y_val (M,): float arrays, already
    preprocessed. The random seeds are set to `seed` first, so the order in which the
    rows are shuffled does not depend on what ran before. Returns one history row per
    epoch (model, epoch, loss, val_loss, val_mae).
    """
    keras = load_keras()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="mse",
                  metrics=["mae"])
    rows: list[dict[str, Any]] = []

    def on_epoch_end(epoch: int, logs: dict[str, float]) -> None:
        row = {"model": name, "epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        rows.append(row)
        if log is not None and ((epoch + 1) % 10 == 0 or epoch + 1 == epochs):
            log(f"{name} epoch {epoch + 1}/{epochs}  loss {row['loss']:.4g}  "
                f"val_loss {row.get('val_loss', float('nan')):.4g}")

    keras.utils.set_random_seed(seed)
    model.fit(x_train.astype("float32"), y_train.astype("float32").reshape(-1, 1),
              validation_data=(x_val.astype("float32"), y_val.astype("float32").reshape(-1, 1)),
              epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)])
    return rows


def predict(model: Any, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Model outputs for x (N, F) as a float64 array (N,)."""
    x = x.astype("float32")
    parts = [to_numpy(model(x[i:i + batch_size], training=False))
             for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).astype(np.float64).reshape(-1)


def count_params(model: Any) -> int:
    return int(model.count_params())


def backend_info() -> tuple[str, str]:
    """(backend name, Keras version), e.g. ("torch", "3.6.0")."""
    keras = load_keras()
    return keras.backend.backend(), keras.__version__
