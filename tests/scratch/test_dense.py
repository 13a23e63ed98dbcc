"""Dense against torch.nn.Linear with copied weights; the layer contract; initialisers."""

import numpy as np
import pytest
import torch

from dlab.scratch import ACTIVATIONS, Dense, glorot_uniform, he_normal, he_uniform

TORCH_ACT = {
    "linear": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softmax": lambda z: torch.softmax(z, dim=1),
}


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_dense_forward_and_backward_match_torch_linear(activation):
    rng = np.random.default_rng(3)
    layer = Dense(4, activation=activation, seed=1)
    layer.dtype = np.dtype(np.float64)
    x = rng.normal(size=(5, 3))
    layer.build(x.shape)
    layer.bias[:] = rng.normal(size=4)  # non-zero bias, so its gradient path is tested
    out = layer(x, training=True)
    g = rng.normal(size=out.shape)  # upstream dL/da
    dx = layer.backward(g)

    lin = torch.nn.Linear(3, 4).double()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(layer.kernel.T.copy()))  # torch stores (out, in)
        lin.bias.copy_(torch.from_numpy(layer.bias))
    xt = torch.tensor(x, requires_grad=True)
    at = TORCH_ACT[activation](lin(xt))
    at.backward(torch.tensor(g))

    np.testing.assert_allclose(out, at.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(layer.kernel_grad, lin.weight.grad.numpy().T, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(layer.bias_grad, lin.bias.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_build_creates_keras_shapes_and_zero_bias():
    layer = Dense(7, "relu", seed=0)
    assert not layer.built and layer.weights == []
    out = layer(np.ones((2, 3), dtype=np.float32))
    assert layer.built and layer.input_dim == 3
    assert layer.kernel.shape == (3, 7) and layer.bias.shape == (7,)
    assert layer.kernel.dtype == np.float32 and out.dtype == np.float32
    np.testing.assert_array_equal(layer.bias, 0.0)
    assert layer.count_params() == 3 * 7 + 7


def test_backward_without_input_grad_returns_none_but_fills_weight_grads():
    layer = Dense(2, "tanh", input_dim=3, seed=0)
    layer.build((None, 3))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    layer(x, training=True)
    assert layer.backward(np.ones((2, 2), np.float32), input_grad=False) is None
    assert np.abs(layer.kernel_grad).sum() > 0


@pytest.mark.parametrize("units", [0, -3, 2.5, "8", True])
def test_bad_units_raise(units):
    with pytest.raises(ValueError, match=r"Dense units must be a positive integer; got"):
        Dense(units)


def test_unknown_activation_raises_with_valid_names():
    with pytest.raises(ValueError, match=r"unknown activation 'swish'; valid names: linear"):
        Dense(3, activation="swish")


def test_unknown_initializer_raises():
    with pytest.raises(ValueError, match=r"unknown initializer 'orthogonal'"):
        Dense(3, kernel_initializer="orthogonal")


def test_input_dim_disagreeing_with_data_raises():
    layer = Dense(3, input_dim=4, name="hidden")
    with pytest.raises(ValueError, match=r"'hidden' was given input_dim=4 .* shape \(2, 5\)"):
        layer(np.ones((2, 5)))


def test_call_with_wrong_width_names_both_shapes():
    layer = Dense(3, input_dim=4, name="hidden", seed=0)
    layer.build((None, 4))
    with pytest.raises(
        ValueError, match=r"'hidden' expects input of shape \(None, 4\); got \(2, 6\)"
    ):
        layer.call(np.ones((2, 6), np.float32))


def test_initializers_follow_their_formulas_and_seeds():
    shape = (400, 200)
    g = glorot_uniform(shape, 0)
    limit = np.sqrt(6.0 / 600)
    assert g.dtype == np.float32 and g.shape == shape
    assert np.abs(g).max() <= limit and np.abs(g).max() > 0.99 * limit
    assert g.var() == pytest.approx(2.0 / 600, rel=0.03)  # Var U(-l, l) = l^2 / 3
    assert he_normal(shape, 1).std() == pytest.approx(np.sqrt(2.0 / 400), rel=0.02)
    hu = he_uniform(shape, 2)
    assert np.abs(hu).max() <= np.sqrt(6.0 / 400)
    assert hu.var() == pytest.approx(2.0 / 400, rel=0.03)
    # a seed and a Generator made from the same seed give the same draw
    np.testing.assert_array_equal(
        glorot_uniform(shape, 5), glorot_uniform(shape, np.random.default_rng(5))
    )
    assert not np.array_equal(glorot_uniform(shape, 5), glorot_uniform(shape, 6))


def test_layer_seed_fixes_the_kernel():
    a, b = Dense(5, input_dim=3, seed=11), Dense(5, input_dim=3, seed=11)
    a.build((None, 3))
    b.build((None, 3))
    np.testing.assert_array_equal(a.kernel, b.kernel)
