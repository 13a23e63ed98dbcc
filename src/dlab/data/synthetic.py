"""Seeded synthetic data sets. Every generator takes an explicit NumPy Generator."""

from __future__ import annotations

import math

import numpy as np

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def xor() -> tuple[np.ndarray, np.ndarray]:
    """The four XOR points (4, 2) and targets (4, 1)."""
    return XOR_X.copy(), XOR_Y.copy()


def noisy_sine(rng: np.random.Generator, n: int = 1000, noise: float = 0.1,
               period: float = 50.0) -> np.ndarray:
    """sin(2 pi t / period) + N(0, noise^2) for t = 0..n-1, shape (n,)."""
    t = np.arange(n, dtype=np.float64)
    return (np.sin(2 * math.pi * t / period) + rng.normal(0.0, noise, n)).astype(np.float32)


def gaussian_mixture(rng: np.random.Generator, n: int = 1000,
                     means: tuple[tuple[float, float], ...] = ((-2.0, 0.0), (2.0, 0.0)),
                     std: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """n points (n, 2) from equal-weight isotropic Gaussians, and their component (n,)."""
    centres = np.asarray(means, dtype=np.float64)
    comp = rng.integers(0, len(centres), n)
    x = centres[comp] + rng.normal(0.0, std, (n, centres.shape[1]))
    return x.astype(np.float32), comp


def binary_entropy(p: float) -> float:
    """H(p) in nats."""
    if p in (0.0, 1.0):
        return 0.0
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def markov_chain_bits(rng: np.random.Generator, n: int, d: int = 20, p_flip: float = 0.1,
                      p_first: float = 0.5) -> np.ndarray:
    """n binary vectors (n, d): x_0 ~ Bernoulli(p_first), x_i = x_{i-1} flipped w.p. p_flip.

    Its exact entropy is `markov_chain_entropy(d, p_flip, p_first)`, so a density
    model's test NLL can be compared with the best any model can do.
    """
    x = np.empty((n, d), dtype=np.uint8)
    x[:, 0] = rng.random(n) < p_first
    flips = rng.random((n, d - 1)) < p_flip
    for i in range(1, d):
        x[:, i] = x[:, i - 1] ^ flips[:, i - 1]
    return x


def markov_chain_entropy(d: int, p_flip: float, p_first: float = 0.5) -> float:
    """Entropy in nats per vector of `markov_chain_bits`: H(p_first) + (d-1) H(p_flip)."""
    return binary_entropy(p_first) + (d - 1) * binary_entropy(p_flip)
