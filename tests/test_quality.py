import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlab import quality
from dlab.models.classifier import MNISTClassifier
from dlab.registry import PROGRAMS
from dlab.runs import RunContext


def _eig_frechet(f1, f2):
    """Frechet distance with tr sqrt(C1 C2) = sum sqrt(eig(C1^1/2 C2 C1^1/2)) (symmetric)."""
    m1, m2 = f1.mean(0), f2.mean(0)
    c1, c2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    w, v = np.linalg.eigh(c1)
    s1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    e = np.clip(np.linalg.eigvalsh(s1 @ c2 @ s1), 0, None)
    return float(((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.sqrt(e).sum())


def _ctx(folder, seed=0):
    return RunContext(PROGRAMS["16.1"], None, folder, profile="smoke", seed=seed, device="cpu",
                      quiet=True, data_dir=folder)


def test_classifier_shapes_and_parameter_count():
    torch.manual_seed(0)
    m = MNISTClassifier((4, 8), 16).eval()
    x = torch.randn(5, 1, 28, 28)
    assert m(x).shape == (5, 10) and m.features(x).shape == (5, 16)
    assert torch.equal(m(x), m.head(m.features(x)))
    assert (m.features(x) >= 0).all()  # taken after the ReLU
    # conv 1->4 (3x3) + conv 4->8 (3x3) + linear 8*49->16 + linear 16->10, with biases
    expected = (9 * 4 + 4) + (4 * 8 * 9 + 8) + (8 * 49 * 16 + 16) + (16 * 10 + 10)
    assert sum(p.numel() for p in m.parameters()) == expected == 6794
    with pytest.raises(ValueError):
        MNISTClassifier((4,), 16)


def test_to_unit_range():
    img = np.array([[[0, 255], [51, 204]]], dtype=np.uint8)
    x = quality.to_unit_range(img)
    assert x.shape == (1, 1, 2, 2) and x.dtype == torch.float32
    assert torch.allclose(x[0, 0], torch.tensor([[-1.0, 1.0], [-0.6, 0.6]]))


def test_classify_matches_the_model_in_any_batch_size():
    torch.manual_seed(1)
    m = MNISTClassifier((4, 8), 16)
    m.train()
    x = torch.rand(7, 1, 28, 28) * 2 - 1
    f1, p1 = quality.classify(m, x, batch_size=3)
    f2, p2 = quality.classify(m, x, batch_size=100)
    assert m.training  # restored
    assert f1.shape == (7, 16) and p1.shape == (7, 10)
    np.testing.assert_allclose(f1, f2, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p1.sum(1), 1.0, atol=1e-6)
    m.eval()
    with torch.no_grad():
        np.testing.assert_allclose(p1, F.softmax(m(x), 1).double().numpy(), atol=1e-6)
        np.testing.assert_allclose(f1, m.features(x).double().numpy(), atol=1e-6)


def test_frechet_self_zero_mean_shift_and_singular_cases():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert quality.frechet(a, a) == pytest.approx(0.0, abs=1e-8)
    # Gaussians N(0, I) and N(s, I) in 3 dimensions: d^2 = 3 s^2 (plus sampling noise)
    for s in (1.0, 3.0):
        assert quality.frechet(a, rng.normal(size=(4000, 3)) + s) == pytest.approx(3 * s * s,
                                                                                  rel=0.05)
    # dead ReLU units (zero columns) and a collapsed set (all rows equal): singular
    # covariances, which must give the symmetric-eigendecomposition answer and no warning
    w = rng.normal(size=(20, 20))
    f1 = np.maximum(rng.normal(size=(300, 20)) @ w, 0)
    f2 = np.maximum(rng.normal(size=(300, 20)) @ w + 0.5, 0)
    f1[:, :4] = f2[:, :4] = 0
    for other in (f2, np.tile(f2[:1], (300, 1)), np.maximum(rng.normal(size=(300, 3)) @
                                                            rng.normal(size=(3, 20)), 0)):
        assert quality.frechet(f1, other) == pytest.approx(_eig_frechet(f1, other), rel=1e-7)


def _reference(real, floor=1.0, ceiling=11.0):
    return quality.QualityReference(real, floor, ceiling, 0.9, len(real),
                                    quality.mean_pairwise_distance(real), len(real), 0.9,
                                    float(np.quantile(quality.nearest_other(real), 0.05)))


def test_quality_score_on_hand_made_outputs():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(200, 4))
    ref = _reference(real)

    collapsed = np.zeros((100, 10))
    collapsed[:, 3] = 1.0
    s = quality.quality_score(real, collapsed, ref)
    assert s["frechet"] == pytest.approx(0.0, abs=1e-8)
    assert s["frechet_relative"] == pytest.approx(-0.1)  # (0 - 1) / (11 - 1)
    assert s["class_entropy"] == 0.0 and math.copysign(1, s["class_entropy"]) == 1
    assert s["rare_classes"] == 9  # reported: one class, yet the features are the real ones
    assert s["mean_confidence"] == pytest.approx(1.0) and s["recognisable"] == 1.0
    assert s["diversity_relative"] == pytest.approx(1.0)  # the reference's own features
    assert s["verdict"] == "near real" and s["collapsed"] is False

    spread = np.full((100, 10), 0.05)
    spread[np.arange(100), np.arange(100) % 10] = 0.55  # rows sum to 1, 10 of each class
    s = quality.quality_score(real + 1.0, spread, ref)
    assert s["frechet"] == pytest.approx(4.0, rel=1e-6)  # mean moved by 1 in 4 dimensions
    assert s["frechet_relative"] == pytest.approx(0.3, rel=1e-6)
    assert s["class_entropy"] == pytest.approx(math.log(10))
    assert s["class_entropy_fraction"] == pytest.approx(1.0)
    assert s["mean_confidence"] == pytest.approx(0.55)
    assert s["recognisable"] == 0.0 and s["verdict"] == "not converged"  # none confident

    # five points repeated: every sample has an exact copy, so the set is collapsed
    copies = np.repeat(real[:5], 40, axis=0)
    s = quality.quality_score(copies, np.tile(collapsed[:1], (200, 1)), ref)
    assert s["duplicates"] == 1.0 and s["neighbours"] == 5
    assert s["verdict"] == "collapsed" and s["collapsed"] is True


def test_judge_verdict_order_and_thresholds():
    v = quality.judge_verdict
    assert v(1.0, 1.0, 0.0, 1.0) == "not converged"  # at the noise ceiling
    assert v(0.2, 0.24, 0.0, 1.0) == "not converged"  # too few recognisable
    assert v(0.2, 0.26, 0.0, 1.0) == "near real"
    assert v(0.9, 1.0, 0.6, 1.0) == "collapsed"  # near-copies, even far from real
    assert v(0.2, 1.0, 0.0, 0.4) == "collapsed"  # one blurred mode
    assert v(0.2, 1.0, 0.1, 0.9) == "near real"
    assert v(0.6, 1.0, 0.1, 0.9) == "not converged"  # diverse, but over halfway to noise
    assert v(math.nan, 1.0, 0.0, 1.0) == "not converged"


def test_near_copies_and_distinct_neighbours():
    f = np.array([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [9.0, 0.0]])
    np.testing.assert_allclose(quality.nearest_other(f), [0.1, 0.1, np.hypot(4, 5), np.hypot(4, 5)])
    assert quality.duplicate_share(f, 0.5) == 0.5
    real = np.array([[0.0, 0.0], [10.0, 0.0]])
    assert quality.distinct_neighbours(f, real) == 2
    np.testing.assert_array_equal(quality.nearest_real(f, real), [0, 0, 0, 1])
    assert quality.mean_pairwise_distance(np.array([[0.0], [3.0]])) == 3.0
    assert quality.recognisable_rate(np.array([[0.95, 0.05], [0.6, 0.4]])) == 0.5


def test_frechet_difference_is_the_difference_with_a_seeded_interval():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(500, 5))
    near, far = rng.normal(size=(400, 5)) + 0.1, rng.normal(size=(400, 5)) + 1.0
    d = quality.frechet_difference(near, far, real, seed=0, resamples=200)
    assert d.estimate == pytest.approx(quality.frechet(near, real) - quality.frechet(far, real))
    assert d.high < 0 and d.verdict("lower") == "better"  # clearly nearer: the interval says so
    assert d == quality.frechet_difference(near, far, real, seed=0, resamples=200)
    same = quality.frechet_difference(near, rng.normal(size=(400, 5)) + 0.1, real, seed=1,
                                      resamples=200)
    assert same.low < 0 < same.high  # two draws of one distribution: not distinguishable
    # the fast distance to a fixed Gaussian agrees with the reference implementation
    to_real = quality._frechet_to(real.mean(0), np.cov(real, rowvar=False))
    assert to_real(far.mean(0), np.cov(far, rowvar=False)) == pytest.approx(
        quality.frechet(far, real), rel=1e-8)


