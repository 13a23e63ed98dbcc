"""Optimiser steps against torch.optim with the same gradients, step for step."""

import numpy as np
import pytest
import torch

from dlab.scratch import SGD, Adam, get_optimizer


def _run_both(ours, make_torch, steps=6, dtype=np.float64):
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3,), (3, 2)]
    params = [rng.normal(size=s).astype(dtype) for s in shapes]
    grads_per_step = [[rng.normal(size=s).astype(dtype) for s in shapes] for _ in range(steps)]
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    topt = make_torch(tparams)
    for grads in grads_per_step:
        ours.step(params, grads)
        for tp, g in zip(tparams, grads, strict=True):
            tp.grad = torch.tensor(g)
        topt.step()
    return params, [tp.detach().numpy() for tp in tparams]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_torch(momentum):
    ours, theirs = _run_both(
        SGD(learning_rate=0.05, momentum=momentum),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=momentum),
    )
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_sgd_plain_step_by_hand():
    w = np.array([1.0, -2.0])
    SGD(learning_rate=0.5).step([w], [np.array([0.2, -0.4])])
    np.testing.assert_allclose(w, [0.9, -1.8])


@pytest.mark.parametrize("eps", [1e-7, 1e-3])
def test_adam_matches_torch(eps):
    ours, theirs = _run_both(
        Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=eps),
        lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=eps),
        steps=8,
    )
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_adam_matches_torch_in_float32():
    ours, theirs = _run_both(
        Adam(),
        lambda ps: torch.optim.Adam(ps, lr=0.001, eps=1e-7),
        steps=5,
        dtype=np.float32,
    )
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_adam_first_step_moves_each_weight_by_the_learning_rate():
    # m_hat = g and v_hat = g^2 at t = 1, so the step is lr * g / (|g| + eps) ~ lr sign(g)
    w = np.zeros(3)
    Adam(learning_rate=0.1, epsilon=1e-12).step([w], [np.array([5.0, -0.01, 2.0])])
    np.testing.assert_allclose(w, [-0.1, 0.1, -0.1], rtol=1e-9)


def test_optimizer_names_and_errors():
    assert isinstance(get_optimizer("adam"), Adam)
    assert isinstance(get_optimizer("SGD"), SGD)
    with pytest.raises(ValueError, match=r"unknown optimizer 'rmsprop'; valid names: adam, sgd"):
        get_optimizer("rmsprop")
    with pytest.raises(ValueError, match=r"learning_rate must be a positive number"):
        SGD(learning_rate=0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        SGD(momentum=1.0)
