"""NADE: the Neural Autoregressive Distribution Estimator for binary vectors.

Larochelle and Murray, "The Neural Autoregressive Distribution Estimator", AISTATS 2011.

A binary vector x in {0, 1}^D is modelled with the chain rule in the natural order,

    p(x) = prod_d p(x_d | x_<d),
    h_d  = sigmoid(c + W[:, <d] x_<d)             (eq. 3 of the paper)
    p(x_d = 1 | x_<d) = sigmoid(b_d + V_d . h_d)  (eq. 2)

Every conditional shares the input-to-hidden weights W, so the pre-activation of
h_{d+1} is that of h_d plus one column: a_{d+1} = a_d + W[:, d] x_d. Computing all D
hidden layers therefore costs O(DH) per example, done here with one cumulative sum
over the dimensions instead of a Python loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None,
             device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn with `generator` (on its own device), moved to `device`."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where, dtype=dtype).to(device)


class NADE(nn.Module):
    """NADE for binary vectors of length `n_in`, with `n_hidden` sigmoid hidden units.

    Args:
        n_in: D, the number of binary dimensions.
        n_hidden: H, the number of hidden units (shared by all D conditionals).
        generator: optional torch.Generator (CPU) used to initialise the weights;
            None uses torch's default generator.

    Parameters:
        W: (H, D) input-to-hidden weights; column d feeds the hidden units of every
            conditional after d.
        c: (H,) hidden biases.
        V: (D, H) hidden-to-output weights, one row per conditional.
        b: (D,) output biases.
    """

    def __init__(self, n_in: int, n_hidden: int, generator: torch.Generator | None = None):
        super().__init__()
        if int(n_in) < 1 or int(n_hidden) < 1:
            raise ValueError(f"NADE needs n_in >= 1 and n_hidden >= 1, got {n_in}, {n_hidden}")
        self.n_in, self.n_hidden = int(n_in), int(n_hidden)
        self.W = nn.Parameter(torch.empty(self.n_hidden, self.n_in))
        self.c = nn.Parameter(torch.zeros(self.n_hidden))
        self.V = nn.Parameter(torch.empty(self.n_in, self.n_hidden))
        self.b = nn.Parameter(torch.zeros(self.n_in))
        self.reset_parameters(generator)

    def extra_repr(self) -> str:
        return (f"n_in={self.n_in}, n_hidden={self.n_hidden}: W {tuple(self.W.shape)}, "
                f"c {tuple(self.c.shape)}, V {tuple(self.V.shape)}, b {tuple(self.b.shape)}")

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Uniform weights scaled by fan-in (as nn.Linear does), zero biases."""
        bound_w = 1.0 / math.sqrt(self.n_in)
        bound_v = 1.0 / math.sqrt(self.n_hidden)
        with torch.no_grad():
            nn.init.uniform_(self.W, -bound_w, bound_w, generator=generator)
            nn.init.uniform_(self.V, -bound_v, bound_v, generator=generator)
            self.c.zero_()
            self.b.zero_()

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"NADE expects x of shape (B, {self.n_in}), got {tuple(x.shape)}")
        return x.to(self.W.dtype)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of p(x_d = 1 | x_<d) for every d.

        Args:
            x: (B, D) inputs (binary for a likelihood; any real values are accepted,
                which the tests use to check the autoregressive property by autograd).

        Returns:
            (B, D) logits; logit d depends on x_<d only. Memory: one (B, D, H) tensor.
        """
        x = self._check(x)
        x_prev = F.pad(x[:, :-1], (1, 0))  # (B, D): x_{d-1}, and 0 for d = 0
        w_prev = F.pad(self.W[:, :-1], (1, 0)).t()  # (D, H): W[:, d-1], and 0 for d = 0
        a = x_prev.unsqueeze(-1) * w_prev  # (B, D, H): x_{d-1} W[:, d-1]
        # a_d = c + sum_{j<d} x_j W[:, j], by a running sum over d; in place, so one
        # (B, D, H) tensor holds the pre-activations and then the hidden units
        h = a.cumsum_(dim=1).add_(self.c).sigmoid_()  # (B, D, H): h_d for every d
        # V_d . h_d for every d: a product and a sum over H (einsum's batched matmul over
        # D tiny products is several times slower on a CPU, forward and backward)
        return (h * self.V).sum(dim=2) + self.b  # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`logits`: (B, D) -> (B, D)."""
        return self.logits(x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-likelihood in nats.

        log p(x) = sum_d [x_d log s(l_d) + (1 - x_d) log(1 - s(l_d))], computed from the
        logits l_d with binary_cross_entropy_with_logits, which stays finite where the
        probabilities round to 0 or 1.

        Args:
            x: (B, D) binary (0./1.) inputs.

        Returns:
            (B,) log p(x) per example.
        """
        x = self._check(x)
        nll = F.binary_cross_entropy_with_logits(self.logits(x), x, reduction="none")  # (B, D)
        return -nll.sum(dim=1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Ancestral sampling: draw x_1, then x_2 given x_1, and so on (D steps of O(H)).

        Args:
            n: number of samples.
            generator: optional torch.Generator for the draws (any device).

        Returns:
            (n, D) tensor of 0./1. values on the model's device and dtype.
        """
        if int(n) < 0:
            raise ValueError(f"number of samples must be >= 0, got {n}")
        n = int(n)
        dev, dtype = self.W.device, self.W.dtype
        u = _uniform((n, self.n_in), generator, dev, dtype)  # (n, D): one draw per x_d
        x = torch.zeros(n, self.n_in, device=dev, dtype=dtype)
        a = self.c.expand(n, self.n_hidden).clone()  # (n, H): pre-activation of h_1
        for d in range(self.n_in):
            p = torch.sigmoid(torch.sigmoid(a) @ self.V[d] + self.b[d])  # (n,)
            x[:, d] = (u[:, d] < p).to(dtype)
            a = a + x[:, d : d + 1] * self.W[:, d]  # (n, H): add column d for h_{d+1}
        return x
