import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dlab.data.mnist import load_bundled_mnist
from dlab.errors import DataError, UsageError
from dlab.models.cnn import AnySizeCNN
from dlab.predict import classifier_metadata, format_csv, predict_files
from dlab.registry import PROGRAMS
from dlab.running import run_program


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = run_program(PROGRAMS["4.1"], profile="smoke", out=tmp_path_factory.mktemp("runs"),
                      quiet=True, device="cpu", sets={"source": "bundled"})
    assert out.status == "ok"
    return out


def test_predict_reproduces_the_runs_test_accuracy(mlp_run, tmp_path):
    digits = load_bundled_mnist()
    np.savez(tmp_path / "test.npz", images=digits.x_test)
    warnings = []
    rows = predict_files(mlp_run.folder, [tmp_path / "test.npz"], warn=warnings.append)
    assert [r["index"] for r in rows] == list(range(1000)) and not warnings
    acc = np.mean([r["predicted"] == y for r, y in zip(rows, digits.y_test, strict=True)])
    assert acc == pytest.approx(mlp_run.metrics["test_accuracy"], abs=1e-6)
    assert all(0.1 <= r["probability"] <= 1.0 for r in rows)

    # the same digits as PNG files, as float 0-1 arrays, and with class names
    for i in range(3):
        Image.fromarray(digits.x_test[i]).save(tmp_path / f"d{i}.png")
    np.save(tmp_path / "float.npy", digits.x_test[:3].astype(np.float32) / 255)
    png = predict_files(mlp_run.folder, [tmp_path / f"d{i}.png" for i in range(3)])
    flt = predict_files(mlp_run.folder, [tmp_path / "float.npy"])
    for a, b, c in zip(rows[:3], png, flt, strict=True):
        assert a["predicted"] == b["predicted"] == c["predicted"]
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-6)
        assert a["probability"] == pytest.approx(c["probability"], abs=1e-5)
    named = predict_files(mlp_run.folder, [tmp_path / "d0.png"], labels=True)
    assert named[0]["predicted"] == str(rows[0]["predicted"])
    assert png[1]["file"] == str(tmp_path / "d1.png") and png[1]["index"] == 0


def test_other_sizes_are_resized_with_one_warning(mlp_run, tmp_path):
    big = np.zeros((2, 40, 40, 3), np.uint8)
    big[:, 10:30, 18:22] = 255
    np.save(tmp_path / "big.npy", big)
    warnings = []
    rows = predict_files(mlp_run.folder, [tmp_path / "big.npy"], warn=warnings.append)
    assert len(rows) == 2 and len(warnings) == 1 and "40x40" in warnings[0]
    assert "28x28" in warnings[0]


def test_csv_format():
    text = format_csv([{"file": "a,b.png", "index": 0, "predicted": 7, "probability": 0.5},
                       {"file": "c.npy", "index": 3, "predicted": "cat", "probability": 1 / 3}])
    assert text.splitlines()[0] == "file,index,predicted,probability"
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ["a,b.png", "0", "7", "0.500000"]
    assert rows[2] == ["c.npy", "3", "cat", "0.333333"]


def _folder_run(tmp_path):
    """A trained image-folder classifier's run folder, made by hand (no training)."""
    net = AnySizeCNN(8, 1, 2)
    folder = tmp_path / "run"
    folder.mkdir()
    torch.save(net.state_dict(), folder / "model.pt")
    meta = classifier_metadata("anysize_cnn", {"input_size": 8, "in_channels": 1,
                                               "n_classes": 2}, (8, 8), 1, [0.5], [0.25],
                               ["cat", "dog"], "9.2")
    (folder / "model.json").write_text(json.dumps(meta))
    return folder, net


