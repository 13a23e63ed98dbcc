"""`dlab verify` reruns a run from its folder and catches every kind of edit."""

import json
import os

import pytest

from dlab.provenance import write_manifest
from dlab.registry import PROGRAMS
from dlab.running import run_program
from dlab.verify import CANNOT, DIFFERS, MODIFIED, VERIFIED, compare_metrics, verify_run


@pytest.fixture(scope="module")
def run_1_1(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return run_program(PROGRAMS["1.1"], profile="smoke", out=out, quiet=True, device="cpu").folder


def _edit(folder, change, manifest=False):
    saved = json.loads((folder / "metrics.json").read_text())
    change(saved)
    (folder / "metrics.json").write_text(json.dumps(saved))
    if manifest:  # a careful forger also rewrites the manifest
        write_manifest(folder)


def test_an_untouched_run_verifies_bit_for_bit(run_1_1, tmp_path, cli):
    v = verify_run(run_1_1, tmp_path / "scratch")
    assert v.status == VERIFIED and v.compared > 0 and v.exact == v.compared, v.details
    code, out, _ = cli("verify", str(run_1_1))
    assert code == 0 and "verified" in out and "1 verified of 1 runs" in out
    for where in (run_1_1.parent, run_1_1.parent.parent):  # runs/1.1/ and runs/
        code, out, _ = cli("verify", str(where))
        assert code == 0 and "1 verified of 1 runs (1 bit for bit in every number" in out


def test_edits_are_modified_forged_numbers_differ_other_code_cannot(run_1_1, tmp_path, cli):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_1_1, copy)
    key = next(k for k, v in json.loads((copy / "metrics.json").read_text())["metrics"].items()
               if isinstance(v, int) and not isinstance(v, bool))
    _edit(copy, lambda s: s["metrics"].update({key: s["metrics"][key] + 1}))
    v = verify_run(copy, tmp_path / "s1")
    assert v.status == MODIFIED and v.details == ["metrics.json changed"]
    code, out, _ = cli("verify", str(copy))
    assert code == 1 and "modified" in out

    _edit(copy, lambda s: None, manifest=True)  # manifest rewritten over the forged number
    v = verify_run(copy, tmp_path / "s2")
    assert v.status == DIFFERS and any(d.startswith(key) for d in v.details), v.details

    _edit(copy, lambda s: s["code"].update(source_sha256="0" * 64), manifest=True)
    v = verify_run(copy, tmp_path / "s3")
    assert v.status == CANNOT and "other code" in v.details[0]
    code, _, _ = cli("verify", str(copy))
    assert code == 2


def test_compare_metrics_tolerance_and_skipped_keys():
    rec = {"acc": 0.9, "n": 3, "seconds": 1.0, "sub": {"mse": 1.0, "time_per_epoch": 2.0}}
    same = {"acc": 0.9 + 1e-12, "n": 3, "seconds": 9.0, "sub": {"mse": 1.0,
                                                                 "time_per_epoch": 5.0}}
    diffs, compared, exact = compare_metrics(rec, same)
    assert diffs == [] and compared == 3 and exact == 2
    diffs, _, _ = compare_metrics(rec, {**same, "acc": 0.8})
    assert len(diffs) == 1 and diffs[0].startswith("acc recorded 0.9, rerun 0.8")
    diffs, _, _ = compare_metrics(rec, {k: v for k, v in same.items() if k != "n"})
    assert diffs == ["n recorded 3, not produced by the rerun"]


def test_nothing_to_verify_is_exit_2(tmp_path, cli):
    code, out, _ = cli("verify", str(tmp_path))
    assert code == 2 and "no run folders" in out


def test_the_rerun_uses_the_threads_the_run_recorded(tmp_path, monkeypatch):
    """`dlab run --jobs 2` runs each program on one thread; its rerun must too, or the
    order of sums changes and training carries the difference past the last digits."""
    import dlab.verify as verify

    monkeypatch.setenv("DLAB_THREADS", "1")
    folder = run_program(PROGRAMS["5.2"], profile="smoke", out=tmp_path / "runs", quiet=True,
                         device="cpu").folder
    assert json.loads((folder / "metrics.json").read_text())["threads"] == 1
    monkeypatch.setenv("DLAB_THREADS", "2")
    seen = []

    def spy(*args, **kwargs):
        import torch

        seen.append(os.environ["DLAB_THREADS"])
        outcome = run_program(*args, **kwargs)
        seen.append(torch.get_num_threads())
        return outcome

    monkeypatch.setattr(verify, "run_program", spy)
    v = verify_run(folder, tmp_path / "scratch")
    assert v.status == VERIFIED and seen == ["1", 1]
    assert os.environ["DLAB_THREADS"] == "2"  # the setting is put back
