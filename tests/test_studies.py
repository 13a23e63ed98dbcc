"""Hyperparameter studies: plans, trials as full runs, failures, reruns, workers, storages."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from dlab import studies
from dlab.errors import UsageError
from dlab.registry import Implementation, ProgramInfo
from dlab.running import run_program
from dlab.studies import plan as study_plan
from dlab.studies import results as study_results
from dlab.studies import workers as study_workers
from toy_program import TOY_INFO

# ------------------------------------------------------------ programs for the tests


@dataclass
class ToyStudyConfig(studies.StudySettings):
    lrs: tuple[float, ...] = (0.05, 0.1, 1e12)  # 1e12 diverges
    batch_sizes: tuple[int, ...] = (16, 0)  # 0 is rejected by the config check


def toy_study(cfg: ToyStudyConfig) -> studies.Study:
    return studies.Study(program=TOY_INFO, base_profile="smoke", base={"epochs": 2},
                         space={"lr": cfg.lrs, "batch_size": cfg.batch_sizes},
                         metric="val_loss", mode=cfg.mode, n_trials=cfg.n_trials,
                         report=("weight_sum",))


def run_toy_study(cfg: ToyStudyConfig, ctx) -> None:
    result = studies.execute(toy_study(cfg), ctx, workers=cfg.workers,
                             storage=cfg.storage or None)
    studies.record(result, ctx)


TOY_STUDY = Implementation(config=ToyStudyConfig, run=run_toy_study)
TOY_STUDY_INFO = ProgramInfo(id="0.2", title="Toy study", aim="Test studies.",
                             entry="test_studies:TOY_STUDY")


@dataclass
class BarrierConfig:
    x: float = 0.0  # the varied setting; the metric is x^2
    rendezvous: str = ""  # folder where each process leaves its pid
    parties: int = 2  # processes that must arrive before any trial may finish
    wait_s: float = 180.0  # give up after this long
    release: str = ""  # a file: trials hold (after the rendezvous) until it exists
    held: float = -1.0  # the x that holds for `release`; negative: every x


def _wait_until(ready, what: str, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} never happened")
        time.sleep(0.02)


def run_barrier(cfg: BarrierConfig, ctx) -> None:
    """Finishes only once `parties` different processes have started a trial: a study
    run by one process cannot complete it, one run by two workers at once can. With
    `release`, the trial then holds until that file exists (the test decides when)."""
    folder = Path(cfg.rendezvous)
    (folder / str(os.getpid())).touch()
    _wait_until(lambda: len(list(folder.iterdir())) >= cfg.parties,
                "every worker starting a trial", cfg.wait_s)
    if cfg.release and (cfg.held < 0 or cfg.x == cfg.held):
        (folder.parent / f"holding-{cfg.x}-{os.getpid()}").touch()
        _wait_until(Path(cfg.release).exists, "the release", cfg.wait_s)
    ctx.metrics["value"] = cfg.x ** 2
    ctx.metrics["test_value"] = -cfg.x  # reported beside the objective, never chosen on
    ctx.metrics["pid"] = os.getpid()


BARRIER = Implementation(config=BarrierConfig, run=run_barrier)
BARRIER_INFO = ProgramInfo(id="0.3", title="Barrier", aim="Prove concurrency.",
                           entry="test_studies:BARRIER")


@dataclass
class BarrierStudyConfig(studies.StudySettings):
    rendezvous: str = ""
    parties: int = 2
    release: str = ""
    held: float = -1.0
    xs: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0)


def run_barrier_study(cfg: BarrierStudyConfig, ctx) -> None:
    study = studies.Study(program=BARRIER_INFO, base_profile="quick",
                          base={"rendezvous": cfg.rendezvous, "parties": cfg.parties,
                                "release": cfg.release, "held": cfg.held},
                          space={"x": cfg.xs}, metric="value", mode="grid",
                          report=("pid", "test_value"))
    studies.record(studies.execute(study, ctx, workers=cfg.workers,
                                   storage=cfg.storage or None), ctx)


BARRIER_STUDY = Implementation(config=BarrierStudyConfig, run=run_barrier_study)
BARRIER_STUDY_INFO = ProgramInfo(id="0.4", title="Barrier study", aim="Prove concurrency.",
                                 entry="test_studies:BARRIER_STUDY")


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------- plans


def test_plans_one_at_a_time_and_grid():
    space = {"lr": (0.05, 0.1, 0.2), "batch_size": (8, 16, 32)}
    oaat = studies.make_plan(studies.Study(program=TOY_INFO, space=space, metric="val_loss"), 0)
    # the base (lr 0.05, batch 16 from the toy's defaults) once, then one change at a time
    assert oaat.base_params == {"lr": 0.05, "batch_size": 16}
    assert [(p.varied, p.params) for p in oaat.points] == [
        ("base", {"lr": 0.05, "batch_size": 16}),
        ("lr", {"lr": 0.1, "batch_size": 16}), ("lr", {"lr": 0.2, "batch_size": 16}),
        ("batch_size", {"lr": 0.05, "batch_size": 8}),
        ("batch_size", {"lr": 0.05, "batch_size": 32})]
    grid = studies.make_plan(studies.Study(program=TOY_INFO, space=space, metric="val_loss",
                                           mode="grid"), 0)
    assert len(grid.points) == 9
    assert {tuple(sorted(p.params.items())) for p in grid.points} == {
        (("batch_size", b), ("lr", lr)) for lr in space["lr"] for b in space["batch_size"]}
    # the key names the study's results: same plan and seed, same key
    again = studies.make_plan(studies.Study(program=TOY_INFO, space=space, metric="val_loss"), 0)
    assert again.key == oaat.key
    assert studies.make_plan(studies.Study(program=TOY_INFO, space=space,
                                           metric="val_loss"), 1).key != oaat.key
    assert grid.key != oaat.key


def test_plan_rejects_unknown_settings_and_bad_declarations():
    with pytest.raises(UsageError, match="no setting depth"):
        studies.make_plan(studies.Study(program=TOY_INFO, space={"depth": (1, 2)},
                                        metric="val_loss"), 0)
    with pytest.raises(ValueError, match="mode"):
        studies.Study(program=TOY_INFO, space={"lr": (0.1,)}, metric="m", mode="random")
    with pytest.raises(ValueError, match="n_trials"):
        studies.Study(program=TOY_INFO, space={"lr": (0.1,)}, metric="m", mode="sampled")
    with pytest.raises(ValueError, match="not a number"):
        studies.Study(program=TOY_INFO, space={"lr": ([0.1], object())}, metric="m")


def test_values_travel_as_set_text():
    assert studies.encode((64, 32)) == "64,32"
    assert [studies.as_text(v) for v in (True, 0.001, 3, "tanh")] == ["true", "0.001", "3",
                                                                      "tanh"]


def test_storage_urls_are_checked_and_passwords_kept_out():
    studies.check_storage_url("postgresql://dlab@db.example:5432/studies")
    with pytest.raises(ValueError, match="password"):
        studies.check_storage_url("postgresql://dlab:secret@db.example/studies")
    with pytest.raises(ValueError, match="not a database URL"):
        studies.check_storage_url("just some words")
    assert "secret" not in studies.masked("postgresql://dlab:secret@db.example/studies")
    with pytest.raises(UsageError, match="cannot open"):
        studies.open_storage("postgresql://dlab@127.0.0.1:1/none")


def test_sqlite_storage_without_a_file_or_over_another_file_is_refused(tmp_path, cli):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    refused = {f"sqlite:///{notes}": "is not an SQLite database",
               "sqlite://": "names no database file",
               "sqlite:///:memory:": "names no database file",
               f"sqlite:///{tmp_path}": "is a folder",
               f"sqlite:///{tmp_path / 'no' / 's.db'}": "does not exist"}
    for url, words in refused.items():
        with pytest.raises(ValueError, match=words):
            studies.check_storage_url(url)
    (tmp_path / "empty.db").touch()  # an empty file is an empty database
    with contextlib.closing(sqlite3.connect(tmp_path / "made.db")) as db:
        db.execute("CREATE TABLE t (x INTEGER)")  # a real database file
    for name in ("new.db", "empty.db", "made.db"):
        studies.check_storage_url(f"sqlite:///{tmp_path / name}")

    # through the command line: one line, exit 2, the user's file untouched
    for url, words in ((f"sqlite:///{notes}", "will not overwrite"),
                       ("sqlite://", "names no database file")):
        code, out, err = cli("study", "12.2", "--profile", "smoke", "--storage", url,
                             "--out", tmp_path / "runs")
        assert code == 2 and words in err and err.count("\n") == 1, err
        assert "Traceback" not in err + out and "KeyError" not in err
    assert notes.read_text() == "x"


def test_report_of_a_study_that_never_ran_is_one_line(tmp_path, cli):
    code, out, err = cli("study", "12.2", "--profile", "smoke", "--report", "--out", tmp_path)
    assert code == 2 and "--report: no study under" in err and err.count("\n") == 1, err


def test_a_grace_period_not_longer_than_the_heartbeat_is_refused(tmp_path, cli):
    code, out, err = cli("study", "12.2", "--heartbeat", "5", "--grace", "5", "--out", tmp_path)
    assert code == 2 and "grace (5 s) must be longer than heartbeat (5 s)" in err
    assert err.count("\n") == 1


def test_a_worker_with_nothing_left_prints_one_line_and_exits_0(tmp_path, cli, monkeypatch):
    line = "study dlab-12.2-x: 3 of 5 trials done; 2 running elsewhere (trial 3 on b)"

    def not_finished(*args, **kwargs):
        raise studies.StudyNotFinished(line)

    monkeypatch.setattr(studies, "run_study", not_finished)
    assert cli("study", "12.2", "--out", tmp_path) == (0, line + "\n", "")


def test_run_study_refuses_programs_without_a_study(tmp_path):
    with pytest.raises(UsageError, match="not a built hyperparameter study"):
        studies.run_study("1.1", out=tmp_path, quiet=True, device="cpu")


def test_trial_folders_are_named_by_host_and_absolute_path():
    from types import SimpleNamespace

    from dlab.studies.recording import trial_folder_lines

    here = socket.gethostname()
    trials = [{"trial": 0, "status": "ok", "host": here, "run_folder": "/runs/a/t0"},
              {"trial": 1, "status": "diverged", "host": "b-host", "run_folder": "/runs/b/t1"},
              {"trial": 2, "status": "waiting", "host": "", "run_folder": ""},
              {"trial": 3, "status": "ok", "host": "b-host", "run_folder": "trials/0003/x"},
              {"trial": 4, "status": "running", "host": here, "run_folder": "/runs/a/t4"}]
    assert trial_folder_lines(SimpleNamespace(trials=trials)) == [
        f"Run folders on host {here} (this machine, where this record was written): "
        f"trial 0 {here}:/runs/a/t0, trial 4 {here}:/runs/a/t4 (running).",
        "Run folders on host b-host: trial 1 b-host:/runs/b/t1 (diverged), trial 3 "
        "b-host:trials/0003/x (relative to that worker's study folder)."]


# ------------------------------------------------------------- a study on SQLite


def test_study_on_sqlite_records_failures_and_reruns_without_duplicates(tmp_path):
    outcome = run_program(TOY_STUDY_INFO, profile="quick", out=tmp_path, quiet=True,
                          device="cpu")
    assert outcome.status == "ok"
    info = outcome.metrics["study"]
    folder = Path(info["folder"])
    assert folder.parent == outcome.folder.parent  # beside the study program's runs
    assert (info["settings"], info["complete"], info["failed"], info["ran_now"]) == (4, 2, 2, 4)

    rows = _csv(folder / "trials.csv")
    by = {(float(r["lr"]), int(r["batch_size"])): r for r in rows}
    assert set(by) == {(0.05, 16), (0.1, 16), (1e12, 16), (0.05, 0)}
    assert by[(1e12, 16)]["status"] == "diverged" and "learning rate" in by[(1e12, 16)]["reason"]
    assert by[(0.05, 0)]["status"] == "failed" and "batch_size" in by[(0.05, 0)]["reason"]
    assert by[(0.05, 16)]["varied"] == "base" and by[(0.1, 16)]["varied"] == "lr"
    for key, r in by.items():  # each folder absolute, with the host that ran the trial
        run = Path(r["run_folder"])
        assert r["host"] == socket.gethostname()
        if key == (0.05, 0):  # refused by the config check before a folder was made
            assert r["run_folder"] == ""
        else:
            assert run.is_absolute() and run.is_relative_to(folder.resolve() / "trials")
            assert (run / "metrics.json").is_file()

    # every completed trial is a full run whose metric is what the study stored, and the
    # same as running the base program by hand with those settings
    direct = run_program(TOY_INFO, profile="smoke", sets={"epochs": "2", "lr": "0.1"},
                         out=tmp_path / "direct", quiet=True, device="cpu")
    for key in ((0.05, 16), (0.1, 16)):
        run = json.loads((folder / by[key]["run_folder"] / "metrics.json").read_text())
        assert run["status"] == "ok" and run["config"]["epochs"] == 2
        assert float(by[key]["val_loss"]) == pytest.approx(run["metrics"]["val_loss"], rel=1e-12)
        assert float(by[key]["weight_sum"]) == pytest.approx(run["metrics"]["weight_sum"])
    assert float(by[(0.1, 16)]["val_loss"]) == pytest.approx(direct.metrics["val_loss"],
                                                             rel=1e-12)
    best = min((0.05, 16), (0.1, 16), key=lambda k: float(by[k]["val_loss"]))
    assert info["best"]["params"] == {"lr": best[0], "batch_size": best[1]}

    table = (folder / "table.md").read_text()
    assert "| trial | varied | lr | batch_size | val_loss | weight_sum | seconds | status |" \
        in table and "diverged" in table
    assert {"lr.png", "batch_size.png", "study.db"} <= {p.name for p in folder.iterdir()}
    record = json.loads((outcome.folder / "metrics.json").read_text())["record"]
    assert len(record["tables"][0]["rows"]) == 4
    assert {f["file"] for f in record["figures"]} == {"study-lr.png", "study-batch_size.png"}
    assert any("diverged" in s for s in record["analysis"])

    trial_folders = sorted((folder / "trials").iterdir())
    again = run_program(TOY_STUDY_INFO, profile="quick", out=tmp_path, quiet=True,
                        device="cpu")
    assert again.metrics["study"]["folder"] == str(folder)
    assert again.metrics["study"]["ran_now"] == 0
    assert len(_csv(folder / "trials.csv")) == 4
    assert sorted((folder / "trials").iterdir()) == trial_folders  # nothing ran again
    st = optuna.load_study(study_name=info["name"], storage=f"sqlite:///{folder / 'study.db'}")
    assert len(st.trials) == 4


def test_claims_are_exclusive_and_a_silent_trial_is_failed_and_retried(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = studies.open_storage(url, heartbeat=1, grace=2)
    st = optuna.create_study(study_name="s", storage=storage)
    a = studies.Point({"lr": 0.1}, "base")
    b = studies.Point({"lr": 0.2}, "lr")
    assert study_plan._enqueue_missing(st, [a, b]) == 2
    assert study_plan._enqueue_missing(st, [a, b]) == 0  # already queued

    study = studies.Study(program=TOY_INFO, space={"lr": (0.1, 0.2)}, metric="val_loss")
    job = study_workers._Job(study, {"lr": [0.1, 0.2]}, "s", url, tmp_path, 0, "cpu", None, True,
                       "0.2", heartbeat=1, grace=2)
    first = study_workers._claim(job, st, storage)
    second = study_workers._claim(job, st, storage)
    assert first is not None and second is not None and first.number != second.number
    assert study_workers._claim(job, st, storage) is None  # nothing left to claim
    first.suggest_categorical("lr", [0.1, 0.2])

    # `second` keeps beating; `first` goes silent (its worker is gone) and, once the grace
    # period has passed, is failed and queued again with the same setting
    with study_workers._heartbeat(storage, second._trial_id):
        studies.fail_stale(st)
        assert {t.number: t.state for t in st.trials}[first.number] == TrialState.RUNNING
        deadline = time.monotonic() + 10
        while st.trials[first.number].state == TrialState.RUNNING:
            assert time.monotonic() < deadline, "the silent trial was never failed"
            time.sleep(0.25)
            studies.fail_stale(st)
    states = {t.number: t.state for t in st.trials}
    assert states[first.number] == TrialState.FAIL
    assert states[second.number] == TrialState.RUNNING
    retry = [t for t in st.trials if t.state == TrialState.WAITING]
    assert len(retry) == 1 and retry[0].params == {"lr": first.params["lr"]}
    assert retry[0].user_attrs["key"] == st.trials[first.number].user_attrs["key"]
    assert study_plan._enqueue_missing(st, [a, b]) == 0  # the retry covers the setting
    rows = {r["trial"]: r for r in study_results._trial_rows(st.trials, study)}
    assert rows[first.number]["status"] == "lost"
    assert rows[first.number]["retried_as"] == retry[0].number
    assert rows[retry[0].number]["retry_of"] == first.number
    assert f"retried as trial {retry[0].number}" in rows[first.number]["reason"]
    # the retry is claimed like any queued trial, with its setting
    again = study_workers._claim(job, st, storage)
    assert again.number == retry[0].number
    assert again.suggest_categorical("lr", [0.1, 0.2]) == first.params["lr"]


def test_ctrl_c_marks_the_trial_and_a_rerun_runs_it_again(tmp_path, monkeypatch):
    sets = {"lrs": "0.05,0.1", "batch_sizes": "16"}
    monkeypatch.setenv("TOY_INTERRUPT_AT", "2")  # the toy raises KeyboardInterrupt there
    with pytest.raises(KeyboardInterrupt):
        run_program(TOY_STUDY_INFO, profile="quick", out=tmp_path, quiet=True, device="cpu",
                    sets=sets)
    monkeypatch.delenv("TOY_INTERRUPT_AT")
    outcome = run_program(TOY_STUDY_INFO, profile="quick", out=tmp_path, quiet=True,
                          device="cpu", sets=sets)
    info = outcome.metrics["study"]
    assert (info["settings"], info["complete"], info["ran_now"]) == (2, 2, 2)
    rows = _csv(Path(info["folder"]) / "trials.csv")
    assert [(r["trial"], r["status"]) for r in rows] == [("0", "interrupted"), ("1", "ok"),
                                                         ("2", "ok")]
    assert float(rows[0]["lr"]) == float(rows[2]["lr"]) == 0.05  # the same setting, rerun


def test_sampled_mode_draws_from_the_listed_values(tmp_path):
    outcome = run_program(TOY_STUDY_INFO, profile="quick", out=tmp_path, quiet=True,
                          device="cpu", sets={"mode": "sampled", "n_trials": "3",
                                              "lrs": "0.02,0.05", "batch_sizes": "8,16"})
    info = outcome.metrics["study"]
    rows = _csv(Path(info["folder"]) / "trials.csv")
    assert len(rows) == 3 and info["complete"] == 3
    assert all(float(r["lr"]) in (0.02, 0.05) and int(r["batch_size"]) in (8, 16) for r in rows)


# --------------------------------------------------- two workers, SQLite and PostgreSQL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


@pytest.fixture(scope="module")
def postgres_server():
    """A throwaway PostgreSQL server on a free loopback port for this module's tests,
    removed afterwards; yields a function that creates a fresh database and gives its URL."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin "
                    "or on PATH); .ci/postgres.sh installs it")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL")
        prefix = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="dlab-pg-"))
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = (base / "log").read_text() if (base / "log").exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr}\n{log}")

    made = iter(range(1000))

    def fresh_database() -> str:
        name = f"studies{next(made)}"
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "dlab", name)
        return f"postgresql://dlab@127.0.0.1:{port}/{name}"

    try:
        run(str(bindir / "initdb"), "-D", str(base / "data"), "--auth=trust",
            "--username=dlab", "--encoding=UTF8")
        run(str(bindir / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "log"), "-w",
            "-t", "60", "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start")
        yield fresh_database
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m",
                        "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a fresh, empty database (no Optuna tables yet) on the test server."""
    return postgres_server()


