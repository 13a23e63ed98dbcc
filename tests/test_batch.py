"""`dlab run ... --jobs N`: programs in parallel processes, the same numbers as one at a
time, one line per program when piped, bad input refused before anything starts."""

import json
import subprocess
import sys

import pytest

PROGRAMS = ["1.2", "3.2"]  # fast at smoke; 3.2 trains a torch network


def _run(out, jobs, *extra):
    return subprocess.run([sys.executable, "-m", "dlab", "run", *PROGRAMS, "--profile",
                           "smoke", "--out", str(out), "--jobs", str(jobs), *extra],
                          capture_output=True, text=True, timeout=300)


def _metrics(out, pid):
    (meta,) = (out / pid).glob("*/metrics.json")
    data = json.loads(meta.read_text())
    timing = ("seconds", "time", "per_s", "speed")
    return {k: v for k, v in data["metrics"].items() if not any(t in k for t in timing)}


@pytest.fixture(scope="module")
def serial_and_parallel(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    one, two = _run(root / "one", 1), _run(root / "two", 2)
    return root, one, two


def test_same_metrics_with_one_and_two_jobs(serial_and_parallel):
    root, one, two = serial_and_parallel
    assert one.returncode == 0, one.stdout + one.stderr
    assert two.returncode == 0, two.stdout + two.stderr
    for pid in PROGRAMS:
        a, b = _metrics(root / "one", pid), _metrics(root / "two", pid)
        assert a, pid
        assert a == b, (pid, {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)})


def test_piped_output_is_one_line_per_program(serial_and_parallel):
    root, _, two = serial_and_parallel
    lines = [ln for ln in two.stdout.splitlines() if ln.strip()]
    assert len(lines) == len(PROGRAMS) + 1, two.stdout  # one per program and the total
    assert sorted(ln.split()[0] for ln in lines[:-1]) == PROGRAMS
    assert all(" ok " in ln for ln in lines[:-1])
    assert lines[-1].startswith(f"{len(PROGRAMS)} programs in ")
    for pid in PROGRAMS:  # each program's epoch lines went to its log instead
        assert (root / "two" / "logs" / f"{pid}.log").read_text().strip()


def test_bad_setting_refused_before_any_process(tmp_path):
    proc = _run(tmp_path / "out", 2, "--set", "nonsense=1")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "nonsense" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_jobs_must_be_positive(tmp_path):
    proc = _run(tmp_path / "out", 0)
    assert proc.returncode == 2 and "--jobs" in proc.stderr


def test_resume_over_a_batch_decides_per_program(tmp_path):
    """`dlab run MANY --resume`: skip a run that finished at these settings, continue one
    that can be, start one where there is none; another process's live run is left."""
    import json

    from dlab.registry import PROGRAMS
    from dlab.running import batch_step, run_program
    from dlab.runs import RunLock

    p = PROGRAMS["5.2"]
    folder = run_program(p, profile="smoke", out=tmp_path, quiet=True, device="cpu").folder
    assert batch_step(tmp_path, p, "smoke", 0) == ("skip", folder)
    assert batch_step(tmp_path, p, "smoke", 1) == ("new", None)  # another seed
    assert batch_step(tmp_path, p, "quick", 0) == ("new", None)  # another profile
    assert batch_step(tmp_path, p, "smoke", 0, {"lr": "0.02"}) == ("new", None)
    meta = folder / "metrics.json"
    summary = json.loads(meta.read_text())
    meta.write_text(json.dumps({**summary, "status": "interrupted"}))
    assert batch_step(tmp_path, p, "smoke", 0) == ("resume", folder)
    meta.write_text(json.dumps({**summary, "status": "running"}))
    lock = RunLock(folder).acquire()
    try:
        assert batch_step(tmp_path, p, "smoke", 0) == ("busy", folder)
    finally:
        lock.release()
    assert batch_step(tmp_path, p, "smoke", 0) == ("resume", folder)  # its process is gone


def test_several_jobs_start_the_longest_known_programs_first(tmp_path):
    """With --jobs > 1 programs never run at the profile start first (in the given order),
    then the others by their newest finished run's time, longest first; failed runs and
    other profiles do not count."""
    from dlab.batch import earlier_seconds, longest_first
    from dlab.registry import PROGRAMS as REGISTRY

    def made(pid, name, seconds, status="ok", finished="2026-12-01T10:00:00+00:00"):
        folder = tmp_path / pid / name
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(
            {"status": status, "timings": {"seconds": seconds, "finished": finished}}))

    made("1.1", "20261201-100000-full-seed0", 5.0)
    made("1.2", "20261201-100000-full-seed0", 900.0, finished="2026-12-01T09:00:00+00:00")
    made("1.2", "20261201-110000-full-seed0", 50.0, finished="2026-12-01T11:00:00+00:00")
    made("2.1", "20261201-100000-full-seed0", 400.0, status="failed")
    made("2.2", "20261201-100000-quick-seed0", 999.0)
    made("3.1", "20261201-100000-full-seed0", 70.0)
    assert earlier_seconds(tmp_path, REGISTRY["1.2"], "full") == 50.0  # the newest run
    assert earlier_seconds(tmp_path, REGISTRY["2.1"], "full") is None  # failed
    assert earlier_seconds(tmp_path, REGISTRY["2.2"], "full") is None  # another profile
    order = longest_first([REGISTRY[i] for i in ("1.1", "1.2", "2.1", "2.2", "3.1")],
                          tmp_path, "full")
    assert [p.id for p in order] == ["2.1", "2.2", "3.1", "1.2", "1.1"]
