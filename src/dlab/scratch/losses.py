"""Losses on a batch of predictions ``p`` and targets ``y``, both of shape ``(B, k)``.

Each loss is the mean over the batch (Keras's and PyTorch's ``reduction='mean'``):

- ``mse``: ``L = 1/(B k) sum_{i,j} (p_ij - y_ij)^2``;
  ``dL/dp = 2 (p - y) / (B k)``.
- ``binary_crossentropy``: ``L = -1/(B k) sum_{i,j} [y log p + (1 - y) log(1 - p)]``;
  ``dL/dp = (p - y) / (p (1 - p)) / (B k)``.
- ``categorical_crossentropy``: ``L = -1/B sum_i sum_j y_ij log p_ij`` (one-hot or
  probability rows ``y``); ``dL/dp = -y / p / B``.

Logs are taken of ``p`` clipped to ``[EPSILON, 1 - EPSILON]`` (``EPSILON = 1e-7``, as in
Keras), so a saturated output gives a large finite loss, never ``inf`` or ``nan``; the
gradient of the clipped loss is zero where the clip is active.

Fused gradients. With a sigmoid output ``p = sigmoid(z)`` and binary cross-entropy, the
chain rule collapses to ``dL/dz = (p - y) / (B k)``; with a softmax output and categorical
cross-entropy (each ``y`` row summing to one) to ``dL/dz = (p - y) / B`` (Bishop, *Pattern
Recognition and Machine Learning*, 2006, eqs. 4.91 and 4.109). These skip the division by
``p (1 - p)`` or ``p`` that loses all precision when an output saturates.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7


class Loss:
    """Base class. ``value(p, y)`` is the mean loss; ``gradient(p, y)`` is ``dL/dp``.

    ``fused_activation`` names the output activation whose chain rule collapses with this
    loss to ``fused_gradient(p, y) = dL/dz``; ``None`` when there is none.
    """

    name = "loss"
    fused_activation: str | None = None

    def value(self, p: np.ndarray, y: np.ndarray) -> float:
        """Mean loss of predictions ``p`` (B, k) against targets ``y`` (B, k)."""
        raise NotImplementedError

    def gradient(self, p: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dL/dp``, shape (B, k), for the mean loss."""
        raise NotImplementedError

    def fused_gradient(self, p: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dL/dz`` (B, k) through the output activation ``fused_activation``."""
        raise NotImplementedError(f"{self.name} has no fused gradient")

    def __call__(self, p: np.ndarray, y: np.ndarray) -> float:
        return self.value(p, y)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _inside(p: np.ndarray) -> np.ndarray:
    """1 where ``p`` lies strictly inside the clip range (derivative of the clip), else 0."""
    return ((p > EPSILON) & (p < 1.0 - EPSILON)).astype(p.dtype)


class MeanSquaredError(Loss):
    """``L = mean((p - y)^2)`` over all ``B k`` entries; ``dL/dp = 2 (p - y) / (B k)``."""

    name = "mse"

    def value(self, p, y):
        d = p - y
        return float(np.vdot(d, d)) / d.size

    def gradient(self, p, y):
        return (p - y) * (2.0 / p.size)


class BinaryCrossentropy(Loss):
    """``L = -mean(y log p + (1 - y) log(1 - p))`` over all ``B k`` entries.

    Fused with a sigmoid output: ``dL/dz = (p - y) / (B k)``.
    """

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def value(self, p, y):
        q = np.clip(p, EPSILON, 1.0 - EPSILON)
        return float(-np.mean(y * np.log(q) + (1.0 - y) * np.log1p(-q)))

    def gradient(self, p, y):
        q = np.clip(p, EPSILON, 1.0 - EPSILON)
        return (q - y) / (q * (1.0 - q)) * _inside(p) / p.size

    def fused_gradient(self, p, y):
        return (p - y) * (1.0 / p.size)


class CategoricalCrossentropy(Loss):
    """``L = -1/B sum_i sum_j y_ij log p_ij`` for rows ``y_i`` that sum to one.

    Fused with a softmax output: ``dL/dz = (p - y) / B``.
    """

    name = "categorical_crossentropy"
    fused_activation = "softmax"

    def value(self, p, y):
        q = np.clip(p, EPSILON, 1.0 - EPSILON)
        return float(-np.vdot(y, np.log(q))) / p.shape[0]

    def gradient(self, p, y):
        q = np.clip(p, EPSILON, 1.0 - EPSILON)
        return -y / q * _inside(p) / p.shape[0]

    def fused_gradient(self, p, y):
        return (p - y) * (1.0 / p.shape[0])


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls for cls in (MeanSquaredError, BinaryCrossentropy, CategoricalCrossentropy)
}


def get_loss(identifier: str | Loss) -> Loss:
    """Return the loss named ``identifier`` (or ``identifier`` itself when a :class:`Loss`).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in LOSSES:
        return LOSSES[identifier.lower()]()
    raise ValueError(f"unknown loss {identifier!r}; valid names: {', '.join(sorted(LOSSES))}")
