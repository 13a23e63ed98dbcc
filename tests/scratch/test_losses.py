"""Losses against PyTorch: values, gradients with respect to the predictions, and the
fused gradients with respect to the logits."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlab.scratch import LOSSES, get_loss


def _data(k=4, n=5, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, k))
    p_soft = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    p_sig = 1.0 / (1.0 + np.exp(-logits))
    y_onehot = np.eye(k)[rng.integers(0, k, n)]
    y_binary = rng.integers(0, 2, size=(n, k)).astype(float)
    y_real = rng.normal(size=(n, k))
    return logits, p_soft, p_sig, y_onehot, y_binary, y_real


TORCH_LOSS = {
    "mse": lambda p, y: F.mse_loss(p, y),
    "binary_crossentropy": lambda p, y: F.binary_cross_entropy(p, y),
    "categorical_crossentropy": lambda p, y: -(y * torch.log(p)).sum(1).mean(),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_value_and_gradient_match_torch(name):
    _, p_soft, p_sig, y_onehot, y_binary, y_real = _data()
    p, y = {
        "mse": (p_sig, y_real),
        "binary_crossentropy": (p_sig, y_binary),
        "categorical_crossentropy": (p_soft, y_onehot),
    }[name]
    loss = get_loss(name)
    pt = torch.tensor(p, requires_grad=True)
    lt = TORCH_LOSS[name](pt, torch.tensor(y))
    lt.backward()
    np.testing.assert_allclose(loss.value(p, y), lt.item(), rtol=1e-12)
    np.testing.assert_allclose(loss.gradient(p, y), pt.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_mse_hand_computed():
    p = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[1.0, 0.0], [0.0, 4.0]])
    loss = get_loss("mse")
    assert loss.value(p, y) == pytest.approx((0 + 4 + 9 + 0) / 4)
    np.testing.assert_allclose(loss.gradient(p, y), [[0.0, 1.0], [1.5, 0.0]])


def test_fused_softmax_crossentropy_gradient_matches_torch_logits():
    logits, p_soft, _, y_onehot, _, _ = _data(k=6, n=8, seed=1)
    zt = torch.tensor(logits, requires_grad=True)
    F.cross_entropy(zt, torch.tensor(y_onehot)).backward()
    fused = get_loss("categorical_crossentropy").fused_gradient(p_soft, y_onehot)
    np.testing.assert_allclose(fused, zt.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_fused_sigmoid_binary_crossentropy_gradient_matches_torch_logits():
    logits, _, p_sig, _, y_binary, _ = _data(k=3, n=7, seed=2)
    zt = torch.tensor(logits, requires_grad=True)
    F.binary_cross_entropy_with_logits(zt, torch.tensor(y_binary)).backward()
    fused = get_loss("binary_crossentropy").fused_gradient(p_sig, y_binary)
    np.testing.assert_allclose(fused, zt.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy"])
def test_saturated_outputs_give_finite_clipped_loss(name):
    p = np.array([[0.0, 1.0]])
    y = np.array([[1.0, 0.0]])
    loss = get_loss(name)
    value = loss.value(p, y)
    # -log(1e-7) per wrong entry: BCE averages two such entries, CCE has one
    assert value == pytest.approx(-np.log(1e-7), rel=1e-6)
    assert np.all(np.isfinite(loss.gradient(p, y)))


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'.*binary_crossentropy.*mse"):
        get_loss("hinge")
