"""PixelRNN for binary images: Row LSTM and Diagonal BiLSTM (van den Oord et al., 2016).

"Pixel Recurrent Neural Networks" (ICML 2016), sections 3.1-3.3. The image distribution
is factorised in raster order, p(x) = prod_i p(x_i | x_<i), each conditional a Bernoulli.

Row LSTM (section 3.1): after a mask-A 7x7 input convolution, each layer runs an LSTM
top to bottom, one whole row at a time. With x_i the layer's input row i and h_{i-1},
c_{i-1} the previous row's state (zeros above row 0), eq. (3):

    [o, f, i, g] = [s, s, s, tanh](K_ss (*) h_{i-1} + K_is (*) x_i)
    c_i = f . c_{i-1} + i . g,        h_i = o . tanh(c_i)

K_is is a 1 x k convolution along the row, masked as type B (taps at and left of the
column), computed for all rows at once; K_ss is an unmasked 1 x k convolution of the
previous row's hidden state. The context is a triangle above the pixel.

Diagonal BiLSTM (section 3.2): the input map is skewed (row r shifted right by r) so
that each diagonal becomes a column; an LSTM runs over the columns with a 1x1 input
to state and a 2 x 1 (this row and the one above) state to state convolution. A second
LSTM does the same on the mirrored image; its output is shifted down one row before
the two are added. The context is then every earlier pixel but one: the last pixel of
the row above, (i - 1, W - 1), feeds only features at positions after (i, j) unless the
first mask-A convolution reaches it from (i, j), so pixels more than first_kernel_size // 2
columns from the end of their row do not see it.

``cell='gru'`` replaces the LSTM by a convolutional GRU in the same recurrence
(Cho et al., 2014, in PyTorch's nn.GRU form):

    r = s(a_r + b_r),  z = s(a_z + b_z),  n = tanh(a_n + r . b_n),  h = (1 - z) . n + z . h_prev

with a = K_is (*) x and b = K_ss (*) h_prev. Layers are joined by residual connections
(section 3.3) and a 1x1 head gives one logit per pixel. The input is fed as 2x - 1.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dlab.models.pixelcnn import MaskedConv2d, bernoulli_log_prob, sample_raster

_N_GATES = {"lstm": 4, "gru": 3}


@dataclass
class PixelRNNConfig:
    hidden_channels: int = 64  # h: width of the residual stream and of every recurrent state
    n_layers: int = 2  # recurrent layers
    cell: str = "lstm"  # 'lstm' or 'gru': the unit of the recurrence
    layer_type: str = "row"  # 'row' (Row LSTM) or 'diagonal' (Diagonal BiLSTM)
    kernel_size: int = 3  # k of the Row LSTM's 1 x k convolutions (odd)
    first_kernel_size: int = 7  # size of the mask-A input convolution (odd)


def _cell_step(cell: str, gates: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None):
    """One LSTM or GRU update from pre-activations.

    Args:
        cell: 'lstm' or 'gru'.
        gates: LSTM: (B, 4h, ...) = K_is x + K_ss h_prev, split as [o, f, i, g].
               GRU: a tuple (a, b) of (B, 3h, ...) input and state terms, split as [r, z, n].
        h, c: previous hidden and cell state (B, h, ...); c is None for the GRU.
    Returns: the new (h, c).
    """
    if cell == "lstm":
        o, f, i, g = gates.chunk(4, dim=1)  # each (B, h, ...)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    a, b = gates
    a_r, a_z, a_n = a.chunk(3, dim=1)  # each (B, h, ...)
    b_r, b_z, b_n = b.chunk(3, dim=1)
    r, z = torch.sigmoid(a_r + b_r), torch.sigmoid(a_z + b_z)
    n = torch.tanh(a_n + r * b_n)
    return (1 - z) * n + z * h, None


class RowRecurrence(nn.Module):
    """Row LSTM / Row GRU layer: top to bottom, a whole row per step.

    Shapes: (B, h, H, W) -> (B, h, H, W) hidden states.
    """

    def __init__(self, channels: int, kernel_size: int, cell: str):
        super().__init__()
        g = _N_GATES[cell] * channels
        self.cell = cell
        self.input_to_state = MaskedConv2d(channels, g, (1, kernel_size), "B")
        self.state_to_state = nn.Conv1d(channels, g, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        # all rows at once, then split into rows by one unbind: its backward stacks the
        # rows' gradients once, where indexing a[:, :, i] per row filled a zero tensor the
        # size of `a` for every row (more than half of a training step at 15.1's full size)
        a = self.input_to_state(x).unbind(2)  # H x (B, G*C, W)
        h = x.new_zeros(B, C, W)  # state of the row above row 0
        c = x.new_zeros(B, C, W) if self.cell == "lstm" else None
        rows = []
        for i in range(H):
            b = self.state_to_state(h)  # (B, G*C, W)
            gates = a[i] + b if self.cell == "lstm" else (a[i], b)
            h, c = _cell_step(self.cell, gates, h, c)
            rows.append(h)
        return torch.stack(rows, dim=2)  # (B, C, H, W)

    def step(self, x_row: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None):
        """One row of `forward`: input row x_row (B, C, W) and the state (h, c) of the
        row above (each (B, C, W); c None for the GRU) -> this row's (h, c)."""
        a = self.input_to_state(x_row.unsqueeze(2))[:, :, 0]  # (B, G*C, W)
        b = self.state_to_state(h)  # (B, G*C, W)
        return _cell_step(self.cell, a + b if self.cell == "lstm" else (a, b), h, c)


