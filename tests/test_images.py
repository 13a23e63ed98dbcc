import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlab.data import images as im
from dlab.errors import DataError


def test_to_tensor_scales_integers_and_keeps_floats():
    a = np.array([[[0, 51], [102, 255]]], dtype=np.uint8)          # (1, 2, 2)
    t = im.to_tensor(a)
    assert t.shape == (1, 1, 2, 2) and t.dtype == torch.float32
    assert torch.allclose(t.flatten(), torch.tensor([0.0, 0.2, 0.4, 1.0]))
    rgb = np.zeros((2, 3, 4, 3), dtype=np.float64)
    rgb[..., 2] = 0.5
    t = im.to_tensor(rgb)
    assert t.shape == (2, 3, 3, 4)
    assert torch.all(t[:, 2] == 0.5) and torch.all(t[:, :2] == 0)


def test_prepare_normalises_with_given_statistics_and_repeats_grey():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (5, 6, 6), dtype=np.uint8)
    x01 = a.astype(np.float64) / 255
    mean, std = [float(x01.mean())], [float(x01.std(ddof=1))]
    x = im.prepare(a, (6, 6), 1, mean, std)
    assert x.shape == (5, 1, 6, 6)
    assert abs(float(x.double().mean())) < 1e-6
    assert abs(float(x.double().std()) - 1.0) < 1e-5
    assert im.channel_stats(im.to_tensor(a))[0][0] == pytest.approx(mean[0], abs=1e-7)
    x3 = im.prepare(a, (6, 6), 3, mean * 3, std * 3)
    assert x3.shape == (5, 3, 6, 6)
    assert torch.equal(x3[:, 0], x3[:, 2]) and torch.equal(x3[:, 1], x[:, 0])


def test_colour_to_grey_uses_bt601_weights_and_alpha_is_dropped():
    x = torch.zeros(1, 4, 1, 3)
    x[0, 0, 0, 0] = 1.0  # red
    x[0, 1, 0, 1] = 1.0  # green
    x[0, 2, 0, 2] = 1.0  # blue
    x[0, 3] = 0.7        # alpha: ignored
    g = im.match_channels(x, 1)
    assert g.shape == (1, 1, 1, 3)
    assert torch.allclose(g.flatten(), torch.tensor([0.299, 0.587, 0.114]))


def test_resize_uint8_matches_interpolate_and_keeps_constants():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    out = im.resize_uint8(a, (32, 32))
    assert out.shape == (3, 32, 32) and out.dtype == np.uint8
    ref = F.interpolate(torch.from_numpy(a).float()[:, None] / 255, size=(32, 32),
                        mode="bilinear", align_corners=False, antialias=True)
    assert np.array_equal(out, (ref[:, 0] * 255).round().clamp(0, 255).byte().numpy())
    flat = np.full((1, 10, 7, 3), 77, dtype=np.uint8)
    assert np.all(im.resize_uint8(flat, (5, 9)) == 77)
    assert np.array_equal(im.resize_uint8(a, (28, 28)), a)


