"""Sequence regressors on PyTorch's built-in recurrent layers (nn.RNN, nn.LSTM, nn.GRU).

The built-in layers run the whole sequence in one fused call (cuDNN on a GPU), so a batch
of windows is one tensor (B, T, F) and no Python loop runs over time steps.

Cells, per time step t with input x_t and previous state h_{t-1} (PyTorch's forms):

    RNN  (Elman 1990):   h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    LSTM (Hochreiter and Schmidhuber 1997, with the forget gate of Gers et al. 2000):
         i, f, g, o = s(.), s(.), tanh(.), s(.) of W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
         c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
    GRU  (Cho et al. 2014):
         r, z = s(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr), s(W_iz x_t + ... )
         n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn)),  h_t = (1 - z) * n + z * h_{t-1}

The regressor reads the top layer's last hidden state h_T and maps it through optional
dense layers to the output: y = W_out h_T + b_out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@dataclass
class SequenceConfig:
    cell: str = "lstm"  # "rnn", "lstm" or "gru"
    input_size: int = 1  # features per time step
    hidden: int = 32  # units of each recurrent layer
    num_layers: int = 1  # stacked recurrent layers
    dense: tuple[int, ...] = ()  # widths of dense layers between h_T and the output
    dense_activation: str = "linear"  # "linear" (as Keras' Dense default) or "relu"
    output_size: int = 1  # values predicted per sequence
    forget_bias: float = 0.0  # added to the LSTM forget-gate biases at initialisation


class SequenceRegressor(nn.Module):
    """Last-step regressor: sequence (B, T, F) -> prediction (B,) (or (B, output_size)).

    A series without a feature axis, (B, T), is read as (B, T, 1). With output_size = 1
    the output is squeezed to (B,), matching targets of shape (B,).
    """

    def __init__(self, cfg: SequenceConfig | None = None, **kw):
        super().__init__()
        cfg = cfg or SequenceConfig(**kw)
        if cfg.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cfg.cell!r}")
        if cfg.dense_activation not in ("linear", "relu"):
            raise ValueError(f"dense_activation must be linear or relu, got "
                             f"{cfg.dense_activation!r}")
        self.cfg = cfg
        self.rnn = CELLS[cfg.cell](cfg.input_size, cfg.hidden, num_layers=cfg.num_layers,
                                   batch_first=True)
        layers: list[nn.Module] = []
        width = cfg.hidden
        for w in cfg.dense:
            layers.append(nn.Linear(width, w))
            if cfg.dense_activation == "relu":
                layers.append(nn.ReLU())
            width = w
        layers.append(nn.Linear(width, cfg.output_size))
        self.head = nn.Sequential(*layers)
        if cfg.cell == "lstm" and cfg.forget_bias:
            with torch.no_grad():
                for name, p in self.rnn.named_parameters():
                    if name.startswith("bias_ih"):
                        h = cfg.hidden
                        p[h:2 * h] += cfg.forget_bias  # gate order i, f, g, o

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 2:
            x = x.unsqueeze(-1)                  # (B, T) -> (B, T, 1)
        out, _ = self.rnn(x)                     # (B, T, H): top layer, every step
        y = self.head(out[:, -1])                # (B, output_size) from h_T (B, H)
        return y.squeeze(-1) if self.cfg.output_size == 1 else y


def weather_forecaster(window_features: int = 1) -> SequenceRegressor:
    """Two LSTM(50) layers, Dense(25), Dense(1): the forecaster of experiment 11.

    Dense(25) has no activation, as Keras' Dense(25) in the original program.
    """
    return SequenceRegressor(SequenceConfig(cell="lstm", input_size=window_features,
                                            hidden=50, num_layers=2, dense=(25,)))


def recurrent_parameters(cell: str, input_size: int, hidden: int, num_layers: int = 1) -> int:
    """The parameter count of PyTorch's nn.RNN/LSTM/GRU, computed by hand.

    Each layer has G gate blocks (RNN 1, GRU 3, LSTM 4), each with W_ih (H, in),
    W_hh (H, H) and two biases b_ih, b_hh (H,): G * H * (in + H + 2). Keras keeps one
    bias per gate block, G * H * (in + H + 1).
    """
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    total, width = 0, input_size
    for _ in range(num_layers):
        total += gates * hidden * (width + hidden + 2)
        width = hidden
    return total
