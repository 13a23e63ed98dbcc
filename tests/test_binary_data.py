import math
import os

import numpy as np
import pytest

from dlab.data import binary, synthetic
from dlab.data.idx import write_idx
from dlab.errors import DataError


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    root = tmp_path_factory.mktemp("binary-data")
    return root, binary.binarized_mnist("bundled", root)


def _fake_full(root, n_train=30, n_test=10, seed=0):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    grey = {"train": rng.integers(0, 256, (n_train, 28, 28)),
            "test": rng.integers(0, 256, (n_test, 28, 28))}
    grey["train"][:, 0, 0], grey["train"][:, 0, 1] = 0, 255  # never / always on
    write_idx(raw / "train-images-idx3-ubyte", grey["train"])
    write_idx(raw / "train-labels-idx1-ubyte", rng.integers(0, 10, n_train))
    write_idx(raw / "t10k-images-idx3-ubyte", grey["test"])
    write_idx(raw / "t10k-labels-idx1-ubyte", rng.integers(0, 10, n_test))
    return grey


def test_bundled_binarisation_is_one_fixed_bernoulli_draw(bundled):
    root, d = bundled
    from dlab.data.mnist import load_mnist

    grey = load_mnist("bundled")
    assert d.x_train.shape == (4000, 784) and d.x_test.shape == (1000, 784)
    assert d.x_train.dtype == np.uint8 and set(np.unique(d.x_train)) == {0, 1}
    assert d.shape == (28, 28) and d.dims == 784
    p = grey.x_train.reshape(4000, 784) / 255.0
    # black pixels never switch on, white ones always do; grey ones are drawn with p
    assert d.x_train[p == 0].max() == 0 and d.x_train[p == 1].min() == 1
    mid = (p > 0.3) & (p < 0.7)
    assert abs(d.x_train[mid].mean() - p[mid].mean()) < 0.01
    assert 0.1 < d.x_train.mean() < 0.16  # about the mean intensity of MNIST, 0.13
    # the draw equals dlab.data.mnist.binarize with the fixed seeds (train seed, test seed+1)
    from dlab.data.mnist import binarize

    assert np.array_equal(d.x_train, binarize(grey.x_train, binary.BINARIZE_SEED).reshape(4000, -1))
    assert np.array_equal(d.x_test, binarize(grey.x_test, binary.BINARIZE_SEED + 1).reshape(1000, -1))
    assert np.array_equal(d.y_test, grey.y_test)
    assert "seed 1234" in d.describe() and "bundled" in d.describe()


def test_draw_is_cached_on_disk_and_reread(bundled, tmp_path):
    root, d = bundled
    assert d.cache_file is not None and d.cache_file.exists()
    assert d.cache_file.parent == root / "binarized"
    key = next(k for k in binary._MEMORY if k[0] == "bundled" and k[2] == binary.BINARIZE_SEED
               and k[3] == "stochastic")
    binary._MEMORY.pop(key)
    again = binary.binarized_mnist("bundled", root)
    assert again is not d  # not the memory copy: read back from the file
    assert np.array_equal(again.x_train, d.x_train) and np.array_equal(again.x_test, d.x_test)
    assert again.provenance == d.provenance and again.cache_file == d.cache_file
    assert binary.binarized_mnist("bundled", root) is again  # now from memory
    # another data folder in the same process gets its own copy of the same draw
    other = tmp_path / "elsewhere"
    third = binary.binarized_mnist("bundled", other)
    assert third.cache_file == other / "binarized" / again.cache_file.name
    assert third.cache_file.exists() and np.array_equal(third.x_test, d.x_test)


