"""MADE: the Masked Autoencoder for Distribution Estimation.

Germain, Gregor, Murray and Larochelle, "MADE: Masked Autoencoder for Distribution
Estimation", ICML 2015.

An MLP whose weight matrices are multiplied by binary masks so that output d sees
only the inputs that come before d in an ordering; its outputs are then the
parameters of the conditionals p(x_d | x_<d) and the chain rule gives an exact,
normalised likelihood in one forward pass.

Masks come from degrees (Section 4 of the paper, 0-indexed here):
- input i has degree m0(i) = its position in the ordering (0 .. D-1);
- hidden unit k of layer l has degree m_l(k) drawn uniformly from
  [min m_{l-1}, D-2] (a unit of degree D-1 could feed no output);
- a hidden weight is kept when m_l(k) >= m_{l-1}(k'), an output weight of output d
  when m0(d) > m_L(k) (strict, so output d never sees x_d).

Connectivity-agnostic training (Section 4.2): with `num_masks = K > 1` the ordering
and hidden degrees are redrawn for each k in range(K), deterministically from
(seed, k); training cycles through them with `next_mask()`, and `log_prob` scores
the ensemble, the uniform mixture (1/K) sum_k p_k(x), which is itself normalised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "elu": F.elu,
    "gelu": F.gelu,
}


class MaskedLinear(nn.Linear):
    """nn.Linear whose weight is multiplied by a fixed 0/1 mask: y = x (mask * W)^T + b.

    The mask, shape (out_features, in_features), is a registered buffer, so it moves
    with the module and is saved in its state_dict.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", torch.ones(out_features, in_features))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """nn.Linear's initialisation, optionally with an explicit generator."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound, generator=generator)

    def set_mask(self, mask: torch.Tensor) -> None:
        """Copy `mask` (out_features, in_features), any 0/1 dtype, into the buffer."""
        self.mask.copy_(mask.to(self.mask))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, in_features) -> (B, out_features); `mask` overrides the buffer if given."""
        m = self.mask if mask is None else mask
        return F.linear(x, m * self.weight, self.bias)


class _MaskedAutoregressive(nn.Module):
    """Shared body of MADE and GaussianMADE: a masked MLP with `n_params` outputs per dim.

    Subclasses define the conditional distribution through `_log_terms` (per-dim
    log-densities from the network output), `_noise` and `_draw` (for sampling).
    Output unit j * D + d holds parameter j of the conditional of x_d.
    """

    n_params = 1

    def __init__(self, n_in: int, hidden_sizes: Sequence[int] | int, num_masks: int = 1,
                 natural_ordering: bool = False, seed: int = 0, activation: str = "relu",
                 generator: torch.Generator | None = None):
        super().__init__()
        if isinstance(hidden_sizes, int):
            hidden_sizes = (hidden_sizes,)
        hidden_sizes = tuple(int(h) for h in hidden_sizes)
        if int(n_in) < 1:
            raise ValueError(f"n_in must be >= 1, got {n_in}")
        if any(h < 1 for h in hidden_sizes):
            raise ValueError(f"hidden sizes must be >= 1, got {hidden_sizes}")
        if int(num_masks) < 1:
            raise ValueError(f"num_masks must be >= 1, got {num_masks}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        self.n_in, self.hidden_sizes = int(n_in), hidden_sizes
        self.num_masks, self.natural_ordering = int(num_masks), bool(natural_ordering)
        self.seed, self.activation = int(seed), activation
        sizes = (self.n_in, *hidden_sizes)
        self.hidden = nn.ModuleList(
            MaskedLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.out = MaskedLinear(sizes[-1], self.n_params * self.n_in)
        if generator is not None:
            for layer in self.layers:
                layer.reset_parameters(generator)
        self.register_buffer("mask_index", torch.zeros((), dtype=torch.long))
        self._degree_cache: dict[int, list[np.ndarray]] = {}
        self._apply_masks(0)

    @property
    def layers(self) -> list[MaskedLinear]:
        return [*self.hidden, self.out]

    # ----- masks -------------------------------------------------------------------
    def degrees(self, k: int) -> list[np.ndarray]:
        """Degrees of mask k: [input degrees (D,), hidden layer 1 (H1,), ...].

        Drawn from np.random.default_rng((seed, k)), so mask k is the same every time.
        """
        k = self._check_index(k)
        if k not in self._degree_cache:
            rng = np.random.default_rng((self.seed, k))
            d = self.n_in
            order = np.arange(d) if self.natural_ordering else rng.permutation(d)
            degs = [order]
            for h in self.hidden_sizes:
                low = int(degs[-1].min())
                degs.append(rng.integers(low, max(d - 1, low + 1), size=h))  # [low, D-2]
            self._degree_cache[k] = degs
        return self._degree_cache[k]

    def input_order(self, k: int | None = None) -> torch.Tensor:
        """(D,) long: the position of each input in mask k's ordering (current mask if None)."""
        k = int(self.mask_index) if k is None else k
        return torch.as_tensor(self.degrees(k)[0], dtype=torch.long)

    def masks(self, k: int) -> list[torch.Tensor]:
        """The masks of ordering k, one per layer, shape (out, in), on the weights' device."""
        w = self.out.weight
        degs = [torch.as_tensor(m, device=w.device) for m in self.degrees(k)]
        masks = [(cur[:, None] >= prev[None, :]).to(w.dtype)  # (H_l, H_{l-1})
                 for prev, cur in zip(degs[:-1], degs[1:], strict=True)]
        out_deg = degs[0].repeat(self.n_params)  # (n_params * D,)
        masks.append((out_deg[:, None] > degs[-1][None, :]).to(w.dtype))  # (n_params*D, H_L)
        return masks

    def _check_index(self, k: int) -> int:
        k = int(k)
        if not 0 <= k < self.num_masks:
            raise ValueError(f"mask index {k} out of range for num_masks={self.num_masks}")
        return k

    @torch.no_grad()
    def _apply_masks(self, k: int) -> None:
        for layer, m in zip(self.layers, self.masks(k), strict=True):
            layer.set_mask(m)
        self.mask_index.fill_(k)

    def next_mask(self) -> int:
        """Switch the layers' masks to the next ordering (cyclically); returns its index."""
        k = (int(self.mask_index) + 1) % self.num_masks
        if self.num_masks > 1:
            self._apply_masks(k)
        return k

    # ----- network -----------------------------------------------------------------
    def _net(self, x: torch.Tensor, mask_index: int | None = None) -> torch.Tensor:
        """(B, D) -> (B, n_params * D) raw outputs under mask `mask_index` (current if None)."""
        if x.dim() != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"expected x of shape (B, {self.n_in}), got {tuple(x.shape)}")
        x = x.to(self.out.weight.dtype)
        masks = [None] * len(self.layers) if mask_index is None else self.masks(mask_index)
        act = ACTIVATIONS[self.activation]
        h = x
        for layer, m in zip(self.hidden, masks[:-1], strict=True):
            h = act(layer(h, m))
        return self.out(h, masks[-1])

    def _log_terms(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob_single(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """(B, D) -> (B,) exact log-likelihood under the single ordering k (current if None).

        This is the training loss of connectivity-agnostic training (with next_mask()
        called between steps).
        """
        x = x.to(self.out.weight.dtype)
        return self._log_terms(x, self._net(x, k)).sum(dim=1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B,) exact log-likelihood in nats.

        With num_masks = K > 1 this is the ensemble of the paper's Section 4.2,
        log (1/K) sum_k p_k(x) = logsumexp_k log p_k(x) - log K: a mixture of K
        autoregressive models, hence normalised. (Averaging logits is not.)
        """
        if self.num_masks == 1:
            return self.log_prob_single(x)  # the one mask, held in the layers' buffers
        lp = torch.stack([self.log_prob_single(x, k) for k in range(self.num_masks)])  # (K, B)
        return torch.logsumexp(lp, dim=0) - math.log(self.num_masks)

    # ----- sampling ----------------------------------------------------------------
    def _noise(self, shape, generator, device, dtype) -> torch.Tensor:
        raise NotImplementedError

    def _draw(self, out: torch.Tensor, d: int, noise: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Exact samples, (n, D), by ancestral sampling in the ordering of a mask.

        With K > 1 masks each sample first picks k uniformly from range(K), which
        samples the mixture that `log_prob` scores. All randomness (mask choice and one
        noise number per dimension) is drawn up front from `generator` (any device).
        D forward passes per mask in use.
        """
        if int(n) < 0:
            raise ValueError(f"number of samples must be >= 0, got {n}")
        n = int(n)
        w = self.out.weight
        where = generator.device if generator is not None else w.device
        ks = torch.randint(self.num_masks, (n,), generator=generator, device=where).to(w.device)
        noise = self._noise((n, self.n_in), generator, w.device, w.dtype)  # (n, D)
        x = torch.zeros(n, self.n_in, device=w.device, dtype=w.dtype)
        for k in ks.unique().tolist():
            rows = (ks == k).nonzero().squeeze(1)  # (n_k,)
            xk = torch.zeros(rows.numel(), self.n_in, device=w.device, dtype=w.dtype)
            for d in np.argsort(self.degrees(k)[0]).tolist():  # inputs in ordering k
                xk[:, d] = self._draw(self._net(xk, k), d, noise[rows, d])
            x[rows] = xk
        return x


class MADE(_MaskedAutoregressive):
    """MADE for binary vectors: output d is the logit of p(x_d = 1 | x_<d).

    Args:
        n_in: D, the number of binary dimensions.
        hidden_sizes: widths of the hidden layers, e.g. (500,) or (300, 300); () gives a
            masked logistic-regression chain (fully visible sigmoid belief net).
        num_masks: K; 1 for a single fixed ordering, > 1 for connectivity-agnostic
            training and the ensemble likelihood.
        natural_ordering: order the inputs 0..D-1 for every mask (only hidden degrees
            then change between masks); otherwise a random permutation per mask.
        seed: seeds the masks: mask k is drawn from np.random.default_rng((seed, k)).
        activation: hidden non-linearity, one of ACTIVATIONS.
        generator: optional torch.Generator to initialise the weights.
    """

    n_params = 1

    def logits(self, x: torch.Tensor, mask_index: int | None = None) -> torch.Tensor:
        """(B, D) -> (B, D) logits under mask `mask_index` (current mask if None)."""
        return self._net(x, mask_index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits under the current mask, (B, D) -> (B, D)."""
        return self._net(x)

    def _log_terms(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        # log Bernoulli(x_d; sigmoid(l_d)), stable in the logits
        return -F.binary_cross_entropy_with_logits(out, x, reduction="none")  # (B, D)

    def _noise(self, shape, generator, device, dtype) -> torch.Tensor:
        where = generator.device if generator is not None else device
        return torch.rand(shape, generator=generator, device=where, dtype=dtype).to(device)

    def _draw(self, out: torch.Tensor, d: int, noise: torch.Tensor) -> torch.Tensor:
        return (noise < torch.sigmoid(out[:, d])).to(out.dtype)  # Bernoulli via uniform


class GaussianMADE(_MaskedAutoregressive):
    """MADE for real vectors with Gaussian conditionals (Germain et al. 2015; the
    autoregressive Gaussian of Papamakarios et al. 2017, "Masked Autoregressive Flow"):

        p(x_d | x_<d) = N(x_d; mu_d(x_<d), exp(alpha_d(x_<d))^2).

    Output units 0..D-1 are the means mu, units D..2D-1 the log-stds alpha. Arguments
    as for :class:`MADE`; `n_in` defaults to 2 for densities over the plane.
    """

    n_params = 2

    def __init__(self, n_in: int = 2, hidden_sizes: Sequence[int] | int = (64, 64),
                 num_masks: int = 1, natural_ordering: bool = False, seed: int = 0,
                 activation: str = "relu", generator: torch.Generator | None = None):
        super().__init__(n_in, hidden_sizes, num_masks, natural_ordering, seed, activation,
                         generator)

    def params(self, x: torch.Tensor, mask_index: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) -> (mean (B, D), log_std (B, D)) under mask `mask_index` (current if None)."""
        out = self._net(x, mask_index)  # (B, 2D)
        return out[:, : self.n_in], out[:, self.n_in :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw outputs under the current mask, (B, D) -> (B, 2D): [means, log-stds]."""
        return self._net(x)

    def _log_terms(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        mean, log_std = out[:, : self.n_in], out[:, self.n_in :]
        z = (x - mean) * torch.exp(-log_std)
        return -0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)  # (B, D)

    def _noise(self, shape, generator, device, dtype) -> torch.Tensor:
        where = generator.device if generator is not None else device
        return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)

    def _draw(self, out: torch.Tensor, d: int, noise: torch.Tensor) -> torch.Tensor:
        return out[:, d] + torch.exp(out[:, self.n_in + d]) * noise  # mu + sigma z
