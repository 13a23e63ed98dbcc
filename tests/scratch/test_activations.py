"""Activations against PyTorch: forward values and backward (vector-Jacobian) products."""

import numpy as np
import pytest
import torch

from dlab.scratch import ACTIVATIONS, get_activation

TORCH_TWIN = {
    "linear": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softmax": lambda z: torch.softmax(z, dim=1),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_and_backward_match_torch(name):
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=(6, 5))
    g = rng.normal(size=(6, 5))  # upstream dL/da
    act = get_activation(name)
    a = act.forward(z.copy())
    dz = act.backward(a, g)

    zt = torch.tensor(z, requires_grad=True)
    at = TORCH_TWIN[name](zt)
    at.backward(torch.tensor(g))
    np.testing.assert_allclose(a, at.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_in_place_forward_gives_the_same_values(name):
    z = np.linspace(-4, 4, 12, dtype=np.float32).reshape(3, 4)
    act = get_activation(name)
    expected = act.forward(z.copy())
    buf = z.copy()
    out = act.forward(buf, out=buf)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32


def test_sigmoid_and_softmax_stay_finite_at_extreme_inputs():
    z = np.array([[-1000.0, 0.0, 1000.0]])
    s = get_activation("sigmoid").forward(z.copy())
    np.testing.assert_array_equal(s, [[0.0, 0.5, 1.0]])
    p = get_activation("softmax").forward(z.copy())
    np.testing.assert_array_equal(p, [[0.0, 0.0, 1.0]])
    # softmax is invariant to adding a constant to every logit of a row
    z2 = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(
        get_activation("softmax").forward(z2 + 500.0), get_activation("softmax").forward(z2)
    )


def test_hand_computed_values():
    z = np.array([[0.0, np.log(3.0)]])
    np.testing.assert_allclose(get_activation("sigmoid").forward(z.copy()), [[0.5, 0.75]])
    np.testing.assert_allclose(get_activation("softmax").forward(z.copy()), [[0.25, 0.75]])
    np.testing.assert_allclose(get_activation("relu").forward(np.array([[-2.0, 3.0]])), [[0, 3]])
    assert get_activation(None).name == "linear"


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'.*relu.*sigmoid.*softmax"):
        get_activation("gelu")
