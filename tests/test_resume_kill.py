"""kill -9 in the middle of training: the folder says "running", `report` lists it as
"did not finish", and `--resume` finishes it with the metrics of a run never stopped.
The run is a shortened full-profile run (the full profile's settings but 60 epochs on
1,000 of the bundled digits), the kind of long run a laptop must survive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = ["--profile", "full", "--seed", "3", "--device", "cpu", "--set", "epochs=60",
            "--set", "train_limit=1000", "--quiet"]


def _steady(metrics: dict) -> dict:
    """Metrics without the ones that measure time."""
    return {k: v for k, v in metrics.items() if "second" not in k and "per_s" not in k}


def _rows(path: Path) -> int:
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except OSError:
        return 0


def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path, cli, monkeypatch):
    # one thread in every run compared here (the killed one, the resumed one and the
    # uninterrupted one): sums over two threads can differ in their last bits
    monkeypatch.setenv("DLAB_THREADS", "1")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
           "DLAB_THREADS": "1"}
    cut = tmp_path / "cut"
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "dlab", "run", "4.1", *SETTINGS,
                                 "--out", str(cut)], env=env, stdout=subprocess.DEVNULL,
                                stderr=stderr)
    try:
        deadline = time.monotonic() + 240
        folder = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = list((cut / "4.1").glob("*/checkpoint-mlp.pt")) if cut.exists() else []
            if found and _rows(found[0].parent / "history.csv") >= 1:
                proc.send_signal(signal.SIGSTOP)  # frozen mid-training while we look
                folder = found[0].parent
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it was killed: {log.read_text()}"
        assert folder is not None, "no checkpoint in time"
        meta = json.loads((folder / "metrics.json").read_text())
        assert meta["status"] == "running" and str(proc.pid) in meta["message"]
        assert (folder / ".lock").read_text().startswith(f"pid {proc.pid} ")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _rows(folder / "history.csv")
    assert 1 <= killed_at < 60

    # what a killed run looks like: still "running", no live process, listed in the record
    assert json.loads((folder / "metrics.json").read_text())["status"] == "running"
    code, out, err = cli("report", cut, "--out", tmp_path / "before.html", "--allow-smoke")
    assert code == 0, err
    before = (tmp_path / "before.md").read_text()
    assert "did not finish" in before and "4.1" in before

    # --resume over a batch continues it in the same folder and starts what has no run
    # (4.2); a second time, both are skipped as finished, with --jobs as without
    code, out, err = cli("run", "4.1", "4.2", *SETTINGS, "--resume", "--out", cut)
    assert code == 0, err
    assert [p.name for p in (cut / "4.1").iterdir()] == [folder.name]
    assert len(list((cut / "4.2").glob("*/metrics.json"))) == 1
    for jobs in ([], ["--jobs", "2"]):
        code, out, err = cli("run", "4.1", "4.2", *SETTINGS, "--resume", "--out", cut, *jobs)
        assert code == 0, err
        assert out.count("already finished at these settings; not run again") == 2, out
    assert [p.name for p in (cut / "4.1").iterdir()] == [folder.name]
    assert len(list((cut / "4.2").glob("*/metrics.json"))) == 1
    resumed = json.loads((folder / "metrics.json").read_text())
    assert resumed["status"] == "ok"
    assert not (folder / ".lock").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporaries
    history = (folder / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    epochs = [int(r.split(",")[header.index("epoch")]) for r in history[1:]
              if r.split(",")[header.index("model")] == "mlp"]
    assert epochs == list(range(1, 61))

    # the same run never stopped
    code, out, err = cli("run", "4.1", *SETTINGS, "--out", tmp_path / "whole")
    assert code == 0, err
    (whole,) = (tmp_path / "whole" / "4.1").iterdir()
    uninterrupted = json.loads((whole / "metrics.json").read_text())
    assert _steady(resumed["metrics"]) == _steady(uninterrupted["metrics"])

    # and the record lists the finished run
    code, out, err = cli("report", cut, "--out", tmp_path / "after.html", "--allow-smoke")
    assert code == 0, err
    after = (tmp_path / "after.md").read_text()
    assert "did not finish" not in after
    summary = [line for line in after.splitlines() if line.startswith("| [4.1]")]
    assert summary and "| ok |" in summary[0], summary