def test_other_seed_and_threshold_give_other_draws(bundled, tmp_path):
    _, d = bundled
    other = binary.binarized_mnist("bundled", tmp_path, seed=7, cache=False)
    assert other.cache_file is None and not (tmp_path / "binarized").exists()
    assert 0.01 < (other.x_train != d.x_train).mean() < 0.2
    thr = binary.binarized_mnist("bundled", tmp_path, method="threshold", cache=False)
    from dlab.data.mnist import load_mnist

    grey = load_mnist("bundled")
    assert np.array_equal(thr.x_test, (grey.x_test.reshape(1000, -1) > 127).astype(np.uint8))
    with pytest.raises(DataError, match="binarisation"):
        binary.binarized_mnist("bundled", tmp_path, method="median")
    with pytest.raises(DataError, match="source"):
        binary.binarized_mnist("mnist", tmp_path)


def test_full_source_is_keyed_by_its_files(tmp_path):
    grey = _fake_full(tmp_path)
    d = binary.binarized_mnist("auto", tmp_path)  # full files present: auto picks them
    assert d.x_train.shape == (30, 784) and d.x_test.shape == (10, 784)
    assert "full" in d.provenance.name and d.cache_file.name.startswith("mnist-full-")
    assert (d.x_train[:, 0] == 0).all() and (d.x_train[:, 1] == 1).all()
    # new files (another size) are a new source: the cached draw must not be reused
    new = _fake_full(tmp_path, n_train=40, seed=1)
    e = binary.binarized_mnist("full", tmp_path)
    assert e.x_train.shape == (40, 784) and e.cache_file == d.cache_file
    g = new["test"].reshape(10, -1)
    assert (e.x_test[g == 0] == 0).all() and (e.x_test[g == 255] == 1).all()
    # same sizes, rewritten later: the modification time changes the key too
    _fake_full(tmp_path, n_train=40, seed=2)
    os.utime(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte", ns=(10**9, 10**9))
    f = binary.binarized_mnist("full", tmp_path)
    assert f is not e and not np.array_equal(f.x_train, e.x_train)
    assert not np.array_equal(grey["test"], new["test"])
    with pytest.raises(DataError, match="full MNIST not found"):
        binary.binarized_mnist("full", tmp_path / "empty")


def test_corrupt_cache_file_is_remade(tmp_path):
    _fake_full(tmp_path)
    d = binary.binarized_mnist("full", tmp_path)
    binary._MEMORY.clear()
    d.cache_file.write_bytes(b"not an npz file")
    e = binary.binarized_mnist("full", tmp_path)
    assert np.array_equal(e.x_train, d.x_train)
    with np.load(e.cache_file) as f:  # rewritten as a valid file
        assert f["x_train"].shape == (30, 784)


def test_validation_split_is_fixed_disjoint_and_complete():
    tr, va = binary.validation_split(1000, 0.1)
    assert len(va) == 100 and len(tr) == 900
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(1000))
    tr2, va2 = binary.validation_split(1000, 0.1)
    assert np.array_equal(va, va2) and not np.array_equal(va, np.arange(900, 1000))
    with pytest.raises(ValueError):
        binary.validation_split(10, 1.0)


def test_markov_chain_set_sizes_entropy_and_flip_rate():
    mc = binary.markov_chain_set(np.random.default_rng(0), 3000, 300, 1000, d=12, p_flip=0.2)
    assert mc.x_train.shape == (3000, 12) and mc.x_val.shape == (300, 12)
    assert mc.x_test.shape == (1000, 12) and mc.dims == 12
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    assert mc.entropy == pytest.approx(math.log(2) + 11 * h(0.2), rel=1e-12)
    assert mc.entropy == pytest.approx(synthetic.markov_chain_entropy(12, 0.2))
    flips = (mc.x_train[:, 1:] != mc.x_train[:, :-1]).mean()
    assert abs(flips - 0.2) < 0.01
    assert "true entropy" in mc.describe()


