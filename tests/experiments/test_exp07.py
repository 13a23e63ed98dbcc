import json

import numpy as np
import pytest
import torch

from dlab import running
from dlab.experiments import exp07_backprop as e7
from dlab.registry import PROGRAMS


@pytest.fixture
def smoke(tmp_path):
    def go(pid, **sets):
        out = running.run_program(PROGRAMS[pid], profile="smoke", out=tmp_path, quiet=True,
                               device="cpu", sets={k: str(v) for k, v in sets.items()})
        return out, json.loads((out.folder / "metrics.json").read_text())

    return go


X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([[0], [1], [1], [0]], dtype=np.float64)


def _params(seed, h1=3, h2=4):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, (2, h1)), rng.normal(0, 0.5, h1), rng.normal(0, 1, (h1, h2)),
            rng.normal(0, 0.5, h2), rng.normal(0, 1, (h2, 1)), rng.normal(0, 0.5, 1)]


@pytest.mark.parametrize("f", ["tanh", "sigmoid", "relu"])
def test_two_hidden_backward_matches_finite_differences(f):
    params = _params(1)
    grads = e7.backward_two_hidden(params, e7.forward_two_hidden(params, X, f), X, Y, f)
    numeric = e7.fd_two_hidden([p.copy() for p in params], X, Y, f)
    assert [g.shape for g in grads] == [p.shape for p in params]
    assert e7.max_rel_error(grads, numeric) < 1e-6


