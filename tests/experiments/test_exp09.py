import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dlab.errors import DataError
from dlab.experiments.exp09_cats_dogs import flatten_size
from dlab.models import count_parameters
from dlab.models.cnn import AnySizeCNN, ManualCatDogCNN
from dlab.registry import PROGRAMS
from dlab.running import run_program

# conv (3*3*C_in + 1) * C_out for 3->32->64->128, then dense (F + 1) * 256 and (256 + 1) * 2 (the manual's width)
CONVS = (27 + 1) * 32 + (288 + 1) * 64 + (576 + 1) * 128  # 93,248


@pytest.mark.parametrize("size, flat", [(32, 128 * 4 * 4), (64, 128 * 8 * 8),
                                        (128, 128 * 16 * 16), (50, 128 * 6 * 6),
                                        ((64, 96), 128 * 8 * 12)])
def test_flatten_size_follows_the_input(size, flat):
    h, w = (size, size) if isinstance(size, int) else size
    net = AnySizeCNN(size, 3, 2)
    assert net.flatten_size == flatten_size(h, w) == flat
    assert count_parameters(net) == CONVS + (flat + 1) * 256 + (256 + 1) * 2
    x = torch.zeros(2, 3, h, w)
    assert net.features(x)[0].numel() == flat
    assert net(x).shape == (2, 2)


def test_known_totals_and_the_manual_network():
    assert count_parameters(AnySizeCNN(32)) == 618_306
    assert count_parameters(AnySizeCNN(64)) == 2_191_170
    assert count_parameters(AnySizeCNN(32, 3, 10)) == 620_362  # the manual's 10 outputs
    manual = ManualCatDogCNN()
    assert manual(torch.zeros(1, 3, 32, 32)).shape == (1, 2)
    with pytest.raises(RuntimeError):
        manual(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="built for 32x32"):
        AnySizeCNN(32)(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="too small"):
        AnySizeCNN(7)


def test_any_size_program(tmp_path):
    out = run_program(PROGRAMS["9.1"], profile="quick", out=tmp_path, quiet=True, device="cpu")
    m = out.metrics
    assert m["all_shapes_right"] is True and m["manual_runs_at"] == [32]
    assert [t["met"] for t in out.targets] == [True, True]
    assert "Only the dense layer's size changes" in (out.folder / "record.md").read_text()
    assert m["flatten_sizes"] == {"32": 2048, "50": 4608, "64": 8192, "128": 32768,
                                  "224": 100352}


