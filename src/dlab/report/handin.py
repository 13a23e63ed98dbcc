"""The parts of the lab record a student hands in, laid out as the course manual's pages.

Each experiment becomes one sheet: a header block (Experiment #, date of its run,
Student ID, Student Name) that repeats at the top of every printed page of the sheet,
the aim, the pre-lab questions with our answers (or space for the student's), the
program sections, the viva-voce questions (answers, or lines for the evaluator) and
the evaluator's box (marks out of 50, remark, signature with date).

The sheet is a table whose <thead> holds the header: browsers repeat a table's header
group on every page the table spans, which is how the header reaches every page.
Blocks are ("raw", html, markdown) tuples rendered by `dlab.report.record`.

Student details come from `--student-name`/`--student-id`, else the environment
(DLAB_STUDENT_NAME, DLAB_STUDENT_ID), else `student.toml` in the runs folder, else
`~/.config/dlab/student.toml` (`$XDG_CONFIG_HOME/dlab/student.toml`); a field found
nowhere stays blank on the page, never filled with an invented name.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from dlab.errors import UsageError
from dlab.questions import load
from dlab.report.evidence import RunReader
from dlab.report.markup import inline

MAX_FIELD = 120
MARKS_OUT_OF = 50
STUDENT_FIELDS = {"name": "DLAB_STUDENT_NAME", "id": "DLAB_STUDENT_ID"}


@dataclass(frozen=True)
class Student:
    name: str = ""
    id: str = ""


def _clean(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{where}: must be text, got {type(value).__name__}")
    text = " ".join(value.split())  # newlines and tabs become single spaces
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise UsageError(f"{where}: contains control characters")
    if len(text) > MAX_FIELD:
        raise UsageError(f"{where}: longer than {MAX_FIELD} characters")
    return text


def read_student_file(path: Path) -> dict[str, str]:
    """`name = "..."` and `id = "..."` from a student.toml; UsageError names file and field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    extra = set(data) - set(STUDENT_FIELDS)
    if extra:
        raise UsageError(f"{path}: unknown field `{sorted(extra)[0]}` (use `name` and `id`)")
    return {k: _clean(v, f"{path}: field `{k}`") for k, v in data.items()}