def _two_worker_study(tmp_path: Path, storage: str) -> None:
    meet = tmp_path / "meet"
    meet.mkdir()
    sets = {"workers": "2", "rendezvous": str(meet)}
    if storage:
        sets["storage"] = storage
    outcome = run_program(BARRIER_STUDY_INFO, profile="quick", out=tmp_path / "runs",
                          quiet=True, device="cpu", sets=sets)
    info = outcome.metrics["study"]
    rows = _csv(Path(info["folder"]) / "trials.csv")
    assert outcome.status == "ok" and info["complete"] == 4 and info["failed"] == 0, rows
    assert len(rows) == 4  # each grid point once: no worker repeated another's trial
    assert sorted(float(r["x"]) for r in rows) == [0.0, 1.0, 2.0, 3.0]
    assert all(float(r["value"]) == float(r["x"]) ** 2 for r in rows)
    # the barrier lets no trial finish until two processes have each started one
    assert len({r["pid"] for r in rows}) == 2 and len(list(meet.iterdir())) == 2
    assert outcome.metrics["best_value"] == 0.0


def test_two_workers_share_a_study_on_sqlite(tmp_path):
    _two_worker_study(tmp_path, "")


def test_two_workers_share_a_study_on_postgresql(tmp_path, postgres_url):
    _two_worker_study(tmp_path, postgres_url)
    storage = studies.open_storage(postgres_url)
    st = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    assert sorted(t.params["x"] for t in st.trials) == [0.0, 1.0, 2.0, 3.0]


