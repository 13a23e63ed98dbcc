"""Measures shared by the programs: classification, likelihood, images, generative quality.

Every function takes arrays or tensors and returns plain Python floats (or dicts of
them), so results go straight into metrics.json.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

LOG2 = math.log(2.0)


def accuracy_score(pred: np.ndarray, target: np.ndarray) -> float:
    """Fraction of equal entries of two label arrays (N,)."""
    pred, target = np.asarray(pred), np.asarray(target)
    return float((pred == target).mean())


def confusion_matrix(pred: np.ndarray, target: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(target), np.asarray(pred)), 1)
    return cm


def nats_to_bits_per_dim(nll_nats: float, dims: int) -> float:
    """Negative log-likelihood per example in nats -> bits per dimension."""
    return nll_nats / (dims * LOG2)


def bernoulli_baseline_nll(train: np.ndarray, test: np.ndarray, eps: float = 1e-6) -> float:
    """Mean test NLL in nats of independent Bernoullis fit to the training frequencies.

    train, test: binary arrays (N, D). Frequencies are clipped to [eps, 1 - eps] so an
    always-off training pixel does not give an infinite NLL on test.
    """
    p = np.clip(np.asarray(train, dtype=np.float64).mean(axis=0), eps, 1 - eps)
    x = np.asarray(test, dtype=np.float64)
    return float(-(x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=1).mean())


def psnr(clean: np.ndarray, other: np.ndarray, max_value: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over a batch: 10 log10(MAX^2 / MSE).

    The MSE is taken over every pixel of every image (one number for the set), the
    usual convention when comparing denoisers on a test set.
    """
    mse = float(np.mean((np.asarray(clean, np.float64) - np.asarray(other, np.float64)) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(max_value ** 2 / mse)


def gaussian_frechet(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                     cov2: np.ndarray) -> float:
    """Frechet distance between N(mu1, cov1) and N(mu2, cov2) (Dowson and Landau 1982):

        d^2 = |mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)),

    the quantity behind FID (Heusel et al. 2017). The matrix square root is taken with
    scipy.linalg.sqrtm; its tiny imaginary part from rounding is dropped.
    """
    from scipy import linalg

    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    with warnings.catch_warnings():
        # A singular product (dead features, a collapsed generator) makes sqrtm warn;
        # the result is still usable, and non-finite results are regularised below.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov1 @ cov2)
        if not np.isfinite(covmean).all():  # regularise, as FID implementations do
            offset = np.eye(len(cov1)) * 1e-6
            covmean = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean), 0.0))


def frechet_distance(features1: np.ndarray, features2: np.ndarray) -> float:
    """Frechet distance between Gaussians fit to two feature sets (N1, F) and (N2, F)."""
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    return gaussian_frechet(f1.mean(0), np.cov(f1, rowvar=False),
                            f2.mean(0), np.cov(f2, rowvar=False))


def class_spread(pred: np.ndarray, n_classes: int = 10, rare: float = 0.02) -> dict[str, float]:
    """How evenly predicted classes are spread (for generated samples).

    Returns the entropy of the class histogram in nats (log n_classes when uniform,
    0 when every sample is one class), the same as a fraction of log n_classes, and the
    number of classes with fewer than `rare` of the samples (mode collapse shows here).
    """
    counts = np.bincount(np.asarray(pred, dtype=np.int64), minlength=n_classes)[:n_classes]
    freq = counts / max(counts.sum(), 1)
    nz = freq[freq > 0]
    entropy = float(-(nz * np.log(nz)).sum())
    return {"class_entropy": entropy,
            "class_entropy_fraction": entropy / math.log(n_classes),
            "rare_classes": int((freq < rare).sum())}


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                 test_y: np.ndarray, max_iter: int = 1000, seed: int = 0) -> float:
    """Test accuracy of a logistic regression fit on features (N, F): feature quality.

    The features are standardised with statistics of the training rows only.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter,
                                                               random_state=seed))
    model.fit(np.asarray(train_x).reshape(len(train_x), -1), train_y)
    return float(model.score(np.asarray(test_x).reshape(len(test_x), -1), test_y))


def pca_basis(train: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and top-k principal directions (D, k) of the rows of `train` (N, D):
    eigenvectors of the scatter matrix (x - mean)^T (x - mean) with the largest
    eigenvalues (= the leading right singular vectors of the centred data)."""
    mean = train.mean(axis=0)
    centred = train - mean
    _, vecs = np.linalg.eigh(centred.T @ centred)  # (D, D), eigenvalues ascending
    return mean, vecs[:, ::-1][:, :k]


def pca_reconstruction_mse(train: np.ndarray, test: np.ndarray, k: int) -> float:
    """Per-element test MSE of PCA with k components fit on the training rows only.

    train (N, D), test (M, D): x_hat = mean + (x - mean) V V^T with V = pca_basis(train, k).
    PCA is the best rank-k linear encoder-decoder pair in squared error (Eckart-Young).
    """
    mean, v = pca_basis(train, k)
    recon = mean + (test - mean) @ v @ v.T  # (M, D)
    return float(np.mean((recon - test) ** 2))