def _stripes(horizontal: bool, rng, size=(20, 24)):
    """A noisy image of stripes; the class is their direction (survives left-right flips)."""
    h, w = size
    phase = rng.integers(0, 4)
    idx = np.arange(h)[:, None] if horizontal else np.arange(w)[None, :]
    img = (((idx + phase) // 2) % 2 * 200 + 25) * np.ones((h, w))
    img = img + rng.normal(0, 20, (h, w))
    rgb = np.stack([img, img * 0.8, img * 0.6], axis=-1)
    return rgb.clip(0, 255).astype(np.uint8)


def _folder(root, n=40):
    rng = np.random.default_rng(0)
    for cls, horizontal in (("cat", True), ("dog", False)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(_stripes(horizontal, rng)).save(root / cls / f"{i}.png")
    (root / "dog" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return root


def test_image_folder_program_on_a_user_folder(tmp_path):
    root = _folder(tmp_path / "pets")
    out = run_program(PROGRAMS["9.2"], profile="smoke", out=tmp_path / "runs", quiet=True,
                      device="cpu", sets={"data": str(root), "epochs": "4"})
    assert out.status == "ok"
    m = out.metrics
    assert m["classes"] == ["cat", "dog"] and m["skipped_files"] == 1
    assert m["class_counts"] == {"cat": 40, "dog": 40}
    assert m["train_size"] == 64 and m["val_size"] == 16
    assert m["majority_baseline"] == 0.5
    assert m["val_accuracy"] >= m["majority_baseline"] + 0.25   # stripes: an easy task
    assert [t["met"] for t in out.targets] == ["not applicable"] * 2  # smoke: none apply
    # the baselines scored on the same 16 validation images, each with its paired interval
    for key, ref in (("val_accuracy_vs_majority", "train_majority_val_accuracy"),
                     ("val_accuracy_vs_nearest_mean", "nearest_mean_val_accuracy"),
                     ("val_accuracy_vs_logreg", "logreg_val_accuracy")):
        assert m[key]["estimate"] == pytest.approx(m["val_accuracy"] - m[ref]), key
        assert m[key]["n"] == 16 and m[key]["low"] <= m[key]["estimate"] <= m[key]["high"]
    cm = np.array(m["confusion_matrix"])
    assert cm.sum() == 16 and cm.sum(axis=1).tolist() == [8, 8]
    assert m["val_accuracy"] == pytest.approx(np.trace(cm) / 16)
    rows = list(csv.DictReader((out.folder / "val_predictions.csv").read_text().splitlines()))
    assert len(rows) == 16 and all(r["file"].startswith(str(root)) for r in rows)
    record = (out.folder / "metrics.json").read_text()
    assert json.loads(record)["record"]["stand_in"] is None
    assert "corrupt.jpg" in record


def test_image_folder_errors(tmp_path):
    one = tmp_path / "one" / "cat"
    one.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(one / "a.png")
    kw = dict(profile="smoke", out=tmp_path / "runs", quiet=True, device="cpu")
    with pytest.raises(DataError, match="at least two"):
        run_program(PROGRAMS["9.2"], sets={"data": str(tmp_path / "one")}, **kw)
    (tmp_path / "one" / "dog").mkdir()
    with pytest.raises(DataError, match="dog hold no"):
        run_program(PROGRAMS["9.2"], sets={"data": str(tmp_path / "one")}, **kw)
    with pytest.raises(DataError, match="not found"):
        run_program(PROGRAMS["9.2"], sets={"data": str(tmp_path / "missing")}, **kw)
    assert not list((tmp_path / "runs").rglob("*.json"))  # nothing left behind


def test_many_classes_too_small_to_split_fail_before_training(tmp_path):
    root = tmp_path / "tiny"
    for k in range(60):                                   # 60 classes of 2 images each
        (root / f"c{k:02d}").mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((8, 8), 4 * k + i, np.uint8)).save(root / f"c{k:02d}" /
                                                                       f"{i}.png")
    with pytest.raises(DataError) as err:
        run_program(PROGRAMS["9.2"], profile="smoke", out=tmp_path / "runs", quiet=True,
                    device="cpu", sets={"data": str(root)})
    message = str(err.value)
    assert "\n" not in message and "60 of 60 classes" in message and "at least 3" in message
    assert not list((tmp_path / "runs").rglob("*.json"))  # nothing trained or left


def test_split_check_counts_readable_images(tmp_path):
    from dlab.experiments.exp09_cats_dogs import check_split, images_needed

    assert images_needed(0.2) == 3 and images_needed(0.1) == 6 and images_needed(0.49) == 2  # round(0.5) = 0
    check_split(tmp_path, {"cat": 3, "dog": 40}, 0.2)
    with pytest.raises(DataError, match="1 of 2 classes"):
        check_split(tmp_path, {"cat": 2, "dog": 40}, 0.2)


def test_digit_stand_in_is_named_and_written_as_a_folder(tmp_path):
    out = run_program(PROGRAMS["9.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu",
                      sets={"stand_in": "mnist"})
    meta = json.loads((out.folder / "metrics.json").read_text())
    assert "MNIST digit classes, 3 and 5" in meta["record"]["stand_in"]
    assert sorted(p.name for p in (out.folder / "image_folder").iterdir()) == ["five", "three"]
    assert len(list((out.folder / "image_folder" / "three").glob("*.png"))) == 60
    assert meta["metrics"]["class_counts"] == {"five": 60, "three": 60}
    assert any("flips are off" in n for n in meta["record"]["notes"])


def test_cifar10_cats_and_dogs_are_written_when_present(tmp_path):
    import pickle

    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                         b"labels": (np.arange(20) % 10).tolist()}, fh)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
             b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": names}, fh)
    out = run_program(PROGRAMS["9.2"], profile="smoke", out=tmp_path / "runs", quiet=True,
                      device="cpu", data_dir=tmp_path / "data")
    meta = json.loads((out.folder / "metrics.json").read_text())
    assert meta["record"]["stand_in"] is None
    assert meta["metrics"]["class_counts"] == {"cat": 12, "dog": 12}  # 2 of each per batch
    assert meta["metrics"]["channels"] == 3
    with Image.open(next((out.folder / "image_folder" / "cat").glob("*.png"))) as png:
        assert png.size == (32, 32) and png.mode == "RGB"


def test_nearest_mean_picks_the_closest_class_mean():
    from dlab.experiments.exp09_cats_dogs import nearest_mean

    x = torch.tensor([[0.0, 0.0], [0.2, 0.0], [5.0, 5.0], [5.2, 5.0]])
    y = np.array([0, 0, 1, 1])
    test = torch.tensor([[0.1, 0.3], [4.0, 4.5], [2.4, 2.4], [2.7, 2.7]])
    assert nearest_mean(x, y, test, 2).tolist() == [0, 1, 0, 1]


def test_folder_baseline_never_chooses_on_the_scored_images(tmp_path):
    from dlab.experiments import exp09_cats_dogs as e9
    from dlab.runs import RunContext

    calls = []
    real = e9.logistic_baseline

    def spy(x_fit, y_fit, x_val, y_val, x_test, seed, **kw):
        calls.append((len(x_fit), len(x_val), len(x_test)))
        return real(x_fit, y_fit, x_val, y_val, x_test, seed, **kw)

    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(100, 1, 4, 4)), dtype=torch.float32)
    y = torch.as_tensor(np.arange(100) % 2)
    x[y == 1] += 1.0
    sp = {"tr": np.arange(80), "va": np.arange(80, 100), "x": x, "y": y}
    ctx = RunContext(PROGRAMS["9.2"], None, tmp_path, profile="smoke", seed=0, device="cpu",
                     quiet=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(e9, "logistic_baseline", spy)
        out = e9.folder_baseline(ctx, sp)
    # C chosen on 16 of the 80 training images, refit on all 80, then the 20 scored
    assert calls == [(64, 16, 20), (80, 16, 20)]
    assert out["pred"].shape == (20,) and out["nearest_mean"].shape == (20,)
