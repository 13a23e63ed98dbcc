"""`dlab viva --format gift|qti|csv`: every experiment's questions read back by a real GIFT
parser (pygiftparser), by xml.etree from the QTI zip, and by the csv module."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

import pytest

from dlab.questions import Entry, load, load_all
from dlab.quiz_export import gift_question, qti_names, to_csv, to_gift, to_qti
from dlab.viva import select

QTI = "{http://www.imsglobal.org/xsd/ims_qtiasiv1p2}"
MANIFEST = "{http://www.imsglobal.org/xsd/imscp_v1p1}"
SPECIAL = Entry(experiment=5, kind="ours", number=9, section="viva",
                question="Is {0, 1} = B: a set ~ # and C:\\temp \\{?",
                answer="Yes: y ∈ {0, 1}; ##### marks #1 = x ~ y, a\\b, and \\= stays \\=.")


# pygiftparser 1.1 runs in a child process: on import it calls the deprecated
# locale.getdefaultlocale, installs `_` into builtins and sets gettext's domain, and it
# imports `markdown` only to render HTML, where the Markdown its MarkdownSuperscript
# dependency pins (<3.1) needs pkg_resources, which current setuptools no longer has.
# Its parsing is its own regular expressions, so a stand-in `markdown` module will do.
_PARSE = """
import io, json, sys, types
sys.modules["markdown"] = types.ModuleType("markdown")
from pygiftparser.parser import parseFile
json.dump([[{"title": q.title, "category": q.cat, "valid": q.valid, "text": q.text,
             "type": type(q.answers).__name__, "feedback": q.generalFeedback}
            for q in parseFile(io.StringIO(text))] for text in json.load(sys.stdin)],
          sys.stdout)
"""


def parse_gift(*texts: str) -> list[list[dict]]:
    """Each GIFT text's questions as pygiftparser reads them."""
    done = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", _PARSE],
                          input=json.dumps(texts), capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# GIFT text as written: no reserved character or backslash but in an escape pair
ESCAPED = re.compile(r"(?:[^\\~=#{}:\n]|\\[\\~=#{}:n])*")


def unescape(text: str) -> str:
    """GIFT's escapes read as Moodle reads them (qformat_gift::escapedchar_pre/post):
    `\\\\` is a backslash, `\\n` a newline, and a backslash before ~ = # { } : that character.
    pygiftparser leaves text escaped (its transformSpecials, used when rendering, does
    not know `\\\\`)."""
    return re.sub(r"\\([\\~=#{}:n])", lambda m: "\n" if m[1] == "n" else m[1], text)


def _items(data: bytes, qset) -> list[ET.Element]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return ET.fromstring(zf.read(qti_names(qset)[1])).findall(f".//{QTI}item")


def _html_text(mattext: ET.Element) -> str:
    assert mattext.get("texttype") == "text/html"
    assert mattext.text.startswith("<p>") and mattext.text.endswith("</p>")
    return html.unescape(mattext.text[3:-4])


# --------------------------------------------------------------------------- GIFT


def test_gift_round_trip_counts_every_experiment():
    qsets = load_all()
    parsed = parse_gift(*(to_gift(q, select(q)) for q in qsets))
    counts = [len(questions) for questions in parsed]
    print("GIFT questions per experiment:", counts)
    assert counts == [len(q.section("pre-lab")) + len(q.section("viva")) for q in qsets]
    for qset, questions in zip(qsets, parsed, strict=True):
        entries = select(qset)
        assert [q["title"] for q in questions] == [e.id for e in entries]
        assert all(q["valid"] and q["type"] == "Essay" for q in questions)
        assert all(q["category"].startswith("$course$/top/dlab/Experiment") for q in questions)
        assert all(ESCAPED.fullmatch(q[k]) for q in questions for k in ("text", "feedback"))
        assert [unescape(q["text"]) for q in questions] == [e.question for e in entries]
        assert [unescape(q["feedback"]) for q in questions] == [e.answer for e in entries]


def test_gift_category_names_the_experiment():
    qset = load(7)
    assert ("$CATEGORY: $course$/top/dlab/Experiment 7: Backpropagation: forward and "
            "backward pass\n") in to_gift(qset, select(qset))


def test_gift_special_characters_survive():
    bank = {e.id: e for q in load_all() for e in q.entries}
    cases = [bank["1.O2"], bank["9.P4"], SPECIAL]  # `=` in 1.O2's question, `{0, 1}` in 9.P4's
    assert "=" in cases[0].question and "{" in cases[1].answer
    text = "\n".join(gift_question(e.id, e.question, e.answer) for e in cases)
    # a title with every reserved character but a closing colon (pygiftparser ends a
    # title at the first `::`, even after a backslash; Moodle does not)
    text += "\n" + gift_question("a{b}=c~d#e:f\\g", "Why?", "Because.")
    [parsed] = parse_gift(text)
    assert len(parsed) == 4
    for q, e in zip(parsed[:3], cases, strict=True):
        assert all(ESCAPED.fullmatch(q[k]) for k in ("title", "text", "feedback"))
        assert (q["title"], unescape(q["text"]), unescape(q["feedback"])) == (
            e.id, e.question, e.answer)
    assert ESCAPED.fullmatch(parsed[3]["title"])
    assert unescape(parsed[3]["title"]) == "a{b}=c~d#e:f\\g"
    assert "\\#\\#\\#\\#\\#" in text and "{####" in text  # only the real separator is bare


def test_gift_keeps_each_question_on_one_line():
    # a blank line ends a GIFT question, so line breaks are written as Moodle writes them
    assert (gift_question("5.P1", "a\n\nb", "c\r\nd")
            == "::5.P1::[plain]a\\n\\nb {####[plain]c\\nd}\n")