def test_predict_matches_the_model_on_prepared_input(tmp_path):
    folder, net = _folder_run(tmp_path)
    x = np.random.default_rng(0).integers(0, 256, (5, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    rows = predict_files(folder, [tmp_path / "x.npy"], labels=True)
    t = (torch.from_numpy(x).float()[:, None] / 255 - 0.5) / 0.25    # (5, 1, 8, 8)
    with torch.no_grad():
        p = torch.softmax(net.eval()(t), -1)
    assert [r["predicted"] for r in rows] == [["cat", "dog"][k] for k in p.argmax(-1).tolist()]
    assert [r["probability"] for r in rows] == pytest.approx(p.max(-1).values.tolist(), abs=1e-6)


def test_predict_errors(tmp_path):
    folder, _ = _folder_run(tmp_path)
    good = tmp_path / "ok.npy"
    np.save(good, np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(UsageError, match="no such run folder"):
        predict_files(tmp_path / "nope", [good])
    with pytest.raises(UsageError, match="not the run folder of a trained model"):
        predict_files(tmp_path, [good])
    reg = tmp_path / "regression"
    reg.mkdir()
    (reg / "model.pt").write_bytes(b"")
    (reg / "model.json").write_text(json.dumps({"task": "regression", "program": "3.2"}))
    with pytest.raises(UsageError, match="not a classifier"):
        predict_files(reg, [good])
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match="bad.png: not a readable image"):
        predict_files(folder, [bad_png])
    np.save(tmp_path / "shape.npy", np.zeros((2, 8, 8, 2), np.uint8))
    with pytest.raises(DataError, match=r"shape.npy: expected images shaped"):
        predict_files(folder, [tmp_path / "shape.npy"])
    np.save(tmp_path / "range.npy", np.full((1, 8, 8), 3.0, np.float32))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        predict_files(folder, [tmp_path / "range.npy"])
    np.savez(tmp_path / "noimg.npz", pixels=np.zeros((1, 8, 8)))
    with pytest.raises(DataError, match="no array named 'images'"):
        predict_files(folder, [tmp_path / "noimg.npz"])
    with pytest.raises(DataError, match="no such file"):
        predict_files(folder, [tmp_path / "missing.png"])
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DataError, match="unsupported file type"):
        predict_files(folder, [tmp_path / "x.txt"])
    with pytest.raises(UsageError, match="at least one"):
        predict_files(folder, [])


def test_round_trip_through_an_image_folder_run(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "pets"
    for cls, level in (("cat", 60), ("dog", 190)):
        (root / cls).mkdir(parents=True)
        for i in range(15):
            img = np.clip(rng.normal(level, 40, (14, 18, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / cls / f"{i}.png")
    out = run_program(PROGRAMS["9.2"], profile="smoke", out=tmp_path / "runs", quiet=True,
                      device="cpu", sets={"data": str(root)})
    saved = list(csv.DictReader((out.folder / "val_predictions.csv").read_text().split("\n")))
    warnings = []
    rows = predict_files(out.folder, [r["file"] for r in saved], warn=warnings.append)
    assert [r["predicted"] for r in rows] == [int(s["predicted"]) for s in saved]
    assert [r["probability"] for r in rows] == pytest.approx(
        [float(s["probability"]) for s in saved], abs=1e-5)
    assert not warnings  # 14x18 files: the size the run was trained from


def test_cli_predict_prints_csv_and_rejects_bad_input(mlp_run, tmp_path, cli):
    digits = load_bundled_mnist()
    np.save(tmp_path / "few.npy", digits.x_test[:4])
    code, out, err = cli("predict", mlp_run.folder, tmp_path / "few.npy")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["file", "index", "predicted", "probability"]
    expected = predict_files(mlp_run.folder, [tmp_path / "few.npy"])
    assert [int(r["predicted"]) for r in rows] == [r["predicted"] for r in expected]
    code, out, err = cli("predict", mlp_run.folder, tmp_path / "missing.png")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _copy_run(src, dst, meta=None, weights=None):
    import shutil

    shutil.copytree(src, dst)
    if meta is not None:
        (dst / "model.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    if weights is not None:
        (dst / "model.pt").write_bytes(weights)
    return dst


def test_malformed_model_folders_are_one_data_error_each(mlp_run, tmp_path):
    import pickle

    good = json.loads((mlp_run.folder / "model.json").read_text())
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28), np.uint8))
    cases = {
        "list": ("[]", None, "holds a JSON list, not a model description"),
        "no_input": ({k: v for k, v in good.items() if k != "input"}, None, "no 'input' object"),
        "unknown_kwarg": ({**good, "kwargs": {**good["kwargs"], "colour": 1}}, None,
                          "its kwargs do not build a mlp"),
        "huge": ({**good, "kwargs": {**good["kwargs"], "sizes": [784, 10**9, 10]}}, None,
                 "describes a model of 795,000,000,010 parameters"),
        "short_classes": ({**good, "classes": ["0", "1"]}, None,
                          "lists 2 classes but the model has 10 outputs"),
        "random_bytes": (None, b"\x80\x02" + bytes(range(2, 256)) * 8,
                         "model.pt: (not a saved model|refused)"),
        "text": (None, b"hello, not a model", "model.pt: (not a saved model|refused)"),
        "code": (None, pickle.dumps({"w": print}), "refused: not a file of plain tensors"),
    }
    for name, (meta, weights, match) in cases.items():
        folder = _copy_run(mlp_run.folder, tmp_path / name, meta, weights)
        with pytest.raises(DataError, match=match) as info:
            predict_files(folder, [tmp_path / "x.npy"])
        assert "\n" not in str(info.value)