def test_reference_floor_is_zero_for_the_same_set_and_below_noise():
    torch.manual_seed(3)
    m = MNISTClassifier((4, 8), 16)
    x = torch.rand(120, 1, 28, 28) * 0.5 - 1  # darkish images, far from uniform noise
    ref = quality.quality_reference(m, x, x, 500, torch.Generator().manual_seed(0))
    assert ref.n_samples == 120  # capped at the real set's size
    assert ref.floor == pytest.approx(0.0, abs=1e-8)  # a permutation of the same set
    assert ref.ceiling > 0.1 > ref.floor
    assert ref.real_features.shape == (120, 16)
    with torch.no_grad():
        by_hand = F.softmax(m.eval()(x), 1).max(1).values.double().mean().item()
    assert ref.real_confidence == pytest.approx(by_hand, rel=1e-6)


def _toy_digits(n, seed):
    """Class k = a bright 4x4 square in the k-th of ten places: easy to learn."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.full((n, 1, 28, 28), -1.0) + 0.1 * torch.rand(n, 1, 28, 28, generator=g)
    for i, k in enumerate(y.tolist()):
        r, c = divmod(k, 5)
        x[i, 0, 4 + 10 * r:8 + 10 * r, 2 + 5 * c:6 + 5 * c] = 1.0
    return x, y


def test_classifier_is_trained_once_cached_and_seeded_apart_from_the_run(tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    xtr, ytr = _toy_digits(300, 0)
    xte, yte = _toy_digits(100, 1)
    spec = quality.ClassifierSpec((4, 8), 16, epochs=4, batch_size=32, lr=2e-2, seed=4)
    state = torch.get_rng_state()
    a = quality.load_or_train_classifier(xtr, ytr, xte, yte, source="toy",
                                         ctx=_ctx(tmp_path / "a"), spec=spec)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is untouched
    assert not a.cached and a.path.parent == tmp_path / "a" / "classifiers"
    assert a.path.name == f"mnist-toy-n300-c4x8-f16-e4-b32-lr0.02-seed4-v{quality.CLASSIFIER_VERSION}.pt"
    assert a.test_accuracy >= 0.9
    with torch.no_grad():
        acc = (a.model.eval()(xte).argmax(1) == yte).float().mean().item()
    assert a.test_accuracy == pytest.approx(acc)

    b = quality.load_or_train_classifier(xtr, ytr, xte, yte, source="toy",
                                         ctx=_ctx(tmp_path / "a", seed=9), spec=spec)
    assert b.cached and b.test_accuracy == a.test_accuracy
    saved = torch.load(a.path, weights_only=True)
    for k, v in a.model.state_dict().items():
        assert torch.equal(b.model.state_dict()[k], v) and torch.equal(saved[k], v)
    assert torch.equal(torch.get_rng_state(), state)

    # trained afresh under another run seed: the very same network (its own seed rules)
    c = quality.load_or_train_classifier(xtr, ytr, xte, yte, source="toy",
                                         ctx=_ctx(tmp_path / "c", seed=123), spec=spec)
    assert not c.cached
    for k, v in a.model.state_dict().items():
        assert torch.equal(c.model.state_dict()[k], v)

    # a damaged cache file is trained again, not trusted
    c.path.write_bytes(b"not a checkpoint")
    d = quality.load_or_train_classifier(xtr, ytr, xte, yte, source="toy",
                                         ctx=_ctx(tmp_path / "c"), spec=spec)
    assert not d.cached and torch.load(d.path, weights_only=True).keys() == saved.keys()


SPEC = quality.ClassifierSpec((4, 8), 16, epochs=4, batch_size=32, lr=2e-2, seed=4)


def test_a_read_only_data_folder_falls_back_to_the_user_cache(tmp_path, monkeypatch):
    import errno

    xtr, ytr = _toy_digits(300, 0)
    xte, yte = _toy_digits(100, 1)
    user = tmp_path / "user-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(user))
    data = tmp_path / "data"
    data.mkdir()
    real_atomic = quality.atomic_path

    def read_only(path):  # the data folder refuses writes as a read-only mount does
        if data in Path(path).parents:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_atomic(path)

    monkeypatch.setattr(quality, "atomic_path", read_only)
    a = quality.load_or_train_classifier(xtr, ytr, xte, yte, source="toy",
                                         ctx=_ctx(data), spec=SPEC)
    assert not a.cached and a.path.parent == user / "dlab" / "classifiers"
    assert "Read-only file system" in a.note and str(user / "dlab" / "classifiers") in a.note
    # the next run finds it there
    b = quality.load_or_train_classifier(xtr, ytr, xte, yte, source="toy",
                                         ctx=_ctx(data), spec=SPEC)
    assert b.cached and b.path == a.path and b.test_accuracy == a.test_accuracy

    # neither folder writable (a file where the folders should be): trained, not cached
    monkeypatch.setattr(quality, "atomic_path", real_atomic)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "classifiers").write_text("a file, not a folder")
    (tmp_path / "file-cache").write_text("a file, not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file-cache"))
    c = quality.load_or_train_classifier(xtr, ytr, xte, yte, source="toy",
                                         ctx=_ctx(blocked), spec=SPEC)
    assert c.path is None and not c.cached and "trained for this run only" in c.note
    assert c.test_accuracy == pytest.approx(a.test_accuracy)


def test_two_halves_of_real_digits_sit_at_the_floor(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    xtr, ytr = _toy_digits(300, 0)
    xte, yte = _toy_digits(400, 1)
    clf = quality.load_or_train_classifier(xtr, ytr, xte, yte, source="toy",
                                           ctx=_ctx(tmp_path), spec=SPEC)
    assert clf.test_accuracy >= 0.95
    ref = quality.quality_reference(clf.model, xtr, xte, 200, torch.Generator().manual_seed(0))
    assert ref.real_recognisable > 0.9 and ref.real_neighbours > 0 and ref.duplicate_cutoff > 0
    halves = quality.real_halves(clf.model, xte, ref, torch.Generator().manual_seed(1))
    assert halves["n_real_half"] == 200
    assert halves["frechet_real_halves"] < 0.05 * ref.ceiling  # real vs real far below noise
    assert abs(halves["frechet_real_halves_relative"]) < 0.05  # at the floor


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    """One folder for the smoke judge's classifier: trained once for both seeds."""
    return tmp_path_factory.mktemp("judge")


