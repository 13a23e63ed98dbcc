"""``Sequential``: a stack of layers with Keras's compile / fit / evaluate / predict API."""

from __future__ import annotations

import copy
import numbers
import sys

import numpy as np

from .initializers import RandomSource, as_generator
from .layers import Layer
from .losses import Loss, get_loss
from .optimizers import Optimizer, get_optimizer

_METRICS = ("accuracy", "acc")


class History:
    """What :meth:`Sequential.fit` measured.

    Attributes:
        history: ``{'loss': [...], 'val_loss': [...], 'accuracy': [...], ...}``, one value
            per epoch; ``val_*`` only with validation data, ``accuracy`` only when compiled
            with ``metrics=['accuracy']``.
        epoch: the epoch indices run, ``[0, 1, ...]``.
        params: ``{'epochs', 'batch_size', 'steps'}`` of the fit.
        diverged_at: the epoch whose training loss was not finite (training stopped
            there), or ``None``.
    """

    def __init__(self, params: dict | None = None):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params = dict(params or {})
        self.diverged_at: int | None = None

    def _append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class Sequential:
    """A linear stack of layers.

    Args:
        layers: initial layers (more with :meth:`add`).
        seed: int or ``np.random.Generator``. Layers built without their own ``seed``
            draw their initial weights, in layer order, from one Generator made from it,
            and :meth:`fit` shuffles with it unless given its own ``seed``, so one seed
            fixes a whole run. ``None``: fresh OS entropy (not reproducible).
        name: model name shown by :meth:`summary`.
        dtype: float type of weights and computation; float32 by default.

    Data shapes: ``X`` (N, n_in); ``y`` (N, k) for ``k`` output units, or (N,) when
    ``k = 1``. For ``categorical_crossentropy``, ``y`` rows are one-hot (or sum to one).
    """

    def __init__(
        self,
        layers: list[Layer] | None = None,
        seed: RandomSource = None,
        name: str = "sequential",
        dtype=np.float32,
    ):
        if seed is not None and not isinstance(seed, numbers.Integral | np.random.Generator):
            raise ValueError(f"seed must be an int, a numpy Generator or None; got {seed!r}")
        self.name = name
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"dtype must be a float type; got {self.dtype}")
        self.rng = as_generator(seed)
        self.layers: list[Layer] = []
        self.loss: Loss | None = None
        self.optimizer: Optimizer | None = None
        self.metrics: list[str] = []
        for layer in layers or []:
            self.add(layer)

    # -- construction ----------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append ``layer``; build it now when its input size is known.

        Raises:
            TypeError: when ``layer`` is not a Layer.
            ValueError: when ``layer`` is already in the model, or its ``input_dim``
                disagrees with the previous layer's output size.
        """
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer (e.g. Dense); got {layer!r}")
        if any(layer is other for other in self.layers):
            raise ValueError(f"layer {layer!r} is already in this model; create a new one")
        index = len(self.layers)
        if index > 0 and layer.input_dim is not None:
            prev = self.layers[-1]
            if layer.input_dim != prev.units:
                raise ValueError(
                    f"layer {index} ({layer.name or type(layer).__name__}) has "
                    f"input_dim={layer.input_dim} but layer {index - 1} ({prev.name}) "
                    f"outputs shape (None, {prev.units})"
                )
        if layer.name is None:
            taken = {other.name for other in self.layers}
            base = type(layer).__name__.lower()
            k, name = 0, base
            while name in taken:
                k += 1
                name = f"{base}_{k}"
            layer.name = name
        if getattr(layer, "seed", None) is None and getattr(layer, "rng", None) is None:
            layer.rng = self.rng
        if not layer.built:
            layer.dtype = self.dtype
        elif layer.dtype != self.dtype:
            layer.set_dtype(self.dtype)
        self.layers.append(layer)
        self._build_known()

    def _build_known(self) -> None:
        """Build, in order, every layer whose input size is now known."""
        if not self.layers or self.layers[0].input_dim is None:
            return
        n_in = self.layers[0].input_dim
        for index, layer in enumerate(self.layers):
            if not layer.built:
                layer.build((None, n_in))
            elif layer.input_dim != n_in:
                raise ValueError(
                    f"layer {index} ({layer.name}) was built for inputs of shape "
                    f"(None, {layer.input_dim}) but the previous layer outputs (None, {n_in})"
                )
            n_in = layer.units

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    def build(self, input_shape: tuple) -> None:
        """Build all layers for inputs of shape ``(B, n_in)``."""
        if not self.layers:
            raise ValueError("the model has no layers; add one with model.add(Dense(...))")
        first = self.layers[0]
        if first.input_dim is None:
            first.build(tuple(input_shape))
        self._build_known()

    def astype(self, dtype) -> Sequential:
        """A deep copy of this model whose weights and computation use ``dtype``."""
        clone = copy.deepcopy(self)
        clone.dtype = np.dtype(dtype)
        for layer in clone.layers:
            layer.set_dtype(clone.dtype)
        if clone.optimizer is not None:
            clone.optimizer.reset()
        return clone

    # -- compile ---------------------------------------------------------------------
    def compile(
        self,
        loss: str | Loss,
        optimizer: str | Optimizer,
        metrics: list[str] | None = None,
    ) -> None:
        """Set the loss, the optimiser and the metrics.

        Args:
            loss: 'mse', 'binary_crossentropy', 'categorical_crossentropy' or a Loss.
            optimizer: 'sgd', 'adam' (default settings) or an Optimizer object.
            metrics: ``None`` or ``['accuracy']``. Accuracy is the fraction of outputs
                right: argmax of prediction and target rows for more than one output
                (binary cross-entropy: each output thresholded at 0.5), the 0.5
                threshold for one output.

        Raises:
            ValueError: for unknown names.
        """
        self.loss = get_loss(loss)
        self.optimizer = get_optimizer(optimizer)
        metrics = list(metrics or [])
        for m in metrics:
            if m not in _METRICS:
                raise ValueError(f"unknown metric {m!r}; valid: 'accuracy'")
        self.metrics = ["accuracy"] if metrics else []

    def _require_compiled(self, what: str) -> None:
        if self.loss is None or self.optimizer is None:
            raise RuntimeError(
                f"the model must be compiled before {what}(): call "
                "model.compile(loss=..., optimizer=...) first"
            )

    # -- data checks -----------------------------------------------------------------
    def _check_x(self, X, what: str) -> np.ndarray:
        if not self.layers:
            raise ValueError("the model has no layers; add one with model.add(Dense(...))")
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"{what}: X must be 2-D (samples, features); got shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{what}: X must be numeric; got dtype {X.dtype}")
        if not self.built:
            self.build(X.shape)
        first = self.layers[0]
        if X.shape[1] != first.input_dim:
            raise ValueError(
                f"{what}: layer 0 ({first.name}) expects input of shape "
                f"(None, {first.input_dim}); got X of shape {X.shape}"
            )
        return np.ascontiguousarray(X, dtype=self.dtype)

    def _check_xy(self, X, y, what: str) -> tuple[np.ndarray, np.ndarray]:
        X = self._check_x(X, what)
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{what}: y must be numeric; got dtype {y.dtype}")
        last, index = self.layers[-1], len(self.layers) - 1
        if y.ndim == 1 and last.units == 1:
            y = y.reshape(-1, 1)  # (N,) -> (N, 1)
        if y.ndim != 2 or y.shape[1] != last.units:
            hint = ""
            if y.ndim == 1 and last.units > 1:
                hint = "; one-hot encode class labels, e.g. np.eye(k)[labels]"
            raise ValueError(
                f"{what}: y has shape {y.shape} but the model's output (layer {index}, "
                f"{last.name}) has shape (None, {last.units}){hint}"
            )
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"{what}: X has {X.shape[0]} samples but y has {y.shape[0]} "
                f"(X shape {X.shape}, y shape {y.shape})"
            )
        return X, np.ascontiguousarray(y, dtype=self.dtype)

    # -- forward and backward ----------------------------------------------------------
    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        for layer in self.layers:
            x = layer.call(x, training=training)
        return x

    def _backward(self, p: np.ndarray, y: np.ndarray) -> None:
        """Back-propagate the mean loss of output ``p`` (B, k) against ``y`` (B, k)."""
        if self.loss.fused_activation == self.layers[-1].activation.name:
            grad, preactivation = self.loss.fused_gradient(p, y), True  # dL/dz
        else:
            grad, preactivation = self.loss.gradient(p, y), False  # dL/dp
        for index in range(len(self.layers) - 1, -1, -1):
            grad = self.layers[index].backward(
                grad, preactivation=preactivation, input_grad=index > 0
            )
            preactivation = False

    def _params(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.weights]

    def _grads(self) -> list[np.ndarray]:
        return [g for layer in self.layers for g in layer.grads]

    def _correct(self, p: np.ndarray, y: np.ndarray) -> float:
        """Number of right outputs in a batch (see ``compile``'s accuracy rule)."""
        if self.loss.name == "binary_crossentropy" or p.shape[1] == 1:
            return float(np.mean((p > 0.5) == (y > 0.5), axis=1).sum())
        return float(np.count_nonzero(p.argmax(axis=1) == y.argmax(axis=1)))

    # -- training and inference ----------------------------------------------------------
    def fit(
        self,
        X,
        y,
        epochs: int = 1,
        batch_size: int | None = None,
        validation_data: tuple | None = None,
        shuffle: bool = True,
        verbose: int = 0,
        seed: RandomSource = None,
    ) -> History:
        """Train with mini-batch gradient descent.

        Args:
            X: inputs (N, n_in).
            y: targets (N, k), or (N,) for one output.
            epochs: passes over the data, >= 0.
            batch_size: samples per step; ``None`` = all N (full-batch gradient descent),
                1 = pure stochastic gradient descent. The last batch may be smaller.
            validation_data: ``(X_val, y_val)`` scored after each epoch.
            shuffle: reshuffle the samples every epoch.
            verbose: 0 silent, 1 one line per epoch on stdout.
            seed: int or Generator for the shuffling; ``None`` uses the model's Generator.

        Returns:
            A :class:`History`. ``history['loss'][e]`` is the mean over epoch ``e``'s
            batches of each batch's mean loss (computed before that batch's update),
            weighted by batch size, so it is the mean per-sample training loss of the
            epoch; with equal batches it is the plain mean over batches. If the loss
            becomes inf or nan, training stops after that epoch (``diverged_at``).

        Raises:
            RuntimeError: before :meth:`compile`.
            ValueError: for bad shapes or settings.
        """
        self._require_compiled("fit")
        X, y = self._check_xy(X, y, "fit")
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
            raise ValueError(f"fit: epochs must be an integer >= 0; got {epochs!r}")
        n = X.shape[0]
        if n == 0:
            raise ValueError("fit: X has no samples")
        if batch_size is None:
            batch_size = n
        elif (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, numbers.Integral)
            or batch_size < 1
        ):
            raise ValueError(
                f"fit: batch_size must be a positive integer or None; got {batch_size!r}"
            )
        batch_size = min(int(batch_size), n)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a pair (X_val, y_val)")
            val = self._check_xy(*validation_data, "fit (validation_data)")
        rng = self.rng if seed is None else as_generator(seed)
        steps = -(-n // batch_size)
        history = History({"epochs": int(epochs), "batch_size": batch_size, "steps": steps})
        # Shuffled copies live in two buffers reused every epoch; batches are views of them.
        Xs, ys = (np.empty_like(X), np.empty_like(y)) if shuffle else (X, y)
        params = self._params()
        grads = self._grads()
        track_acc = bool(self.metrics)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for epoch in range(int(epochs)):
                if shuffle:
                    order = rng.permutation(n)
                    np.take(X, order, axis=0, out=Xs)
                    np.take(y, order, axis=0, out=ys)
                total, correct = 0.0, 0.0
                for start in range(0, n, batch_size):
                    xb = Xs[start : start + batch_size]  # (b, n_in), a view
                    yb = ys[start : start + batch_size]  # (b, k)
                    p = self._forward(xb, training=True)
                    total += self.loss.value(p, yb) * xb.shape[0]
                    if track_acc:
                        correct += self._correct(p, yb)
                    self._backward(p, yb)
                    self.optimizer.step(params, grads)
                logs = {"loss": total / n}
                if track_acc:
                    logs["accuracy"] = correct / n
                if val is not None:
                    val_loss, val_acc = self._evaluate(*val, batch_size=None)
                    logs["val_loss"] = val_loss
                    if track_acc:
                        logs["val_accuracy"] = val_acc
                history._append(epoch, logs)
                if verbose:
                    shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
                    print(f"Epoch {epoch + 1}/{epochs} - {shown}", file=sys.stdout)
                if not np.isfinite(logs["loss"]):
                    history.diverged_at = epoch
                    break
        return history

    def predict(self, X, batch_size: int | None = None) -> np.ndarray:
        """Outputs (N, k) for inputs ``X`` (N, n_in), in batches of ``batch_size``
        (``None``: all at once)."""
        X = self._check_x(X, "predict")
        if batch_size is None or batch_size >= X.shape[0]:
            return self._forward(X, training=False)
        out = [
            self._forward(X[s : s + batch_size], training=False)
            for s in range(0, X.shape[0], batch_size)
        ]
        return np.concatenate(out, axis=0)

    def _evaluate(self, X, y, batch_size: int | None) -> tuple[float, float]:
        n = X.shape[0]
        batch_size = n if batch_size is None else max(1, min(int(batch_size), n))
        total, correct = 0.0, 0.0
        for s in range(0, n, batch_size):
            p = self._forward(X[s : s + batch_size], training=False)
            yb = y[s : s + batch_size]
            total += self.loss.value(p, yb) * p.shape[0]
            if self.metrics:
                correct += self._correct(p, yb)
        return total / n, correct / n

    def evaluate(self, X, y, batch_size: int | None = None) -> float | list[float]:
        """Mean loss on ``(X, y)``; ``[loss, accuracy]`` when compiled with
        ``metrics=['accuracy']`` (as Keras returns).

        Raises:
            RuntimeError: before :meth:`compile`.
        """
        self._require_compiled("evaluate")
        X, y = self._check_xy(X, y, "evaluate")
        if X.shape[0] == 0:
            raise ValueError("evaluate: X has no samples")
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss, acc = self._evaluate(X, y, batch_size)
        return [loss, acc] if self.metrics else loss

    def gradients(self, X, y) -> list[np.ndarray]:
        """Gradients of the mean loss over the batch ``(X, y)`` with respect to every
        weight, in :meth:`get_weights` order and shapes (kernel (in, out), bias (out,), ...).

        Raises:
            RuntimeError: before :meth:`compile` (the loss is needed).
        """
        if self.loss is None:
            raise RuntimeError(
                "the model must be compiled before gradients(): call "
                "model.compile(loss=..., optimizer=...) first"
            )
        X, y = self._check_xy(X, y, "gradients")
        p = self._forward(X, training=True)
        self._backward(p, y)
        return [g.copy() for g in self._grads()]

    # -- weights -------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Copies of all weights: kernel (in, out) then bias (out,), layer by layer."""
        return [w.copy() for w in self._params()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Copy ``weights`` (same order and shapes as :meth:`get_weights`) into the model.

        Raises:
            ValueError: for a wrong number of arrays or a wrong shape (naming the layer).
        """
        if not self.built:
            raise ValueError(
                "set_weights needs a built model: give the first layer input_dim=... "
                "or call fit/predict once"
            )
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights: expected {expected} arrays, got {len(weights)}")
        i = 0
        for index, layer in enumerate(self.layers):
            for kind, w in zip(("kernel", "bias"), layer.weights, strict=False):
                new = np.asarray(weights[i])
                if new.shape != w.shape:
                    raise ValueError(
                        f"set_weights: layer {index} ({layer.name}) {kind} has shape "
                        f"{w.shape}; got {new.shape}"
                    )
                i += 1
        for w, new in zip(self._params(), weights, strict=True):
            np.copyto(w, np.asarray(new), casting="same_kind")

    def count_params(self) -> int:
        return int(sum(layer.count_params() for layer in self.layers))

    def summary(self) -> str:
        """The Keras-style table: layer name (type), output shape, parameter count, then
        total, trainable and non-trainable totals. Returns the text (does not print).

        Raises:
            ValueError: when the input size is not yet known.
        """
        if not self.built:
            raise ValueError(
                "summary needs the input size: give the first layer input_dim=... "
                "or call fit/predict once"
            )
        rows = [
            (
                f"{layer.name} ({type(layer).__name__})",
                f"(None, {layer.units})",
                f"{layer.count_params():,}",
            )
            for layer in self.layers
        ]
        w1 = max(29, *(len(r[0]) + 2 for r in rows))
        w2, w3 = 26, 12
        width = w1 + w2 + w3
        total = self.count_params()
        lines = [
            f'Model: "{self.name}"',
            "_" * width,
            f"{'Layer (type)':<{w1}}{'Output Shape':<{w2}}{'Param #':>{w3}}",
            "=" * width,
        ]
        for i, (name, shape, params) in enumerate(rows):
            lines.append(f"{name:<{w1}}{shape:<{w2}}{params:>{w3}}")
            lines.append(("_" if i < len(rows) - 1 else "=") * width)
        lines += [
            f"Total params: {total:,}",
            f"Trainable params: {total:,}",
            "Non-trainable params: 0",
            "_" * width,
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Sequential(layers={self.layers!r}, name={self.name!r})"
