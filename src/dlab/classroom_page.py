"""class.html: the class table as one self-contained page (inline CSS and JavaScript, no
network): a row per student, a column per program, each cell coloured by its verdict
and linking to the student's details below; a header click sorts the rows; printed, it
fits A4 landscape (the header row repeats on every page)."""

from __future__ import annotations

import html
from typing import Any

from dlab.classroom import (
    MET,
    MISSED,
    MODIFIED,
    NO_TARGET,
    NOT_RUN,
    RANK,
    SMOKE,
    UNREADABLE,
    UNVERIFIED,
    VERDICTS,
    Cell,
    ClassTable,
    Student,
    summary_lines,
    target_text,
)
from dlab.registry import EXPERIMENTS, PROGRAMS
from dlab.version import __version__

# verdict -> (CSS class, symbol in the table, background)
LOOK = {
    MET: ("met", "\u2713", "#c8e6c9"),
    MISSED: ("missed", "\u2717", "#ffcdd2"),
    NO_TARGET: ("notarget", "\u25cb", "#e0e0e0"),
    SMOKE: ("smoke", "S", "#fff59d"),
    MODIFIED: ("modified", "M", "#e1bee7"),
    UNVERIFIED: ("unverified", "!", "#ff8a65"),
    UNREADABLE: ("unreadable", "?", "#90a4ae"),
    NOT_RUN: ("notrun", "\u00b7", "#ffffff"),
}
COPY_MARK = "\u2261"  # identical to: the same files as another student's

CSS = """
body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.2rem;
       color: #212121; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } h2 { font-size: 1.15rem; margin: 1.6rem 0 .4rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
.meta, .note { color: #555; } ul.lines { margin: .3rem 0; padding-left: 1.2rem; }
ul.legend { list-style: none; padding: 0; margin: .5rem 0; display: flex; flex-wrap: wrap;
            gap: .3rem 1rem; }
.sw { display: inline-block; min-width: 1.3em; text-align: center; border: 1px solid #bbb;
      margin-right: .3em; }
table.grid { border-collapse: collapse; font-size: 12px; }
.grid th, .grid td { border: 1px solid #cfcfcf; padding: 1px 3px; text-align: center;
                     white-space: nowrap; }
.grid thead th { background: #f1f1f1; position: sticky; top: 0; cursor: pointer;
                 user-select: none; }
.grid thead tr.exp th { top: 0; cursor: default; font-weight: normal; color: #555; }
.grid thead tr.cols th { top: 1.45em; }
.grid th.sorted-asc::after { content: " \\25b4"; } .grid th.sorted-desc::after { content: " \\25be"; }
.grid td.id, .grid td.name { text-align: left; } .grid td.name { max-width: 11em;
  overflow: hidden; text-overflow: ellipsis; }
.grid td.c { width: 1.6em; padding: 0; } .grid td.c a { display: block; color: #212121;
  text-decoration: none; padding: 1px 2px; }
.grid .e0 { border-left: 2px solid #888; }
.grid td.copy { outline: 2px dashed #b71c1c; outline-offset: -3px; font-weight: bold; }
.grid td.differs a::after { content: "\\2260"; color: #b71c1c; }
.grid td.num { text-align: right; }
table.detail { border-collapse: collapse; width: 100%; font-size: 12px; margin-top: .3rem; }
.detail th, .detail td { border: 1px solid #ddd; padding: 2px 4px; vertical-align: top;
                         text-align: left; }
.detail th { background: #f7f7f7; } .detail td.v { white-space: nowrap; }
.detail col.p { width: 15%; } .detail col.v { width: 8%; } .detail col.r { width: 13%; }
.detail col.t { width: 32%; }
.detail ul { margin: 0; padding-left: 1.1rem; }
.student { border-top: 1px solid #ccc; } .problem { color: #b71c1c; }
pre.rubric { background: #f7f7f7; padding: .5rem; font-size: 11px; }
:target { background: #fffde7; }
@page { size: A4 landscape; margin: 8mm; }
@media print {
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { margin: 0; font-size: 8pt; }
  table.grid { font-size: 6.5pt; } .grid td.name { max-width: 7em; }
  .grid thead th { position: static; }
  .grid thead { display: table-header-group; } .grid tr, .detail tr { break-inside: avoid; }
  .grid td.c a, a { color: inherit; text-decoration: none; }
  h2.students { break-before: page; } h3 { break-after: avoid; }
  table.detail { font-size: 7pt; } .detail td.v { white-space: normal; }
  .noprint { display: none; }
}
"""
for _verdict, (_cls, _sym, _bg) in LOOK.items():
    CSS += f".{_cls} {{ background: {_bg}; }}\n"

