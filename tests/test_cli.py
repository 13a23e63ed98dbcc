import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch


def test_version(cli):
    from dlab import __version__

    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"dlab {__version__}"
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert project["project"]["version"] == __version__


def test_list_shows_every_program(cli):
    code, out, _ = cli("list")
    assert code == 0
    assert "16 experiments, 32 programs" in out
    for pid in ("1.1", "8.2", "16.2"):
        assert pid in out


def test_list_does_not_import_torch_and_starts_fast():
    code = ("import sys, time; t = time.perf_counter(); from dlab.cli import main; "
            "main(['list']); assert 'torch' not in sys.modules, 'torch imported'; "
            "print('elapsed', time.perf_counter() - t)")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        assert proc.returncode == 0, proc.stderr
    assert sorted(times)[1] < 3.0  # generous bound for a loaded CI machine


def test_python_dash_m_works():
    proc = subprocess.run([sys.executable, "-m", "dlab", "--version"], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("dlab ")


def test_show_program_and_settings(cli):
    code, out, _ = cli("show", "1.2")
    assert code == 0 and "Aim:" in out and "newton_steps" in out
    code, out, _ = cli("show", "exp01")
    assert "1.1" in out and "NAND" in out


def test_run_smoke_then_report(cli, tmp_path):
    code, out, _ = cli("run", "1", "--profile", "smoke", "--out", tmp_path, "--quiet")
    assert code == 0, out
    for pid in ("1.1", "1.2"):
        folders = list((tmp_path / pid).iterdir())
        assert len(folders) == 1
        meta = json.loads((folders[0] / "metrics.json").read_text())
        assert meta["status"] == "ok" and meta["profile"] == "smoke"
    code, out, _ = cli("report", tmp_path)  # only smoke runs: refused, one line
    assert code == 2 and "only smoke runs" in out + _
    code, out, _ = cli("report", tmp_path, "--allow-smoke")
    assert code == 0
    record = (tmp_path / "lab-record.md").read_text()
    assert (tmp_path / "lab-record.html").is_file()
    assert "2 of 32 programs have a run" in record
    assert record.count("| not run |") == 30
    assert "xor_single_unit_solutions = 0" in record
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", record)
    assert len(images) == 2
    for link in images:
        assert (tmp_path / link).is_file(), link


@pytest.fixture
def only_1_1_built(monkeypatch):
    """Pretend that every program but 1.1 is not built yet (its entry names nothing)."""
    import dataclasses

    from dlab import registry

    for pid, info in list(registry.PROGRAMS.items()):
        if pid != "1.1":
            module = info.entry.split(":")[0]
            monkeypatch.setitem(registry.PROGRAMS, pid,
                                dataclasses.replace(info, entry=f"{module}:NOT_BUILT"))


def test_run_all_skips_unbuilt_programs(cli, tmp_path, only_1_1_built):
    code, out, _ = cli("run", "all", "--profile", "smoke", "--out", tmp_path, "--quiet")
    assert code == 0
    assert out.count("skip ") == 31 and "skip 16.2 GAN study: not built yet" in out
    assert [p.name for p in tmp_path.iterdir()] == ["1.1"]
    code, out, _ = cli("list")
    assert "32 programs, 1 built" in out


def _one_line_error(cli, *args, match):
    code, out, err = cli(*args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlab: error:"), err
    assert match in lines[0], lines[0]
    assert "Traceback" not in err + out


def test_bad_inputs_exit_2_with_one_line(cli, tmp_path):
    out_dir = tmp_path / "runs"
    _one_line_error(cli, "run", "42", "--out", out_dir, match="unknown program id '42'")
    _one_line_error(cli, "run", "1.2", "--set", "newton_steps=0", "--out", out_dir,
                    match="newton_steps must be positive")
    _one_line_error(cli, "run", "1.2", "--set", "newton_steps=-3", "--out", out_dir,
                    match="newton_steps must be positive")
    _one_line_error(cli, "run", "1.2", "--set", "a=abc", "--out", out_dir,
                    match="expected float")
    _one_line_error(cli, "run", "1.1", "--set", "lr=0.1", "--out", out_dir,
                    match="no setting 'lr'")
    _one_line_error(cli, "run", "1.1", "--profile", "huge", "--out", out_dir,
                    match="unknown profile")
    _one_line_error(cli, "run", "1.1", "--seed", "-1", "--out", out_dir, match="--seed")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_error(cli, "run", "1.1", "--out", blocker / "sub", match="cannot write")
    if not torch.cuda.is_available():
        _one_line_error(cli, "run", "1.1", "--device", "cuda", "--out", out_dir,
                        match="no CUDA device")
    # nothing was written by any of the failed commands
    assert not out_dir.exists() or not any(out_dir.rglob("metrics.json"))


def test_unbuilt_program_exit_2(cli, tmp_path, only_1_1_built):
    _one_line_error(cli, "run", "12.2", "--out", tmp_path, match="not built yet")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_truncated_data_file_is_one_line(cli, tmp_path):
    from dlab.data.idx import write_idx

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    import numpy as np

    for name, shape in [("train-images-idx3-ubyte", (3, 28, 28)), ("train-labels-idx1-ubyte", (3,)),
                        ("t10k-images-idx3-ubyte", (2, 28, 28)), ("t10k-labels-idx1-ubyte", (2,))]:
        write_idx(raw / name, np.zeros(shape, dtype=np.uint8))
    data = (raw / "t10k-images-idx3-ubyte").read_bytes()
    (raw / "t10k-images-idx3-ubyte").write_bytes(data[:100])
    _one_line_error(cli, "data", "get", "mnist", "--data-dir", tmp_path,
                    match="truncated or corrupt")


def test_report_without_runs_is_an_error(cli, tmp_path):
    _one_line_error(cli, "report", tmp_path / "none", match="no runs folder")


def test_data_list(cli, tmp_path):
    code, out, _ = cli("data", "list", "--data-dir", tmp_path)
    assert code == 0 and "german-credit" in out and "auto-mpg" in out


def test_debug_shows_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.run([sys.executable, "-m", "dlab", "--debug", "run", "42"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize("args,match", [
    (["run"], "Missing argument 'ID...'"),
    (["run", "-1"], "No such option: -1"),
    (["run", "--seed", "abc", "1.1"], "Invalid value for '--seed'"),
    (["predict", "runs"], "Missing argument 'FILES...'"),
    (["run", "1.1", "--seed", "99999999999999999999"], "from 0 to 4294967295"),
    (["run", "1.1", "--out", ""], "--out is empty"),
    (["report", "runs", "--out="], "--out is empty"),
])
def test_usage_errors_are_one_line(cli, tmp_path, monkeypatch, args, match):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "30")  # a narrow terminal: still one line
    _one_line_error(cli, *args, match=match)
    assert list(tmp_path.iterdir()) == []


def test_data_dir_that_is_a_file_is_refused(cli, tmp_path, monkeypatch):
    blocker = tmp_path / "data"
    blocker.write_text("x")
    _one_line_error(cli, "run", "1.1", "--data-dir", blocker, "--out", tmp_path / "runs",
                    match="is a file, not a folder")
    monkeypatch.setenv("DLAB_DATA", str(blocker))
    _one_line_error(cli, "run", "1.1", "--out", tmp_path / "runs", match="DLAB_DATA")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_bad_input_creates_no_out_folder(cli, tmp_path):
    out_dir = tmp_path / "new" / "runs"
    _one_line_error(cli, "run", "4.1", "--set", "lr=nan", "--out", out_dir, match="finite")
    _one_line_error(cli, "run", "4.1", "--set", "hidden=1000000000", "--out", out_dir,
                    match="would build a layer")
    assert not (tmp_path / "new").exists()
