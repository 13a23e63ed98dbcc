"""Layers. Each follows the Keras layer contract: settings are checked in ``__init__``,
weights are created in ``build(input_shape)``, the forward pass is ``call(x)``, and the
backward pass ``backward(grad_out)`` sits right beside it.
"""

from __future__ import annotations

import numbers

import numpy as np

from .activations import Activation, get_activation
from .initializers import Initializer, RandomSource, as_generator, get_initializer


def _positive_int(what: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{what} must be a positive integer; got {value!r}")
    return int(value)


class Layer:
    """Base class. Subclasses define ``build``, ``call``, ``backward`` and ``weights``."""

    def __init__(self, name: str | None = None):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name must be a non-empty string; got {name!r}")
        self.name = name
        self.built = False
        self.dtype = np.dtype(np.float32)

    @property
    def weights(self) -> list[np.ndarray]:
        """The trainable arrays, in Keras order."""
        return []

    @property
    def grads(self) -> list[np.ndarray]:
        """Gradients of the loss for ``weights``, same order and shapes (after ``backward``)."""
        return []

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Build on first use from ``x.shape``, then run ``call``."""
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape)
        return self.call(np.asarray(x, dtype=self.dtype), training=training)


class Dense(Layer):
    """Fully connected layer ``a = f(x W + b)``.

    Shapes: input ``x`` (B, n_in), kernel ``W`` (n_in, units), bias ``b`` (units,),
    output ``a`` (B, units); ``B`` is the batch size.

    Forward::

        z = x W + b          (B, units)
        a = f(z)             (B, units)

    Backward, given ``g = dL/da`` (B, units)::

        dL/dz = f'(z) * g    (through the activation's backward rule)   (B, units)
        dL/dW = x^T dL/dz                                                (n_in, units)
        dL/db = sum over the batch of dL/dz                              (units,)
        dL/dx = dL/dz W^T                                                (B, n_in)

    (Rumelhart, Hinton and Williams, 1986, "Learning representations by back-propagating
    errors"). The loss's mean over the batch is already inside ``g``, so the sums over
    the batch give gradients of the mean loss.

    Args:
        units: number of output units, a positive integer.
        activation: 'linear' (or None), 'sigmoid', 'tanh', 'relu' or 'softmax'.
        input_dim: ``n_in``; optional, otherwise taken from the previous layer or the data.
        kernel_initializer: 'glorot_uniform' (default), 'he_normal', 'he_uniform',
            'zeros', or a callable ``(shape, rng, dtype) -> array``. Biases start at zero.
        seed: int or ``np.random.Generator`` for this layer's kernel. ``None``: use the
            Generator a :class:`Sequential` passes in (or fresh OS entropy when alone).
        name: layer name; a Sequential gives ``dense``, ``dense_1``, ... when ``None``.

    Raises:
        ValueError: for a non-positive or non-integer ``units`` or ``input_dim``, an
            unknown activation or initializer name.
    """

    def __init__(
        self,
        units: int,
        activation: str | Activation | None = None,
        input_dim: int | None = None,
        kernel_initializer: str | Initializer = "glorot_uniform",
        seed: RandomSource = None,
        name: str | None = None,
    ):
        super().__init__(name)
        self.units = _positive_int("Dense units", units)
        self.input_dim = None if input_dim is None else _positive_int("input_dim", input_dim)
        self.activation = get_activation(activation)
        self.kernel_initializer = get_initializer(kernel_initializer)
        if seed is not None and not isinstance(seed, numbers.Integral | np.random.Generator):
            raise ValueError(f"seed must be an int, a numpy Generator or None; got {seed!r}")
        self.seed = seed
        self.rng: np.random.Generator | None = None  # set by Sequential when seed is None
        self.kernel: np.ndarray | None = None
        self.bias: np.ndarray | None = None
        self.kernel_grad: np.ndarray | None = None
        self.bias_grad: np.ndarray | None = None
        self._x: np.ndarray | None = None  # input of the last training forward, (B, n_in)
        self._a: np.ndarray | None = None  # output of the last training forward, (B, units)

    def __repr__(self) -> str:
        return (
            f"Dense(units={self.units}, activation={self.activation.name!r}, "
            f"input_dim={self.input_dim}, name={self.name!r})"
        )

    def _label(self) -> str:
        return f"Dense layer {self.name!r}" if self.name else "Dense layer"

    # -- build ---------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        """Create ``kernel`` (n_in, units) and ``bias`` (units,) for inputs of
        ``input_shape`` ``(B, n_in)`` (``B`` may be ``None``).

        Raises:
            ValueError: when ``n_in`` disagrees with ``input_dim`` given in ``__init__``.
        """
        if len(input_shape) != 2:
            raise ValueError(
                f"{self._label()} expects 2-D input (batch, features); got shape "
                f"{tuple(input_shape)}"
            )
        n_in = _positive_int(f"{self._label()} input size", input_shape[-1])
        if self.input_dim is not None and n_in != self.input_dim:
            raise ValueError(
                f"{self._label()} was given input_dim={self.input_dim} but receives inputs "
                f"of shape {tuple(input_shape)}"
            )
        self.input_dim = n_in
        if self.seed is not None:
            rng = as_generator(self.seed)
        else:
            rng = self.rng if self.rng is not None else np.random.default_rng()
        kernel = self.kernel_initializer((n_in, self.units), rng, self.dtype)
        if kernel.shape != (n_in, self.units):
            raise ValueError(
                f"{self._label()}: kernel_initializer returned shape {kernel.shape}, "
                f"expected {(n_in, self.units)}"
            )
        self.kernel = np.ascontiguousarray(kernel, dtype=self.dtype)
        self.bias = np.zeros(self.units, dtype=self.dtype)
        self._allocate_grads()
        self.built = True

    def _allocate_grads(self) -> None:
        self.kernel_grad = np.zeros_like(self.kernel)
        self.bias_grad = np.zeros_like(self.bias)

    def set_dtype(self, dtype) -> None:
        """Cast the weights (and gradient buffers) to ``dtype``."""
        self.dtype = np.dtype(dtype)
        if self.built:
            self.kernel = self.kernel.astype(self.dtype)
            self.bias = self.bias.astype(self.dtype)
            self._allocate_grads()
        self._x = self._a = None

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """``(B, n_in) -> (B, units)``."""
        return (input_shape[0], self.units)

    @property
    def weights(self) -> list[np.ndarray]:
        return [self.kernel, self.bias] if self.built else []

    @property
    def grads(self) -> list[np.ndarray]:
        return [self.kernel_grad, self.bias_grad] if self.built else []

    # -- forward and backward ------------------------------------------------------
    def call(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Forward pass ``a = f(x W + b)``: ``x`` (B, n_in) -> ``a`` (B, units).

        With ``training=True`` the layer keeps ``x`` and ``a`` for :meth:`backward`.

        Raises:
            ValueError: when ``x`` is not (B, n_in).
        """
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(
                f"{self._label()} expects input of shape (None, {self.input_dim}); got {x.shape}"
            )
        z = np.dot(x, self.kernel)  # (B, units)
        z += self.bias  # (units,) broadcast over the batch
        a = self.activation.forward(z, out=z)  # in place: f needs only a for backward
        if training:
            self._x, self._a = x, a
        return a

    def backward(
        self,
        grad_out: np.ndarray,
        *,
        preactivation: bool = False,
        input_grad: bool = True,
    ) -> np.ndarray | None:
        """Backward pass of the last training ``call``.

        Args:
            grad_out: ``dL/da`` (B, units); or ``dL/dz`` (B, units) with
                ``preactivation=True`` (a loss fused with this layer's activation).
            preactivation: ``grad_out`` is already ``dL/dz``; skip the activation rule.
            input_grad: compute and return ``dL/dx``; ``False`` (a first layer, whose
                input is data) skips that product and returns ``None``.

        Returns:
            ``dL/dx`` (B, n_in), or ``None``. Stores ``kernel_grad = dL/dW`` (n_in, units)
            and ``bias_grad = dL/db`` (units,).
        """
        if self._a is None:
            raise RuntimeError(f"{self._label()}: backward() needs a call(x, training=True) first")
        if grad_out.shape != self._a.shape:
            raise ValueError(
                f"{self._label()}: backward got gradient of shape {grad_out.shape}, "
                f"output was {self._a.shape}"
            )
        dz = grad_out if preactivation else self.activation.backward(self._a, grad_out)
        dz = np.asarray(dz, dtype=self.dtype)  # (B, units)
        np.dot(self._x.T, dz, out=self.kernel_grad)  # (n_in, B) @ (B, units)
        np.sum(dz, axis=0, out=self.bias_grad)  # (units,)
        return np.dot(dz, self.kernel.T) if input_grad else None  # (B, n_in)
