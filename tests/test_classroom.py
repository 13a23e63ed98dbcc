"""`dlab class DIR`: one table of a class of 60 students made from real runs
(tests/class_fixture.py says which student is which)."""

import csv
import re
import shutil
import subprocess
import time

import pytest

from class_fixture import KINDS, make_class, real_runs, relive
from dlab.classroom import (
    VERDICTS,
    class_table,
    load_rubric,
    main,
    sample_runs,
    score,
    write_class,
)
from dlab.errors import UsageError
from dlab.registry import EXPERIMENTS, PROGRAMS


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    return real_runs(tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="module")
def klass(real, tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    return make_class(real, base / "handins", base / "scratch")


@pytest.fixture(scope="module")
def read(klass):
    """(table, lines said, seconds) of the whole class, without reruns."""
    lines = []
    t0 = time.perf_counter()
    table = class_table(klass.folder, say=lines.append)
    return table, lines, time.perf_counter() - t0


def _student(table, sid):
    return next(s for s in table.students if s.id == sid)


def test_every_cell_shows_what_its_hand_in_holds(klass, read):
    table, _, _ = read
    assert [s.id for s in table.students] == sorted(klass.expected)
    assert sum(n for n, _ in KINDS.values()) == len(table.students) == 60
    for s in table.students:
        for pid in PROGRAMS:
            want = klass.expected[s.id].get(pid, "not run")
            assert s.cells[pid].verdict == want, (s.id, pid, s.cells[pid].problems)
    # 200 met: 4 each for 30 good, 6 runs folders and 2 copiers, 3 for 4 missed, 4 edited,
    # 1 dropped and 3 notebook, 2 for 2 corrupt, 1 format and 3 partial
    assert table.counts() == {"met": 200, "missed": 4, "no target": 0, "smoke only": 16,
                              "modified": 3, "does not verify": 5, "cannot read": 6,
                              "not run": 60 * 28 + 3 * 2}
    assert sum(table.counts().values()) == 60 * 32 and list(table.counts()) == list(VERDICTS)


def test_what_each_kind_of_cell_says(klass, read):
    table, _, _ = read
    ids = klass.ids
    edited = _student(table, ids["edited"][0]).cells["5.1"]
    assert edited.manifest == "changed" and "metrics.json changed" in edited.problems
    dropped = _student(table, ids["dropped"][0]).cells["5.1"]
    assert "history.csv is missing" in dropped.problems
    nb = _student(table, ids["notebook"][0]).cells["5.2"]
    assert nb.manifest == "intact" and "edited: 3. train: fit the network" in nb.notebook
    missed = _student(table, ids["missed"][0]).cells["5.1"]
    assert missed.targets_met == 3 and missed.targets_applicable == 4
    assert "epochs = 2 (default" in missed.note
    runs = _student(table, ids["runs"][0])
    assert runs.sources == [f"{runs.id}/"] and runs.cells["5.1"].profile == "quick"
    assert runs.cells["2.1"].note == "no hand-in or run of experiment 2"
    fmt = _student(table, ids["format"][0]).cells["5.1"]
    assert "format 2" in fmt.problems[0] and "this dlab reads format 1" in fmt.problems[0]
    good = _student(table, ids["good"][0])
    assert good.name == "Student 001" and good.cells["1.1"].same_code is True
    assert good.cells["5.2"].run.startswith("runs/5.2/") and good.cells["5.2"].started


def test_sixty_students_take_under_ten_seconds(read):
    table, _, seconds = read
    print(f"class_table: 60 students x 32 programs in {seconds:.2f} s")
    assert len(table.students) * len(table.programs) == 1920
    assert seconds < 10


def test_copies_are_flagged_and_the_same_numbers_at_one_seed_are_not(klass, read):
    table, lines, _ = read
    first, second = klass.ids["copier"]
    assert table.copies == [
        f"copy: 5.1 of {first}, {second}: the same manifest.json (the same files); "
        "identical numbers and identical timings (start, finish, every duration)",
        f"copy: 5.2 of {first}, {second}: the same manifest.json (the same files); "
        "identical numbers and identical timings (start, finish, every duration)",
        f"copy: the record of experiment 5 of {first}, {second} is the same text apart "
        "from the student lines"]
    flagged = {(s.id, pid) for s in table.students for pid, c in s.cells.items()
               if c.copies or c.record_copies}
    assert flagged == {(sid, pid) for sid in (first, second) for pid in ("5.1", "5.2")}
    assert _student(table, first).cells["5.1"].copies == [second]
    # two honest students: separate runs of 1.1 at seed 0 (A and B), identical numbers
    honest, other = _student(table, klass.ids["good"][0]), _student(table, klass.ids["runs"][0])
    a, b = honest.cells["1.1"], other.cells["1.1"]
    assert a.numbers == b.numbers and a.timings != b.timings and a.seed == b.seed == 0
    assert not a.copies and not b.copies and a.same_numbers >= 40
    said = "\n".join(lines)
    assert "identical numbers at the same seed" in said and "expected" in said
    assert "not flagged" in said


def test_a_bad_hand_in_is_one_line_and_the_rest_carries_on(klass, read):
    table, lines, _ = read
    for kind in ("corrupt", "format"):
        sid = klass.ids[kind][0]
        name = f"{sid}-experiment-05.zip"
        about = [line for line in lines if name in line]
        assert len(about) == 1 and "cannot read" in about[0], about
        assert "\n" not in about[0] and "Traceback" not in about[0]
        s = _student(table, sid)
        assert s.cells["1.1"].verdict == s.cells["1.2"].verdict == "met"
    assert "not a readable zip file" in "\n".join(lines)


def test_class_csv_and_gradebook(klass, read, tmp_path):
    table, _, _ = read
    written = write_class(table, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "class.csv", "class.html", "gradebook.csv"]
    with open(written["class.csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 60 * 32
    row = next(r for r in rows if r["student_id"] == klass.ids["missed"][0]
               and r["program"] == "5.1")
    assert row["verdict"] == "missed" and row["profile"] == "quick" and row["seed"] == "0"
    assert row["targets_met"] == "3" and row["targets_applicable"] == "4"
    assert "missed: mean_good_final_loss <= 0.15" in row["targets"]
    assert row["manifest"] == "intact" and row["same_code"] == "yes" and row["run_started"]
    with open(written["gradebook.csv"], newline="") as fh:
        book = list(csv.reader(fh))
    assert book[0] == ["ID number"] + [f"Experiment {e.number}" for e in EXPERIMENTS]
    assert len(book) == 61
    scores = {r[0]: r[1:] for r in book[1:]}
    ids = klass.ids

    def exp(kind, n):
        return scores[ids[kind][0]][n - 1]

    # default rubric: quick 5 + targets 6 x share met + intact 2 per program
    assert exp("good", 1) == exp("good", 5) == "26" and exp("good", 2) == ""
    assert exp("missed", 5) == "24.5"  # 5.1: 5 + 6 * 3/4 + 2; 5.2: 13
    assert exp("edited", 5) == "13"  # 5.1 does not verify: nothing
    assert exp("notebook", 5) == "24"  # 5.2 modified: 5 + 6, no intact
    assert exp("smoke zip", 1) == exp("smoke runs", 5) == "0"
    assert exp("corrupt", 5) == exp("partial", 5) == exp("format", 5) == ""
    assert exp("corrupt", 1) == "26"


def test_a_rubric_file_changes_the_suggestion(klass, read, tmp_path):
    table, _, _ = read
    path = tmp_path / "rubric.toml"
    path.write_text("viva = 10\n[program]\nquick = 10\ntargets = 10\nintact = 0\n")
    rubric = load_rubric(path)
    assert (rubric.out_of, rubric.viva, rubric.full, rubric.quick) == (50, 10, 7, 10)
    s = _student(table, klass.ids["missed"][0])
    score(s, rubric)
    assert s.scores[5] == 10 + 10 * 3 / 4 + 10 + 10 and s.scores[1] == 40
    score(s, table.rubric)  # leave the shared table as it was
    assert s.scores[5] == 24.5


@pytest.mark.parametrize("text, message", [
    ("viva = ", "not valid TOML"),
    ("[program]\nquik = 5\n", "unknown key `program.quik`"),
    ("viva = -1\n", "`viva` must be a number of points >= 0"),
    ("viva = true\n", "`viva` must be a number"),
    ("out_of = 40\n", "more than out_of 40"),
])
def test_a_bad_rubric_is_one_line(tmp_path, text, message):
    path = tmp_path / "rubric.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=re.escape(message)) as err:
        load_rubric(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_main_writes_the_three_files_and_refuses_bad_input(klass, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(klass.folder, out) == 0
    said = capsys.readouterr().out
    assert f"class.html: {out / 'class.html'}" in said and "viva-voce" in said
    assert {p.name for p in out.iterdir()} == {"class.csv", "class.html", "gradebook.csv"}
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("x")
    for folder, message in ((tmp_path / "nowhere", "no such folder"),
                            (tmp_path / "a-file", "is a file, not a folder"),
                            (tmp_path / "empty", "no hand-in zips")):
        with pytest.raises(UsageError, match=message) as err:
            main(folder, tmp_path / "never")
        assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match="--rubric .*no such file"):
        main(klass.folder, tmp_path / "never", rubric=tmp_path / "missing.toml")
    with pytest.raises(UsageError, match="--rerun -1"):
        main(klass.folder, tmp_path / "never", rerun=-1)
    assert not (tmp_path / "never").exists()


def test_a_zip_named_for_another_student_belongs_to_the_one_it_names(klass, tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    first, second = klass.ids["good"][:2]
    shutil.copy(klass.folder / f"{first}-experiment-01.zip", folder)
    shutil.copy(klass.folder / f"{first}-experiment-01.zip",
                folder / f"{second}-experiment-01.zip")
    lines = []
    table = class_table(folder, say=lines.append)
    assert [s.id for s in table.students] == [first]
    s = table.students[0]
    assert any(f"{second}-experiment-01.zip is named for {second} but its handin.json "
               f"names {first}" in p for p in s.problems)
    assert any("2 hand-ins of experiment 1" in line for line in lines)
    assert s.cells["1.1"].verdict == "met"


def test_rerun_one_run_per_student_verifies(klass, tmp_path):
    folder = tmp_path / "three"
    folder.mkdir()
    good, runs = klass.ids["good"][0], klass.ids["runs"][0]
    for exp in (1, 5):
        shutil.copy(klass.folder / f"{good}-experiment-{exp:02d}.zip", folder)
    shutil.copy(klass.folder / f"{klass.ids['partial'][0]}-experiment-01.zip", folder)
    shutil.copytree(klass.folder / runs, folder / runs)
    lines = []
    table = class_table(folder, rerun=1, jobs=2, seed=3, say=lines.append)
    reran = [(s.id, c.program, c.rerun) for s in table.students for c in s.cells.values()
             if c.rerun]
    assert sorted(sid for sid, _, _ in reran) == sorted(s.id for s in table.students)
    assert {status for _, _, status in reran} == {"verified"}, lines
    assert len([line for line in lines if line.startswith("rerun ")]) == 3
    assert any(line.startswith("reran 3 runs") and "3 verified" in line for line in lines)
    # the same seed picks the same runs
    again = class_table(folder, rerun=0, say=lambda _line: None)
    picks = [(s.id, c.program) for s, c in sample_runs(again.students, 1, 3)]
    assert sorted(picks) == sorted((sid, pid) for sid, pid, _ in reran)


def test_a_rerun_finds_numbers_edited_under_a_new_manifest(real, tmp_path):
    """A number changed and the manifest written again passes the table's checks; the
    rerun (here one at a time, in this process) finds it."""
    def forge(summary):
        summary["metrics"]["best_lr"] = 1.0

    relive(real.a["5.1"], tmp_path / "class" / "F001", 5, forge)
    relive(real.a["1.2"], tmp_path / "class" / "F002", 7)
    lines = []
    table = class_table(tmp_path / "class", rerun=1, jobs=1, say=lines.append)
    forged, honest = (s.cells["5.1" if s.id == "F001" else "1.2"] for s in table.students)
    assert forged.verdict == "met" and forged.manifest == "intact"
    assert forged.rerun == "differs" and "best_lr recorded 1, rerun 0.5" in forged.rerun_details
    assert honest.rerun == "verified"
    assert any("reran 2 runs" in line and "1 differs, 1 verified" in line for line in lines)


def test_sample_is_seeded(read):

    table, _, _ = read

    def picks(seed):
        return [(s.id, c.program) for s, c in sample_runs(table.students, 2, seed)]

    assert picks(0) == picks(0) and picks(0) != picks(1)
    per_student = {}
    for sid, _ in picks(0):
        per_student[sid] = per_student.get(sid, 0) + 1
    assert max(per_student.values()) == 2 and len(per_student) == 60


def test_class_html_is_self_contained_and_links_every_cell(read, tmp_path):
    table, _, _ = read
    page = write_class(table, tmp_path)["class.html"].read_text()
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr data-i=") == 60
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@page { size: A4 landscape" in page and "<script>" in page
    targets = set(re.findall(r'href="#([^"]+)"', page))
    ids = set(re.findall(r'id="([^"]+)"', page))
    assert len(targets) > 60 and targets <= ids


def _chromium(args, cwd):
    from dlab.report.lab import CHROMIUM_FLAGS, find_chromium

    return subprocess.run([find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={cwd}/profile",
                           *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_class_html_renders_prints_and_sorts_in_chromium(read, tmp_path):
    from dlab.report.lab import find_chromium

    if find_chromium() is None:
        pytest.skip("no local Chromium")
    table, _, _ = read
    page = write_class(table, tmp_path)["class.html"]
    png, pdf = tmp_path / "class.png", tmp_path / "class.pdf"
    _chromium(["--window-size=1400,1000", f"--screenshot={png}", page.as_uri()], tmp_path)
    _chromium(["--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()], tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 20_000
    # click the score header twice (descending) and read the rows back from the DOM
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.read_text().replace("</body>", (
        "<script>var h = document.querySelectorAll('#class thead tr.cols th');"
        "h[h.length - 1].click(); h[h.length - 1].click();</script></body>")))
    dom = _chromium(["--dump-dom", clicked.as_uri()], tmp_path).stdout
    body = dom.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr data-i.*?</tr>", body, re.S)
    assert len(rows) == 60
    totals = [float(re.findall(r'<td class="num">([^<]*)</td>', r)[-1]) for r in rows]
    assert totals == sorted(totals, reverse=True) and totals[0] > totals[-1]


def test_dlab_class_from_the_command_line(klass, tmp_path, cli):
    out = tmp_path / "desk"
    code, said, err = cli("class", klass.folder, "--out", out)
    assert code == 0 and err == ""
    assert {p.name for p in out.iterdir()} == {"class.html", "class.csv", "gradebook.csv"}
    assert "gradebook.csv: suggested scores out of 50" in said
    for args, message in ((("class", tmp_path / "none"), "none"),
                          (("class", klass.folder, "--rerun", "-1"), "--rerun"),
                          (("class", klass.folder, "--jobs", "0"), "--jobs")):
        code, said, err = cli(*args, "--out", tmp_path / "bad")
        assert code == 2 and said == "" and err.count("\n") == 1 and message in err, err
        assert not (tmp_path / "bad").exists()
