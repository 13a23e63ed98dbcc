"""The lab record a student hands in: header, pre-lab, viva, evaluator box, print layout."""

import re
import shutil

import pytest

from dlab.errors import UsageError
from dlab.questions import load
from dlab.registry import PROGRAMS
from dlab.report.handin import Student, md_escape, resolve_student
from dlab.report.lab import find_chromium, write_report

NAME = 'Zoë <script>alert(1)</script> & "Ø\'Brien" 李'
SID = "2300|<b>42</b>"
EXPERIMENTS_RUN = (1, 5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from dlab.running import run_program

    root = tmp_path_factory.mktemp("handin-runs")
    for pid in ("1.1", "1.2", "5.1"):
        run_program(PROGRAMS[pid], profile="smoke", out=root, quiet=True, device="cpu")
    return root


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "record.html"
    written = write_report(runs, out, student=Student(name=NAME, id=SID), allow_smoke=True)
    return written["html"].read_text(), written["markdown"].read_text()


def sheet(html_text: str, number: int) -> str:
    """The HTML of one experiment's sheet (up to the next sheet or the end of the page)."""
    start = html_text.index(f'id="sheet-exp{number:02d}"')
    ends = [i for i in (html_text.find('<table class="sheet"', start), html_text.index("</main>"))
            if i > 0]
    return html_text[start:min(ends)]


def test_every_experiment_is_a_sheet_with_header_questions_and_evaluator_box(page, runs):
    html_text, _ = page
    assert html_text.count('<table class="sheet"') == len(EXPERIMENTS_RUN)
    for n in EXPERIMENTS_RUN:
        s = sheet(html_text, n)
        head = s[:s.index("</thead>")]
        assert f"<th>Experiment #</th><td>{n}</td>" in head
        assert "<th>Student ID</th><td>2300|&lt;b&gt;42&lt;/b&gt;</td>" in head
        assert re.search(r"<th>Date</th><td>\d{4}-\d\d-\d\d</td>", head)
        q = load(n)
        body = s[s.index("</thead>"):]
        order = [body.index(">Aim</h3>"), body.index(">Pre-lab</h3>"),
                 body.index(f'id="p{n}-1"'), body.index(">Viva-voce</h3>"),
                 body.index('class="evaluator"')]
        assert order == sorted(order)
        assert q.aim in body
        assert body.count('<span class="qn">') == len(q.entries)
        for e in q.entries:
            assert f'<span class="qn">{e.label}.</span>' in body
        assert "____ out of 50" in body and "Signature of the evaluator with date" in body
    five = sheet(html_text, 5)
    assert five.count('<p class="ev">Measured: In your run of 5.1') == 4  # 5.2 was not run
    assert "In your run of 5.2" not in five and "dlab run 5.2" not in five


def test_student_names_are_escaped_not_invented(page):
    html_text, markdown = page
    assert "<script>" not in html_text and "alert(1)</script>" not in html_text
    escaped = "Zoë &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Ø&#x27;Brien&quot; 李"
    assert html_text.count(f"<th>Student Name</th><td>{escaped}</td>") == len(EXPERIMENTS_RUN)
    assert md_escape(NAME) in markdown and "| Student ID | 2300\\|\\<b\\>42\\</b\\> |" in markdown


def test_page_with_student_details_is_valid_html(page):
    html5lib = pytest.importorskip("html5lib")
    html5lib.HTMLParser(strict=True).parse(page[0])


def test_without_details_the_header_fields_stay_blank(runs, tmp_path, monkeypatch):
    monkeypatch.delenv("DLAB_STUDENT_NAME", raising=False)
    monkeypatch.delenv("DLAB_STUDENT_ID", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    student = resolve_student(runs_dir=runs)
    assert student == Student()
    text = write_report(runs, tmp_path / "r.html", student=student,
                        allow_smoke=True)["html"].read_text()
    for n in EXPERIMENTS_RUN:
        head = sheet(text, n).split("</thead>")[0]
        assert '<th>Student ID</th><td class="blank"></td>' in head
        assert '<th>Student Name</th><td class="blank"></td>' in head


def test_blank_answers_leave_room_to_write(runs, tmp_path):
    text = write_report(runs, tmp_path / "b.html", blank_answers=True,
                        allow_smoke=True)["html"].read_text()
    five = sheet(text, 5)
    q = load(5)
    assert five.count('<div class="write">') == len(q.entries)
    assert '<p class="a">' not in five and "Measured:" not in five
    for e in q.entries:
        assert e.answer[:40] not in five


def test_student_details_come_from_options_environment_or_files(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    config = tmp_path / "config"
    (config / "dlab").mkdir(parents=True)
    (config / "dlab" / "student.toml").write_text('name = "From Config"\nid = "C-1"\n')
    env = {"XDG_CONFIG_HOME": str(config)}
    assert resolve_student(runs_dir=runs, env=env) == Student("From Config", "C-1")
    (runs / "student.toml").write_text('name = "From Runs"\n')
    assert resolve_student(runs_dir=runs, env=env) == Student("From Runs", "C-1")
    env["DLAB_STUDENT_ID"] = "E-2"
    assert resolve_student(runs_dir=runs, env=env) == Student("From Runs", "E-2")
    assert resolve_student("  Given\n Name ", "O-3", runs, env) == Student("Given Name", "O-3")


@pytest.mark.parametrize("content, message", [
    ('name = "A"\nstudent = "B"\n', "unknown field `student`"),
    ("name = 42\n", "field `name`: must be text"),
    ('name = "a\\u0007b"\n', "field `name`: contains control characters"),
    ("name = \n", "not valid TOML"),
])
def test_a_bad_student_file_names_file_and_field(tmp_path, content, message):
    (tmp_path / "student.toml").write_text(content)
    with pytest.raises(UsageError) as err:
        resolve_student(runs_dir=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert str(err.value).startswith(str(tmp_path / "student.toml")) and message in str(err.value)


def test_report_options_on_the_command_line(cli, runs, tmp_path):
    out = tmp_path / "cli.html"
    code, stdout, err = cli("report", runs, "--out", out, "--student-name", "Ada <L>",
                            "--student-id", "7", "--blank-answers", "--allow-smoke")
    assert code == 0 and err == ""
    text = out.read_text()
    assert text.count("<th>Student Name</th><td>Ada &lt;L&gt;</td>") == len(EXPERIMENTS_RUN)
    assert '<div class="write">' in text
    code, _, err = cli("report", runs, "--out", tmp_path / "x.html", "--student-name", "x" * 500,
                       "--allow-smoke")
    assert code == 2 and err.count("\n") == 1 and "--student-name: longer than" in err


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium here (apt-get install chromium)")
def test_printed_record_puts_each_experiment_on_its_own_pages(page, tmp_path):
    from dlab.report.lab import print_pdf

    html_file = tmp_path / "print.html"
    html_file.write_text(page[0])
    pdf = print_pdf(html_file).read_bytes()
    assert pdf[:5] == b"%PDF-"
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    assert pages >= len(EXPERIMENTS_RUN) + 1  # the summary, then one sheet or more each
    if shutil.which("pdftotext"):  # the header is repeated on every page of every sheet
        import subprocess

        text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "print.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout
        printed = text.rstrip("\f").split("\f")
        first_sheet = next(i for i, p in enumerate(printed) if "Experiment #" in p)
        summary = next(i for i, p in enumerate(printed) if p.startswith("Course summary"))
        sheets = printed[first_sheet:summary]  # title and contents, sheets, course summary
        assert first_sheet == 1 and summary > first_sheet
        assert all("Experiment #" in p and "Student Name" in p and "Student ID" in p
                   for p in sheets)
        assert sum("Evaluator remark" in p for p in sheets) == len(EXPERIMENTS_RUN)
        assert not any("Experiment #" in p for p in printed[summary:])


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium here (apt-get install chromium)")
def test_print_layout_in_headless_chromium(page, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    from dlab.report.lab import CHROMIUM_FLAGS

    html_file = tmp_path / "layout.html"
    html_file.write_text(page[0])
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=find_chromium(), headless=True,
            args=[f for f in CHROMIUM_FLAGS if f != "--headless"])
        p = context.new_page()
        p.goto(html_file.resolve().as_uri(), wait_until="load")
        p.set_viewport_size({"width": 390, "height": 844})  # a phone
        overflow = p.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        p.emulate_media(media="print")
        styles = p.evaluate("""Array.from(document.querySelectorAll('table.sheet')).map(t => {
            const s = getComputedStyle(t), h = getComputedStyle(t.tHead);
            const f = t.querySelector('figure');
            return [s.breakBefore, s.breakInside, h.display,
                    f ? getComputedStyle(f).breakInside : 'avoid'];
        })""")
        context.close()
    assert overflow <= 1
    assert styles == [["page", "auto", "table-header-group", "avoid"]] * len(EXPERIMENTS_RUN)