def config_file(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dlab" / "student.toml"


def resolve_student(name: str | None = None, student_id: str | None = None,
                    runs_dir: str | Path | None = None,
                    env: dict[str, str] | None = None) -> Student:
    """Each field from the first place that has it: options, environment, files."""
    env = os.environ if env is None else env
    given = {"name": name, "id": student_id}
    files = [Path(runs_dir) / "student.toml"] if runs_dir is not None else []
    files.append(config_file(env))
    found: dict[str, str] = {}
    for field, var in STUDENT_FIELDS.items():
        option = "--student-name" if field == "name" else "--student-id"
        if given[field] is not None:
            found[field] = _clean(given[field], option)
        elif env.get(var):
            found[field] = _clean(env[var], var)
    for path in files:
        if len(found) == len(STUDENT_FIELDS):
            break
        if path.is_file():
            for field, value in read_student_file(path).items():
                found.setdefault(field, value)
    return Student(name=found.get("name", ""), id=found.get("id", ""))


# ------------------------------------------------------------------------ blocks

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#])")


def md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def run_date(exp: Any, summaries: dict[str, dict[str, Any]]) -> str:
    """The date of the experiment's latest run (YYYY-MM-DD), or "" when none started."""
    dates = [summaries[p.id].get("timings", {}).get("started", "")[:10]
             for p in exp.programs if p.id in summaries]
    return max((d for d in dates if d), default="")


def sheet_start(exp: Any, summaries: dict[str, dict[str, Any]], student: Student) -> list:
    """Opens the experiment's sheet: the header repeated on every printed page."""
    date = run_date(exp, summaries)
    cells = [("Experiment #", str(exp.number)), ("Student ID", student.id),
             ("Date", date), ("Student Name", student.name)]

    def cell(value: str) -> str:
        return f"<td>{html.escape(value)}</td>" if value else '<td class="blank"></td>'

    rows = "".join(
        "<tr>" + "".join(f"<th>{label}</th>{cell(value)}" for label, value in pair) + "</tr>"
        for pair in (cells[:2], cells[2:]))
    page = (f'<table class="sheet" id="sheet-{exp.key}"><thead><tr><td>'
            f'<table class="sheet-head">{rows}</table></td></tr></thead><tbody><tr><td>')

    def md(value: str) -> str:
        return md_escape(value) if value else "______"

    markdown = (f"| Experiment # | {exp.number} | Student ID | {md(student.id)} |\n"
                f"|---|---|---|---|\n"
                f"| Date | {md(date)} | Student Name | {md(student.name)} |")
    return [("raw", page, markdown)]


def _qa(entries: list, reader: Any, blank: bool, lines: int) -> tuple[str, str]:
    """The questions of one section as an HTML list and as Markdown."""
    items, md = [], []
    for e in entries:
        tag = " (ours)" if e.kind == "ours" else ""
        q = f'<p class="q"><span class="qn">{e.label}.</span>{tag} {inline(e.question)}</p>'
        if blank:
            body = '<div class="write">' + "<span></span>" * lines + "</div>"
            md_body = "\n".join(["", *["    ______________________________"] * lines])
        else:
            body = f'<p class="a">{inline(e.answer)}</p>'
            md_body = f"\n    {e.answer}"
            shown = reader.show(e)
            if shown is not None and shown.measured:
                body += f'<p class="ev">Measured: {inline(shown.text)}</p>'
                md_body += f"\n\n    *Measured:* {shown.text}"
        items.append(f"<li>{q}{body}</li>")
        md.append(f"- **{e.label}.**{tag} {e.question}{md_body}")
    return f'<ol class="qa">{"".join(items)}</ol>', "\n".join(md)


def prelab(exp: Any, runs_dir: Path, blank: bool = False,
           chosen: dict[str, Path] | None = None) -> list:
    """Aim and pre-lab questions of the experiment (after its heading); measured answers
    come from the runs in `chosen` ({program: folder}, the record's own), else from the
    run the record would choose."""
    qset = load(exp.number)
    page, markdown = _qa(qset.section("pre-lab"), RunReader(runs_dir, chosen=chosen), blank,
                         lines=3)
    return [("h", 3, "Aim", None), ("p", qset.aim), ("h", 3, "Pre-lab", None),
            ("raw", page, markdown)]


def sheet_end(exp: Any, runs_dir: Path, blank: bool = False,
              chosen: dict[str, Path] | None = None) -> list:
    """Viva-voce questions (measured answers as in `prelab`), the evaluator's box, and the
    end of the sheet."""
    qset = load(exp.number)
    page, markdown = _qa(qset.section("viva"), RunReader(runs_dir, chosen=chosen), blank,
                         lines=2)
    box = ('<div class="evaluator"><table>'
           '<tr><th>Evaluator remark (if any)</th><td class="blank remark"></td>'
           f'<th>Marks secured</th><td class="marks">____ out of {MARKS_OUT_OF}</td></tr>'
           '<tr><th>Signature of the evaluator with date</th>'
           '<td class="blank" colspan="3"></td></tr></table>'
           '<p class="note">The evaluator asks the viva-voce questions before signing and '
           'posting the marks.</p></div>')
    md_box = ("| Evaluator remark (if any) | | Marks secured | ____ out of "
              f"{MARKS_OUT_OF} |\n|---|---|---|---|\n"
              "| Signature of the evaluator with date | | | |\n\n"
              "*The evaluator asks the viva-voce questions before signing and posting the "
              "marks.*")
    return [("h", 3, "Viva-voce", None), ("raw", page, markdown),
            ("h", 3, "Evaluator", None), ("raw", box, md_box),
            ("raw", "</td></tr></tbody></table>", "")]


CSS = """
table.sheet { width: 100%; min-width: 0; table-layout: fixed; border-collapse: collapse;
              margin: 2.5rem 0 0; font-size: 1rem; }
table.sheet > thead > tr > td, table.sheet > tbody > tr > td { border: 0; padding: 0; }
table.sheet > tbody > tr { background: none; }
table.sheet h2 { margin-top: 1rem; }
table.sheet-head { width: 100%; min-width: 0; margin: 0 0 .4rem; font-size: .9rem; }
table.sheet-head th { width: 16%; background: var(--soft); white-space: nowrap; }
table.sheet-head td { width: 34%; overflow-wrap: anywhere; }
td.blank { min-height: 1.6em; height: 1.6em; }
ol.qa { padding-left: 0; list-style: none; }
ol.qa li { margin: 0 0 .9rem; break-inside: avoid; }
ol.qa .q { margin: 0; font-weight: 600; } ol.qa .qn { color: var(--muted); margin-right: .2rem; }
ol.qa .a { margin: .2rem 0 0 1.6rem; } ol.qa .ev { margin: .2rem 0 0 1.6rem; color: var(--ok); }
.write span { display: block; height: 1.8em; border-bottom: 1px solid var(--line);
              margin-left: 1.6rem; }
.evaluator table { width: 100%; min-width: 0; table-layout: fixed; }
.evaluator th { width: 22%; } .evaluator td.remark { width: 38%; }
.evaluator td.blank { height: 2.6em; }
.evaluator .note { color: var(--muted);
              font-size: .85rem; }
@media print {
  table.sheet { break-before: page; break-inside: auto; margin: 0; }
  table.sheet > thead { display: table-header-group; }
  table.sheet h2 { break-before: avoid; border-bottom: 0; }
  .evaluator, table.sheet-head { break-inside: avoid; }
}
"""
