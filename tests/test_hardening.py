"""Bad input, fuzzed: every case ends with its exit status and one line on stderr, never a
traceback; a case that exits 2 writes nothing (not even an empty --out folder) and no
case leaves a temporary file behind.

Almost every case fails before any training, so the whole file runs in about a minute.
The explicit regression tests at the end cover code in checkpoints (--resume) and in
model files (predict), a write failure during a run, a second writer of one folder and
the --storage overwrite.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

# ------------------------------------------------------------------ the inputs


class _RunsCode:
    """A pickle that runs a command when loaded with weights_only=False."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _png(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose header declares width x height (grey, 8 bits); the pixel data may be
    anything: Pillow refuses a decompression bomb from the header alone."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", idat or zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def _idx(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.tobytes()


def _mnist_dir(root: Path, name: str, *, train=None, labels=None, test=None, test_labels=None,
               gz: dict[str, bytes] | None = None) -> None:
    raw = root / name / "MNIST" / "raw"
    raw.mkdir(parents=True)
    files = {
        "train-images-idx3-ubyte": train if train is not None else np.zeros((20, 28, 28), np.uint8),
        "train-labels-idx1-ubyte": labels if labels is not None else np.arange(20, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": test if test is not None else np.zeros((10, 28, 28), np.uint8),
        "t10k-labels-idx1-ubyte": test_labels if test_labels is not None else np.arange(10, dtype=np.uint8),
    }
    for fname, value in files.items():
        if gz and fname in gz:
            (raw / f"{fname}.gz").write_bytes(gz[fname])
        elif isinstance(value, Path):
            (raw / fname).mkdir()  # a folder where the file should be
        else:
            (raw / fname).write_bytes(value if isinstance(value, bytes) else _idx(value))


def _model_dir(root: Path, name: str, meta, weights: bytes | None = None, state=None) -> Path:
    import torch

    folder = root / "models" / name
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    if weights is not None:
        (folder / "model.pt").write_bytes(weights)
    elif state is not None:
        torch.save(state, folder / "model.pt")
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Every bad input the cases use, made once."""
    import torch

    from dlab.models.mlp import MLP
    from dlab.predict import classifier_metadata
    from dlab.registry import PROGRAMS
    from dlab.running import run_program

    root = tmp_path_factory.mktemp("inputs")
    (root / "file.txt").write_text("a text file, not a folder\n")
    (root / "empty.csv").write_text("")
    (root / "binary.csv").write_bytes(bytes(range(256)) * 4)

    # model folders for predict
    sizes = [784, 8, 10]
    good = classifier_metadata("mlp", {"sizes": sizes}, (28, 28), 1, [0.1], [0.3],
                               [str(i) for i in range(10)], "4.1", flatten=True)
    state = MLP(sizes=sizes).state_dict()
    _model_dir(root, "good", good, state=state)
    bad_meta = {
        "json_list": "[]", "json_object": "{}", "json_string": '"model"',
        "json_invalid": "{not json", "json_nan_size": {**good, "input": {**good["input"],
                                                                         "size": [28, None]}},
        "unknown_arch": {**good, "architecture": "transformer"},
        "kwargs_list": {**good, "kwargs": [784, 8, 10]},
        "kwargs_unknown": {**good, "kwargs": {"sizes": sizes, "colour": "red"}},
        "kwargs_huge": {**good, "kwargs": {"sizes": [784, 1_000_000_000, 10]}},
        "kwargs_negative": {**good, "kwargs": {"sizes": [784, -5, 10]}},
        "no_input": {k: v for k, v in good.items() if k != "input"},
        "size_huge": {**good, "input": {**good["input"], "size": [100000, 100000]}},
        "channels_two": {**good, "input": {**good["input"], "channels": 2}},
        "std_zero": {**good, "input": {**good["input"], "std": [0.0]}},
        "mean_text": {**good, "input": {**good["input"], "mean": ["a"]}},
        "classes_short": {**good, "classes": ["0", "1", "2"]},
        "classes_empty": {**good, "classes": []},
        "classes_text": {**good, "classes": "0123456789"},
        "task_regression": {**good, "task": "regression"},
    }
    for name, meta in bad_meta.items():
        _model_dir(root, name, meta, state=state)
    _model_dir(root, "pt_random", good, weights=np.random.default_rng(0).bytes(4096))
    _model_dir(root, "pt_empty", good, weights=b"")
    _model_dir(root, "pt_pickle", good,
               weights=pickle.dumps({"weight": _RunsCode(root / "PREDICT_RAN_CODE")}))
    _model_dir(root, "pt_wrong_shapes", good, state=MLP(sizes=[784, 16, 10]).state_dict())
    _model_dir(root, "pt_not_a_dict", good, state=[torch.zeros(3)])
    _model_dir(root, "no_model_pt", good)

    # image files for predict
    img = root / "img"
    img.mkdir()
    np.save(img / "ok.npy", np.zeros((2, 28, 28), np.uint8))
    (img / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (img / "empty.png").write_bytes(b"")
    (img / "bomb.png").write_bytes(_png(20000, 10000))
    (img / "zero_size.png").write_bytes(_png(0, 0))
    (img / "text.txt").write_text("hello")
    (img / "folder.png").mkdir()
    np.save(img / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(img / "five_dims.npy", np.zeros((1, 2, 28, 28, 1), np.uint8))
    np.save(img / "two_channels.npy", np.zeros((1, 28, 28, 2), np.uint8))
    np.save(img / "float_range.npy", np.full((1, 28, 28), 3.0, np.float32))
    np.save(img / "float_nan.npy", np.full((1, 28, 28), np.nan, np.float32))
    np.save(img / "no_images.npy", np.zeros((0, 28, 28), np.uint8))
    np.save(img / "int_range.npy", np.full((1, 28, 28), 300, np.int64))
    np.save(img / "complex.npy", np.zeros((1, 28, 28), np.complex64))
    np.save(img / "strings.npy", np.array([["a"] * 28] * 28))
    np.savez(img / "no_images.npz", pixels=np.zeros((1, 28, 28)))
    (img / "bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    (img / "bad.npy").write_bytes(b"\x93NUMPY garbage")

    # MNIST folders, each wrong in one way
    mn = root / "mnist"
    good_gz = gzip.compress(_idx(np.zeros((20, 28, 28), np.uint8)))
    _mnist_dir(mn, "corrupt_gz", gz={"train-images-idx3-ubyte": good_gz[:20] + b"\xff" * 40
                                     + good_gz[60:]})
    _mnist_dir(mn, "not_gzip", gz={"train-images-idx3-ubyte": b"plain bytes, not gzip"})
    _mnist_dir(mn, "label_10", labels=np.full(20, 10, np.uint8))
    _mnist_dir(mn, "label_255", test_labels=np.full(10, 255, np.uint8))
    _mnist_dir(mn, "zero_images", train=np.zeros((0, 28, 28), np.uint8),
               labels=np.zeros(0, np.uint8))
    _mnist_dir(mn, "length_mismatch", labels=np.zeros(7, np.uint8))
    _mnist_dir(mn, "truncated", train=_idx(np.zeros((20, 28, 28), np.uint8))[:500])
    _mnist_dir(mn, "bad_magic", train=b"\x01\x02\x03\x04" + b"\x00" * 100)
    _mnist_dir(mn, "images_2d", train=np.zeros((20, 784), np.uint8))
    _mnist_dir(mn, "labels_2d", labels=np.zeros((20, 1), np.uint8))
    _mnist_dir(mn, "float_images", train=_idx(np.zeros((20, 28, 28), ">f4"), 0x0D))
    _mnist_dir(mn, "huge_header", train=bytes([0, 0, 8, 3]) + b"\xff" * 12)
    _mnist_dir(mn, "folder_not_file", train=Path("unused"))

    # image folders for 9.2
    from PIL import Image

    pix = np.zeros((8, 8), np.uint8)
    (root / "imgs_one_class" / "cat").mkdir(parents=True)
    Image.fromarray(pix).save(root / "imgs_one_class" / "cat" / "a.png")
    for cls in ("cat", "dog"):
        (root / "imgs_empty_class" / cls).mkdir(parents=True)
        (root / "imgs_corrupt" / cls).mkdir(parents=True)
        (root / "imgs_corrupt" / cls / "a.png").write_bytes(b"not a png")
        (root / "imgs_bombs" / cls).mkdir(parents=True)
        (root / "imgs_bombs" / cls / "a.png").write_bytes(_png(20000, 10000))
    Image.fromarray(pix).save(root / "imgs_empty_class" / "cat" / "a.png")

    # runs folders for report: one real run, plus one odd metrics.json each
    real = run_program(PROGRAMS["1.1"], profile="smoke", out=root / "real", quiet=True,
                       device="cpu")
    odd = {
        "list": "[]", "empty_object": "{}", "string": '"ok"', "invalid": "{oops",
        "binary": b"\x00\xff\xfe garbage", "status_number": {"status": 5},
        "no_timings": {"status": "ok", "config": {}, "metrics": {}, "profile": "smoke",
                       "seed": 0, "device": "cpu"},
        "seed_text": "SEED", "targets_object": "TARGETS", "tables_text": "TABLES",
    }
    base = json.loads((real.folder / "metrics.json").read_text())
    for name, content in odd.items():
        runs = root / "runs" / name
        shutil.copytree(real.folder, runs / "1.1" / real.folder.name)
        if content == "SEED":
            content = {**base, "seed": "zero"}
        elif content == "TARGETS":
            content = {**base, "targets": {"a": 1}}
        elif content == "TABLES":
            content = {**base, "record": {**base["record"], "tables": "none"}}
        odd_meta = runs / "4.1" / "odd" / "metrics.json"
        odd_meta.parent.mkdir(parents=True)
        if isinstance(content, bytes):
            odd_meta.write_bytes(content)
        else:
            odd_meta.write_text(content if isinstance(content, str) else json.dumps(content))
    shutil.copytree(real.folder, root / "runs_ok" / "1.1" / real.folder.name)
    return root


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            st = p.lstat()
            out[str(p)] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


def _temporaries(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ the cases

OUT = ["--out", "{tmp}/runs"]
FLOATS = [("1.2", "a"), ("1.2", "b"), ("1.2", "c"), ("2.1", "lr"), ("2.2", "lr"),
          ("2.2", "test_fraction"), ("3.2", "lr"), ("4.1", "lr"), ("4.2", "val_fraction"),
          ("5.1", "bias_lr_demo"), ("5.2", "lr"), ("6.1", "test_fraction"), ("6.2", "lr"),
          ("7.1", "lr"), ("7.2", "lr"), ("8.2", "lr"), ("10.1", "noise"), ("10.2", "lr"),
          ("11.1", "lr"), ("11.2", "noise"), ("12.1", "lr"), ("13.1", "noise"),
          ("14.1", "lr"), ("16.1", "beta1")]
EMPTY_LISTS = [("2.2", "widths"), ("3.2", "widths"), ("4.1", "hidden"), ("5.1", "lrs"),
               ("6.1", "lrs"), ("6.2", "widths"), ("10.2", "lengths"), ("10.2", "cells"),
               ("16.1", "g_hidden")]

CASES: list[tuple[str, list[str], int]] = []


def case(name: str, args: list[str], code: int = 2) -> None:
    CASES.append((name, args, code))


# usage errors: one line instead of a box
case("run-no-id", ["run"])
case("run-negative-id", ["run", "-1"])
case("seed-text", ["run", "--seed", "abc", "1.1"])
case("seed-negative", ["run", "1.1", "--seed", "-1", *OUT])
case("seed-2**32", ["run", "1.1", "--seed", "4294967296", *OUT])
case("seed-overflow", ["run", "1.1", "--seed", "99999999999999999999", *OUT])
case("seed-float", ["run", "1.1", "--seed", "1e3", *OUT])
case("profile-unknown", ["run", "1.1", "--profile", "huge", *OUT])
case("profile-empty", ["run", "1.1", "--profile", "", *OUT])
case("device-unknown", ["run", "1.1", "--device", "tpu", *OUT])
for bad_id in ("42", "0", "4.9", "exp99", "", "1..1", "../1.1"):
    case(f"id-{bad_id or 'empty'}", ["run", bad_id, *OUT])
case("set-missing-value", ["run", "1.1", "--set"])
case("set-no-key", ["run", "1.1", "--set", "=3", *OUT])
case("set-no-equals", ["run", "1.1", "--set", "novalue", *OUT])
case("set-unknown", ["run", "1.1", "--set", "nosuch=1", *OUT])
case("show-unknown", ["show", "99"])
case("predict-no-files", ["predict", "{inp}/models/good"])
case("predict-nothing", ["predict"])
case("report-no-folder", ["report", "{tmp}/none"])
case("report-file-as-folder", ["report", "{inp}/file.txt"])
case("data-get-unknown", ["data", "get", "cifar"])
case("data-get-no-name", ["data", "get"])
case("command-unknown", ["frobnicate"])
case("option-unknown", ["run", "1.1", "--nosuch", *OUT])
case("list-option-unknown", ["list", "--bogus"])
case("study-unknown", ["study", "99", *OUT])
case("study-workers-0", ["study", "12.2", "--workers", "0", *OUT])
case("resume-nothing", ["run", "4.1", "--resume", *OUT])

# where output goes
case("out-empty", ["run", "1.1", "--out", ""])
case("out-equals-empty", ["run", "1.1", "--out="])
case("out-is-file", ["run", "1.1", "--out", "{inp}/file.txt"])
case("out-under-file", ["run", "1.1", "--out", "{inp}/file.txt/sub"])
case("out-proc", ["run", "1.1", "--out", "/proc/dlab-test"])
case("out-proc-deep", ["run", "1.1", "--out", "/proc/dlab-test/a/b"])
case("data-dir-file", ["run", "1.1", "--data-dir", "{inp}/file.txt", *OUT])
case("data-dir-empty", ["run", "1.1", "--data-dir", "", *OUT])
case("report-out-empty", ["report", "{inp}/runs_ok", "--out", "", "--allow-smoke"])
case("report-out-txt", ["report", "{inp}/runs_ok", "--out", "{tmp}/rec.txt", "--allow-smoke"])
case("report-out-proc", ["report", "{inp}/runs_ok", "--out", "/proc/rec.html", "--allow-smoke"])
case("report-out-under-file",
     ["report", "{inp}/runs_ok", "--out", "{inp}/file.txt/rec.html", "--allow-smoke"])
case("report-out-folder", ["report", "{inp}/runs_ok", "--out", "{inp}/runs_ok", "--allow-smoke"])
case("get-data-dir-file", ["data", "get", "mnist", "--data-dir", "{inp}/file.txt"])
case("get-data-dir-proc", ["data", "get", "mnist", "--data-dir", "/proc/dlab-test/data"])
case("list-data-dir-file", ["data", "list", "--data-dir", "{inp}/file.txt"])
case("study-out-empty", ["study", "12.2", "--out", ""])
case("study-storage-text-file", ["study", "12.2", "--profile", "smoke", "--storage",
                                 "sqlite:///{inp}/file.txt", *OUT])
case("study-storage-no-path", ["study", "12.2", "--profile", "smoke", "--storage",
                               "sqlite://", *OUT])

# settings: NaN and inf, empty lists, huge sizes, wrong types, non-positive
for pid, key in FLOATS:
    for value in ("nan", "inf", "-inf"):
        case(f"{pid}-{key}={value}", ["run", pid, "--set", f"{key}={value}", *OUT])
for pid, key in EMPTY_LISTS:
    case(f"{pid}-{key}-empty", ["run", pid, "--set", f"{key}=", *OUT])
for pid, setting in [("5.1", "lrs=0.1,nan"), ("6.1", "lrs=inf,0.1"), ("16.2", "lrs=nan"),
                     ("4.1", "hidden=1000000000"), ("4.1", "hidden=100000,100000"),
                     ("2.1", "hidden=1000000000"), ("12.1", "width=1000000000"),
                     ("13.1", "channels=100000000"), ("10.2", "hidden=1000000000"),
                     ("11.2", "hidden=10000000000"), ("1.2", "n_random=99999999999"),
                     ("4.1", "epochs=100000000"), ("4.1", "batch_size=99999999999"),
                     ("4.1", "epochs=abc"), ("4.1", "epochs=1.5"), ("4.1", "lr=abc"),
                     ("4.1", "epochs=0"), ("4.1", "epochs=-1"), ("4.1", "batch_size=0"),
                     ("4.1", "lr=0"), ("4.1", "lr=-0.1"), ("2.1", "hidden=0"),
                     ("10.1", "window=0"), ("1.2", "newton_steps=0")]:
    case(f"{pid}-{setting}", ["run", pid, "--set", setting, *OUT])

# data files
for name in ("corrupt_gz", "not_gzip", "label_10", "label_255", "zero_images",
             "length_mismatch", "truncated", "bad_magic", "images_2d", "labels_2d",
             "float_images", "huge_header", "folder_not_file"):
    case(f"get-mnist-{name}", ["data", "get", "mnist", "--data-dir", f"{{inp}}/mnist/{name}"])
for name in ("corrupt_gz", "label_10", "zero_images", "truncated"):
    case(f"run-4.1-mnist-{name}", ["run", "4.1", "--profile", "smoke", "--data-dir",
                                   f"{{inp}}/mnist/{name}", *OUT])
for name in ("file.txt", "no_such_folder", "imgs_one_class", "imgs_empty_class",
             "imgs_corrupt", "imgs_bombs"):
    case(f"run-9.2-{name}", ["run", "9.2", "--profile", "smoke", "--set",
                             f"data={{inp}}/{name}", *OUT])
for pid in ("3.2", "6.2"):
    for name in ("missing.csv", "empty.csv", "binary.csv"):
        case(f"run-{pid}-csv-{name}", ["run", pid, "--profile", "smoke", "--set",
                                       f"csv={{inp}}/{name}", *OUT])

# predict: malformed model folders, then bad image files
for name in ("json_list", "json_object", "json_string", "json_invalid", "json_nan_size",
             "unknown_arch", "kwargs_list", "kwargs_unknown", "kwargs_huge", "kwargs_negative",
             "no_input", "size_huge", "channels_two", "std_zero", "mean_text", "classes_short",
             "classes_empty", "classes_text", "task_regression", "pt_random", "pt_empty",
             "pt_pickle", "pt_wrong_shapes", "pt_not_a_dict", "no_model_pt"):
    case(f"predict-model-{name}", ["predict", f"{{inp}}/models/{name}", "{inp}/img/ok.npy"])
case("predict-model-file", ["predict", "{inp}/file.txt", "{inp}/img/ok.npy"])
case("predict-model-missing", ["predict", "{inp}/models/none", "{inp}/img/ok.npy"])
for name in ("bad.png", "empty.png", "bomb.png", "zero_size.png", "text.txt", "folder.png",
             "missing.png", "objects.npy", "five_dims.npy", "two_channels.npy",
             "float_range.npy", "float_nan.npy", "no_images.npy", "int_range.npy",
             "complex.npy", "strings.npy", "no_images.npz", "bad.npz", "bad.npy"):
    case(f"predict-image-{name}", ["predict", "{inp}/models/good", f"{{inp}}/img/{name}"])

# report: an odd metrics.json is skipped with one warning naming it (exit 0)
for name in ("list", "empty_object", "string", "invalid", "binary", "status_number",
             "no_timings", "seed_text", "targets_object", "tables_text"):
    case(f"report-odd-{name}", ["report", f"{{inp}}/runs/{name}", "--out", "{tmp}/rec.html",
                                "--allow-smoke"],
         code=0)


def test_enough_cases():
    assert len(CASES) >= 150
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("args,code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(args, code, inputs, tmp_path, monkeypatch, capsys):
    from dlab.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DLAB_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no user cache is touched
    argv = [a.format(inp=inputs, tmp=tmp_path) for a in args]
    before = _snapshot(tmp_path, inputs)
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert rc == code, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    if code == 2:
        assert lines[0].startswith("dlab: error: "), lines[0]
        assert _snapshot(tmp_path, inputs) == before  # nothing written, nothing created
    else:
        assert lines[0].startswith("dlab: warning: ") and "/4.1/odd/metrics.json" in lines[0]
        assert (tmp_path / "rec.html").is_file() and (tmp_path / "rec.md").is_file()
    assert not _temporaries(tmp_path, inputs)
    assert not (inputs / "PREDICT_RAN_CODE").exists()


# ------------------------------------------------------------- explicit regressions


def _interrupted_41(root: Path) -> Path:
    """A 4.1 run folder marked interrupted (as Ctrl-C leaves it), made without training."""
    from dlab import config as configs
    from dlab.registry import PROGRAMS

    impl = PROGRAMS["4.1"].load()
    cfg = configs.build(impl.config, impl.profiles, "smoke", {"train_limit": "200"}, "4.1")
    folder = root / "4.1" / "20260101-000000-smoke-seed0"
    folder.mkdir(parents=True)
    meta = {"program": "4.1", "title": "t", "status": "interrupted", "message": "",
            "profile": "smoke", "seed": 0, "device": "cpu", "command": "",
            "config": dataclasses.asdict(cfg), "metrics": {}, "targets": [],
            "timings": {"started": "2026-01-01T00:00:00+00:00", "seconds": 1.0}}
    (folder / "metrics.json").write_text(json.dumps(meta))
    return folder


def test_resume_never_runs_code_from_a_checkpoint(tmp_path, cli):
    folder = _interrupted_41(tmp_path / "runs")
    marker = tmp_path / "CODE_RAN"
    (folder / "checkpoint-mlp.pt").write_bytes(pickle.dumps({"model": _RunsCode(marker)}))
    before = (folder / "metrics.json").read_text()
    code, out, err = cli("run", "4.1", "--resume", "--out", tmp_path / "runs", "--device", "cpu",
                         "--quiet")
    assert not marker.exists()
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "checkpoint-mlp.pt: cannot resume" in err and "could run code" in err
    assert "Traceback" not in out + err
    assert (folder / "metrics.json").read_text() == before  # still resumable as it was
    assert not (folder / ".lock").exists()


def test_checkpoints_load_with_weights_only(tmp_path):
    import torch

    from dlab import running
    from dlab.training import load_checkpoint
    from toy_program import TOY_INFO

    outcome = running.run_program(TOY_INFO, out=tmp_path, quiet=True, device="cpu")
    ckpt = outcome.folder / "checkpoint-model.pt"
    state = torch.load(ckpt, weights_only=True)  # raises if anything but plain data
    assert state["epoch"] == 6 and isinstance(state["history_json"], str)
    assert load_checkpoint(ckpt)["history"][-1]["epoch"] == 6


def test_predict_refuses_a_model_file_that_runs_code(inputs, cli):
    code, out, err = cli("predict", inputs / "models" / "pt_pickle", inputs / "img" / "ok.npy")
    assert code == 2 and not (inputs / "PREDICT_RAN_CODE").exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0] and "could run code" in lines[0]


def test_predict_good_model_still_works(inputs, cli):
    code, out, err = cli("predict", inputs / "models" / "good", inputs / "img" / "ok.npy")
    assert code == 0, err
    assert out.splitlines()[0] == "file,index,predicted,probability" and len(out.splitlines()) == 3


def test_storage_never_overwrites_a_file(inputs, tmp_path, cli):
    target = tmp_path / "notes.txt"
    target.write_text("x")
    code, _, err = cli("study", "12.2", "--profile", "smoke", "--storage",
                       f"sqlite:///{target}", "--out", tmp_path / "runs")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert target.read_text() == "x"


def test_write_failure_mid_run_exits_1_and_marks_failed(tmp_path, cli, monkeypatch):
    import errno

    import dlab.io

    def full_disk(obj, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(dlab.io, "save_torch", full_disk)
    code, out, err = cli("run", "4.1", "--profile", "smoke", "--set", "train_limit=200",
                         "--out", tmp_path / "runs", "--device", "cpu", "--quiet")
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and "marked failed" in lines[0]
    assert "Traceback" not in out + err
    (folder,) = (tmp_path / "runs" / "4.1").iterdir()
    meta = json.loads((folder / "metrics.json").read_text())
    assert meta["status"] == "failed" and "No space left" in meta["message"]
    assert not _temporaries(tmp_path) and not (folder / ".lock").exists()


def test_a_locked_run_is_not_resumed_twice(tmp_path, cli):
    from dlab.runs import RunLock

    folder = _interrupted_41(tmp_path / "runs")
    meta = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").write_text(json.dumps({**meta, "status": "running"}))
    lock = RunLock(folder).acquire()  # as another process resuming it now
    try:
        code, _, err = cli("run", "4.1", "--resume", "--out", tmp_path / "runs")
        assert code == 2 and "still running" in err and f"pid {os.getpid()}" in err
    finally:
        lock.release()
    assert json.loads((folder / "metrics.json").read_text())["status"] == "running"


def test_unwritable_report_leaves_neither_page(inputs, tmp_path, monkeypatch, cli):
    import tempfile

    import dlab.report.lab as lab

    real_mkstemp = tempfile.mkstemp
    calls = []

    def second_fails(*args, **kwargs):  # the disk fills up after the Markdown page
        calls.append(kwargs.get("prefix"))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(lab.tempfile, "mkstemp", second_fails)
    code, _, err = cli("report", inputs / "runs_ok", "--out", tmp_path / "out" / "rec.html",
                       "--allow-smoke")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "No space left on device" in err and "nothing was written" in err
    assert not (tmp_path / "out").exists()  # neither page, nor the folder made for them


def test_markdown_record_escapes_user_text():
    from dlab.io import escape_markup
    from dlab.report.lab import _md_safe
    from dlab.report.record import to_markdown

    blocks = [("h", 2, "9.2 <b>", "p9-2"),
              ("table", ["class", "n"], [["<script>alert(1)</script>", 3]], "Counts & <i>"),
              ("fig", "9.2/run/a<b>.png", "caption <img>"), ("ul", ["cat & <dog>"]),
              ("raw", "<div>", "**ready-made**")]
    md = to_markdown(_md_safe(blocks))
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "Counts &amp; &lt;i&gt;" in md and "cat &amp; &lt;dog&gt;" in md
    assert "(9.2/run/a<b>.png)" in md and "**ready-made**" in md  # links and raw kept
    summary = {"record": {"figures": [{"file": "a<b>.png", "caption": "<x>"}]}, "seed": 1}
    assert escape_markup(summary) == {"record": {"figures": [{"file": "a<b>.png",
                                                              "caption": "&lt;x&gt;"}]},
                                      "seed": 1}
