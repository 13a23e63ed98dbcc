"""Weight initialisers for a kernel of shape ``(fan_in, fan_out)``.

Each takes ``shape``, a random source ``rng`` (an ``int`` seed or a
``np.random.Generator``; ``None`` draws fresh entropy from the OS, so it is not
reproducible) and a ``dtype``, and returns a new array of that shape.

- Glorot uniform (Glorot and Bengio, 2010, "Understanding the difficulty of training
  deep feedforward neural networks", eq. 16): ``U(-l, l)``, ``l = sqrt(6 / (fan_in +
  fan_out))``, so ``Var W = 2 / (fan_in + fan_out)``. Suits tanh and sigmoid.
- He normal (He et al., 2015, "Delving Deep into Rectifiers", eq. 10):
  ``N(0, 2 / fan_in)``. Suits ReLU. (Keras's ``he_normal`` draws from a normal truncated
  at two standard deviations instead; the variance here is the paper's.)
- He uniform: ``U(-l, l)``, ``l = sqrt(6 / fan_in)``, the same variance ``2 / fan_in``.
- Zeros: for biases.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RandomSource = int | np.random.Generator | None
Initializer = Callable[..., np.ndarray]


def as_generator(rng: RandomSource) -> np.random.Generator:
    """Return ``rng`` if it is a Generator, else a new Generator seeded with it."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) != 2:
        raise ValueError(f"a Dense kernel has shape (fan_in, fan_out); got {shape}")
    return int(shape[0]), int(shape[1])


def glorot_uniform(shape, rng: RandomSource = None, dtype=np.float32) -> np.ndarray:
    """Glorot/Xavier uniform ``U(-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))``; shape (in, out)."""
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return as_generator(rng).uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(shape, rng: RandomSource = None, dtype=np.float32) -> np.ndarray:
    """He normal ``N(0, 2 / fan_in)``; shape (in, out)."""
    fan_in, _ = _fans(shape)
    return as_generator(rng).normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(dtype)


def he_uniform(shape, rng: RandomSource = None, dtype=np.float32) -> np.ndarray:
    """He uniform ``U(-l, l)``, ``l = sqrt(6 / fan_in)``; shape (in, out)."""
    fan_in, _ = _fans(shape)
    limit = np.sqrt(6.0 / fan_in)
    return as_generator(rng).uniform(-limit, limit, size=shape).astype(dtype)


def zeros(shape, rng: RandomSource = None, dtype=np.float32) -> np.ndarray:
    """All zeros of ``shape`` (``rng`` is unused)."""
    return np.zeros(shape, dtype=dtype)


INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "zeros": zeros,
}


def get_initializer(identifier: str | Initializer) -> Initializer:
    """Return the initialiser named ``identifier``, or ``identifier`` itself when callable.

    A callable must accept ``(shape, rng, dtype)`` and return an array of ``shape``.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in INITIALIZERS:
        return INITIALIZERS[identifier.lower()]
    raise ValueError(
        f"unknown initializer {identifier!r}; valid names: {', '.join(sorted(INITIALIZERS))}"
    )
