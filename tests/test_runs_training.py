import json
import math
import os

import pytest
import torch

from dlab import io as dio
from dlab import running, runs
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
    outcome = running.run_program(PROGRAMS["1.1"], profile="smoke", seed=3, out=tmp_path,
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
    a = running.run_program(PROGRAMS["1.2"], profile="smoke", seed=5, out=tmp_path, quiet=True)
    b = running.run_program(PROGRAMS["1.2"], profile="smoke", seed=5, out=tmp_path, quiet=True)
    c = running.run_program(PROGRAMS["1.2"], profile="smoke", seed=6, out=tmp_path, quiet=True)
    assert a.folder != b.folder
    assert a.metrics == b.metrics
    assert a.metrics != c.metrics


def _toy(tmp_path, **sets):
    return running.run_program(TOY_INFO, profile="quick", seed=1, out=tmp_path, quiet=True,
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
    resumed = running.run_program(TOY_INFO, out=tmp_path / "cut", quiet=True, resume=True,
                               device="cpu")
    assert resumed.folder == folder and resumed.status == "ok"
    assert resumed.metrics == full.metrics  # bit for bit, as if never interrupted
    rows = (folder / "history.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["1", "2", "3", "4", "5", "6"]


def test_resume_without_interrupted_run_is_an_error(tmp_path):
    from dlab.errors import UsageError

    with pytest.raises(UsageError, match="no interrupted run"):
        running.run_program(TOY_INFO, out=tmp_path, quiet=True, resume=True)


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


# ----------------------------------------------------------------- hardening


def test_check_writable_creates_nothing(tmp_path):
    from dlab.errors import UsageError

    target = tmp_path / "a" / "b" / "runs"
    assert runs.check_writable(target) == target
    assert list(tmp_path.iterdir()) == []  # the probe's folders are gone again
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="exists and is not a folder"):
        runs.check_writable(tmp_path / "file")
    with pytest.raises(UsageError, match="cannot write"):
        runs.check_writable(tmp_path / "file" / "sub")
    with pytest.raises(UsageError, match="--out is empty"):
        runs.check_writable("")


PEEK = '''
import json
from toy_program import TOY, ToyConfig, run_toy
from dlab.registry import Implementation

SEEN = {}

def run(cfg, ctx):
    SEEN["meta"] = json.loads((ctx.folder / "metrics.json").read_text())
    SEEN["lock"] = (ctx.folder / ".lock").read_text()
    run_toy(cfg, ctx)

PEEK = Implementation(config=ToyConfig, run=run, profiles=TOY.profiles)
'''


def test_metrics_say_running_under_a_lock_while_the_program_runs(tmp_path, monkeypatch):
    import importlib

    from dlab.registry import ProgramInfo

    (tmp_path / "peek_program.py").write_text(PEEK)
    monkeypatch.syspath_prepend(str(tmp_path))
    info = ProgramInfo(id="0.1", title="Toy", aim="a", entry="peek_program:PEEK")
    outcome = running.run_program(info, out=tmp_path / "runs", quiet=True, device="cpu")
    seen = importlib.import_module("peek_program").SEEN
    assert seen["meta"]["status"] == "running" and seen["meta"]["config"]["epochs"] == 6
    assert seen["lock"].startswith(f"pid {os.getpid()} ")
    assert outcome.status == "ok" and not (outcome.folder / ".lock").exists()
    assert runs.is_locked(outcome.folder) is False


def test_lock_is_exclusive_and_released(tmp_path):
    from dlab.errors import UsageError

    first = runs.RunLock(tmp_path).acquire()
    assert runs.is_locked(tmp_path)
    with pytest.raises(UsageError, match=f"in use by another dlab process .pid {os.getpid()}"):
        runs.RunLock(tmp_path).acquire()
    first.release()
    assert not runs.is_locked(tmp_path) and not (tmp_path / ".lock").exists()
    runs.RunLock(tmp_path).acquire().release()


def test_latest_run_skips_odd_summaries_and_names_them(tmp_path):
    good = _toy(tmp_path)
    for name, text in (("a", "[]"), ("b", "{}"), ("c", '{"status": "ok"}'), ("d", "{oops")):
        (tmp_path / "0.1" / name).mkdir()
        (tmp_path / "0.1" / name / "metrics.json").write_text(text)
    warnings = []
    assert runs.latest_run(tmp_path, "0.1", warn=warnings.append) == good.folder
    assert len(warnings) == 4 and all("skipped" in w for w in warnings)
    assert any("/a/metrics.json: skipped: holds a JSON list" in w for w in warnings)


@pytest.mark.parametrize("sets,match", [
    ({"lr": "nan"}, "lr must be a finite number, got nan"),
    ({"lr": "inf"}, "lr must be a finite number, got inf"),
    ({"lr": "-inf"}, "lr must be a finite number"),
    ({"epochs": "100000000"}, "epochs=100000000 is too large"),
])
def test_settings_refused_before_anything_is_written(tmp_path, sets, match):
    from dlab.errors import UsageError

    with pytest.raises(UsageError, match=match):
        running.run_program(TOY_INFO, out=tmp_path / "runs", quiet=True, sets=sets)
    assert not (tmp_path / "runs").exists()


def test_config_check_nan_empty_widths_and_seeds():
    from dataclasses import dataclass, field

    from dlab import config as configs
    from dlab.errors import UsageError

    @dataclass
    class Cfg:
        hidden: tuple[int, ...] = (128, 64)
        lrs: tuple[float, ...] = (0.1,)
        width: int = 16
        classifier_seed: int = 0
        gap: float = 1.0
        skip: list[int] = field(default_factory=list)
        empty_ok = ("skip",)
        nonfinite_ok = ("gap",)

    configs.check(Cfg())
    configs.check(Cfg(gap=float("inf")))  # the program says so
    with pytest.raises(UsageError, match="lrs must be a finite number"):
        configs.check(Cfg(lrs=(0.1, float("nan"))))
    with pytest.raises(UsageError, match="hidden is empty; give at least one value, e.g. "
                                          "--set hidden=128,64"):
        configs.check(Cfg(hidden=()))
    with pytest.raises(UsageError, match="hidden=.20000, 20000. would build a layer"):
        configs.check(Cfg(hidden=(20000, 20000)))
    with pytest.raises(UsageError, match="width=1000000 would build a layer"):
        configs.check(Cfg(width=1_000_000))
    configs.check(Cfg(width=16384))  # wide, but within reach of a laptop
    with pytest.raises(UsageError, match="classifier_seed"):
        configs.check(Cfg(classifier_seed=2**40))
    with pytest.raises(UsageError, match="from 0 to 4294967295"):
        configs.check_seed(99999999999999999999)


def test_resume_restores_its_folder_when_the_checkpoint_is_refused(tmp_path):
    import pickle

    from dlab.errors import DataError

    with pytest.raises(KeyboardInterrupt):
        os.environ["TOY_INTERRUPT_AT"] = "3"
        try:
            _toy(tmp_path)
        finally:
            del os.environ["TOY_INTERRUPT_AT"]
    folder = runs.latest_run(tmp_path, "0.1")
    before = (folder / "metrics.json").read_text()
    (folder / "checkpoint-model.pt").write_bytes(pickle.dumps({"model": print}))
    with pytest.raises(DataError, match="cannot resume from this checkpoint"):
        running.run_program(TOY_INFO, out=tmp_path, quiet=True, resume=True, device="cpu")
    assert (folder / "metrics.json").read_text() == before
    assert not (folder / ".lock").exists()


def test_threads_one_for_the_measured_small_programs_every_core_otherwise(monkeypatch):
    from dlab.registry import PROGRAMS
    from dlab.runs import ONE_THREAD, cpu_count, threads

    assert ONE_THREAD <= set(PROGRAMS)
    monkeypatch.delenv("DLAB_THREADS", raising=False)
    assert threads("10.2") == 1 and threads("4.1") == 1
    assert threads("8.2") == cpu_count() and threads() == cpu_count()
    monkeypatch.setenv("DLAB_THREADS", "3")  # the user's choice wins
    assert threads("10.2") == 3 and threads("8.2") == 3


def test_import_dlab_sets_the_passive_wait_policy_unless_the_user_chose_one():
    import os
    import subprocess
    import sys

    code = "import os, dlab; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "PASSIVE", out.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "ACTIVE", out.stderr
