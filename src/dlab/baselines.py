"""Baselines that several programs score their networks against, on the same examples:
the majority class and a tuned logistic regression, and the paired accuracy difference
with its bootstrap interval."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlab.uncertainty import Difference, paired_bootstrap

BASELINE_C = (0.01, 0.1)  # logistic regression's C values tried (chosen on validation data)


def majority_predictions(y_train: Any, n: int) -> np.ndarray:
    """(n,) answers of the majority-class baseline: the most common training class."""
    y = np.asarray(y_train)
    return np.full(n, int(np.bincount(y, minlength=int(y.max()) + 1).argmax()))


def accuracy_difference(pred_a: np.ndarray, pred_b: np.ndarray, true: np.ndarray, seed: int,
                        what: str = "test digits") -> Difference:
    """Accuracy of a minus accuracy of b on the same examples, with the paired bootstrap
    interval over the examples' 0/1 correctness (each (N,) array of classes)."""
    true = np.asarray(true)
    return paired_bootstrap((np.asarray(pred_a) == true).astype(float),
                            (np.asarray(pred_b) == true).astype(float), seed=seed, what=what)


def logistic_baseline(x_fit: np.ndarray, y_fit: np.ndarray, x_val: np.ndarray,
                      y_val: np.ndarray, x_test: np.ndarray, seed: int,
                      cs: tuple[float, ...] = BASELINE_C) -> dict:
    """A linear baseline fit on the same training examples as the network: multinomial
    logistic regression on the standardised pixels (N, D), its L2 strength 1/C chosen
    by accuracy on the validation examples. Returns the chosen C, the validation
    accuracy of every C tried, and the chosen model's test predictions (M,)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    def flat(x) -> np.ndarray:  # float64: scikit-learn's solver is much slower on float32
        return np.asarray(x, dtype=np.float64).reshape(len(x), -1)

    fitted, val_acc = {}, {}
    # one BLAS thread: on two shared cores the threaded solver ran up to seven times slower
    with threadpool_limits(1):
        for c in cs:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000,
                                                                       random_state=seed))
            fitted[c] = model.fit(flat(x_fit), np.asarray(y_fit))
            val_acc[c] = float(model.score(flat(x_val), np.asarray(y_val)))
    best = max(cs, key=lambda c: (val_acc[c], -c))  # ties: the stronger regularisation
    return {"C": best, "val_accuracy": val_acc, "pred": fitted[best].predict(flat(x_test))}