SORT_JS = """
(function () {
  var table = document.getElementById('class');
  var heads = table.tHead.rows[table.tHead.rows.length - 1].cells;
  Array.prototype.forEach.call(heads, function (th, i) {
    th.title = (th.title ? th.title + ' - ' : '') + 'click to sort';
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var up = th.className.indexOf('sorted-asc') < 0;
      Array.prototype.forEach.call(heads, function (h) {
        h.className = h.className.replace(/ ?sorted-(asc|desc)/, ''); });
      th.className += up ? ' sorted-asc' : ' sorted-desc';
      var num = th.getAttribute('data-type') === 'num';
      function key(r) { var c = r.cells[i], k = c.getAttribute('data-sort');
        k = k === null ? c.textContent.trim() : k;
        return num ? (k === '' ? -1 : parseFloat(k)) : k.toLowerCase(); }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), d = num ? x - y : (x < y ? -1 : x > y ? 1 : 0);
        return (up ? d : -d) || (a.getAttribute('data-i') - b.getAttribute('data-i')); });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _cell_title(s: Student, c: Cell) -> str:
    parts = [f"{s.id} {c.program}: {c.verdict}"]
    if c.profile:
        parts.append(f"{c.profile}, seed {c.seed}, {c.started[:16].replace('T', ' ')}")
    if c.targets:
        parts.append(f"targets met {c.targets_met} of {c.targets_applicable}")
    if c.rerun:
        parts.append(f"rerun: {c.rerun}")
    if c.copies:
        parts.append(f"same files as {', '.join(c.copies)}")
    parts += c.problems[:2]
    return " | ".join(parts)


def _anchor(index: int, pid: str | None = None) -> str:
    return f"s{index}" + (f"-{pid}" if pid else "")


def _shown(c: Cell) -> bool:
    """Whether a program has a row in the student's details."""
    return c.verdict != NOT_RUN or bool(c.problems or c.source)


def _row(index: int, s: Student, table: ClassTable) -> str:
    cells = [f'<td class="id">{_e(s.id)}</td>', f'<td class="name" title="{_e(s.name)}">'
             f"{_e(s.name)}</td>"]
    for k, pid in enumerate(table.programs):
        c = s.cells[pid]
        cls, sym, _ = LOOK[c.verdict]
        extra = (" copy" if c.copies or c.record_copies else "") + (
            " differs" if c.rerun and c.rerun != "verified" else "") + (
            " e0" if k % 2 == 0 else "")
        mark = COPY_MARK if c.copies or c.record_copies else ""
        href = _anchor(index, pid if _shown(c) else None)
        cells.append(f'<td class="c {cls}{extra}" data-sort="{RANK[c.verdict]}">'
                     f'<a href="#{href}" title="{_e(_cell_title(s, c))}">{sym}{mark}</a></td>')
    met = s.count(MET)
    total = sum(v for v in s.scores.values() if v is not None)
    cells.append(f'<td class="num e0">{met}</td>')
    cells.append(f'<td class="num">{total:g}</td>')
    return f'<tr data-i="{index}">' + "".join(cells) + "</tr>"


def _grid(table: ClassTable) -> str:
    exp_row = ['<th colspan="2"></th>'] + [
        f'<th colspan="{len(e.programs)}" class="e0" title="{_e(e.title)}">{e.number}</th>'
        for e in EXPERIMENTS] + ['<th colspan="2" class="e0"></th>']
    cols = ['<th>Student ID</th>', "<th>Name</th>"] + [
        f'<th class="{"e0" if k % 2 == 0 else ""}" data-type="num" '
        f'title="{_e(PROGRAMS[pid].title)}">{_e(pid)}</th>'
        for k, pid in enumerate(table.programs)] + [
        '<th class="e0" data-type="num" title="programs whose targets are all met">met</th>',
        '<th data-type="num" title="sum over the experiments handed in of the suggested '
        'scores, each out of 50 (gradebook.csv)">score sum</th>']
    body = "\n".join(_row(i, s, table) for i, s in enumerate(table.students))
    return ('<table class="grid" id="class"><thead><tr class="exp">' + "".join(exp_row)
            + '</tr><tr class="cols">' + "".join(cols) + "</tr></thead>\n<tbody>\n" + body
            + "\n</tbody></table>")


def _legend(table: ClassTable) -> str:
    counts = table.counts()
    items = [f'<li><span class="sw {LOOK[v][0]}">{LOOK[v][1]}</span>{_e(v)} '
             f"<b>{counts[v]}</b></li>" for v in VERDICTS]
    items.append(f'<li><span class="sw copy" style="outline:2px dashed #b71c1c">'
                 f"{COPY_MARK}</span>same files as another student's</li>")
    items.append('<li><span class="sw">\u2260</span>rerun differs</li>')
    return '<ul class="legend">' + "".join(items) + "</ul>"


