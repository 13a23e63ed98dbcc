import json
import math

import numpy as np
import pytest
import torch

from dlab import running, runs
from dlab.errors import UsageError
from dlab.experiments import exp02_mlp as e2
from dlab.models.mlp import MLP
from dlab.registry import PROGRAMS


@pytest.fixture
def smoke(tmp_path, monkeypatch):
    """Run a program at the smoke profile with one torch thread (two OpenMP threads on a
    loaded two-core machine make tiny matrix products tens of times slower)."""
    threads = torch.get_num_threads()
    monkeypatch.setattr(runs, "cpu_count", lambda: 1)

    def go(pid, **sets):
        out = running.run_program(PROGRAMS[pid], profile="smoke", out=tmp_path, quiet=True,
                               device="cpu", sets={k: str(v) for k, v in sets.items()})
        return out, json.loads((out.folder / "metrics.json").read_text())

    yield go
    torch.set_num_threads(threads)


def _params(seed, hidden=4):
    return e2.init_params(2, hidden, np.random.default_rng(seed))


XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float64)


@pytest.mark.parametrize("kind", ["mse", "bce"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backward_matches_finite_differences(kind, seed):
    params = _params(seed)
    params["b1"] += np.random.default_rng(seed + 10).normal(0, 0.5, 4)  # non-zero biases
    assert e2.gradcheck_own(params, XOR_X, XOR_Y, kind) < 1e-7


@pytest.mark.parametrize("kind", ["mse", "bce"])
def test_backward_matches_torch_autograd(kind):
    params = _params(3, hidden=5)
    grads = e2.backward(params, e2.forward(params, XOR_X), XOR_X, XOR_Y, kind)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x, y = torch.tensor(XOR_X), torch.tensor(XOR_Y)
    z2 = torch.sigmoid(x @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    if kind == "mse":
        loss = ((torch.sigmoid(z2) - y) ** 2).mean()
    else:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z2, y)
    loss.backward()
    assert e2.loss_value(e2.forward(params, XOR_X), XOR_Y, kind) == pytest.approx(
        float(loss.detach()), rel=1e-12)
    for k in e2.ORDER:
        np.testing.assert_allclose(grads[k], t[k].grad.numpy(), rtol=1e-10, atol=1e-14)


def test_hand_computed_single_unit_case():
    # x = (1, 0), y = 1, one hidden unit with w = (1, 0), output weight 1, zero biases.
    params = {"W1": np.array([[1.0], [0.0]]), "b1": np.zeros(1), "W2": np.array([[1.0]]),
              "b2": np.zeros(1)}
    X, y = np.array([[1.0, 0.0]]), np.array([[1.0]])
    s = 1 / (1 + math.exp(-1))
    p = 1 / (1 + math.exp(-s))
    cache = e2.forward(params, X)
    assert cache["h"][0, 0] == pytest.approx(s, rel=1e-14)
    assert cache["p"][0, 0] == pytest.approx(p, rel=1e-14)
    assert e2.loss_value(cache, y, "bce") == pytest.approx(-math.log(p), rel=1e-12)
    g = e2.backward(params, cache, X, y, "bce")
    assert g["W2"][0, 0] == pytest.approx(s * (p - 1), rel=1e-12)
    assert g["b2"][0] == pytest.approx(p - 1, rel=1e-12)
    assert g["W1"][0, 0] == pytest.approx((p - 1) * s * (1 - s), rel=1e-12)
    assert g["W1"][1, 0] == 0.0  # the input is 0 there
    gm = e2.backward(params, cache, X, y, "mse")
    assert gm["b2"][0] == pytest.approx(2 * (p - 1) * p * (1 - p), rel=1e-12)


def test_zero_weights_are_a_stationary_point_of_xor():
    params = {"W1": np.zeros((2, 4)), "b1": np.zeros(4), "W2": np.zeros((4, 1)),
              "b2": np.zeros(1)}
    cache = e2.forward(params, XOR_X)
    assert np.all(cache["p"] == 0.5)
    assert e2.loss_value(cache, XOR_Y, "mse") == pytest.approx(0.25)
    assert e2.loss_value(cache, XOR_Y, "bce") == pytest.approx(math.log(2))
    for g in e2.backward(params, cache, XOR_X, XOR_Y, "bce").values():
        assert np.all(g == 0)


@pytest.mark.parametrize("kind", ["mse", "bce"])
def test_same_outputs_gradients_and_training_as_dlab_scratch(kind):
    diffs = e2.compare_with_scratch(_params(4), XOR_X, XOR_Y, kind, lr=0.5, epochs=50)
    assert diffs["outputs"] < 1e-14
    assert diffs["gradients"] < 1e-14
    assert diffs["trained_weights"] < 1e-12


def test_training_solves_xor_and_records_epoch():
    params = _params(0)
    losses, solved = e2.train_xor(params, XOR_X, XOR_Y, lr=2.0, epochs=1500, kind="bce")
    assert losses[-1] < losses[0] / 10
    assert solved is not None and 0 < solved <= 1500
    assert e2.all_right(e2.forward(params, XOR_X)["p"], XOR_Y)


def test_mlp_parameter_count_and_seeded_init():
    a = MLP((61, 16, 8, 1), "relu", generator=torch.Generator().manual_seed(0))
    b = MLP((61, 16, 8, 1), "relu", generator=torch.Generator().manual_seed(0))
    c = MLP((61, 16, 8, 1), "relu", generator=torch.Generator().manual_seed(1))
    assert sum(p.numel() for p in a.parameters()) == 61 * 16 + 16 + 16 * 8 + 8 + 8 + 1
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.linears[0].weight, c.linears[0].weight)
    assert a(torch.zeros(5, 61)).shape == (5, 1)
    bound = 1 / math.sqrt(61)  # PyTorch's default bound for fan_in 61
    assert a.linears[0].weight.abs().max() <= bound and a.linears[0].bias.abs().max() <= bound
    with pytest.raises(ValueError, match="activation"):
        MLP((2, 1), "swish")


def test_xor_program_smoke(smoke):
    out, meta = smoke("2.1")
    m = meta["metrics"]
    assert out.status == "ok"
    assert m["n_seeds"] == 3 and m["successes"] == 3  # lr 2 for 400 epochs solves these seeds
    assert m["gradcheck_max_rel_error"] < 1e-6
    assert max(m["scratch_max_abs_diff"].values()) < 1e-12
    assert (out.folder / "xor_loss.png").exists() and (out.folder / "history.csv").exists()
    assert any("finite differences" in s for s in meta["record"]["analysis"])
    # every target is judged, and met, at smoke
    assert [t["met"] for t in meta["targets"]] == [True, True, True]
    assert meta["verdict"] == "met"


def test_xor_target_missed_when_a_seed_fails(smoke):
    # 2 epochs cannot solve XOR: the success target must be missed, not written as met
    out, meta = smoke("2.1", epochs=2, crosscheck_epochs=1)
    success = next(t for t in meta["targets"] if t["name"] == "success_rate")
    assert meta["metrics"]["successes"] == 0 and success["met"] is False
    assert meta["verdict"] == "missed"


def test_xor_loss_setting_is_a_choice(smoke):
    with pytest.raises(UsageError, match="must be one of"):
        smoke("2.1", loss="hinge")


def test_credit_program_smoke(smoke):
    out, meta = smoke("2.2")
    m = meta["metrics"]
    assert out.status == "ok"
    assert m["majority_accuracy"] == pytest.approx(0.7)
    assert m["logreg_auc"] > 0.75                      # the linear model on these inputs
    assert m["n_inputs"] == 61 and m["n_test"] == 250
    assert m["test_class_counts"] == {"0": 175, "1": 75}
    raw = m["raw_features"]
    assert raw["saturated_fraction"] > 0.9  # raw amounts saturate the sigmoid units
    assert raw["standardised_saturated_fraction"] < 0.1
    assert raw["output_std"] < raw["standardised_output_std"]
    assert raw["frozen_first_layer_weights"] > raw["standardised_frozen_first_layer_weights"]
    for name in ("weights.png", "weights.txt", "model.pt", "model.json", "history.csv"):
        assert (out.folder / name).exists(), name
    text = (out.folder / "weights.txt").read_text()
    assert "== epoch 0 ==" in text and "layer 3 kernel (8, 1)" in text
    state = torch.load(out.folder / "model.pt", weights_only=True)
    assert state["0.weight"].shape == (16, 61)
    # the quality targets are for quick and full: judged, not applicable at smoke
    assert [t["name"] for t in meta["targets"]] == ["mean_test_accuracy", "mean_test_auc"]
    assert all(t["met"] == "not applicable" for t in meta["targets"])
    # every claim about the raw features is written in the form its numbers support
    raw_claims = [c for c in meta["record"]["claims"] if "raw" in c["evidence"]]
    assert len(raw_claims) == 3
    for c in raw_claims:
        assert c["written"] in meta["record"]["analysis"]
        assert (c["written"] == c["claim"]) == c["holds"]
    sat = next(c for c in meta["record"]["claims"] if "start saturated" in c["claim"])
    assert sat["evidence"]["raw"] == raw["saturated_fraction"]
    low = raw["raw_minus_standardised"]["saturated_fraction"]["low"]
    assert sat["holds"] == (raw["saturated_fraction"] > 0.5 and low > 0)


def test_credit_intervals_are_those_of_the_splits_it_stores(smoke):
    # the stored intervals are recomputed from the per-split scores the record keeps: a
    # program that wrote a made-up interval, or one over other numbers, fails here
    from dlab.uncertainty import against_reference, over_seeds

    _, meta = smoke("2.2", raw_seeds=0, n_repeats=2)
    m = meta["metrics"]
    splits = m["splits"]
    assert m["n_splits"] == len(splits) == 3
    assert splits[0]["test_accuracy"] == m["test_accuracy"]  # the first is the saved MLP's
    acc = [r["test_accuracy"] for r in splits]
    maj = [r["majority_accuracy"] for r in splits]
    auc = [r["test_auc"] for r in splits]
    lr = [r["logreg_auc"] for r in splits]
    assert m["accuracy_vs_majority"] == over_seeds(acc, maj, "splits").as_dict()
    assert m["auc_vs_chance"] == against_reference(auc, 0.5, "splits").as_dict()
    assert m["auc_vs_logreg"] == over_seeds(auc, lr, "splits").as_dict()
    assert m["mean_test_auc"] == pytest.approx(np.mean(auc))
    # the three splits are different rows: not one split scored three times
    assert len({r["majority_accuracy"] for r in splits} | {r["logreg_auc"] for r in splits}) > 1
    # every comparison in the record is decided by its interval and says so
    compares = [c for c in meta["record"]["claims"] if "verdict" in c]
    assert len(compares) == 3
    for c in compares:
        d = c["evidence"]["difference"]  # every 2.2 comparison wants the higher value
        low, high = float(d["low"]), float(d["high"])
        word = "better" if low > 0 else "worse" if high < 0 else "not distinguishable"
        assert c["verdict"] == word and "95% CI" in c["written"]


def test_credit_targets_need_the_interval_to_clear_zero():
    from dlab.verdicts import judge

    def metrics(low, high):
        d = {"estimate": 0.04, "low": low, "high": high, "method": "t", "n": 5}
        return {"mean_test_accuracy": 0.74, "mean_majority_accuracy": 0.70,
                "accuracy_vs_majority": d, "mean_test_auc": 0.79, "majority_auc": 0.5,
                "auc_vs_chance": {**d, "estimate": 0.29}}

    shown = judge(e2.CREDIT.targets, metrics(0.01, 0.07), "quick")
    assert [t["met"] for t in shown] == [True, True]
    unsure = judge(e2.CREDIT.targets, metrics(-0.01, 0.09), "quick")
    assert [t["met"] for t in unsure] == [False, False]
    assert all(t["shown"] is False for t in unsure)


def test_credit_data_section_follows_the_patience_setting(smoke):
    _, meta = smoke("2.2", raw_seeds=0)
    assert any("for early stopping: training stops after 10 epochs" in line
               for line in meta["record"]["data"])
    _, meta = smoke("2.2", raw_seeds=0, patience=0)
    lines = " ".join(meta["record"]["data"])
    assert "no early stopping" in lines and "stops after" not in lines
    assert "raw_features" not in meta["metrics"]


def test_credit_defect_text_states_no_result():
    defect = PROGRAMS["2.2"].defect
    assert "never changes" not in defect and "0.5" not in defect


class _Ctx:
    """What the builders read from a run: its device and seeded generators."""
    device = "cpu"

    @staticmethod
    def torch_generator(offset=0):
        return torch.Generator().manual_seed(offset)


def test_programs_are_split_into_steps():
    from dlab.steps import steps

    assert [s.kind for s in steps(e2.run_xor)] == [
        "data", "model", "train", "score", "judge", "write"]
    assert [s.kind for s in steps(e2.run_credit)] == [
        "data", "model", "train", "score", "judge", "write"] * 2
    assert steps(e2.run_credit)[1].assigned == ("model",)
    assert steps(e2.run_credit)[7].assigned == ("probe_nets",)


def test_xor_net_is_the_seeded_glorot_initialisation():
    cfg = e2.XORConfig(hidden=3)
    net = e2.xor_net(cfg, 7, 2)
    expected = e2.init_params(2, 3, np.random.default_rng((7, 2)))
    assert net.keys() == expected.keys()
    for k in e2.ORDER:
        np.testing.assert_array_equal(net[k], expected[k])
    assert not np.array_equal(net["W1"], e2.xor_net(cfg, 7, 3)["W1"])


def test_train_seeds_trains_the_first_network_in_place():
    cfg = e2.XORConfig(epochs=20, n_seeds=2, lr=2.0)
    first = e2.xor_net(cfg, 0, 0)
    start = {k: v.copy() for k, v in first.items()}
    runs = e2.train_seeds(cfg, XOR_X, XOR_Y, first, 0)
    assert [r["seed"] for r in runs] == [0, 1]
    assert runs[0]["params"] is first and not np.array_equal(first["W1"], start["W1"])
    np.testing.assert_array_equal(runs[0]["start"]["W1"], start["W1"])
    np.testing.assert_array_equal(runs[1]["start"]["W1"], e2.xor_net(cfg, 0, 1)["W1"])


def test_credit_builders():
    cfg = e2.CreditConfig(widths=(5, 3))
    model = e2.credit_net(cfg, _Ctx, 61)
    assert model.sizes == (61, 5, 3, 1) and model.activation == cfg.activation
    assert torch.equal(model.linears[0].weight,
                       MLP((61, 5, 3, 1), generator=torch.Generator().manual_seed(1))
                       .linears[0].weight)
    raw, scaled = e2.raw_and_standardised(cfg, type("C", (), {"seed": 0})())
    assert raw.rows.keys() == scaled.rows.keys()
    assert all(np.array_equal(raw.rows[k], scaled.rows[k]) for k in raw.rows)
    assert np.abs(raw.x_train).max() > 100 > np.abs(scaled.x_train).max()
    pair = e2.sigmoid_pair(cfg, _Ctx, raw, scaled, 4)
    assert list(pair) == ["raw", "standardised"]
    assert pair["raw"].activation == "sigmoid"
    for p, q in zip(pair["raw"].parameters(), pair["standardised"].parameters(), strict=True):
        assert torch.equal(p, q) and p is not q
