import math

import numpy as np
import pytest

from dlab import metrics


def test_confusion_and_accuracy():
    cm = metrics.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert metrics.accuracy_score([0, 1, 1, 2], [0, 1, 2, 2]) == 0.75


def test_psnr_hand_computed():
    clean = np.zeros((2, 4, 4))
    noisy = clean + 0.1  # MSE 0.01 -> 20 dB
    assert metrics.psnr(clean, noisy) == pytest.approx(20.0)
    assert metrics.psnr(clean, clean) == math.inf
    assert metrics.psnr(clean, noisy + 0.1) == pytest.approx(10 * math.log10(1 / 0.04))


def test_frechet_of_gaussians_hand_checkable():
    mu, cov = np.zeros(3), np.eye(3)
    assert metrics.gaussian_frechet(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-10)
    # mean shift only: d^2 = |shift|^2
    assert metrics.gaussian_frechet(mu, cov, mu + 2.0, cov) == pytest.approx(12.0)
    # scale only, 1-D: (sigma1 - sigma2)^2
    assert metrics.gaussian_frechet([0.0], [[4.0]], [0.0], [[1.0]]) == pytest.approx(1.0)


def test_frechet_from_samples_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5000, 4))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifts = [metrics.frechet_distance(a, rng.normal(size=(5000, 4)) + s) for s in (0, 1, 2)]
    assert shifts[0] < 0.05 and shifts[0] < shifts[1] < shifts[2]
    assert shifts[2] == pytest.approx(16.0, rel=0.05)


def test_class_spread_on_hand_made_histograms():
    uniform = metrics.class_spread(np.repeat(np.arange(10), 50))
    assert uniform["class_entropy"] == pytest.approx(math.log(10))
    assert uniform["class_entropy_fraction"] == pytest.approx(1.0)
    assert uniform["rare_classes"] == 0
    collapsed = metrics.class_spread(np.full(500, 3))
    assert collapsed["class_entropy"] == 0.0 and collapsed["rare_classes"] == 9
    two = metrics.class_spread(np.array([0] * 50 + [1] * 50))
    assert two["class_entropy"] == pytest.approx(math.log(2)) and two["rare_classes"] == 8


def test_bernoulli_baseline_matches_formula():
    train = np.array([[1, 0], [1, 1], [0, 0], [1, 0]])
    test = np.array([[1, 1]])
    p = np.array([0.75, 0.25])
    assert metrics.bernoulli_baseline_nll(train, test) == pytest.approx(-np.log(p).sum())
    assert metrics.nats_to_bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)


def test_linear_probe_separates_separable_features():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    x = rng.normal(size=(400, 5)) + 3 * y[:, None]
    assert metrics.linear_probe(x[:300], y[:300], x[300:], y[300:]) > 0.95
    noise = rng.normal(size=(400, 5))
    assert metrics.linear_probe(noise[:300], y[:300], noise[300:], y[300:]) < 0.7
