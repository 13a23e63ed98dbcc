"""Convolutional classifiers: the three-block ConvNet of Experiment 8 and the
any-input-size CNN of Experiment 9.

Both follow the pattern of LeCun et al. (1998) and Krizhevsky et al. (2012): blocks of
convolution, ReLU and 2x2 max-pooling, then fully connected layers on the flattened
feature maps. Inputs are channels-first, (B, C, H, W); outputs are logits (the softmax
is applied by the loss, `F.cross_entropy`, or by the caller).

Output size of a convolution with kernel k, padding p and stride 1: H' = H + 2p - k + 1;
of a 2x2 max-pool with stride 2: H' = floor(H / 2). The flatten sizes below come from
these two formulas, so each model knows its size before it sees an image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def conv_out(size: int, kernel: int = 3, padding: int = 0) -> int:
    """Side length after a stride-1 convolution: size + 2 padding - kernel + 1."""
    return size + 2 * padding - kernel + 1


def pool_out(size: int) -> int:
    """Side length after a 2x2 max-pool with stride 2: floor(size / 2)."""
    return size // 2


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


class ConvNet(nn.Module):
    """3 x (conv 3x3 'same', ReLU, max-pool 2x2) -> flatten -> dense -> ReLU -> dense.

    The network of Experiment 8 as the manual writes it in both programs (Keras:
    Conv2D(32, 3, padding='same'), MaxPooling2D, Conv2D(64, ...), MaxPooling2D,
    Conv2D(128, ...), MaxPooling2D, Flatten, Dense(128), Dense(10)). Padding 1 keeps the
    size through each convolution, so only the pools shrink it: 64 -> 32 -> 16 -> 8.

    Args:
        input_size: H = W of the input images (64 in 8.1, 32 in 8.2), or (H, W).
        in_channels: C of the input (3 for colour).
        n_classes: outputs (logits).
        filters: output channels of the three convolutions.
        dense: width of the hidden dense layer.

    Input (B, C, H, W) -> logits (B, n_classes).
    """

    def __init__(self, input_size: int | Sequence[int] = 64, in_channels: int = 3,
                 n_classes: int = 10, filters: Sequence[int] = (32, 64, 128), dense: int = 128):
        super().__init__()
        h, w = _pair(input_size)
        self.input_size, self.in_channels, self.n_classes = (h, w), in_channels, n_classes
        self.filters, self.dense = tuple(filters), dense
        layers: list[nn.Module] = []
        c = in_channels
        for f in self.filters:
            layers += [nn.Conv2d(c, f, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            h, w, c = pool_out(conv_out(h, padding=1)), pool_out(conv_out(w, padding=1)), f
            if h < 1 or w < 1:
                raise ValueError(f"input {self.input_size} is too small for "
                                 f"{len(self.filters)} conv/pool blocks")
        self.features = nn.Sequential(*layers)
        self.feature_shape = (c, h, w)
        self.classifier = nn.Sequential(
            nn.Flatten(),                     # (B, C', H', W') -> (B, C' H' W')
            nn.Linear(c * h * w, dense), nn.ReLU(),
            nn.Linear(dense, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class AnySizeCNN(nn.Module):
    """3 x (conv 3x3 'same', ReLU, max-pool 2x2) -> flatten -> dense -> dropout -> dense.

    The network of Experiment 9. The manual hard-codes the flatten size as 128 * 4 * 4,
    which holds only for 32x32 input; here it is 128 * floor(floor(floor(H/2)/2)/2) *
    (the same for W), computed from `input_size`.

    Args:
        input_size: H = W of the input images, or (H, W); at least 8 each.
        in_channels: C of the input (3 for colour, 1 for grey).
        n_classes: outputs (logits).
        filters: output channels of the three convolutions.
        hidden: width of the hidden dense layer (256, the manual's).
        dropout: drop probability before the last layer (Srivastava et al. 2014).

    Input (B, C, H, W) -> logits (B, n_classes).
    """

    def __init__(self, input_size: int | Sequence[int] = 32, in_channels: int = 3,
                 n_classes: int = 2, filters: Sequence[int] = (32, 64, 128), hidden: int = 256,
                 dropout: float = 0.5):
        super().__init__()
        h, w = _pair(input_size)
        self.input_size, self.in_channels, self.n_classes = (h, w), in_channels, n_classes
        layers: list[nn.Module] = []
        c = in_channels
        for f in filters:
            # padding 1 keeps the size through the convolution; the pool halves it
            layers += [nn.Conv2d(c, f, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            h, w, c = pool_out(conv_out(h, padding=1)), pool_out(conv_out(w, padding=1)), f
        if h < 1 or w < 1:
            raise ValueError(f"input {self.input_size} is too small: "
                             f"{len(tuple(filters))} poolings need at least "
                             f"{2 ** len(tuple(filters))} pixels a side")
        self.features = nn.Sequential(*layers)
        self.feature_shape = (c, h, w)
        self.flatten_size = c * h * w
        self.classifier = nn.Sequential(
            nn.Flatten(),                     # (B, C', H', W') -> (B, C' H' W')
            nn.Linear(self.flatten_size, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(f"this network was built for {self.input_size[0]}x"
                             f"{self.input_size[1]} input, got {tuple(x.shape[-2:])}")
        return self.classifier(self.features(x))


class ManualCatDogCNN(nn.Module):
    """The manual's 9.1 network as printed: the flatten size fixed at 128 * 4 * 4.

    Kept to show its failure: any input other than 32x32 gives a feature map whose
    flattened size is not 2,048, and the first dense layer raises a shape error.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 2):
        super().__init__()
        self.features = AnySizeCNN(32, in_channels, n_classes).features
        self.fc1 = nn.Linear(128 * 4 * 4, 256)
        self.fc2 = nn.Linear(256, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).view(x.shape[0], -1)  # (B, 128 H/8 W/8)
        return self.fc2(torch.relu(self.fc1(x)))


def convnet_hand_count(input_size: int = 64, in_channels: int = 3, n_classes: int = 10,
                       filters: Sequence[int] = (32, 64, 128), dense: int = 128) -> list[tuple]:
    """Parameters of each ConvNet layer from the formulas, as (layer, output shape, count).

    conv: (k * k * C_in + 1) * C_out; dense: (n_in + 1) * n_out; pooling and flatten: 0.
    Sizes: a 'same' 3x3 convolution keeps H (padding 1), a 2x2 pool halves it (floor).
    Output shapes are channels-last (H, W, C), as Keras prints them.
    """
    rows: list[tuple] = []
    s, c = input_size, in_channels
    for i, f in enumerate(filters, 1):
        s = conv_out(s, padding=1)
        rows.append((f"conv{i} 3x3x{c}->{f}", (s, s, f), (3 * 3 * c + 1) * f))
        s, c = pool_out(s), f
        rows.append((f"pool{i} 2x2", (s, s, c), 0))
    flat = s * s * c
    rows.append(("flatten", (flat,), 0))
    rows.append((f"dense {flat}->{dense}", (dense,), (flat + 1) * dense))
    rows.append((f"dense {dense}->{n_classes}", (n_classes,), (dense + 1) * n_classes))
    return rows
