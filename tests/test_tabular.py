import math

import numpy as np
import pandas as pd
import pytest
import torch

from dlab.data.tabular import (
    TableData,
    TablePreprocessor,
    as_tensors,
    breast_cancer,
    german_credit,
    prepare,
    split_rows,
)


def _table():
    frame = pd.DataFrame({
        "a": [1.0, 2.0, 3.0, np.nan, 100.0, 200.0],
        "c": ["x", "y", "x", "x", "z", None],
        "t": [10.0, 20.0, 30.0, 40.0, 1000.0, 2000.0],
    })
    return TableData(frame, "t", "regression", None)


ROWS = {"train": np.array([0, 1, 2, 3]), "val": np.array([4]), "test": np.array([5])}


def test_preprocessing_is_fit_on_training_rows_only():
    s = prepare(_table(), 0, rows=ROWS)
    # training column a: 1, 2, 3, gap -> median 2 (all rows would give 3), then mean 2
    assert s.pre.medians["a"] == 2.0
    assert s.pre.means["a"] == 2.0
    assert s.pre.stds["a"] == pytest.approx(math.sqrt(0.5))
    assert s.pre.categories["c"] == ["x", "y"]          # 'z' and the gap come from other rows
    assert s.feature_names == ["a", "c=x", "c=y"]
    assert np.allclose(s.x_train[:, 0], [-1 / math.sqrt(0.5), 0, 1 / math.sqrt(0.5), 0])
    assert s.x_val[0, 0] == pytest.approx(98 / math.sqrt(0.5))
    assert s.x_val[0, 1:].tolist() == [0.0, 0.0]          # unseen category -> zeros
    assert s.y_test.tolist() == [2000.0]                  # targets stay in their own units
    assert s.y_train.tolist() == [10.0, 20.0, 30.0, 40.0]


def test_without_scaling_only_the_gaps_are_filled():
    s = prepare(_table(), 0, scale=False, rows=ROWS)
    assert s.x_train[:, 0].tolist() == [1.0, 2.0, 3.0, 2.0]   # gap -> training median
    assert s.x_test[0, 0] == 200.0


def test_a_missing_category_seen_in_training_is_its_own_column():
    pre = TablePreprocessor.fit(pd.DataFrame({"c": ["x", None, "x"]}))
    assert pre.feature_names == ["c=(missing)", "c=x"]
    assert pre.transform(pd.DataFrame({"c": [None, "x", "w"]})).tolist() == [
        [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]


def test_split_rows_are_disjoint_complete_and_stratified():
    rows = split_rows(398, 0.2, 0.2, seed=0)
    everything = np.concatenate(list(rows.values()))
    assert sorted(everything.tolist()) == list(range(398))
    assert (len(rows["test"]), len(rows["val"]), len(rows["train"])) == (80, 64, 254)
    labels = np.array([0] * 300 + [1] * 100)
    rows = split_rows(400, 0.25, 0.2, seed=3, labels=labels)
    for part in rows.values():
        assert labels[part].mean() == pytest.approx(0.25, abs=0.01)
    assert len(split_rows(10, 0.3, seed=0)["val"]) == 0
    assert not np.array_equal(split_rows(100, 0.2, seed=0)["test"],
                              split_rows(100, 0.2, seed=1)["test"])


def test_german_credit_scaler_is_fit_on_training_rows_only():
    table = german_credit()
    s = prepare(table, 0.25, 0.2, seed=0)
    num = s.pre.numeric
    assert "credit_amount" in num and "age_in_years" in num
    train = table.frame.iloc[s.rows["train"]][num].to_numpy(np.float64)
    test = table.frame.iloc[s.rows["test"]][num].to_numpy(np.float64)
    np.testing.assert_allclose([s.pre.means[c] for c in num], train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose([s.pre.stds[c] for c in num], train.std(axis=0), rtol=1e-12)
    full_mean = table.frame[num].to_numpy(np.float64).mean(axis=0)
    assert not np.allclose([s.pre.means[c] for c in num], full_mean, rtol=1e-6)
    k = len(num)
    np.testing.assert_allclose(s.x_train[:, :k].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(s.x_test[:, :k], (test - train.mean(0)) / train.std(0),
                               rtol=1e-12)
    # one-hot groups: every categorical column contributes exactly one 1 per row
    assert s.x_train.shape[1] == 61 and np.all(np.isin(s.x_train[:, k:], (0.0, 1.0)))
    assert np.all(s.x_train[:, k:].sum(axis=1) == len(s.pre.categorical))
    # stratified: the bad-risk share is 30% in every part
    for y in (s.y_train, s.y_val, s.y_test):
        assert y.mean() == pytest.approx(0.3, abs=0.01)


def test_raw_preparation_keeps_raw_numbers():
    table = german_credit()
    s = prepare(table, 0.25, seed=0, scale=False)
    col = s.feature_names.index("credit_amount")
    np.testing.assert_array_equal(
        s.x_train[:, col], table.frame["credit_amount"].to_numpy()[s.rows["train"]])


def test_breast_cancer_standardised_on_training_rows():
    s = prepare(breast_cancer(), 0.25, seed=0)
    assert s.x_train.shape == (426, 30) and s.x_test.shape == (143, 30)
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(s.x_train.std(axis=0), 1, atol=1e-10)
    assert np.abs(s.x_test.mean(axis=0)).max() > 1e-3  # test rows were not used for the scaler


def test_as_tensors():
    x, y = as_tensors(np.ones((3, 2)), np.array([0, 1, 1]), binary=True)
    assert x.dtype == torch.float32 and y.shape == (3, 1) and y.dtype == torch.float32
    x, y = as_tensors(np.ones((3, 2)), np.array([0, 2, 1]))
    assert y.dtype == torch.int64 and y.tolist() == [0, 2, 1]
