"""A small convolutional MNIST classifier whose penultimate layer serves as a feature space.

Frechet Inception Distance (Heusel et al., "GANs Trained by a Two Time-Scale Update
Rule Converge to a Local Nash Equilibrium", NeurIPS 2017) compares Gaussians fit to
Inception-v3 features of real and generated images. Inception features of 28x28 grey
digits say little, so dlab measures the same distance in the features of a network
trained on the digits themselves: the `features` below, the activations just before
the last linear layer.

    x (B, 1, 28, 28) -> [conv 3x3, ReLU, max-pool 2] -> (B, c1, 14, 14)
                     -> [conv 3x3, ReLU, max-pool 2] -> (B, c2, 7, 7)
                     -> flatten, linear, ReLU        -> features (B, F)
                     -> dropout, linear              -> logits (B, 10)

Inputs are images scaled to [-1, 1] (the range of the generators' tanh).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MNISTClassifier(nn.Module):
    """Two conv blocks and a feature layer; `forward` gives class logits.

    Args:
        channels: (c1, c2), channels of the two convolution blocks.
        feature_dim: F, width of the penultimate (feature) layer.
        n_classes: number of output classes.
        dropout: dropout rate between the features and the output layer (training only;
            the features themselves are taken before it).
    """

    def __init__(self, channels: Sequence[int] = (32, 64), feature_dim: int = 128,
                 n_classes: int = 10, dropout: float = 0.25):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) != 2 or min(channels) < 1 or feature_dim < 1 or n_classes < 2:
            raise ValueError(f"MNISTClassifier needs two channel counts >= 1, feature_dim >= 1 "
                             f"and n_classes >= 2; got {channels}, {feature_dim}, {n_classes}")
        c1, c2 = channels
        self.channels, self.feature_dim = channels, int(feature_dim)
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 28 -> 14
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14 -> 7
            nn.Flatten(),                                                 # (B, c2*49)
            nn.Linear(c2 * 7 * 7, self.feature_dim), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations: x (B, 1, 28, 28) -> (B, F)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits: x (B, 1, 28, 28) -> (B, n_classes)."""
        return self.head(self.body(x))