# ------------------------------------- worker processes, as on separate machines


def _study_process(barrier, out: str, sets: dict[str, str], report: str) -> None:
    """One `dlab study` as on its own machine (own --out), started with the others at a
    barrier; leaves what it did in the JSON file `report`."""
    barrier.wait(timeout=300)
    started = time.time()
    try:
        outcome = run_program(BARRIER_STUDY_INFO, profile="quick", out=out, quiet=True,
                              device="cpu", sets=sets)
        done = {"record": True, "folder": str(outcome.folder), "study": outcome.metrics["study"]}
    except studies.StudyNotFinished as exc:
        done = {"record": False, "message": str(exc)}
    Path(report).write_text(json.dumps({**done, "pid": os.getpid(), "started": started,
                                        "ended": time.time()}))


def _start_workers(tmp_path: Path, n: int, sets: dict[str, str]):
    import multiprocessing

    mp = multiprocessing.get_context("spawn")
    barrier = mp.Barrier(n)
    procs = [mp.Process(target=_study_process,
                        args=(barrier, str(tmp_path / f"machine{i}"), sets,
                              str(tmp_path / f"machine{i}.json"))) for i in range(n)]
    for p in procs:
        p.start()
        p.barrier = barrier  # keep it alive until the children have loaded it
    return procs


