"""Keras 3 variant of program 6.2: a 32-16-1 binary classifier on prepared tables.

The network and training match the PyTorch version in `dlab.experiments.exp06_sgd`:
Dense(32, relu) -> Dense(16, relu) -> Dense(1, sigmoid), binary cross-entropy, Adam,
mini-batches. Only backend-agnostic Keras is used, so it runs on the torch backend (the
default here) and on TensorFlow or JAX where the user has them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlab.keras_programs import load_keras


def build_model(n_inputs: int, widths: tuple[int, ...] = (32, 16)):
    """Sequential: inputs (B, n_inputs) -> ReLU layers of `widths` -> sigmoid (B, 1)."""
    keras = load_keras()

    layers = [keras.Input(shape=(n_inputs,))]
    layers += [keras.layers.Dense(w, activation="relu") for w in widths]
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    return keras.Sequential(layers)


def seeded_model(n_inputs: int, widths: tuple[int, ...], seed: int):
    """`build_model` after `keras.utils.set_random_seed(seed)` (Keras's way: its layers
    draw from the global seed), so the initial weights depend on `seed` only."""
    keras = load_keras()

    keras.utils.set_random_seed(seed)
    return build_model(n_inputs, widths)


def train_and_test(model: Any, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                   y_test: np.ndarray, *, seed: int, epochs: int, batch_size: int, lr: float,
                   ctx: Any = None, name: str = "keras") -> dict[str, Any]:
    """Compile and fit the Keras `model` (e.g. from `seeded_model`) in place on
    (X_train (N, F), y_train (N,) of 0/1) and score the test rows.

    Seeds Python, NumPy and the backend with `keras.utils.set_random_seed(seed)` first, so
    the shuffling depends on `seed` and not on what ran since the model was built. With a
    RunContext, logs one line per epoch and appends the history rows (model `name`).
    Returns test accuracy and loss, the final training loss and the epoch rows.
    """
    keras = load_keras()

    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss="binary_crossentropy", metrics=["accuracy"])
    rows: list[dict[str, Any]] = []

    class Log(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            rows.append({"model": name, "epoch": epoch + 1,
                         "loss": float(logs.get("loss", float("nan"))),
                         "acc": float(logs.get("accuracy", float("nan")))})
            if ctx is not None:
                ctx.log(f"{name} epoch {epoch + 1}/{epochs}  loss {rows[-1]['loss']:.4g}  "
                        f"acc {rows[-1]['acc']:.4g}")

    model.fit(np.asarray(X_train, np.float32), np.asarray(y_train, np.float32),
              epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
              callbacks=[Log()])
    if ctx is not None:
        ctx.add_history(rows)
    loss, acc = model.evaluate(np.asarray(X_test, np.float32), np.asarray(y_test, np.float32),
                               verbose=0)
    return {"test_accuracy": float(acc), "test_loss": float(loss),
            "train_loss": rows[-1]["loss"] if rows else float("nan"), "history": rows,
            "params": int(model.count_params())}
