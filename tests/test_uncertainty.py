"""Intervals of differences, and the verdicts they allow."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dlab.uncertainty import (
    Difference,
    against_reference,
    auc,
    over_seeds,
    paired_bootstrap,
    paired_bootstrap_statistic,
)
from dlab.verdicts import Target, compare


def test_seed_interval_by_hand():
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.3027 -> half width 2.4842
    d = over_seeds([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert d.estimate == pytest.approx(2.0)
    assert d.high - d.estimate == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert d.verdict("higher") == "not distinguishable"  # low end is below 0
    tight = over_seeds([2.0, 2.1, 2.0, 2.1], [1.0, 1.0, 1.0, 1.0])
    assert tight.verdict("higher") == "better" and tight.verdict("lower") == "worse"
    one = over_seeds([0.9], [0.1])
    assert one.low == -math.inf and one.verdict("higher") == "not distinguishable"


def test_against_reference_uses_the_spread_of_repeats():
    d = against_reference([0.90, 0.97, 0.93, 0.87, 0.97], 0.9333, "splits")
    assert d.estimate == pytest.approx(0.928 - 0.9333)
    assert d.includes_zero  # sd 0.044 over 5 repeats: the manual's figure is inside


def test_paired_bootstrap_separates_real_gaps_from_noise():
    rng = np.random.default_rng(0)
    truth = rng.random(2000) < 0.5
    a = (rng.random(2000) < 0.95).astype(float)  # 95% right
    b = (rng.random(2000) < 0.80).astype(float)  # 80% right
    d = paired_bootstrap(a, b, seed=0)
    assert d.low > 0.1 and d.high < 0.2 and d.verdict("higher") == "better"
    same = paired_bootstrap(a[:200], (rng.random(200) < 0.95).astype(float), seed=0)
    assert same.verdict("higher") == "not distinguishable"
    assert truth.any()
    # seeded: the same interval twice
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)
    flat = paired_bootstrap(np.ones(50), np.ones(50), seed=0)
    assert flat.low == flat.high == 0.0 and flat.verdict("higher") == "not distinguishable"


def test_auc_matches_sklearn_and_bootstraps():
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.3
    s1 = y + rng.normal(0, 1.0, 300)
    s2 = y + rng.normal(0, 1.0, 300)
    assert auc(y, s1) == pytest.approx(roc_auc_score(y, s1))
    d = paired_bootstrap_statistic(lambda y, p, q: auc(y, p) - auc(y, q), y, s1, s2, seed=0)
    assert d.estimate == pytest.approx(auc(y, s1) - auc(y, s2))
    assert d.low < d.estimate < d.high and d.includes_zero  # two equally good scorers


def test_compare_words_follow_the_interval():
    sure = Difference(0.05, 0.02, 0.08, "paired bootstrap over 500 test examples", 500)
    text, word = compare("accuracy", "A", 0.9, "B", 0.85, diff=sure, better="higher")
    assert word == "better" and "95% CI +0.02 to +0.08" in text and "A is higher" in text
    _, word = compare("MSE", "A", 0.9, "B", 0.85, diff=sure, better="lower")
    assert word == "worse"
    unsure = Difference(0.008, -0.012, 0.027, "t", 4)
    text, word = compare("AUC", "A", 0.798, "B", 0.790, diff=unsure, better="higher")
    assert word == "not distinguishable" and text.endswith("not distinguishable.")
    with pytest.raises(ValueError, match="not of"):  # an interval of another difference
        compare("AUC", "A", 0.798, "B", 0.5, diff=unsure, better="higher")


def test_comparative_target_needs_its_interval_to_clear_zero():
    with pytest.raises(ValueError, match="uncertainty"):
        Target("acc", above="base")
    t = Target("acc", above="base", interval="acc_vs_base")
    sure = Difference(0.2, 0.1, 0.3, "bootstrap", 100).as_dict()
    unsure = Difference(0.2, -0.05, 0.45, "bootstrap", 100).as_dict()
    assert t.judge({"acc": 0.7, "base": 0.5, "acc_vs_base": sure})["met"] is True
    v = t.judge({"acc": 0.7, "base": 0.5, "acc_vs_base": unsure})
    assert v["met"] is False and v["shown"] is False and v["why"].startswith("not shown")
    assert t.judge({"acc": 0.7, "base": 0.5})["met"] is False  # no interval measured
    wrong = t.judge({"acc": 0.9, "base": 0.5, "acc_vs_base": sure})  # interval of 0.2, not 0.4
    assert wrong["met"] is False and "not of" in wrong["why"]
    exact = Target("n", below="m", exact="two counts")
    assert exact.judge({"n": 1, "m": 2})["met"] is True
