"""Element-wise and row-wise activation functions with their backward rules.

Every activation maps pre-activations ``z`` of shape ``(B, n)`` to outputs ``a`` of the
same shape, and its backward rule needs only ``a`` (never ``z``), so a layer can compute
``a`` in place over ``z`` and keep one array.

Backward rules take ``grad_a = dL/da`` of shape ``(B, n)`` and return ``dL/dz``:

==========  ===============================  =========================================
name        forward  a = f(z)                backward  dL/dz
==========  ===============================  =========================================
linear      a = z                            dL/da
sigmoid     a = 1 / (1 + exp(-z))            dL/da * a (1 - a)
tanh        a = tanh(z)                      dL/da * (1 - a^2)
relu        a = max(z, 0)                    dL/da * [a > 0]
softmax     a_j = exp(z_j) / sum_k exp(z_k)  a * (dL/da - sum_k dL/da_k a_k)   (per row)
==========  ===============================  =========================================

The softmax backward is the Jacobian-vector product with J = diag(a) - a a^T, done
without forming J. ReLU is from Nair and Hinton (2010), "Rectified Linear Units Improve
Restricted Boltzmann Machines".
"""

from __future__ import annotations

import numpy as np


class Activation:
    """Base class: ``forward(z)`` gives ``a``; ``backward(a, grad_a)`` gives ``dL/dz``."""

    name = "activation"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Return ``a = f(z)``; ``z``: (B, n). With ``out`` (may be ``z``), write there."""
        raise NotImplementedError

    def backward(self, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """Return ``dL/dz`` (B, n) from ``a = f(z)`` (B, n) and ``grad_a = dL/da`` (B, n)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Activation):
    """Identity: ``a = z``, ``dL/dz = dL/da``."""

    name = "linear"

    def forward(self, z, out=None):
        if out is None or out is z:
            return z
        np.copyto(out, z)
        return out

    def backward(self, a, grad_a):
        return grad_a


class Sigmoid(Activation):
    """Logistic sigmoid ``a = 1 / (1 + exp(-z))``; ``da/dz = a (1 - a)``.

    Computed as ``1/(1+e)`` for ``z >= 0`` and ``e/(1+e)`` for ``z < 0`` with
    ``e = exp(-|z|) <= 1``, so no exponential overflows for any ``z``.
    """

    name = "sigmoid"

    def forward(self, z, out=None):
        e = np.exp(-np.abs(z))  # (B, n), in (0, 1]
        num = np.where(z >= 0, 1.0, e).astype(z.dtype, copy=False)
        e += 1.0
        return np.divide(num, e, out=out)

    def backward(self, a, grad_a):
        return grad_a * a * (1.0 - a)


class Tanh(Activation):
    """Hyperbolic tangent ``a = tanh(z)``; ``da/dz = 1 - a^2``."""

    name = "tanh"

    def forward(self, z, out=None):
        return np.tanh(z, out=out)

    def backward(self, a, grad_a):
        return grad_a * (1.0 - a * a)


class ReLU(Activation):
    """Rectified linear unit ``a = max(z, 0)``; ``da/dz = [z > 0] = [a > 0]`` (0 at z = 0)."""

    name = "relu"

    def forward(self, z, out=None):
        return np.maximum(z, 0, out=out)

    def backward(self, a, grad_a):
        return grad_a * (a > 0)


class Softmax(Activation):
    """Row-wise softmax ``a_j = exp(z_j - m) / sum_k exp(z_k - m)``, ``m = max_k z_k``.

    Subtracting the row maximum leaves ``a`` unchanged and keeps every exponent <= 0.
    Backward: ``dL/dz = a * (g - sum_k g_k a_k)`` with ``g = dL/da``, i.e. ``J^T g`` for
    the Jacobian ``J = diag(a) - a a^T`` of each row.
    """

    name = "softmax"

    def forward(self, z, out=None):
        out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)  # (B, n)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)  # (B, 1) broadcast over columns
        return out

    def backward(self, a, grad_a):
        dot = np.einsum("ij,ij->i", grad_a, a)[:, None]  # (B, 1): sum_k g_k a_k per row
        return a * (grad_a - dot)


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Linear, Sigmoid, Tanh, ReLU, Softmax)
}


def get_activation(identifier: str | Activation | None) -> Activation:
    """Return the activation named ``identifier`` (``None`` means ``'linear'``).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in ACTIVATIONS:
        return ACTIVATIONS[identifier.lower()]()
    raise ValueError(
        f"unknown activation {identifier!r}; valid names: {', '.join(sorted(ACTIVATIONS))} "
        "(or None for linear)"
    )