def _skew(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W + H - 1) with row r shifted right by r, zeros elsewhere.

    Padding each row to W + H and reading the flat buffer with rows of W + H - 1 moves
    row r right by r (it starts at r (W + H) = r (W + H - 1) + r).
    """
    B, C, H, W = x.shape
    flat = F.pad(x, (0, H)).reshape(B, C, H * (W + H))  # (B, C, H (W + H))
    return flat[:, :, : H * (W + H - 1)].reshape(B, C, H, W + H - 1)


def _unskew(x: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of _skew: (B, C, H, W + H - 1) -> (B, C, H, W)."""
    B, C, H, _ = x.shape
    flat = F.pad(x.reshape(B, C, H * (width + H - 1)), (0, H))  # (B, C, H (W + H))
    return flat.reshape(B, C, H, width + H)[:, :, :, :width]


class DiagonalRecurrence(nn.Module):
    """One direction of the Diagonal BiLSTM (or BiGRU): left to right over skewed columns.

    State (r, c) in the skewed map comes from (r, c - 1) and (r - 1, c - 1), i.e. from
    the original pixels left of and above (r, c - r). Shapes: (B, h, H, W) -> (B, h, H, W).
    """

    def __init__(self, channels: int, cell: str):
        super().__init__()
        g = _N_GATES[cell] * channels
        self.cell = cell
        self.input_to_state = nn.Conv2d(channels, g, 1)  # 1x1: mask B is trivial here
        self.state_to_state = nn.Conv1d(channels, g, 2)  # taps: row above, same row

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        a = _skew(self.input_to_state(x)).unbind(3)  # (W + H - 1) x (B, G*C, H), as above
        h = x.new_zeros(B, C, H)  # state of the column left of column 0
        c = x.new_zeros(B, C, H) if self.cell == "lstm" else None
        cols = []
        for a_col in a:
            b = self.state_to_state(F.pad(h, (1, 0)))  # (B, G*C, H); pad above row 0
            gates = a_col + b if self.cell == "lstm" else (a_col, b)
            h, c = _cell_step(self.cell, gates, h, c)
            cols.append(h)
        return _unskew(torch.stack(cols, dim=3), W)  # (B, C, H, W)


class DiagonalBiRecurrence(nn.Module):
    """Both directions; the mirrored one is shifted down a row. (B, h, H, W) -> same."""

    def __init__(self, channels: int, cell: str):
        super().__init__()
        self.forward_dir = DiagonalRecurrence(channels, cell)
        self.backward_dir = DiagonalRecurrence(channels, cell)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = self.forward_dir(x)  # (B, C, H, W)
        right = self.backward_dir(x.flip(3)).flip(3)  # (B, C, H, W); context to the right
        right = F.pad(right, (0, 0, 1, 0))[:, :, :-1]  # (B, C, H, W); row r gets row r - 1
        return left + right