@pytest.mark.parametrize("f", ["tanh", "sigmoid", "relu"])
def test_two_hidden_backward_matches_torch_autograd(f):
    params = _params(2)
    grads = e7.backward_two_hidden(params, e7.forward_two_hidden(params, X, f), X, Y, f)
    t = [torch.tensor(p, requires_grad=True) for p in params]
    g = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}[f]
    z3 = g(g(torch.tensor(X) @ t[0] + t[1]) @ t[2] + t[3]) @ t[4] + t[5]
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z3, torch.tensor(Y))
    loss.backward()
    cache = e7.forward_two_hidden(params, X, f)
    assert e7.bce_from_logit(cache["Z3"], Y) == pytest.approx(float(loss.detach()), rel=1e-12)
    for ours, theirs in zip(grads, t, strict=True):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_two_hidden_equations_match_dlab_scratch_with_copied_weights():
    model = e7.xor_net((3, 3), "tanh", seed=4, dtype=np.float64)
    params = model.get_weights()
    ours = e7.backward_two_hidden(params, e7.forward_two_hidden(params, X, "tanh"), X, Y,
                                  "tanh")
    np.testing.assert_allclose(e7.forward_two_hidden(params, X, "tanh")["P"],
                               model.predict(X), rtol=1e-13)
    for a, b in zip(ours, model.gradients(X, Y), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_summary_parameter_counts():
    one = e7.xor_net((4,), "tanh", seed=0)
    two = e7.xor_net((4, 4), "tanh", seed=0)
    assert [r[2] for r in e7.summary_rows(one)] == [12, 5]
    assert [r[2] for r in e7.summary_rows(two)] == [12, 20, 5]
    assert one.count_params() == 17 and two.count_params() == 37


def test_manual_initialiser_scale():
    w = e7.small_normal((200, 300), np.random.default_rng(0), np.float32)
    assert w.dtype == np.float32 and abs(w.std() - 0.01) < 2e-4 and abs(w.mean()) < 1e-4


def test_train_until_reports_when_solved():
    from dlab.scratch import SGD

    model = e7.xor_net((4,), "tanh", np.random.default_rng(0), optimizer=SGD(0.5))
    losses, solved = e7.train_until(model, X.astype(np.float32), Y.astype(np.float32),
                                    epochs=1000, check_every=10)
    assert len(losses) == 1000 and losses[-1] < losses[0]
    assert solved is not None and solved % 10 == 0
    assert e7.solves(model, X, Y)


def test_keras_like_program_smoke(smoke):
    out, meta = smoke("7.1")
    m = meta["metrics"]
    assert out.status == "ok" and m["params"] == 17
    assert m["gradcheck_max_rel_error"] < 1e-6
    assert "backward() needs a call" in m["backward_before_forward"]
    manual = m["manual_net"]
    assert manual["max_abs_output_minus_half"] < 0.01  # the 0.01-weight net stays at 0.5
    assert manual["gradient_norm_at_start"] < manual["glorot_gradient_norm_at_start"]
    # measured inside: hidden units that hardly tell the inputs apart, a tiny W1 gradient
    assert manual["hidden_spread_start"] < 0.05 < manual["glorot_hidden_spread_start"]
    assert manual["grad_W1_start"] < 0.01 * manual["glorot_grad_W1_start"]
    claims = {c["claim"][:20]: c["holds"] for c in meta["record"]["claims"]}
    assert claims["Why it is stuck, mea"] is True
    assert {t["name"]: t["met"] for t in meta["targets"]} == {
        "gradcheck_max_rel_error": True, "success_rate": "not applicable",
        "manual_net.all_stuck": True, "manual_order_error": True}
    # the manual's order of calls is run, and what it raised is what the record says
    assert m["manual_order_error"] == "AttributeError" and m["manual_order_forward_calls"] == 0
    analysis = " ".join(meta["record"]["analysis"])
    assert f"raised AttributeError: \"{m['manual_order_message']}\"" in analysis
    assert any("symmetry" in b["text"] for b in meta["record"]["background"])
    titles = [t["title"] for t in meta["record"]["tables"]]
    assert "model.summary() of the network" in titles
    assert (out.folder / "xor_loss.png").exists()


def test_manual_network_explanation_needs_the_measurements(smoke, monkeypatch):
    # With unit-scale initial weights the "manual" network is not stuck: the record must
    # neither say it stays at 0.5 nor explain why it is stuck.
    monkeypatch.setattr(e7, "small_normal",
                        lambda shape, rng, dtype: rng.standard_normal(shape).astype(dtype))
    out, meta = smoke("7.1", manual_epochs=2000)
    manual = meta["metrics"]["manual_net"]
    assert manual["all_stuck"] is False and manual["max_abs_output_minus_half"] > 0.1
    verdict = {t["name"]: t["met"] for t in meta["targets"]}
    assert verdict["manual_net.all_stuck"] is False and meta["verdict"] == "missed"
    analysis = " ".join(meta["record"]["analysis"])
    assert "stays at 0.5" not in analysis and "Why it is stuck" not in analysis
    assert "does not stay at 0.5" in analysis


def test_two_hidden_program_smoke(smoke):
    out, meta = smoke("7.2")
    m = meta["metrics"]
    assert out.status == "ok"
    assert m["fd_max_rel_error"] < 1e-6 and m["scratch_max_abs_diff"] < 1e-12
    assert m["2-4-1"]["params"] == 17 and m["2-4-4-1"]["params"] == 37
    assert m["depths"]["2-4-1"] == m["2-4-1"]
    assert [t["met"] for t in meta["targets"]] == [True, True, "not applicable",
                                                    "not applicable"]
    eq = next(t for t in meta["record"]["tables"] if t["title"].startswith("Forward and back"))
    assert any("delta_2" in row[1] for row in eq["rows"])
    solved = [c for c in meta["record"]["claims"] if "seeds that solved" in c["written"]]
    assert len(solved) == 1                               # a measured comparison, either way
    assert "95% CI" in solved[0]["written"]
    assert (out.folder / "one_vs_two.png").exists()


def test_two_hidden_intervals_are_paired_by_seed():
    from dlab.uncertainty import over_seeds

    depths = {"2-4-1": {"solved_rate": 0.75, "epochs_to_solve": [50, 70, None, 40]},
              "2-4-4-1": {"solved_rate": 1.0, "epochs_to_solve": [60, 60, 80, 30]}}
    c = e7.compare_depths(depths)
    assert c["seeds_both_solved"] == 3
    assert c["epochs_two_vs_one"] == over_seeds([60, 60, 30], [50, 70, 40]).as_dict()
    assert c["solved_two_vs_one"] == over_seeds([1, 1, 1, 1], [1, 1, 0, 1]).as_dict()
    assert c["two_hidden_mean_epochs"] == 50 and c["one_hidden_mean_epochs"] == 160 / 3


def test_manual_order_of_calls_raises_before_any_forward_pass():
    out = e7.manual_order(0)
    assert out["error"] == "AttributeError" and out["forward_calls"] == 0
    # the same network called forward-then-backward trains without error
    X, y = (a.astype(np.float64) for a in e7.xor_data())
    net = e7.CachedPassNet(np.random.default_rng(0))
    losses = []
    for _ in range(3):
        net.forward(X)
        net.backward(X, y)
        losses.append(float(np.mean((y - net.forward(X)) ** 2)))
    assert net.forward_calls == 6 and losses[-1] <= losses[0]


def test_builders_draw_the_same_weights_for_the_same_seed_number():
    cfg = e7.KerasLikeConfig(hidden=3)
    a, b, c = (e7.keras_like_net(cfg, 0, k) for k in (1, 1, 2))
    assert a.count_params() == 2 * 3 + 3 + 3 + 1
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights(),
                                                    strict=True))
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    manual, glorot = (e7.manual_net(cfg, 0, 0, init) for init in e7.MANUAL_INITS)
    assert np.abs(manual.get_weights()[0]).max() < 0.1 < np.abs(glorot.get_weights()[0]).max()
    nets = e7.depth_nets(e7.TwoHiddenConfig(hidden=3), 0, 0)
    assert {k: v.count_params() for k, v in nets.items()} == {"2-3-1": 13, "2-3-3-1": 25}


def test_two_hidden_training_uses_the_given_networks():
    cfg = e7.TwoHiddenConfig(epochs=20, n_seeds=2, check_every=10)
    nets = e7.depth_nets(cfg, 0, 0)
    results = e7.train_depths(cfg, 0, nets)
    assert list(results) == list(nets) and all(len(r) == 2 for r in results.values())
    twins = e7.depth_nets(cfg, 0, 0)  # the same weights, trained here by hand
    for name, net in nets.items():
        curve, _ = e7.train_until(twins[name], X.astype(np.float32), Y.astype(np.float32),
                                  cfg.epochs, cfg.check_every)
        assert curve == results[name][0]["curve"]  # seed 0 is the given network ...
        for w, v in zip(net.get_weights(), twins[name].get_weights(), strict=True):
            np.testing.assert_array_equal(w, v)  # ... trained in place
