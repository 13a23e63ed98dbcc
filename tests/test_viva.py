"""`dlab viva` and `dlab quiz`: what a student sees, typed or piped."""

import io
import json
import os
import subprocess
import sys

import pytest
from rich.console import Console

from dlab.questions import load
from dlab.registry import PROGRAMS
from dlab.viva import RunReader, quiz_order, run_quiz, select


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Smoke runs of 5.1 and 5.2, the programs experiment 5's answers read."""
    from dlab.running import run_program

    root = tmp_path_factory.mktemp("viva-runs")
    for pid in ("5.1", "5.2"):
        run_program(PROGRAMS[pid], profile="smoke", out=root, quiet=True, device="cpu")
    return root


def dlab(*args, stdin=""):
    """The installed command as a user runs it, with stdin and stdout piped."""
    env = dict(os.environ, COLUMNS="80")
    return subprocess.run([sys.executable, "-m", "dlab", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=120, env=env)


def test_viva_prints_every_question_with_answer_and_verdict(cli, tmp_path):
    code, out, err = cli("viva", "5", "--runs", tmp_path)
    assert code == 0 and err == ""
    q = load(5)
    assert out.startswith("Experiment 5: Gradient descent\nAim: ")
    for e in q.entries:
        assert f"{e.label}." in out
    assert out.count("Manual's answer: ") == q.count("pre-lab") + q.count("viva")
    assert "incomplete: It misses conditioning" in out
    assert out.index("Pre-lab") < out.index("P1.") < out.index("Viva-voce") < out.index("V1.")
    # nothing measured in an empty runs folder: each link says how to measure it
    assert "Run `dlab run 5.1` to see this measured." in out and "Measured:" not in out
    assert "To measure the rest: dlab run 5.1 5.2" in out
    assert "\x1b[" not in out  # plain text when not a terminal
    assert all(line == line.rstrip() for line in out.splitlines())


def test_viva_fills_evidence_from_the_latest_run(cli, runs):
    code, out, _ = cli("viva", "5", "--runs", runs, "--format", "json", "--allow-smoke")
    assert code == 0
    entries = json.loads(out)
    by_id = {e["id"]: e for e in entries}
    summary = json.loads(next((runs / "5.1").glob("*/metrics.json")).read_text())
    loss = summary["metrics"]["final_loss"]
    ev = by_id["5.P2"]["evidence"]
    assert ev["measured"] is True and ev["program"] == "5.1"
    assert f"{loss['0.01']:.3f}" in ev["text"] and f"{loss['30']:.3f}" in ev["text"]
    assert ev["run"].startswith(str(runs / "5.1"))
    assert by_id["5.P1"]["evidence"] is None
    for e in entries:
        assert {"number", "kind", "question", "answer", "manual_verdict", "evidence"} <= set(e)
        assert e["kind"] in ("pre-lab", "viva", "ours")
        assert (e["manual_verdict"] is None) == (e["kind"] == "ours")
    assert [e["number"] for e in entries if e["kind"] == "viva"] == [1, 2, 3, 4]


def test_a_run_without_the_key_is_not_passed_off_as_measured(cli, runs, tmp_path):
    import shutil

    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    meta = next((copy / "5.1").glob("*/metrics.json"))
    summary = json.loads(meta.read_text())
    del summary["metrics"]["final_loss"]
    meta.write_text(json.dumps(summary))
    code, out, _ = cli("viva", "5", "--runs", copy, "--format", "json", "--allow-smoke")
    ev = {e["id"]: e for e in json.loads(out)}["5.P2"]["evidence"]
    assert ev["measured"] is False and "does not record metrics.final_loss.0.01" in ev["text"]


def test_smoke_runs_are_not_read_unless_asked(cli, runs):
    code, out, _ = cli("viva", "5", "--runs", runs, "--format", "json")
    ev = {e["id"]: e for e in json.loads(out)}["5.P2"]["evidence"]
    assert code == 0 and ev["measured"] is False
    assert "only smoke runs" in ev["text"] and "--allow-smoke" in ev["text"]


def test_viva_reads_the_run_the_record_shows_not_the_latest(cli, runs, tmp_path):
    """A later run with changed settings does not replace the default run as evidence;
    where it is the only run, the answer says its settings differ."""
    import shutil

    from dlab.running import run_program

    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    default = next((copy / "5.1").glob("*/metrics.json")).parent
    changed = run_program(PROGRAMS["5.1"], profile="smoke", out=copy, quiet=True,
                          device="cpu", sets={"lrs": "0.02,0.4,20"}).folder
    code, out, _ = cli("viva", "5", "--runs", copy, "--format", "json", "--allow-smoke")
    ev = {e["id"]: e for e in json.loads(out)}["5.P2"]["evidence"]
    assert code == 0 and ev["measured"] is True
    assert ev["run"] == str(default) and ev["settings"] is None
    shutil.rmtree(default)
    code, out, _ = cli("viva", "5", "--runs", copy, "--format", "json", "--allow-smoke")
    ev = {e["id"]: e for e in json.loads(out)}["5.P2"]["evidence"]
    assert ev["run"] == str(changed) and ev["measured"] is False  # lr 0.01 was not run
    assert "its settings differ from the defaults: lrs" in ev["text"]
    # --pick wins over the choice
    code, out, _ = cli("viva", "5", "--runs", copy, "--format", "json", "--pick",
                       f"5.1={changed}")
    ev = {e["id"]: e for e in json.loads(out)}["5.P2"]["evidence"]
    assert ev["run"] == str(changed) and ev["measured"] is False


def test_filters_and_question_sheet(cli, tmp_path):
    q = load(14)
    _, out, _ = cli("viva", "14", "--viva", "--format", "json", "--runs", tmp_path)
    entries = json.loads(out)
    assert {e["section"] for e in entries} == {"viva"}
    assert len(entries) == len(q.section("viva"))
    _, out, _ = cli("viva", "exp14", "--prelab", "--no-answers", "--runs", tmp_path)
    assert "P4." in out and "V1." not in out
    assert q.entries[0].answer[:30] not in out and "Manual's answer" not in out


@pytest.mark.parametrize("args, message", [
    (("viva", "99"), "unknown experiment '99'"),
    (("viva", "5.x"), "unknown experiment '5.x'"),
    (("viva", "5", "--format", "yaml"), "--format yaml"),
    (("viva", "5", "--runs", "/no/such/folder"), "--runs /no/such/folder: no such folder"),
    (("quiz", "5", "--count", "0"), "--count must be 1 or more"),
    (("quiz", "5", "--seed", "-1"), "--seed -1"),
])
def test_bad_input_is_one_line_and_status_2(cli, args, message):
    code, out, err = cli(*args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_viva_99_from_the_shell():
    done = dlab("viva", "99")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "dlab: error: unknown experiment '99'; use a number from 1 to 16 (see `dlab list`)"]


def test_quiz_with_piped_input_is_deterministic(tmp_path):
    answers = "\ny\n\nn\n\nyes\n"
    first = dlab("quiz", "4", "--seed", "1", "--count", "3", "--runs", tmp_path, stdin=answers)
    again = dlab("quiz", "4", "--seed", "1", "--count", "3", "--runs", tmp_path, stdin=answers)
    other = dlab("quiz", "4", "--seed", "2", "--count", "3", "--runs", tmp_path, stdin=answers)
    assert first.returncode == 0 and first.stderr == ""
    assert first.stdout == again.stdout and first.stdout != other.stdout
    out = first.stdout
    assert "(seed 1;" in out and out.count("Press Enter to see the answer.") == 3
    assert out.rstrip().splitlines()[-2:] == ["You marked 2 of 3 as known.",
                                              f"To revisit: {quiz_ids(4, 1, 3)[1]}"]
    # the questions come in the seeded order, each followed by its own answer
    q = {e.id: e for e in load(4).entries}
    flat = " ".join(out.split())  # lines are wrapped at 80 columns
    positions = [flat.index(q[i].question) for i in quiz_ids(4, 1, 3)]
    assert positions == sorted(positions)
    for i in quiz_ids(4, 1, 3):
        assert flat.index(q[i].answer) > flat.index(q[i].question)


def quiz_ids(n, seed, count):
    return [e.id for e in quiz_order(select(load(n)), seed, count)]


def test_quiz_stops_cleanly_at_the_end_of_input():
    q = load(10)
    console = Console(file=io.StringIO(), width=80)
    lines = iter(["", "y"])
    known, asked = run_quiz(console, q, quiz_order(select(q), 7, None), RunReader("/nonexistent"),
                            lambda: next(lines, None), seed=7)
    out = console.file.getvalue()
    assert (known, asked) == (1, 1)
    n = len(q.entries)
    assert f"Input ended after 1 of {n} questions." in out and "You marked 1 of 1" in out


def test_quiz_order_is_a_seeded_permutation():
    entries = select(load(16))
    a, b = quiz_order(entries, 3, None), quiz_order(entries, 3, None)
    assert a == b and sorted(e.id for e in a) == sorted(e.id for e in entries)
    assert [e.id for e in quiz_order(entries, 3, 4)] == [e.id for e in a[:4]]
    assert any(quiz_order(entries, s, None) != a for s in range(4, 8))