@pytest.mark.parametrize("bad, msg", [
    (np.zeros((2, 5, 5, 2), np.uint8), "C 1, 3 or 4"),
    (np.zeros((5, 5), np.uint8), "shaped"),
    (np.full((1, 4, 4), 1.5, np.float32), "[0, 1]"),
    (np.full((1, 4, 4), 300, np.int64), "0-255"),
])
def test_check_array_rejects_bad_images(bad, msg):
    with pytest.raises(DataError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        im.check_array(bad)


def test_augment_flips_and_crops_are_windows_of_the_padded_input():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(4 * 2 * 6 * 5, dtype=torch.float32).reshape(4, 2, 6, 5)
    assert torch.equal(im.augment_batch(x, g, flip=False, pad=0), x)
    flipped = im.augment_batch(x, torch.Generator().manual_seed(3), flip=True, pad=0)
    kinds = []
    for i in range(4):
        same, mirror = torch.equal(flipped[i], x[i]), torch.equal(flipped[i], x[i].flip(-1))
        assert same or mirror
        kinds.append(mirror)
    out = im.augment_batch(x, torch.Generator().manual_seed(5), flip=False, pad=2)
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    for i in range(4):
        windows = [(oy, ox) for oy in range(5) for ox in range(5)
                   if torch.equal(out[i], padded[i, :, oy:oy + 6, ox:ox + 5])]
        assert windows, f"image {i} is not a crop of its padded self"
    again = im.augment_batch(x, torch.Generator().manual_seed(5), flip=False, pad=2)
    assert torch.equal(out, again)
    many = im.augment_batch(x.repeat(50, 1, 1, 1), torch.Generator().manual_seed(7), pad=0)
    mirrored = sum(torch.equal(m, x[0].flip(-1)) for m in many[0::4])
    assert 10 < mirrored < 40  # about half of 50


def _png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_image_folder_loader_skips_corrupt_files_and_resizes(tmp_path):
    rng = np.random.default_rng(2)
    cat = [rng.integers(0, 256, (12, 10, 3), dtype=np.uint8) for _ in range(3)]
    dog = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(2)]
    for i, a in enumerate(cat):
        _png(tmp_path / "cat" / f"{i}.png", a)
    for i, a in enumerate(dog):
        _png(tmp_path / "dog" / f"{i}.jpg" if i == 0 else tmp_path / "dog" / f"{i}.png", a)
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (tmp_path / "dog" / "notes.txt").write_text("ignored: not an image extension")
    data = im.load_image_folder(tmp_path, 8)
    assert data.classes == ["cat", "dog"]
    assert data.counts() == {"cat": 3, "dog": 2}
    assert [p.name for p, _ in data.skipped] == ["broken.jpg"]
    assert data.images.shape == (5, 8, 8, 3) and data.images.dtype == np.uint8
    assert data.labels.tolist() == [0, 0, 0, 1, 1]
    assert np.array_equal(data.images[0], im.resize_uint8(cat[0][None], (8, 8))[0])
    assert np.array_equal(data.images[4], dog[1])   # PNG, already 8x8: unchanged
    assert data.source_size is None                  # files of several sizes


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        im.load_image_folder(tmp_path / "nowhere", 8)
    _png(tmp_path / "one" / "only" / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="at least two"):
        im.scan_image_folder(tmp_path / "one")
    _png(tmp_path / "two" / "a" / "x.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "two" / "b").mkdir(parents=True)
    with pytest.raises(DataError, match="b hold no"):
        im.scan_image_folder(tmp_path / "two")
    (tmp_path / "two" / "b" / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="no readable image in class.*b"):
        im.load_image_folder(tmp_path / "two", 4)


def test_write_then_read_folder_is_lossless(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (6, 9, 9), dtype=np.uint8)
    y = np.array([0, 1, 0, 1, 1, 0])
    counts = im.write_image_folder(tmp_path, x, y, ["T-shirt/top", "bag"])
    assert counts == {"T-shirt-top": 3, "bag": 3}
    data = im.load_image_folder(tmp_path, 9)
    assert data.images.shape == (6, 9, 9, 1) and data.source_size == (9, 9)
    order = np.argsort(y, kind="stable")  # the folder lists class 0 files first
    names = {"T-shirt-top": 0, "bag": 1}
    assert [names[data.classes[k]] for k in data.labels] == y[order].tolist()
    assert np.array_equal(data.images[..., 0], x[order])


def _fake_cifar(root, n=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(4)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        batches[name] = (data, labels)
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": labels}, fh)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
             b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": names}, fh)
    return batches


def test_cifar10_reader_layout(tmp_path):
    assert im.load_cifar10(tmp_path) is None
    batches = _fake_cifar(tmp_path)
    data = im.load_cifar10(tmp_path)
    assert data.x_train.shape == (20, 32, 32, 3) and data.x_test.shape == (4, 32, 32, 3)
    assert data.classes[3] == "cat" and data.classes[5] == "dog"
    raw, labels = batches["data_batch_2"]
    img = data.x_train[4]  # first image of the second batch
    # rows of 3072: 1024 red values (row-major 32x32), then 1024 green, then 1024 blue
    assert img[0, 1, 0] == raw[0, 1] and img[0, 1, 1] == raw[0, 1025]
    assert img[2, 3, 2] == raw[0, 2048 + 2 * 32 + 3]
    assert data.y_train[4] == labels[0]


def _png_header_only(width, height):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 8)) + chunk(b"IEND", b""))


