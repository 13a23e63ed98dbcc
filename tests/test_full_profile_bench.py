"""The arithmetic of bench/full_profile.py: the projection line and the model of
`--jobs N`, which the README's full-profile totals come from."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "full_profile.py"


@pytest.fixture(scope="module")
def fp():
    spec = importlib.util.spec_from_file_location("full_profile_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_line_through_two_bounded_runs(fp):
    assert fp.along_line(10.0, 15.0, 1, 5) == pytest.approx(30.0)
    assert fp.along_line(10.0, 15.0, 1, 1) == pytest.approx(10.0)
    assert fp.along_line(40.0, 50.0, 2, 10) == pytest.approx(120.0)


def test_projection_of_a_bounded_program_uses_its_full_epochs(fp):
    full = fp.full_settings("14.1")["epochs"]
    got = {"seconds": 100.0, "second": 150.0}
    assert fp.project("14.1", got, {"epochs": 1}) == pytest.approx(100 + 50 * (full - 1))


def test_batch_wall_fills_the_freest_slot_in_order(fp):
    # registry order leaves the long one for last; longest first packs the slots
    assert fp.batch_wall({"a": 10, "b": 10, "c": 20}, jobs=2, start=0) == 30
    assert fp.batch_wall({"c": 20, "a": 10, "b": 10}, jobs=2, start=0) == 20
    assert fp.batch_wall({"a": 10, "b": 10}, jobs=1, start=2) == 24


def test_study_parts_name_their_base_and_trial_count(fp):
    parts = fp.study_parts("15.2")
    assert [(base, sets["models"]) for base, sets, _ in parts] == [("15.1", "pixelcnn"),
                                                                    ("15.1", "pixelrnn")]
    assert all(n > 1 and int(sets["epochs"]) >= 1 for _, sets, n in parts)


@pytest.mark.parametrize("pid", ["13.2", "14.2", "15.2", "16.2"])
def test_fidelity_states_the_digits_a_full_trial_trains_on(fp, pid):
    from dlab.manual import fidelity

    data = next(a for a in fidelity(pid).aspects if a.name == "data")
    digits = {int(sets["n_train"]) for _, sets, _ in fp.study_parts(pid)}
    assert len(digits) == 1
    assert f"at full each trial trains on {digits.pop():,} of its training digits" in data.dlab


def _fake_runs(fp, monkeypatch, results):
    calls = []

    def run_once(pid, sets, out, timeout):
        calls.append(dict(sets))
        return results.pop(0)

    monkeypatch.setattr(fp, "run_once", run_once)
    return calls


def test_two_points_times_a_cold_first_run_again(fp, monkeypatch, tmp_path):
    ok = [{"status": "ok", "seconds": s} for s in (130.0, 27.0, 21.0)]
    calls = _fake_runs(fp, monkeypatch, ok)
    first, second = fp.two_points("16.1", {"epochs": 1}, {"epochs": 2}, tmp_path, 10)
    assert (first["seconds"], second["seconds"]) == (21.0, 27.0)
    assert calls == [{"epochs": 1}, {"epochs": 2}, {"epochs": 1}]


def test_two_points_keeps_a_warm_first_run_and_stops_after_a_failure(fp, monkeypatch,
                                                                     tmp_path):
    calls = _fake_runs(fp, monkeypatch, [{"status": "ok", "seconds": 20.0},
                                         {"status": "ok", "seconds": 25.0}])
    first, second = fp.two_points("13.1", {"epochs": 1}, {"epochs": 2}, tmp_path, 10)
    assert (first["seconds"], second["seconds"]) == (20.0, 25.0) and len(calls) == 2
    _fake_runs(fp, monkeypatch, [{"status": "killed after 10 s", "wall_s": 10.0}])
    first, second = fp.two_points("13.1", {"epochs": 1}, {"epochs": 2}, tmp_path, 10)
    assert first["status"].startswith("killed") and second is None