def _results(tmp_path: Path, procs) -> list[dict]:
    return [json.loads((tmp_path / f"machine{i}.json").read_text())
            for i, p in enumerate(procs) if p.exitcode == 0]


def _stored(url: str) -> list:
    storage = studies.open_storage(url)
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage).trials


def _record(folder: str) -> dict:
    return json.loads((Path(folder) / "metrics.json").read_text())["record"]


def _one_record_of_every_trial(url: str, results: list[dict], xs: list[float]) -> dict:
    """Each planned trial ran exactly once, and exactly one process wrote the record,
    which lists them all; returns that process's result."""
    trials = _stored(url)
    assert sorted(t.params["x"] for t in trials) == xs
    assert all(t.state == TrialState.COMPLETE and t.value == t.params["x"] ** 2
               for t in trials)
    records = [r for r in results if r["record"]]
    assert len(records) == 1
    study = records[0]["study"]
    assert (study["settings"], study["complete"], study["finished"]) == (len(xs), len(xs), True)
    rows = _csv(Path(study["folder"]) / "trials.csv")
    assert sorted(float(r["x"]) for r in rows) == xs
    table = _record(records[0]["folder"])["tables"][0]
    assert len(table["rows"]) == len(xs)
    assert "test_value (not used for selection)" in table["columns"]
    return records[0]