def test_two_gaussians_density_is_normalised_and_matches_the_samples():
    from scipy.stats import multivariate_normal

    x = binary.two_gaussians(np.random.default_rng(0), 4000)
    assert x.shape == (4000, 2)
    assert abs(x[:, 0].mean()) < 0.15 and abs(np.abs(x[:, 0]).mean() - 2) < 0.05
    pts = np.array([[0.0, 0.0], [2.0, 0.0], [-1.5, 0.7]])
    ref = 0.5 * (multivariate_normal([-2, 0], 0.25 * np.eye(2)).pdf(pts)
                 + multivariate_normal([2, 0], 0.25 * np.eye(2)).pdf(pts))
    assert np.allclose(np.exp(binary.two_gaussians_log_density(pts)), ref, rtol=1e-10)
    g = np.linspace(-6, 6, 481)
    gx, gy = np.meshgrid(g, g)
    dens = np.exp(binary.two_gaussians_log_density(np.stack([gx.ravel(), gy.ravel()], 1)))
    assert dens.sum() * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=1e-6)


def test_splits_score_a_stratified_seeded_test_sample_not_a_prefix(bundled):
    _, d = bundled
    assert (np.diff(d.y_test) >= 0).all()  # the bundled test split is sorted by class
    s = binary.splits(d, 400, 0.1, 50)
    assert {k: len(v) for k, v in s.x.items()} == {"train": 360, "val": 40, "test": 50}
    assert s.counts("test") == {c: 5 for c in range(10)}  # every class in its share
    assert s.test_total == 1000
    again = binary.splits(d, 400, 0.1, 50)
    assert np.array_equal(s.x["test"], again.x["test"])  # fixed by its seed
    # the rows and labels belong together: each test row is the test split's row
    rows = [np.flatnonzero((d.x_test == r).all(1)) for r in s.x["test"]]
    assert all(d.y_test[r[0]] == y for r, y in zip(rows, s.y["test"], strict=True))
    whole = binary.splits(d, 0, 0.1, 0)
    assert np.array_equal(whole.x["test"], d.x_test) and len(whole.x["train"]) == 3600
    text = s.describe()
    assert "stratified sample" in text and "0: 5, 1: 5" in text
    assert "50 test digits (a stratified sample, seed 8765, of the 1,000" in text
    assert "1,000 test digits (all of the test split)" in whole.describe()


def test_odd_sizes_keep_class_shares_and_the_source_is_named(bundled):
    _, d = bundled
    s = binary.splits(d, 0, 0.1, 23)
    counts = s.counts("test")
    assert sum(counts.values()) == 23 and set(counts) == set(range(10))
    assert max(counts.values()) - min(counts.values()) <= 1
    assert d.source == "bundled"
    with pytest.raises(ValueError):
        binary.check_val_fraction(0.5)


def test_binary_data_does_not_import_the_run_machinery():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(binary))
    names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "dlab.runs" not in names and "dlab.io" in names


def test_published_figure_targets_need_all_digits_and_the_papers_length():
    """A published-figure target applies only to a run on every full training digit, all
    10,000 test digits and at least the given epoch budget; the CPU-level target only
    needs the full test digits."""
    from dlab.data.binary import all_digits, full_mnist_when

    run = {"data_source": "full", "n_train": 54_000, "n_val": 6_000, "train_total": 60_000,
           "n_test": 10_000, "test_total": 10_000, "epoch_budget": 30, "nade_test_nll": 95.0}
    assert all_digits(run)
    assert full_mnist_when("nade_test_nll")(run)
    assert not full_mnist_when("nade_test_nll", epochs=200)(run)  # 30 epochs, not 200
    assert full_mnist_when("nade_test_nll", epochs=200)({**run, "epoch_budget": 200})
    subset = {**run, "n_train": 18_000, "n_val": 2_000, "epoch_budget": 200}
    assert not all_digits(subset) and full_mnist_when("nade_test_nll")(subset)
    assert not full_mnist_when("nade_test_nll", epochs=200)(subset)
    assert not full_mnist_when("nade_test_nll")({**run, "data_source": "bundled"})
    assert not full_mnist_when("made_test_nll")(run)  # not measured
