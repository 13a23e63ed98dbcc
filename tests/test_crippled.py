"""A target worth having is missed by a run that learned almost nothing.

Every program declares, on its Implementation, settings that cripple it at the quick
profile (one epoch, a few hundred examples) or why no such run exists. Each crippled
run must end with at least one target missed or not shown: a target that such a run
still meets does not show that the program learned.
"""

import json

import pytest
import torch

from dlab import running, runs
from dlab.registry import PROGRAMS
from dlab.verdicts import overall

BUILT = [pid for pid, p in PROGRAMS.items() if p.implemented]


@pytest.mark.parametrize("pid", BUILT)
def test_every_program_declares_a_crippled_run(pid):
    crippled = PROGRAMS[pid].load().crippled
    assert isinstance(crippled, dict | str) and crippled, (
        f"{pid}: declare crippled settings, or why nothing can be crippled")
    if isinstance(crippled, dict):
        assert PROGRAMS[pid].load().targets, f"{pid}: a crippled run needs a target to miss"


def _crippled() -> list[str]:
    return [pid for pid in BUILT if isinstance(PROGRAMS[pid].load().crippled, dict)]


@pytest.fixture
def one_thread(monkeypatch):
    threads = torch.get_num_threads()
    monkeypatch.setattr(runs, "cpu_count", lambda: 1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("pid", _crippled())
def test_crippled_run_misses_a_target(pid, tmp_path, one_thread):
    sets = {k: str(v) for k, v in PROGRAMS[pid].load().crippled.items()}
    out = running.run_program(PROGRAMS[pid], profile="quick", out=tmp_path, quiet=True,
                              device="cpu", sets=sets)
    info = json.loads((out.folder / "metrics.json").read_text())
    assert info["status"] == "ok", info.get("message")
    met = [t["rule"] for t in info["targets"] if t["met"] is True]
    assert overall(info["targets"]) == "missed", (
        f"{pid} crippled with {sets} still meets every target: {met}")
