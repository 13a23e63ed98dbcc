"""Gradient-descent optimisers that update parameter arrays in place.

``step(params, grads)`` takes two equally long lists of arrays (a parameter and its
gradient of the mean loss, same shape) and updates each parameter in place. State
(velocities, moments) is kept per list position and created on the first step; the
update formulas are PyTorch's (``torch.optim.SGD`` and ``torch.optim.Adam``), so the
same gradients give the same parameters step for step.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _check_positive(name: str, value: float) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    return float(value)


def _check_unit(name: str, value: float) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")
    return float(value)


class Optimizer:
    """Base class: ``step(params, grads)`` updates each array of ``params`` in place."""

    name = "optimizer"

    def __init__(self, learning_rate: float):
        self.learning_rate = _check_positive("learning_rate", learning_rate)
        self.iterations = 0
        self._state: list[tuple[np.ndarray, ...]] | None = None

    def reset(self) -> None:
        """Forget all state (velocities, moments, step count)."""
        self.iterations = 0
        self._state = None

    def _prepare(self, params: list[np.ndarray], grads: list[np.ndarray], n_slots: int) -> None:
        if len(params) != len(grads):
            raise ValueError(f"{len(params)} parameters but {len(grads)} gradients")
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if p.shape != g.shape:
                raise ValueError(f"parameter {i} has shape {p.shape}, its gradient {g.shape}")
        if self._state is None or [s[0].shape for s in self._state] != [p.shape for p in params]:
            self.iterations = 0
            self._state = [tuple(np.zeros_like(p) for _ in range(n_slots)) for p in params]
        self.iterations += 1

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update every ``params[i]`` in place from ``grads[i]`` (same shape)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({fields})"

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate}


class SGD(Optimizer):
    """Stochastic gradient descent with optional (heavy-ball) momentum.

    With ``mu = momentum`` and ``g_t`` the gradient at step ``t`` (Polyak, 1964; the form
    of ``torch.optim.SGD`` with ``dampening=0``, ``nesterov=False``)::

        v_t = mu * v_{t-1} + g_t          (v_0 = 0)
        w_t = w_{t-1} - learning_rate * v_t

    ``momentum=0`` is plain gradient descent ``w -= learning_rate * g``. Keras writes the
    same method as ``u = mu u - lr g; w += u``, which is identical for a fixed rate.

    Args:
        learning_rate: step size, > 0.
        momentum: ``mu`` in ``[0, 1)``.
    """

    name = "sgd"

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0):
        super().__init__(learning_rate)
        self.momentum = _check_unit("momentum", momentum)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "momentum": self.momentum}

    def step(self, params, grads):
        lr, mu = self.learning_rate, self.momentum
        if mu == 0.0:
            if len(params) != len(grads):
                raise ValueError(f"{len(params)} parameters but {len(grads)} gradients")
            self.iterations += 1
            for p, g in zip(params, grads, strict=True):
                p -= lr * g
            return
        self._prepare(params, grads, n_slots=1)
        for p, g, (v,) in zip(params, grads, self._state, strict=True):
            v *= mu
            v += g
            p -= lr * v


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015, "Adam: A Method for Stochastic Optimization", Alg. 1).

    With ``g_t`` the gradient at step ``t = 1, 2, ...``::

        m_t = beta_1 m_{t-1} + (1 - beta_1) g_t
        v_t = beta_2 v_{t-1} + (1 - beta_2) g_t^2
        w_t = w_{t-1} - learning_rate * (m_t / (1 - beta_1^t))
                                      / (sqrt(v_t / (1 - beta_2^t)) + epsilon)

    Epsilon placement: ``epsilon`` is added to the bias-corrected ``sqrt(v_hat_t)``, as in
    the paper and ``torch.optim.Adam``. Keras instead adds it to the uncorrected
    ``sqrt(v_t)`` (its "epsilon hat"), which equals an epsilon of
    ``epsilon / sqrt(1 - beta_2^t)`` here; the two agree once ``epsilon`` is negligible.
    The default ``epsilon = 1e-7`` is Keras's; PyTorch's default is ``1e-8``.

    Args:
        learning_rate: step size, > 0.
        beta_1: decay of the first moment, in ``[0, 1)``.
        beta_2: decay of the second moment, in ``[0, 1)``.
        epsilon: > 0, added to the denominator.
    """

    name = "adam"

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
    ):
        super().__init__(learning_rate)
        self.beta_1 = _check_unit("beta_1", beta_1)
        self.beta_2 = _check_unit("beta_2", beta_2)
        self.epsilon = _check_positive("epsilon", epsilon)

    def get_config(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }

    def step(self, params, grads):
        # State per parameter: m, v and one scratch array, so a step allocates nothing.
        self._prepare(params, grads, n_slots=3)
        t, b1, b2 = self.iterations, self.beta_1, self.beta_2
        step_size = self.learning_rate / (1.0 - b1**t)
        sqrt_bc2 = math.sqrt(1.0 - b2**t)
        for p, g, (m, v, tmp) in zip(params, grads, self._state, strict=True):
            # m += (1 - b1) (g - m)  is  m = b1 m + (1 - b1) g
            np.subtract(g, m, out=tmp)
            tmp *= 1.0 - b1
            m += tmp
            # v = b2 v + (1 - b2) g^2
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - b2
            v += tmp
            # tmp = sqrt(v) / sqrt(1 - b2^t) + eps  = sqrt(v_hat) + eps
            np.sqrt(v, out=tmp)
            tmp /= sqrt_bc2
            tmp += self.epsilon
            # w -= lr / (1 - b1^t) * m / tmp       = lr * m_hat / (sqrt(v_hat) + eps)
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Adam)}


def get_optimizer(identifier: str | Optimizer) -> Optimizer:
    """Return ``identifier`` if it is an :class:`Optimizer`, else a new one with that name
    and its default settings.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    raise ValueError(
        f"unknown optimizer {identifier!r}; valid names: {', '.join(sorted(OPTIMIZERS))}"
    )