def test_four_workers_started_together_on_a_fresh_database(tmp_path, postgres_url):
    meet = tmp_path / "meet"
    meet.mkdir()
    xs = [0.0, 1.0, 2.0, 3.0, 4.0]
    sets = {"storage": postgres_url, "rendezvous": str(meet), "parties": "4",
            "xs": ",".join(map(str, xs)), "heartbeat": "1", "grace": "2"}
    procs = _start_workers(tmp_path, 4, sets)
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * 4  # all started; none hit the schema race
    assert len(list(meet.iterdir())) == 4  # every process ran a trial (the barrier)
    results = _results(tmp_path, procs)
    record = _one_record_of_every_trial(postgres_url, results, xs)
    rows = _csv(Path(record["study"]["folder"]) / "trials.csv")
    assert len({r["pid"] for r in rows}) == 4
    for r in results:  # the others say the study is finished and where its record is
        if not r["record"]:
            assert "finished (5 of 5 trials done)" in r["message"]
            assert record["folder"] in r["message"]
    print("\n4 workers: " + "; ".join(
        f"pid {r['pid']} ran {r['ended'] - r['started']:.1f} s, "
        + ("wrote the record" if r["record"] else r["message"]) for r in results))


def test_two_workers_on_a_fresh_database_the_first_to_finish_writes_no_record(
        tmp_path, postgres_url):
    meet = tmp_path / "meet"
    meet.mkdir()
    release = tmp_path / "release"
    sets = {"storage": postgres_url, "rendezvous": str(meet), "xs": "0.0,1.0",
            "release": str(release), "held": "1.0", "heartbeat": "1", "grace": "2"}
    procs = _start_workers(tmp_path, 2, sets)
    # the worker that ran x=0 finds nothing to claim, watches trial x=1 (alive) for one
    # grace period, and leaves without a record
    _wait_until(lambda: any(p.exitcode is not None for p in procs), "a worker leaving", 300)
    first = next(p for p in procs if p.exitcode is not None)
    assert first.exitcode == 0
    done = json.loads((tmp_path / f"machine{procs.index(first)}.json").read_text())
    held = next(t for t in _stored(postgres_url) if t.state == TrialState.RUNNING)
    assert held.params["x"] == 1.0
    assert not done["record"]
    assert done["message"].startswith("study dlab-0.4-") and "\n" not in done["message"]
    assert f"1 of 2 trials done; 1 running elsewhere (trial {held.number} on " in \
        done["message"]
    assert "--report --storage postgresql://dlab@127.0.0.1" in done["message"]
    out = tmp_path / f"machine{procs.index(first)}"
    assert not list(out.glob("0.4/2*"))  # no run folder of the study program
    assert not list(out.rglob("table.md"))

    # --report now: a record of the unfinished study, the held trial marked running
    report = run_program(BARRIER_STUDY_INFO, profile="quick", out=tmp_path / "report",
                         quiet=True, device="cpu", sets={**sets, "report_only": "true"})
    assert report.metrics["study"]["finished"] is False
    rec = _record(str(report.folder))
    assert [row[-1] for row in rec["tables"][0]["rows"]] == ["ok", "running"]
    assert "still running: 1 of 2 trials done" in rec["analysis"][0]

    release.touch()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(list(meet.iterdir())) == 2
    last = _one_record_of_every_trial(postgres_url, _results(tmp_path, procs), [0.0, 1.0])
    assert last["pid"] != done["pid"]


