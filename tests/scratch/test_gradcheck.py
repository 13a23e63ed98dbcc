"""Back-propagated gradients against central finite differences (float64)."""

import numpy as np
import pytest

from dlab.scratch import SGD, Dense, Sequential, gradcheck
from dlab.scratch.activations import Tanh

RNG = np.random.default_rng(42)
X = RNG.normal(size=(6, 3))
Y_ONEHOT = np.eye(3)[[0, 1, 2, 1, 0, 2]]
Y_BINARY = np.array([[0, 1], [1, 1], [0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
Y_REAL = RNG.normal(size=(6, 2))

CASES = {
    # (hidden activations, output units, output activation, loss, targets)
    "1 hidden, mse": (["tanh"], 2, "linear", "mse", Y_REAL),
    "1 hidden, bce (fused sigmoid)": (["tanh"], 2, "sigmoid", "binary_crossentropy", Y_BINARY),
    "1 hidden, cce (fused softmax)": (
        ["sigmoid"],
        3,
        "softmax",
        "categorical_crossentropy",
        Y_ONEHOT,
    ),
    "2 hidden, mse": (["tanh", "sigmoid"], 2, "linear", "mse", Y_REAL),
    "2 hidden, bce": (["relu", "tanh"], 2, "sigmoid", "binary_crossentropy", Y_BINARY),
    "2 hidden, cce": (["tanh", "relu"], 3, "softmax", "categorical_crossentropy", Y_ONEHOT),
    "softmax + mse (unfused Jacobian)": (["tanh"], 3, "softmax", "mse", Y_ONEHOT),
    "sigmoid + mse (unfused)": (["relu"], 2, "sigmoid", "mse", Y_BINARY),
}


def _model(hidden, k, out_act, loss, seed=0):
    layers = [Dense(5, hidden[0], input_dim=3)]
    layers += [Dense(4, act) for act in hidden[1:]]
    layers.append(Dense(k, out_act))
    model = Sequential(layers, seed=seed)
    model.compile(loss=loss, optimizer=SGD(0.1))
    # non-zero biases, so every bias gradient is exercised away from the initial point
    model.set_weights([w + 0.1 * RNG.normal(size=w.shape) for w in model.get_weights()])
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradcheck_below_1e_6(case):
    hidden, k, out_act, loss, y = CASES[case]
    model = _model(hidden, k, out_act, loss)
    assert gradcheck(model, X, y) < 1e-6


def test_gradcheck_catches_a_wrong_backward_rule(monkeypatch):
    model = _model(["tanh"], 2, "sigmoid", "binary_crossentropy")
    assert gradcheck(model, X, Y_BINARY) < 1e-6
    # da/dz = 1 - a (instead of 1 - a^2): a plausible slip in the tanh derivative
    monkeypatch.setattr(Tanh, "backward", lambda self, a, g: g * (1.0 - a))
    assert gradcheck(model, X, Y_BINARY) > 1e-2


def test_gradcheck_leaves_the_model_unchanged():
    model = _model(["tanh"], 3, "softmax", "categorical_crossentropy")
    before = model.get_weights()
    gradcheck(model, X, Y_ONEHOT)
    after = model.get_weights()
    assert all(w.dtype == np.float32 for w in after)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gradients_are_of_the_mean_loss():
    model = _model(["tanh"], 2, "linear", "mse").astype(np.float64)
    g1 = model.gradients(X, Y_REAL)
    g2 = model.gradients(np.vstack([X, X]), np.vstack([Y_REAL, Y_REAL]))  # same mean
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_gradcheck_needs_a_compiled_model():
    model = Sequential([Dense(1, input_dim=3)], seed=0)
    with pytest.raises(RuntimeError, match=r"call model.compile"):
        gradcheck(model, X, Y_REAL[:, :1])
