import json
import math
import os

import pytest
import torch

from dlab import api, runs
from dlab import io as dio
from dlab.registry import PROGRAMS
from toy_program import TOY_INFO

REQUIRED = {"program", "title", "status", "message", "profile", "seed", "device", "command",
            "config", "versions", "timings", "metrics", "record"}


def test_atomic_write_replaces_whole_file_or_nothing(tmp_path):
    target = tmp_path / "f.txt"
    dio.atomic_write(target, "old")
    with pytest.raises(RuntimeError), dio.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]  # no temporary file left behind
    dio.atomic_write(target, b"new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any other file


def test_jsonable_handles_numpy_torch_and_nan():
    import numpy as np

    out = dio.to_jsonable({"a": np.float32(1.5), "b": torch.tensor(2), "c": [np.int64(3)],
                            "d": float("nan"), "e": np.arange(2)})
    assert out == {"a": 1.5, "b": 2, "c": [3], "d": "nan", "e": [0, 1]}
    json.dumps(out)


def test_run_folder_contents_and_schema(tmp_path):
    outcome = api.run_program(PROGRAMS["1.1"], profile="smoke", seed=3, out=tmp_path,
                               quiet=True, device="cpu")
    assert outcome.status == "ok"
    meta = json.loads((outcome.folder / "metrics.json").read_text())
    assert REQUIRED <= set(meta)
    assert meta["status"] == "ok" and meta["seed"] == 3 and meta["profile"] == "smoke"
    assert meta["config"] == {"n_inputs": 2, "max_weight": 1}
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["timings"]["seconds"] > 0
    assert meta["command"] == "dlab run 1.1 --profile smoke --seed 3"
    record = (outcome.folder / "record.md").read_text()
    for section in ("## Aim", "## Procedure", "## Data", "## Results",
                    "## Analysis and Inferences", "The manual's program"):
        assert section in record
    for fig in meta["record"]["figures"]:
        png = (outcome.folder / fig["file"]).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert outcome.folder.parent == tmp_path / "1.1"
    assert not [p for p in outcome.folder.iterdir() if p.name.endswith(".tmp")]


def test_same_seed_same_metrics_other_seed_differs(tmp_path):
    a = api.run_program(PROGRAMS["1.2"], profile="smoke", seed=5, out=tmp_path, quiet=True)
    b = api.run_program(PROGRAMS["1.2"], profile="smoke", seed=5, out=tmp_path, quiet=True)
    c = api.run_program(PROGRAMS["1.2"], profile="smoke", seed=6, out=tmp_path, quiet=True)
    assert a.folder != b.folder
    assert a.metrics == b.metrics
    assert a.metrics != c.metrics


def _toy(tmp_path, **sets):
    return api.run_program(TOY_INFO, profile="quick", seed=1, out=tmp_path, quiet=True,
                            device="cpu", sets={k: str(v) for k, v in sets.items()})


def test_training_is_deterministic_and_writes_history(tmp_path):
    a, b = _toy(tmp_path / "a"), _toy(tmp_path / "b")
    assert a.metrics == b.metrics
    lines = (a.folder / "history.csv").read_text().splitlines()
    assert lines[0].startswith("model,epoch,loss,val_loss,lr,seconds")
    assert "weight_norm" in lines[0] and len(lines) == 1 + 6
    state = torch.load(a.folder / "model.pt", weights_only=True)
    assert set(state) == {"0.weight", "0.bias", "3.weight", "3.bias"}


def test_nan_guard_marks_run_diverged(tmp_path):
    outcome = _toy(tmp_path, lr=1e12)
    assert outcome.status == "diverged"
    meta = json.loads((outcome.folder / "metrics.json").read_text())
    assert meta["status"] == "diverged"
    assert "epoch 1" in meta["message"] and "learning rate 1e+12" in meta["message"]
    assert "Status: diverged" in (outcome.folder / "record.md").read_text()


def test_ctrl_c_leaves_valid_folder_and_resume_matches_uninterrupted(tmp_path, monkeypatch):
    full = _toy(tmp_path / "full")
    monkeypatch.setenv("TOY_INTERRUPT_AT", "3")
    with pytest.raises(KeyboardInterrupt):
        _toy(tmp_path / "cut")
    monkeypatch.delenv("TOY_INTERRUPT_AT")
    folder = runs.latest_run(tmp_path / "cut", "0.1")
    meta = json.loads((folder / "metrics.json").read_text())
    assert meta["status"] == "interrupted" and "--resume" in meta["message"]
    assert (folder / "checkpoint-model.pt").exists()
    # the interrupted epoch's checkpoint was not written: resume starts after epoch 2
    resumed = api.run_program(TOY_INFO, out=tmp_path / "cut", quiet=True, resume=True,
                               device="cpu")
    assert resumed.folder == folder and resumed.status == "ok"
    assert resumed.metrics == full.metrics  # bit for bit, as if never interrupted
    rows = (folder / "history.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["1", "2", "3", "4", "5", "6"]


def test_resume_without_interrupted_run_is_an_error(tmp_path):
    from dlab.errors import UsageError

    with pytest.raises(UsageError, match="no interrupted run"):
        api.run_program(TOY_INFO, out=tmp_path, quiet=True, resume=True)


def test_early_stopping_restores_best_weights(tmp_path):
    outcome = _toy(tmp_path, epochs=40, lr=0.3, patience=2)
    hist = (outcome.folder / "history.csv").read_text().splitlines()
    header = hist[0].split(",")
    val = [float(r.split(",")[header.index("val_loss")]) for r in hist[1:]]
    assert len(val) < 40  # stopped early
    best = outcome.metrics["best_epoch"]
    assert val[best - 1] == min(val)
    assert math.isclose(outcome.metrics["val_loss"], val[-1])  # last row is the stop epoch


def test_bad_input_leaves_nothing(tmp_path):
    from dlab.errors import UsageError

    with pytest.raises(UsageError, match="epochs must be positive"):
        _toy(tmp_path, epochs=-2)
    assert not (tmp_path / "0.1").exists() or not any((tmp_path / "0.1").iterdir())


def test_device_resolution():
    from dlab.errors import DeviceError

    assert runs.resolve_device("cpu") == "cpu"
    assert runs.resolve_device("auto") in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA device"):
            runs.resolve_device("cuda")