def test_a_worker_killed_mid_trial_is_retried_by_the_survivor(tmp_path, postgres_url):
    import signal

    meet = tmp_path / "meet"
    meet.mkdir()
    release = tmp_path / "release"
    sets = {"storage": postgres_url, "rendezvous": str(meet), "xs": "0.0,1.0,2.0",
            "release": str(release), "heartbeat": "1", "grace": "2"}
    procs = _start_workers(tmp_path, 2, sets)
    _wait_until(lambda: len(list(tmp_path.glob("holding-*"))) == 2, "both workers in a trial",
                300)
    victim, survivor = procs
    os.kill(victim.pid, signal.SIGKILL)
    killed = time.time()
    victim.join(timeout=60)
    release.touch()
    survivor.join(timeout=300)
    assert (victim.exitcode, survivor.exitcode) == (-signal.SIGKILL, 0)

    trials = _stored(postgres_url)
    (lost,) = [t for t in trials if t.state == TrialState.FAIL]
    assert lost.user_attrs["pid"] == victim.pid and "status" not in lost.user_attrs
    (retry,) = [t for t in trials if t.system_attrs.get("retry_history") == [lost.number]]
    assert retry.state == TrialState.COMPLETE and retry.params == lost.params
    assert retry.user_attrs["pid"] == survivor.pid
    assert sorted(t.params["x"] for t in trials if t.state == TrialState.COMPLETE) == \
        [0.0, 1.0, 2.0]
    # not given up before the grace period (less the beat it may have missed) had passed
    retry_after = retry.datetime_start.timestamp() - killed
    assert 1.0 <= retry_after < 60

    (result,) = _results(tmp_path, procs)
    assert result["record"] and result["study"]["finished"]
    assert result["study"]["complete"] == 3 and result["study"]["lost"] == [lost.number]
    analysis = _record(result["folder"])["analysis"]
    assert any(s.startswith(f"Trial {lost.number} (x={lost.params['x']}) was lost: its "
                            f"worker (host {socket.gethostname()}, pid {victim.pid})")
               and s.endswith(f"retried as trial {retry.number}, which ended ok.")
               for s in analysis), analysis
    print(f"\nheartbeat 1 s, grace 2 s: killed pid {victim.pid} in trial {lost.number} "
          f"(x={lost.params['x']}); retry trial {retry.number} started by pid {survivor.pid} "
          f"{retry_after:.1f} s after the kill; completed "
          f"{retry.datetime_complete.timestamp() - killed:.1f} s after it")


