"""Gradient descent written out on a `dlab.scratch` network (Experiments 5 and 6).

The model's own `fit` hides the update; these functions show it:

    W[l] <- W[l] - a dW[l]        b[l] <- b[l] - a db[l]

for every layer l, with dW[l], db[l] back-propagated from the mean loss over a batch.
One row per step is stochastic gradient descent (Robbins and Monro 1951), all rows per
step full-batch gradient descent (Cauchy 1847), anything between mini-batch descent.
"""

from __future__ import annotations

import numpy as np


def make_net(sizes: tuple[int, ...], activation: str, seed: int):
    """A `Sequential` network sizes[0] -> ... -> sizes[-1] in float64: `activation` in the
    hidden layers, softmax at the output, categorical cross-entropy. (Its optimizer is
    never used: the steps are taken by `gd_step`.)"""
    from dlab.scratch import SGD, Dense, Sequential

    layers = [Dense(sizes[1], activation, input_dim=sizes[0])]
    layers += [Dense(n, activation) for n in sizes[2:-1]]
    layers.append(Dense(sizes[-1], "softmax"))
    model = Sequential(layers, seed=seed, dtype=np.float64)
    model.compile(loss="categorical_crossentropy", optimizer=SGD(0.1))
    return model


def gd_step(model, X: np.ndarray, Y: np.ndarray, lr: float,
            bias_lr: float | None = None) -> None:
    """One gradient-descent step on every layer of `model`, in place.

    X (B, n_in), Y (B, k): the batch whose mean loss is differentiated. `bias_lr`
    replaces a for the biases (the course manual's a^2, to measure its effect); None
    uses a.
    """
    grads = model.gradients(X, Y)  # [dW1, db1, dW2, db2, ...] in get_weights() order
    b_lr = lr if bias_lr is None else bias_lr
    for layer, dW, db in zip(model.layers, grads[0::2], grads[1::2], strict=True):
        layer.kernel -= lr * dW
        layer.bias -= b_lr * db


def gd_epoch(model, X: np.ndarray, Y: np.ndarray, lr: float, batch_size: int,
             rng: np.random.Generator) -> int:
    """One pass over (X (N, n_in), Y (N, k)) in a random order, one `gd_step` per batch
    of `batch_size` rows (1: SGD; N or more: one full-batch step). Returns the number of
    steps taken."""
    n = X.shape[0]
    if batch_size >= n:
        gd_step(model, X, Y, lr)
        return 1
    order = rng.permutation(n)
    Xs, Ys = X[order], Y[order]  # (N, n_in), (N, k): shuffled copies
    for start in range(0, n, batch_size):
        gd_step(model, Xs[start:start + batch_size], Ys[start:start + batch_size], lr)
    return -(-n // batch_size)