def _targets(c: Cell) -> str:
    if not c.targets:
        return ""
    return "<ul>" + "".join(f"<li>{_e(target_text(t))}</li>" for t in c.targets) + "</ul>"


def _detail_row(index: int, s: Student, c: Cell) -> str:
    facts = []
    if c.profile:
        facts.append(f"{_e(c.profile)}, seed {_e(c.seed)}")
    if c.started:
        facts.append(f"ran {_e(c.started[:16].replace('T', ' '))}")
    if c.manifest:
        facts.append(f"manifest {_e(c.manifest)}")
    if c.same_code is False:
        facts.append("made by other code than this dlab")
    notes = [f'<li class="problem">{_e(p)}</li>' for p in c.problems]
    if c.rerun:
        notes.append(f"<li>rerun: {_e(c.rerun)}"
                     + (f" ({_e(c.rerun_details)})" if c.rerun_details else "") + "</li>")
    if c.copies:
        notes.append(f'<li class="problem">{COPY_MARK} same files as {_e(", ".join(c.copies))}:'
                     f" {_e(c.copy_why)}</li>")
    if c.note:
        notes.append(f"<li>{_e(c.note)}</li>")
    if c.source:
        notes.append(f"<li>{_e(c.source)}" + (f": {_e(c.run)}" if c.run else "") + "</li>")
    cls, sym, _ = LOOK[c.verdict]
    return (f'<tr id="{_anchor(index, c.program)}"><th>{_e(c.program)}<br>'
            f'<span class="note">{_e(PROGRAMS[c.program].title)}</span></th>'
            f'<td class="v {cls}">{sym} {_e(c.verdict)}<br>{c.points:g} points</td>'
            f"<td>{'<br>'.join(facts)}</td><td>{_targets(c)}</td>"
            f"<td><ul>{''.join(notes)}</ul></td></tr>")


def _student(index: int, s: Student, table: ClassTable) -> str:
    shown = [s.cells[pid] for pid in table.programs if _shown(s.cells[pid])]
    idle = [pid for pid in table.programs if not _shown(s.cells[pid])]
    scores = ", ".join(f"{n}: {v:g}" for n, v in s.scores.items() if v is not None)
    parts = [f'<section class="student" id="{_anchor(index)}"><h3>{_e(s.id)}'
             + (f" \u2014 {_e(s.name)}" if s.name else "") + "</h3>",
             f'<p class="note">Read: {_e(", ".join(s.sources) or "nothing")}. '
             f"Suggested scores by experiment: {_e(scores or 'none')}.</p>"]
    problems = list(s.problems) + [
        f"the record of experiment {exp} is the same text as that of {', '.join(ids)} "
        "(apart from the student lines)" for exp, ids in s.record_copies.items()]
    if problems:
        parts.append('<ul class="lines">' + "".join(
            f'<li class="problem">{_e(p)}</li>' for p in problems) + "</ul>")
    if shown:
        parts.append('<table class="detail"><colgroup><col class="p"><col class="v">'
                     '<col class="r"><col class="t"><col></colgroup>'
                     '<thead><tr><th>program</th><th>verdict</th>'
                     "<th>run</th><th>targets</th><th>notes</th></tr></thead><tbody>"
                     + "".join(_detail_row(index, s, c) for c in shown) + "</tbody></table>")
    if idle:
        parts.append(f'<p class="note">Not run: {_e(", ".join(idle))}.</p>')
    return "".join(parts) + "</section>"


def class_page(table: ClassTable) -> str:
    """The whole page as text."""
    lines = summary_lines(table)
    notes = "".join(f"<li>{_e(line)}</li>" for line in lines[1:] + table.lines)
    students = "\n".join(_student(i, s, table) for i, s in enumerate(table.students))
    r = table.rubric
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Class table: {_e(table.folder.name)}</title>
<style>{CSS}</style></head>
<body>
<h1>Class table: {_e(table.folder.name)}</h1>
<p class="meta">{len(table.students)} students, {len(table.programs)} programs; read from
{_e(table.folder)} on {_e(table.made[:16].replace("T", " "))} UTC in {table.seconds:.1f} s by
dlab {_e(__version__)}.</p>
{_legend(table)}
<ul class="lines">{notes}</ul>
<p class="note noprint">Click a column header to sort; click a cell for the student's
details.</p>
{_grid(table)}
<h2>Suggested scores</h2>
<p class="note">Each experiment's suggestion (gradebook.csv) is out of {r.out_of:g} and at
most {r.suggested_max:g}: the {r.viva:g} viva-voce marks are the evaluator's and never part
of it. Blank: nothing of the experiment was handed in, or a part of it cannot be read.
The rubric used:</p>
<pre class="rubric">{_e(r.text)}</pre>
<h2 class="students">Students</h2>
{students}
<script>{SORT_JS}</script>
</body></html>
"""
