"""Keras 3 variants of the programs (backend-agnostic: keras.ops only)."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np


def load_keras():
    """Keras, on the torch backend unless KERAS_BACKEND names another.

    Its first import leaves Python's `random` as it found it: it imports rich, which
    draws from `random` on import, and the layers' initial weights are seeded from
    `random`. Otherwise a model built right after seeding would get other weights in a
    fresh process (a notebook kernel) than in `dlab run`, whose command line imports rich
    before the run is seeded."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    state = random.getstate()
    import keras

    random.setstate(state)
    return keras


def to_numpy(tensor: Any) -> np.ndarray:
    """A backend tensor as a NumPy array. On the torch backend torch converts it:
    `keras.ops.convert_to_numpy` goes through `np.array(tensor)`, which NumPy 2 flags with
    a DeprecationWarning for torch tensors."""
    if hasattr(tensor, "detach"):
        return tensor.detach().cpu().numpy()
    return np.asarray(load_keras().ops.convert_to_numpy(tensor))