def test_gift_without_answers_has_no_feedback():
    qset = load(5)
    text = to_gift(qset, select(qset), answers=False)
    [parsed] = parse_gift(text)
    assert len(parsed) == len(select(qset)) and "####" not in text
    assert all(q["feedback"] == "" and q["type"] == "Essay" for q in parsed)


# ---------------------------------------------------------------------------- QTI


@pytest.mark.parametrize("number", range(1, 17))
def test_qti_zip_items_and_manifest(number):
    qset = load(number)
    entries = select(qset)
    data = to_qti(qset, entries)
    ident, path = qti_names(qset)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == sorted(["imsmanifest.xml", path])
        manifest = ET.fromstring(zf.read("imsmanifest.xml"))
    resource = manifest.find(f"{MANIFEST}resources/{MANIFEST}resource")
    assert resource.get("type") == "imsqti_xmlv1p2" and resource.get("identifier") == ident
    assert resource.find(f"{MANIFEST}file").get("href") == path
    items = _items(data, qset)
    assert len(items) == len(entries)
    for item, entry in zip(items, entries, strict=True):
        fields = {f.findtext(f"{QTI}fieldlabel"): f.findtext(f"{QTI}fieldentry")
                  for f in item.iter(f"{QTI}qtimetadatafield")}
        assert fields["question_type"] == "essay_question" and item.get("title") == entry.id
        assert _html_text(item.find(f"{QTI}presentation/{QTI}material/{QTI}mattext")) == \
            entry.question
        feedback = item.find(f"{QTI}itemfeedback")
        assert feedback.get("ident") == "general_fb"
        assert _html_text(feedback.find(f".//{QTI}mattext")) == entry.answer
    assert to_qti(qset, entries) == data  # the same bytes each time


def test_qti_escapes_markup_and_drops_feedback_without_answers():
    qset = load(5)
    tricky = Entry(experiment=5, kind="ours", number=9, section="viva",
                   question="Is α < 2/λ & x > 0 <b>bold</b>?", answer="<script>&amp;</script>")
    [item] = _items(to_qti(qset, [tricky]), qset)
    assert _html_text(item.find(f".//{QTI}mattext")) == tricky.question
    assert _html_text(item.find(f"{QTI}itemfeedback//{QTI}mattext")) == tricky.answer
    items = _items(to_qti(qset, select(qset), answers=False), qset)
    assert len(items) == len(select(qset))
    assert all(i.find(f"{QTI}itemfeedback") is None for i in items)
    assert all(i.find(f".//{QTI}displayfeedback") is None for i in items)


# ---------------------------------------------------------------------------- CSV


def test_csv_rows_and_unicode():
    qset = load(5)
    entries = select(qset)
    text = to_csv(qset, entries)
    raw = text.encode("utf-8")
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == len(entries)
    assert list(rows[0]) == ["experiment", "label", "section", "type", "question", "answer"]
    by_label = {r["label"]: r for r in rows}
    aim = [e for e in entries if "←" in e.answer or "∂" in e.question + e.answer]
    assert aim, "experiment 5 has answers with non-ASCII mathematics"
    for e in entries:
        row = by_label[e.label]
        assert (row["experiment"], row["section"], row["type"], row["question"],
                row["answer"]) == ("5", e.section, "essay", e.question, e.answer)
    assert "θ ← θ − α ∇L(θ)" in by_label["P1"]["answer"]
    bare = list(csv.reader(io.StringIO(to_csv(qset, entries, answers=False).lstrip("\ufeff"))))
    assert bare[0] == ["experiment", "label", "section", "type", "question"]
    assert len(bare) == len(entries) + 1


# ---------------------------------------------------------------------------- CLI


def test_cli_gift_to_stdout_parses(cli):
    code, out, err = cli("viva", "5", "--format", "gift")
    assert code == 0 and err == ""
    code, sheet, _ = cli("viva", "5", "--format", "gift", "--prelab", "--no-answers")
    assert code == 0 and "####" not in sheet
    full, prelab = parse_gift(out, sheet)
    assert len(full) == len(select(load(5))) and len(prelab) == len(load(5).section("pre-lab"))


def test_cli_qti_needs_out_zip(cli, tmp_path):
    code, out, err = cli("viva", "5", "--format", "qti")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--out FILE.zip" in err
    code, _, err = cli("viva", "5", "--format", "qti", "--out", tmp_path / "quiz.txt")
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "quiz.txt").exists()
    target = tmp_path / "sub" / "quiz.zip"
    code, out, err = cli("viva", "5", "--format", "qti", "--out", target)
    assert code == 0 and err == "" and str(target) in out
    assert zipfile.is_zipfile(target)
    assert len(_items(target.read_bytes(), load(5))) == len(select(load(5)))
    assert [p.name for p in target.parent.iterdir()] == ["quiz.zip"]  # no temporary left


def test_cli_csv_and_gift_to_out_file(cli, tmp_path):
    code, _, _ = cli("viva", "9", "--format", "csv", "--out", tmp_path / "q.csv")
    assert code == 0
    assert (tmp_path / "q.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    code, _, _ = cli("viva", "9", "--format", "gift", "--out", tmp_path / "q.gift")
    assert code == 0
    assert (tmp_path / "q.gift").read_text(encoding="utf-8") == to_gift(load(9), select(load(9)))


@pytest.mark.parametrize("args, message", [
    (("--format", "yaml"), "use text, json, gift, qti or csv"),
    (("--format", "gift", "--runs", "runs"), "leave out --runs, --pick and --allow-smoke"),
    (("--format", "csv", "--out", "."), "is a folder"),
])
def test_cli_bad_export_options(cli, args, message):
    code, out, err = cli("viva", "5", *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err