@pytest.mark.parametrize("seed", [0, 1])
def test_the_judge_is_calibrated_on_real_digits_noise_and_a_collapsed_set(judge_dir,
                                                                         monkeypatch, seed):
    """16.1's smoke judge (the bundled digits): real held-out digits are near real,
    uniform noise is not converged (never collapsed), and 1,000 jittered copies of five
    real digits are collapsed, at two run seeds (other draws of every set)."""
    from dlab import config
    from dlab.experiments import exp16_gan as e16

    monkeypatch.setenv("XDG_CACHE_HOME", str(judge_dir / "user-cache"))
    impl = PROGRAMS["16.1"].load()
    cfg = config.build(impl.config, impl.profiles, "smoke", {"n_quality": "1000"}, "16.1")
    ctx = _ctx(judge_dir / f"run{seed}", seed=seed)
    ctx.data_dir = judge_dir
    digits = e16.load_digits(cfg, ctx)
    judge = e16.build_judge(cfg, ctx, digits, e16.scoring_classifier(cfg, ctx, digits))
    cal, ref = judge.calibration, judge.test_ref
    assert {k: c["verdict"] for k, c in cal.items()} == {
        "real": "near real", "noise": "not converged", "collapsed": "collapsed"}
    assert all(c["passed"] for c in cal.values())
    c = {k: (v["frechet_relative"], v["recognisable"], v["duplicates"]) for k, v in cal.items()}
    assert c["real"][0] < 0.05 and c["real"][2] < 0.1  # at the floor, few near-copies
    assert c["noise"][1] < 0.25 * ref.real_recognisable  # noise is not recognised ...
    assert c["collapsed"][1] > 0.7 * ref.real_recognisable  # ... the copies are
    assert c["collapsed"][2] == 1.0  # and every copy has a near-copy
    assert cal["collapsed"]["neighbours"] < 0.1 * ref.real_neighbours
    m = e16.judge_metrics(cfg, judge, digits.source)
    assert m["judge_calibrated"] is True


def test_scores_are_plain_numbers_that_load_with_weights_only(tmp_path):
    rng = np.random.default_rng(5)
    real = rng.normal(size=(200, 4))
    probs = np.full((100, 10), 0.1)
    s = quality.quality_score(real + 0.5, probs, _reference(real))
    assert {type(v) for v in s.values()} <= {float, int, bool, str}
    torch.save({"history": [s]}, tmp_path / "c.pt")
    assert torch.load(tmp_path / "c.pt", weights_only=True)["history"][0] == s
