"""Sequential: parameter counts, training against PyTorch, XOR, reproducibility, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlab.scratch import SGD, Adam, Dense, History, Sequential

X_XOR = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y_XOR = np.array([0, 1, 1, 0], dtype=np.float32)


def _mlp(seed=0, **kw):
    return Sequential(
        [Dense(128, "relu", input_dim=784), Dense(64, "relu"), Dense(10, "softmax")],
        seed=seed,
        **kw,
    )


def _xor_net(seed):
    model = Sequential([Dense(4, "tanh", input_dim=2), Dense(1, "sigmoid")], seed=seed)
    model.compile(loss="binary_crossentropy", optimizer=Adam(learning_rate=0.05))
    return model


# -- structure -------------------------------------------------------------------------
def test_summary_counts_784_128_64_10():
    text = _mlp().summary()
    assert "Total params: 109,386" in text
    assert "Trainable params: 109,386" in text
    assert "Non-trainable params: 0" in text
    rows = [line.split() for line in text.splitlines() if "(Dense)" in line]
    assert [r[0] for r in rows] == ["dense", "dense_1", "dense_2"]
    assert [r[-1] for r in rows] == ["100,480", "8,256", "650"]  # 784*128+128, ...
    assert [" ".join(r[2:4]) for r in rows] == ["(None, 128)", "(None, 64)", "(None, 10)"]


def test_summary_counts_2_4_1():
    model = Sequential([Dense(4, "tanh", input_dim=2), Dense(1, "sigmoid")])
    assert "Total params: 17" in model.summary()  # (2*4 + 4) + (4*1 + 1)
    assert model.count_params() == 17


def test_weights_in_keras_order_and_shapes():
    model = _mlp()
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(784, 128), (128,), (128, 64), (64,), (64, 10), (10,)]
    new = [np.full(s, i, dtype=np.float32) for i, s in enumerate(shapes)]
    model.set_weights(new)
    assert model.layers[1].kernel[0, 0] == 2 and model.layers[2].bias[0] == 5
    got = model.get_weights()
    got[0][0, 0] = 99.0  # get_weights returns copies
    assert model.layers[0].kernel[0, 0] == 0


def test_deferred_build_gives_the_same_weights_as_input_dim():
    a = Sequential([Dense(3, "tanh", input_dim=5), Dense(2)], seed=7)
    b = Sequential([Dense(3, "tanh"), Dense(2)], seed=7)
    assert not b.built
    b.predict(np.zeros((1, 5)))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_add_builds_layer_by_layer_and_a_layer_seed_overrides_the_model_seed():
    model = Sequential(seed=1)
    model.add(Dense(3, input_dim=2))
    model.add(Dense(2, seed=99))
    alone = Dense(2, input_dim=3, seed=99)
    alone.build((None, 3))
    np.testing.assert_array_equal(model.layers[1].kernel, alone.kernel)


# -- training against PyTorch ------------------------------------------------------------
def _torch_twin(weights, acts):
    layers = []
    for kernel, bias in zip(weights[0::2], weights[1::2], strict=True):
        lin = torch.nn.Linear(*kernel.shape).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(kernel.T.copy()))  # (out, in)
            lin.bias.copy_(torch.from_numpy(bias))
        layers.append(lin)
    return layers, acts


def _torch_forward(layers, acts, x):
    for lin, act in zip(layers, acts, strict=True):
        x = act(lin(x))
    return x


@pytest.mark.parametrize(
    "out_act, loss, torch_out, torch_loss",
    [
        ("softmax", "categorical_crossentropy", lambda z: z, F.cross_entropy),
        ("sigmoid", "binary_crossentropy", lambda z: z, F.binary_cross_entropy_with_logits),
        ("linear", "mse", lambda z: z, F.mse_loss),
    ],
)
def test_fit_matches_torch_step_for_step(out_act, loss, torch_out, torch_loss):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 4))
    k = 3
    y = {
        "categorical_crossentropy": np.eye(k)[rng.integers(0, k, 10)],
        "binary_crossentropy": rng.integers(0, 2, (10, k)).astype(float),
        "mse": rng.normal(size=(10, k)),
    }[loss]
    model = Sequential(
        [Dense(5, "tanh", input_dim=4), Dense(4, "relu"), Dense(k, out_act)],
        seed=3,
        dtype=np.float64,
    )
    model.compile(loss=loss, optimizer=Adam(learning_rate=0.01))
    layers, acts = _torch_twin(model.get_weights(), [torch.tanh, torch.relu, torch_out])
    params = [p for lin in layers for p in lin.parameters()]
    opt = torch.optim.Adam(params, lr=0.01, eps=1e-7)

    # gradients of the mean loss, in get_weights order
    logits = _torch_forward(layers, acts, torch.tensor(X))
    torch_loss(logits, torch.tensor(y)).backward()
    for ours, lin_grads in zip(
        model.gradients(X, y),
        [g for lin in layers for g in (lin.weight.grad.T, lin.bias.grad)],
        strict=True,
    ):
        np.testing.assert_allclose(ours, lin_grads.numpy(), rtol=1e-10, atol=1e-13)

    # two epochs of mini-batches of 4 (4, 4, 2), no shuffling
    history = model.fit(X, y, epochs=2, batch_size=4, shuffle=False)
    torch_losses = []
    for _ in range(2):
        total = 0.0
        for s in range(0, 10, 4):
            opt.zero_grad()
            out = torch_loss(
                _torch_forward(layers, acts, torch.tensor(X[s : s + 4])), torch.tensor(y[s : s + 4])
            )
            out.backward()
            opt.step()
            total += out.item() * len(X[s : s + 4])
        torch_losses.append(total / 10)
    np.testing.assert_allclose(history.history["loss"], torch_losses, rtol=1e-10)
    for ours, p in zip(
        model.get_weights(), [w for lin in layers for w in (lin.weight.T, lin.bias)], strict=True
    ):
        np.testing.assert_allclose(ours, p.detach().numpy(), rtol=1e-9, atol=1e-12)


# -- fit semantics -------------------------------------------------------------------------
def test_xor_is_learned_with_all_four_outputs_right():
    model = _xor_net(seed=0)
    history = model.fit(X_XOR, Y_XOR, epochs=500)
    loss = history.history["loss"]
    assert len(loss) == 500 and isinstance(history, History)
    assert loss[-1] < 0.05 * loss[0]
    pred = model.predict(X_XOR).ravel()
    np.testing.assert_array_equal(pred > 0.5, Y_XOR > 0.5)
    assert model.evaluate(X_XOR, Y_XOR) == pytest.approx(loss[-1], rel=0.2)


def test_same_seed_gives_identical_weights_after_fit():
    runs = []
    for seed in (5, 5, 6):
        model = _xor_net(seed)
        model.fit(X_XOR, Y_XOR, epochs=20, batch_size=2)  # shuffled by the model's seed
        runs.append(model.get_weights())
    for a, b in zip(runs[0], runs[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][0], runs[2][0])


@pytest.mark.parametrize("batch_size, steps", [(None, 1), (1, 10), (3, 4), (64, 1)])
def test_batch_size_sets_the_number_of_updates(batch_size, steps):
    model = Sequential([Dense(1, input_dim=2)], seed=0)
    model.compile(loss="mse", optimizer=SGD(0.01))
    X = np.arange(20, dtype=np.float32).reshape(10, 2) / 20
    model.fit(X, X[:, 0], epochs=3, batch_size=batch_size)
    assert model.optimizer.iterations == 3 * steps


def test_epoch_loss_is_the_mean_of_batch_losses_before_each_update():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 1))
    model = Sequential([Dense(2, "tanh", input_dim=3), Dense(1)], seed=2, dtype=np.float64)
    model.compile(loss="mse", optimizer=SGD(0.1))
    twin = model.astype(np.float64)
    expected = 0.0
    for s in range(0, 7, 3):  # batches of 3, 3, 1
        xb, yb = X[s : s + 3], y[s : s + 3]
        expected += twin.evaluate(xb, yb) * len(xb)
        twin.optimizer.step(twin._params(), twin.gradients(xb, yb))
    history = model.fit(X, y, epochs=1, batch_size=3, shuffle=False)
    assert history.history["loss"][0] == pytest.approx(expected / 7, rel=1e-12)


def test_validation_loss_and_accuracy_are_recorded():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2)).astype(np.float32)
    labels = (X[:, 0] > 0).astype(int)
    Y = np.eye(2, dtype=np.float32)[labels]
    model = Sequential([Dense(2, "softmax", input_dim=2)], seed=0)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(X[:30], Y[:30], epochs=3, validation_data=(X[30:], Y[30:]))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    loss, acc = model.evaluate(X[30:], Y[30:])
    assert history.history["val_loss"][-1] == pytest.approx(loss, rel=1e-6)
    hand_acc = np.mean(model.predict(X[30:]).argmax(1) == labels[30:])
    assert acc == pytest.approx(hand_acc) == history.history["val_accuracy"][-1]


def test_divergence_stops_training_without_warnings():
    model = Sequential([Dense(1, input_dim=1)], seed=0)
    model.compile(loss="mse", optimizer=SGD(learning_rate=50.0))
    X = np.linspace(-10, 10, 8).reshape(-1, 1)
    history = model.fit(X, 3 * X, epochs=200)
    assert history.diverged_at is not None
    assert len(history.history["loss"]) == history.diverged_at + 1 < 200
    assert not np.isfinite(history.history["loss"][-1])


def test_float32_by_default_and_predict_in_batches():
    model = _mlp(seed=1)
    X = np.random.default_rng(0).random((130, 784))
    full = model.predict(X)
    assert full.dtype == np.float32 and full.shape == (130, 10)
    np.testing.assert_allclose(model.predict(X, batch_size=64), full, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(full.sum(axis=1), 1.0, rtol=1e-5)


# -- errors --------------------------------------------------------------------------------
def test_fit_and_evaluate_before_compile_raise():
    model = Sequential([Dense(1, input_dim=2)])
    with pytest.raises(RuntimeError, match=r"compiled before fit\(\): call model.compile"):
        model.fit(X_XOR, Y_XOR)
    with pytest.raises(RuntimeError, match=r"compiled before evaluate\(\): call model.compile"):
        model.evaluate(X_XOR, Y_XOR)


def test_input_width_mismatch_names_layer_and_shapes():
    model = _xor_net(0)
    with pytest.raises(
        ValueError,
        match=r"layer 0 \(dense\) expects input of shape \(None, 2\); got X of shape \(4, 3\)",
    ):
        model.fit(np.zeros((4, 3)), Y_XOR)


def test_target_shape_mismatch_names_output_layer():
    model = _xor_net(0)
    with pytest.raises(
        ValueError,
        match=r"y has shape \(4, 3\) but the model's output \(layer 1, dense_1\) has shape \(None, 1\)",
    ):
        model.fit(X_XOR, np.zeros((4, 3)))
    model = _mlp()
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    with pytest.raises(ValueError, match=r"one-hot encode"):
        model.evaluate(np.zeros((5, 784)), np.arange(5))
    with pytest.raises(ValueError, match=r"X has 5 samples but y has 4"):
        model.evaluate(np.zeros((5, 784)), np.zeros((4, 10)))


def test_layer_input_dim_mismatch_when_adding():
    model = Sequential([Dense(4, input_dim=2)])
    with pytest.raises(
        ValueError,
        match=r"layer 1 \(Dense\) has input_dim=3 but layer 0 \(dense\) outputs shape \(None, 4\)",
    ):
        model.add(Dense(2, input_dim=3))


def test_set_weights_shape_error_names_the_layer():
    model = _xor_net(0)
    bad = model.get_weights()
    bad[2] = np.zeros((5, 1))
    with pytest.raises(
        ValueError, match=r"layer 1 \(dense_1\) kernel has shape \(4, 1\); got \(5, 1\)"
    ):
        model.set_weights(bad)


def test_compile_rejects_unknown_names():
    model = _xor_net(0)
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'"):
        model.compile(loss="hinge", optimizer="sgd")
    with pytest.raises(ValueError, match=r"unknown optimizer 'nadam'"):
        model.compile(loss="mse", optimizer="nadam")
    with pytest.raises(ValueError, match=r"unknown metric 'auc'"):
        model.compile(loss="mse", optimizer="sgd", metrics=["auc"])