@dataclass
class SpreadStudyConfig(studies.StudySettings):
    lrs: tuple[float, ...] = (0.05, 0.1)


def run_spread_study(cfg: SpreadStudyConfig, ctx) -> None:
    study = studies.Study(program=TOY_INFO, base_profile="smoke", base={"epochs": 2},
                          space={"lr": cfg.lrs}, metric="val_loss", spread_seeds=2)
    studies.record(studies.execute(study, ctx), ctx)


SPREAD_STUDY = Implementation(config=SpreadStudyConfig, run=run_spread_study)
SPREAD_STUDY_INFO = ProgramInfo(id="0.4", title="Toy study with seed repeats",
                                aim="Test seed noise.", entry="test_studies:SPREAD_STUDY")


def test_seed_repeats_measure_the_noise_band_and_are_never_chosen(tmp_path):
    import numpy as np
    from scipy.stats import t

    outcome = run_program(SPREAD_STUDY_INFO, profile="quick", out=tmp_path, quiet=True,
                          device="cpu", seed=3)
    assert outcome.status == "ok"
    folder = Path(outcome.metrics["study"]["folder"])
    rows = _csv(folder / "trials.csv")
    assert sorted(r["varied"] for r in rows) == ["base", "lr", "seed +1", "seed +2"]
    base_runs = []
    for r in rows:
        run = json.loads((folder / r["run_folder"] / "metrics.json").read_text())
        offset = int(r["varied"][-1]) if r["varied"].startswith("seed") else 0
        assert run["seed"] == 3 + offset  # each repeat really ran at its own seed
        if r["varied"] != "lr":
            assert run["config"]["lr"] == 0.05
            base_runs.append(run["metrics"]["val_loss"])
    band = t.ppf(0.975, 2) * np.std(base_runs, ddof=1) * np.sqrt(2)
    m = outcome.metrics
    assert m["study_noise_band"] == pytest.approx(band, rel=1e-9)
    assert m["study"]["best"]["trial"] in {int(r["trial"]) for r in rows
                                          if not r["varied"].startswith("seed")}
    vals = {r["varied"]: float(r["val_loss"]) for r in rows}
    lead = abs(vals["base"] - vals["lr"])
    assert m["study_ranks_chosen"] is bool(lead > band)
    analysis = " ".join(json.loads((outcome.folder / "metrics.json").read_text())
                        ["record"]["analysis"])
    assert ("cannot rank" in analysis) is bool(lead <= band)
    assert "Seed noise" in analysis



