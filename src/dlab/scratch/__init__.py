"""A small neural-network library on NumPy alone, with a Keras-like API.

>>> import numpy as np
>>> from dlab.scratch import Sequential, Dense, Adam
>>> model = Sequential([Dense(4, "tanh", input_dim=2), Dense(1, "sigmoid")], seed=0)
>>> model.compile(loss="binary_crossentropy", optimizer=Adam(0.05))
>>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
>>> history = model.fit(X, np.array([0, 1, 1, 0]), epochs=500)

Every layer keeps its backward equations next to its forward pass (``layers.Dense``);
:func:`gradcheck` compares them with finite differences.
"""

from .activations import ACTIVATIONS, Activation, get_activation
from .gradcheck import gradcheck, numerical_gradients
from .initializers import (
    INITIALIZERS,
    get_initializer,
    glorot_uniform,
    he_normal,
    he_uniform,
    zeros,
)
from .layers import Dense, Layer
from .losses import LOSSES, Loss, get_loss
from .model import History, Sequential
from .optimizers import OPTIMIZERS, SGD, Adam, Optimizer, get_optimizer

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LOSSES",
    "OPTIMIZERS",
    "SGD",
    "Activation",
    "Adam",
    "Dense",
    "History",
    "Layer",
    "Loss",
    "Optimizer",
    "Sequential",
    "get_activation",
    "get_initializer",
    "get_loss",
    "get_optimizer",
    "glorot_uniform",
    "gradcheck",
    "he_normal",
    "he_uniform",
    "numerical_gradients",
    "zeros",
]
