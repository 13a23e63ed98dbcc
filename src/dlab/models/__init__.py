"""Torch models, one file per family; none imports training code.

The density models of the contract are importable from here: `from dlab.models import
NADE, MADE, PixelCNN, PixelRNN` (each family's module is imported on first use).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "NADE": "nade", "MADE": "made", "GaussianMADE": "made", "MaskedLinear": "made",
    "PixelCNN": "pixelcnn", "PixelRNN": "pixelrnn",
}

__all__ = sorted([*_EXPORTS, "count_parameters"])


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of parameters of a torch module (only those with requires_grad when
    `trainable_only`)."""
    return sum(p.numel() for p in model.parameters()
               if p.requires_grad or not trainable_only)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"dlab.models.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'dlab.models' has no attribute {name!r}")
