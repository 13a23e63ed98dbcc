"""A configurable multi-layer perceptron (fully connected layers with one activation).

    x (B, sizes[0]) -> [Linear, act] x (L - 1) -> Linear -> [out_act] -> (B, sizes[-1])

with L = len(sizes) - 1 linear layers (Rumelhart, Hinton and Williams 1986). Weights
start from PyTorch's default for `nn.Linear` (He/Kaiming uniform with a = sqrt(5) for the
kernel, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias), drawn from an explicit
`torch.Generator` when one is given, so a model's initial weights depend on a seed and
not on the global random state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "linear": nn.Identity,
}
OUT_ACTIVATIONS = {**ACTIVATIONS, "softmax": lambda: nn.Softmax(dim=-1),
                   "log_softmax": lambda: nn.LogSoftmax(dim=-1)}


class MLP(nn.Sequential):
    """Linear layers of widths `sizes` with `activation` between them.

    Args:
        sizes: (n_in, h_1, ..., h_{L-1}, n_out), at least two positive widths.
        activation: hidden activation: 'relu', 'tanh', 'sigmoid', 'leaky_relu', 'gelu'
            or 'linear'.
        out_activation: None (raw outputs: logits for a loss that takes logits), or one of
            the names above, 'softmax' or 'log_softmax' (over the last axis).
        generator: draws the initial weights; None uses torch's global generator.

    Input (B, n_in) -> output (B, n_out). `linears` lists the nn.Linear layers in order.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 out_activation: str | None = None, generator: torch.Generator | None = None):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"MLP needs at least two positive widths (inputs, outputs); "
                             f"got sizes={sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of "
                             f"{', '.join(ACTIVATIONS)}")
        if out_activation is not None and out_activation not in OUT_ACTIVATIONS:
            raise ValueError(f"unknown out_activation {out_activation!r}; use None or one of "
                             f"{', '.join(OUT_ACTIVATIONS)}")
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(n_in, n_out))  # (B, n_in) -> (B, n_out)
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        if out_activation is not None:
            layers.append(OUT_ACTIVATIONS[out_activation]())
        super().__init__(*layers)
        self.sizes, self.activation, self.out_activation = sizes, activation, out_activation
        if generator is not None:
            self.reset_parameters(generator)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self if isinstance(m, nn.Linear)]

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw every layer's weights with PyTorch's default scheme from `generator`."""
        for lin in self.linears:
            nn.init.kaiming_uniform_(lin.weight, a=math.sqrt(5), generator=generator)
            bound = 1.0 / math.sqrt(lin.in_features)
            nn.init.uniform_(lin.bias, -bound, bound, generator=generator)