class PixelRNN(nn.Module):
    """PixelRNN density model over binary images of any size.

    Architecture: mask-A conv (first_kernel_size^2, 1 -> h); ``n_layers`` recurrent layers,
    each added to its input through a 1x1 conv (residual); head ReLU, 1x1 (h -> h), ReLU,
    1x1 (h -> 1): one Bernoulli logit per pixel.

    Args:
        hidden_channels: h, width of the residual stream and recurrent states.
        n_layers: number of recurrent layers (>= 1).
        cell: 'lstm' or 'gru'.
        layer_type: 'row' (Row LSTM) or 'diagonal' (Diagonal BiLSTM).
        kernel_size: odd k of the Row LSTM's 1 x k convolutions (unused by 'diagonal').
        first_kernel_size: odd size of the mask-A input convolution.
    """

    def __init__(
        self,
        hidden_channels: int = PixelRNNConfig.hidden_channels,
        n_layers: int = PixelRNNConfig.n_layers,
        cell: str = PixelRNNConfig.cell,
        layer_type: str = PixelRNNConfig.layer_type,
        kernel_size: int = PixelRNNConfig.kernel_size,
        first_kernel_size: int = PixelRNNConfig.first_kernel_size,
    ):
        super().__init__()
        if cell not in _N_GATES:
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        if layer_type not in ("row", "diagonal"):
            raise ValueError(f"layer_type must be 'row' or 'diagonal', got {layer_type!r}")
        if hidden_channels < 1 or n_layers < 1:
            raise ValueError(f"need hidden_channels, n_layers >= 1, got {hidden_channels}, {n_layers}")
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.config = PixelRNNConfig(
            hidden_channels, n_layers, cell, layer_type, kernel_size, first_kernel_size
        )
        h = hidden_channels
        self.input_conv = MaskedConv2d(1, h, first_kernel_size, "A")
        if layer_type == "row":
            layers = [RowRecurrence(h, kernel_size, cell) for _ in range(n_layers)]
        else:
            layers = [DiagonalBiRecurrence(h, cell) for _ in range(n_layers)]
        self.layers = nn.ModuleList(layers)
        self.residual_convs = nn.ModuleList(nn.Conv2d(h, h, 1) for _ in range(n_layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(h, h, 1), nn.ReLU(), nn.Conv2d(h, 1, 1))

    @classmethod
    def from_config(cls, config: PixelRNNConfig) -> "PixelRNN":
        c = config
        return cls(
            c.hidden_channels, c.n_layers, c.cell, c.layer_type, c.kernel_size, c.first_kernel_size
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits: logit[b, 0, i, j] depends only on pixels before (i, j).

        Args:
            x: (B, 1, H, W) images in [0, 1] (real values allowed, for input gradients).
        Returns: (B, 1, H, W) logits of p(x_ij = 1 | earlier pixels).
        """
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"expected images of shape (B, 1, H, W), got {tuple(x.shape)}")
        z = self.input_conv(2 * x - 1)  # (B, h, H, W); centred input
        for layer, proj in zip(self.layers, self.residual_convs, strict=True):
            z = z + proj(layer(z))  # (B, h, H, W)
        return self.head(z)  # (B, 1, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-likelihood in nats of binary images x (B, 1, H, W); returns (B,)."""
        return bernoulli_log_prob(self.logits(x), x)

    def sample(self, n: int, height: int, width: int, generator=None) -> torch.Tensor:
        """n binary images (n, 1, height, width) drawn pixel by pixel in raster order.

        Row layers are sampled a row at a time: the recurrent states of the rows above
        are kept, so each draw costs one row step instead of a pass over every row
        above (the same logits and the same uniform draws as `sample_raster`).
        """
        if self.config.layer_type != "row":
            return sample_raster(self, n, height, width, generator)
        if n < 1 or height < 1 or width < 1:
            raise ValueError(f"n, height and width must be positive, got {(n, height, width)}")
        return self._sample_rows(n, height, width, generator)

    @torch.no_grad()
    def _sample_rows(self, n: int, height: int, width: int, generator=None) -> torch.Tensor:
        p = next(self.parameters())
        x = torch.zeros(n, 1, height, width, device=p.device, dtype=p.dtype)
        draw_device = generator.device if generator is not None else p.device
        reach = self.config.first_kernel_size // 2  # rows above that the mask-A conv reads
        zero = x.new_zeros(n, self.config.hidden_channels, width)  # (n, h, W)
        states = [(zero, zero if layer.cell == "lstm" else None) for layer in self.layers]
        for i in range(height):
            window = x[:, :, max(0, i - reach) : i + 1]  # (n, 1, <= reach + 1, W)
            for j in range(width):
                logits, _ = self._next_row(window, states)  # (n, W)
                u = torch.rand(n, generator=generator, device=draw_device, dtype=p.dtype)
                x[:, 0, i, j] = (u.to(p.device) < torch.sigmoid(logits[:, j])).to(p.dtype)
            _, states = self._next_row(window, states)  # row i complete: keep its states
        return x

    def _next_row(self, window: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
        """Logits (n, W) of the last row of `window` (n, 1, k, W), given every row
        layer's (h, c) of the row above; returns them with this row's states."""
        z = self.input_conv(2 * window - 1)[:, :, -1]  # (n, h, W)
        new = []
        for layer, proj, (h, c) in zip(self.layers, self.residual_convs, states, strict=True):
            h, c = layer.step(z, h, c)  # (n, h, W) each
            new.append((h, c))
            z = z + proj(h.unsqueeze(2))[:, :, 0]  # (n, h, W)
        return self.head(z.unsqueeze(2))[:, 0, 0], new  # (n, W)