def test_decompression_bomb_is_an_unreadable_file(tmp_path):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(20000, 10000))
    with pytest.raises(DataError, match="bomb.png: not a readable image .too large"):
        im.read_image(bomb)
    # in an image folder it is skipped and counted like any unreadable file
    for cls in ("a", "b"):
        (tmp_path / "root" / cls).mkdir(parents=True)
        Image.fromarray(np.full((6, 6), 50, np.uint8)).save(tmp_path / "root" / cls / "ok.png")
    (tmp_path / "root" / "a" / "bomb.png").write_bytes(bomb.read_bytes())
    loaded = im.load_image_folder(tmp_path / "root", 6)
    assert len(loaded.images) == 2 and [p.name for p, _ in loaded.skipped] == ["bomb.png"]


@pytest.mark.parametrize("content,match", [
    (b"PK\x03\x04 not a zip", "not a readable NumPy file"),
    (b"\x93NUMPY garbage", "not a readable NumPy file"),
])
def test_broken_array_files_are_data_errors(tmp_path, content, match):
    for suffix in (".npz", ".npy"):
        path = tmp_path / f"x{suffix}"
        path.write_bytes(content)
        with pytest.raises(DataError, match=match):
            im.read_images_file(path)


def test_nan_images_are_refused_without_warnings(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="NaN or infinite"):
            im.check_array(np.full((1, 4, 4), np.nan, np.float32))


def test_pixel_stats_match_the_float_statistics_without_a_float_copy():
    from dlab.data.images import channel_stats, pixel_stats, to_tensor
    from dlab.errors import DataError

    rng = np.random.default_rng(0)
    for shape in ((40, 9, 7), (30, 8, 8, 3)):
        images = rng.integers(0, 256, shape, dtype=np.uint8)
        images[0] = 0  # uneven histograms
        got, want = pixel_stats(images), channel_stats(to_tensor(images))
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    with pytest.raises(DataError, match="uint8"):
        pixel_stats(np.zeros((2, 4, 4), dtype=np.float32))


def test_by_class_figure_places_the_first_images_of_each_class_in_its_row():
    from dlab.figures import by_class_figure

    labels = np.array([1, 0, 1, 1, 0])
    grey = np.stack([np.full((4, 4), v / 10) for v in range(5)])  # image i has value i/10
    fig = by_class_figure(grey, labels, ["a", "b"], 2, "t")
    grid = fig.axes[0].images[0].get_array()
    assert grid.shape == (2 * 6 + 2, 2 * 6 + 2)
    # row 0 (class 0): images 1 and 4; row 1 (class 1): images 0 and 2 (3 is beyond 2)
    assert grid[3, 3] == pytest.approx(0.1) and grid[3, 9] == pytest.approx(0.4)
    assert grid[9, 3] == pytest.approx(0.0) and grid[9, 9] == pytest.approx(0.2)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    colour = by_class_figure(np.zeros((5, 4, 4, 3)), labels, ["a", "b"], 3, "t", gap=1.0)
    grid = colour.axes[0].images[0].get_array()
    assert grid.shape == (14, 20, 3) and grid[0, 0, 0] == 1.0 and grid[2, 2, 0] == 0.0