def test_the_start_line_counts_the_trials_another_worker_holds(tmp_path, postgres_url, capsys):
    meet = tmp_path / "meet"
    meet.mkdir()
    release = tmp_path / "release"
    sets = {"storage": postgres_url, "rendezvous": str(meet), "parties": "1",
            "xs": "0.0,1.0,2.0,3.0", "release": str(release), "held": "1.0",
            "heartbeat": "1", "grace": "2"}
    (holder,) = _start_workers(tmp_path, 1, sets)  # completes x=0, then holds x=1
    try:
        _wait_until(lambda: list(tmp_path.glob("holding-1.0-*")), "a worker holding x=1", 300)
        (held,) = [t for t in _stored(postgres_url) if t.state == TrialState.RUNNING]
        capsys.readouterr()
        with pytest.raises(studies.StudyNotFinished):  # runs x=2 and x=3, then leaves
            run_program(BARRIER_STUDY_INFO, profile="quick", out=tmp_path / "second",
                        quiet=False, device="cpu", sets=sets)
        out = capsys.readouterr().out
    finally:
        release.touch()
        holder.join(timeout=300)
    (line,) = [line for line in out.splitlines() if "in the storage now" in line]
    assert (f"4 settings; in the storage now: 1 of 4 done, 1 running on other workers "
            f"(trial {held.number} on {socket.gethostname()}), 2 waiting to be claimed (0 of "
            "them queued by this command); 1 worker(s)") in line, line
    assert held.params["x"] == 1.0 and holder.exitcode == 0
    where = Path(held.user_attrs["run_folder"])  # named while it ran, by its worker
    assert where.is_relative_to(tmp_path / "machine0") and where.name == f"{held.number:04d}"
    assert where.is_dir() and held.user_attrs["host"] == socket.gethostname()
    # the second worker ran the two waiting trials; the holder finished x=1 and recorded
    ran = {t.params["x"]: t.user_attrs["pid"] for t in _stored(postgres_url)}
    assert ran[2.0] == ran[3.0] == os.getpid() != ran[1.0] == holder.pid
    print("\n" + line)


def test_a_report_from_a_third_folder_names_each_trials_host_and_folder(tmp_path, postgres_url):
    """Two workers in folders A and B share a PostgreSQL study; `--report` from folder C
    (which ran nothing) names every trial's folder as host:/absolute/folder under A or
    B, in the record, table.md and trials.csv, and every folder named exists."""
    meet = tmp_path / "meet"
    meet.mkdir()
    xs = [0.0, 1.0, 2.0, 3.0]
    sets = {"storage": postgres_url, "rendezvous": str(meet), "parties": "2",
            "xs": ",".join(map(str, xs)), "heartbeat": "1", "grace": "2"}
    procs = _start_workers(tmp_path, 2, sets)  # --out machine0 (A) and machine1 (B)
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    _one_record_of_every_trial(postgres_url, _results(tmp_path, procs), xs)
    folder_a, folder_b, folder_c = (tmp_path / "machine0", tmp_path / "machine1",
                                    tmp_path / "C")
    report = run_program(BARRIER_STUDY_INFO, profile="quick", out=folder_c, quiet=True,
                         device="cpu", sets={**sets, "report_only": "true"})
    study_folder = Path(report.metrics["study"]["folder"])
    assert study_folder.is_relative_to(folder_c) and not (study_folder / "trials").exists()

    host = socket.gethostname()
    rows = _csv(study_folder / "trials.csv")
    assert sorted(float(r["x"]) for r in rows) == xs
    under = set()
    for r in rows:
        run = Path(r["run_folder"])
        assert r["host"] == host and run.is_absolute(), r
        assert (run / "metrics.json").is_file(), r  # a real run folder of that trial
        assert json.loads((run / "metrics.json").read_text())["config"]["x"] == float(r["x"])
        (side,) = [f for f in (folder_a, folder_b) if run.is_relative_to(f)]
        under.add(side)
    assert under == {folder_a, folder_b}  # both workers ran trials, each in its own folder

    named = {f"trial {r['trial']} {host}:{r['run_folder']}" for r in rows}
    data = _record(str(report.folder))["data"]
    lines = [line for line in data if line.startswith("Run folders on host")]
    assert len(lines) == 1 and lines[0].startswith(f"Run folders on host {host} (this "
                                                   "machine, where this record was written)")
    assert all(n in lines[0] for n in named), lines
    assert str(folder_c) not in " ".join(data)  # no folder is placed under C
    record_md = (report.folder / "record.md").read_text()
    table_md = (study_folder / "table.md").read_text()
    assert all(n in record_md and n in table_md for n in named)
    print("\n" + "\n".join(lines))
