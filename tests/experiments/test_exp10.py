import json

import numpy as np
import pytest
import torch

from dlab import config as configs
from dlab.api import run_program
from dlab.errors import UsageError
from dlab.experiments import exp10_rnn as e10
from dlab.models.rnn import (
    SequenceConfig,
    SequenceRegressor,
    count_parameters,
    recurrent_parameters,
    weather_forecaster,
)
from dlab.registry import PROGRAMS


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_regressor_shapes_and_parameter_counts(cell):
    torch.manual_seed(0)
    m = SequenceRegressor(cell=cell, input_size=2, hidden=5, num_layers=2, dense=(3,))
    assert m(torch.randn(7, 11, 2)).shape == (7,)
    hand = recurrent_parameters(cell, 2, 5, 2) + (5 * 3 + 3) + (3 + 1)
    assert count_parameters(m) == hand
    one = SequenceRegressor(cell=cell, hidden=4)
    assert one(torch.randn(3, 6)).shape == (3,)          # (B, T) read as (B, T, 1)
    multi = SequenceRegressor(cell=cell, hidden=4, output_size=5)
    assert multi(torch.randn(3, 6, 1)).shape == (3, 5)


def test_weather_forecaster_parameter_count_by_hand():
    # LSTM(1 -> 50): 4 * 50 * (1 + 50 + 2); LSTM(50 -> 50): 4 * 50 * (50 + 50 + 2);
    # Dense(50 -> 25) and Dense(25 -> 1)
    hand = 4 * 50 * 53 + 4 * 50 * 102 + 50 * 25 + 25 + 25 + 1
    assert count_parameters(weather_forecaster()) == hand == 32301


def test_simple_rnn_matches_the_recurrence_by_hand():
    torch.manual_seed(1)
    m = SequenceRegressor(cell="rnn", input_size=2, hidden=3)
    x = torch.randn(4, 6, 2)
    rnn, lin = m.rnn, m.head[0]
    h = torch.zeros(4, 3)
    for t in range(6):   # h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
        h = torch.tanh(x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0
                       + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
    expected = (h @ lin.weight.T + lin.bias).squeeze(-1)
    assert torch.allclose(m(x), expected, atol=1e-6)


def test_lstm_last_step_output_matches_nn_lstm_cell_loop():
    torch.manual_seed(2)
    m = SequenceRegressor(cell="lstm", hidden=4)
    cell = torch.nn.LSTMCell(1, 4)
    cell.load_state_dict({k[:-3]: v for k, v in m.rnn.state_dict().items()})
    x = torch.randn(3, 9, 1)
    h = c = torch.zeros(3, 4)
    for t in range(9):
        h, c = cell(x[:, t], (h, c))
    assert torch.allclose(m(x), m.head(h).squeeze(-1), atol=1e-6)


def test_forget_bias_moves_only_the_forget_gate():
    torch.manual_seed(3)
    base = SequenceRegressor(SequenceConfig(cell="lstm", hidden=4))
    torch.manual_seed(3)
    biased = SequenceRegressor(SequenceConfig(cell="lstm", hidden=4, forget_bias=1.0))
    diff = biased.rnn.bias_ih_l0 - base.rnn.bias_ih_l0
    assert torch.allclose(diff[4:8], torch.ones(4)) and torch.all(diff[:4] == 0)
    assert torch.all(diff[8:] == 0)
    with pytest.raises(ValueError):
        SequenceRegressor(cell="transformer")


def _metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


def test_sine_rnn_smoke(tmp_path):
    out = run_program(PROGRAMS["10.1"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    assert out.status == "ok"
    m = out.metrics
    for f in ("sine_forecast.png", "model.pt", "history.csv", "record.md"):
        assert (out.folder / f).exists()
    # sizes: 300 points, 60 held out, windows of 20 on each side without crossing
    assert m["train_windows"] == 240 - 20 and m["test_windows"] == 60 - 20
    assert m["noise_variance"] == pytest.approx(0.01)
    assert 0.004 < m["realised_noise_mse"] < 0.02          # noise sd 0.1 on 40 points
    # the naive forecast pays the noise twice plus the sine's step: ~0.028
    assert 0.012 < m["naive_mse"] < 0.06
    assert np.isfinite(m["test_mse"]) and m["parameters"] == 16 + 16 * 16 + 32 + 17
    assert "naive" in (out.folder / "record.md").read_text()


def test_long_memory_smoke(tmp_path):
    out = run_program(PROGRAMS["10.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    assert out.status == "ok"
    res = out.metrics["results"]
    assert set(res) == {"adding T=8", "running sum T=8"}
    for task in res.values():
        assert set(task) == {"rnn", "lstm", "gru"}
        for cell in task.values():
            assert len(cell["runs"]) == 2
            assert cell["mean"] == pytest.approx(np.mean(cell["runs"]))
            assert cell["sd"] == pytest.approx(np.std(cell["runs"], ddof=1))
    # the manual's regime: a few full-batch steps leave the MSE at the target's variance
    manual = out.metrics["manual_regime"]
    for cell in ("rnn", "lstm"):
        assert manual[cell]["train_mse_over_variance"] > 0.7
    summary = _metrics(out.folder)
    titles = [t["title"] for t in summary["record"]["tables"]]
    assert any(t.startswith("Test MSE, mean ± sd over 2 seed") for t in titles)
    assert (out.folder / "long_memory.png").exists()


def test_long_memory_config_is_checked():
    impl = e10.LONG_MEMORY
    with pytest.raises(UsageError, match="cells"):
        configs.build(impl.config, impl.profiles, "quick", {"cells": "rnn,transformer"}, "10.2")
    cfg = configs.build(impl.config, impl.profiles, "full", {}, "10.2")
    assert cfg.n_seeds >= 5 and cfg.lengths == (50, 100)
