"""NADE: the Neural Autoregressive Distribution Estimator for binary vectors.

Larochelle and Murray, "The Neural Autoregressive Distribution Estimator", AISTATS 2011.

A binary vector x in {0, 1}^D is modelled with the chain rule in the natural order,

    p(x) = prod_d p(x_d | x_<d),
    h_d  = sigmoid(c + W[:, <d] x_<d)             (eq. 3 of the paper)
    p(x_d = 1 | x_<d) = sigmoid(b_d + V_d . h_d)  (eq. 2)

Every conditional shares the input-to-hidden weights W, so the pre-activation of
h_{d+1} is that of h_d plus one column: a_{d+1} = a_d + W[:, d] x_d. Computing all D
hidden layers therefore costs O(DH) per example.

Two forms compute the same logits. The dense one builds all D hidden layers at once, a
(B, D, H) tensor, with one cumulative sum over the dimensions; autograd then keeps several
such tensors (157 MB each at batch 100, 784 x 500). On a CPU that traffic is the cost, so
there the running sum goes a few dimensions at a time (`RunningSum`): each chunk's
(chunk, B, H) block stays in the cache, the forward pass keeps only the pre-activation at
every chunk's start, and the backward pass recomputes the chunk and carries the reverse
running sum of the gradient. One training step at 784-500, batch 100, one thread: 0.16-0.23
s against 1.4 s dense (bench/nade_speed.py). On a GPU the dense form's few large kernels
beat the chunked form's thousands of small ones, so it is used there.
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


CHUNK = 8  # dimensions per block of the running sum on a CPU (4-8 measured alike)


class RunningSum(torch.autograd.Function):
    """NADE's logits a chunk of dimensions at a time, with a hand-written backward pass.

    Forward, dimensions counted from 0:  a_0 = c,  a_d = a_{d-1} + x_{d-1} W[:, d-1],
    h_d = sigmoid(a_d), logit_d = V_d . h_d + b_d.
    Backward, with g_d = dL/dlogit_d:  dL/da_d = g_d V_d h_d (1 - h_d); since a_d feeds every
    later a, the gradient reaching W[:, d-1] and x_{d-1} is G_d = sum_{d' >= d} dL/da_d',
    a running sum taken from the last dimension back:  dW[:, d-1] = sum_b x_{d-1} G_d,
    dx_{d-1} = W[:, d-1] . G_d,  dc = sum_b G_0,  dV_d = sum_b g_d h_d,  db_d = sum_b g_d.
    Blocks are laid out (chunk, B, H) so that each step of a running sum adds one
    contiguous (B, H) slice.
    """

    @staticmethod
    def forward(ctx, x, W, c, V, b, chunk):  # noqa: D102 (see the class)
        (n, d), h = x.shape, W.shape[0]
        xs = F.pad(x[:, :-1], (1, 0)).t().contiguous()  # (D, B): x_{d-1}, 0 for d = 0
        ws = F.pad(W[:, :-1], (1, 0)).t().contiguous()  # (D, H): W[:, d-1], 0 for d = 0
        out = torch.empty(d, n, dtype=x.dtype, device=x.device)
        a = c.expand(n, h).contiguous()  # (B, H): the pre-activation before the chunk
        starts = []
        for s in range(0, d, chunk):
            starts.append(a)
            hid, a = _chunk_hidden(xs, ws, a, s, min(s + chunk, d))
            torch.bmm(hid, V[s:s + chunk, :, None], out=out[s:s + chunk, :, None])
        ctx.save_for_backward(xs, ws, V, *starts)
        ctx.chunk = chunk
        return out.t() + b

    @staticmethod
    def backward(ctx, g):  # noqa: D102 (see the class)
        xs, ws, V, *starts = ctx.saved_tensors
        chunk, (d, n), h = ctx.chunk, xs.shape, ws.shape[1]
        gt = g.t().contiguous()  # (D, B)
        dV, dws = torch.empty_like(V), torch.empty_like(ws)
        dxs = torch.empty_like(xs) if ctx.needs_input_grad[0] else None
        carry = torch.zeros(n, h, dtype=g.dtype, device=g.device)  # G after the chunk
        for k in reversed(range(len(starts))):
            s, e = k * chunk, min(k * chunk + chunk, d)
            hid, _ = _chunk_hidden(xs, ws, starts[k], s, e)  # recomputed
            gc = gt[s:e]  # (c, B)
            torch.bmm(gc[:, None, :], hid, out=dV[s:e, None, :])
            da = hid.mul_(1 - hid).mul_(gc[..., None]).mul_(V[s:e, None, :])  # dL/da
            da[-1] += carry
            for i in range(e - s - 2, -1, -1):  # G_d: the reverse running sum
                da[i] += da[i + 1]
            carry = da[0]
            torch.bmm(xs[s:e, None, :], da, out=dws[s:e, None, :])
            if dxs is not None:
                torch.bmm(da, ws[s:e, :, None], out=dxs[s:e, :, None])
        dW = torch.zeros(h, d, dtype=g.dtype, device=g.device)
        dW[:, :-1] = dws[1:].t()
        dx = None
        if dxs is not None:
            dx = torch.zeros(n, d, dtype=g.dtype, device=g.device)
            dx[:, :-1] = dxs[1:].t()
        return dx, dW, carry.sum(0), dV, g.sum(0), None


def _chunk_hidden(xs: torch.Tensor, ws: torch.Tensor, a: torch.Tensor, s: int, e: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden units of dimensions s..e-1, (e - s, B, H), from a (B, H), the pre-activation
    before s; and the pre-activation of dimension e-1, where the next chunk starts."""
    block = xs[s:e, :, None] * ws[s:e, None, :]  # (c, B, H): x_{d-1} W[:, d-1]
    block[0] += a
    for i in range(1, e - s):  # the running sum, one contiguous slice at a time
        block[i] += block[i - 1]
    last = block[-1].clone()
    return block.sigmoid_(), last


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
            (B, D) logits; logit d depends on x_<d only. On a CPU: the chunked running
            sum (`RunningSum`); elsewhere the dense form (`dense_logits`).
        """
        x = self._check(x)
        if x.device.type == "cpu":
            return RunningSum.apply(x, self.W, self.c, self.V, self.b, CHUNK)
        return self.dense_logits(x)

    def dense_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The same logits with all D hidden layers in one (B, D, H) tensor."""
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
