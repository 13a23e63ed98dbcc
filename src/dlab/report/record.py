"""The one record writer: a program's run, or the whole lab, as Markdown or HTML.

A record is built once as a list of blocks from a run's `metrics.json` (so it can be
rebuilt from the run folder at any time and never says more than the run measured),
then rendered: `to_markdown(blocks)` or `to_html(blocks, ...)`.

Blocks are tuples: ("h", level, text, anchor), ("p", text), ("ul", [text, ...]),
("table", columns, rows, title), ("fig", path, caption), ("quote", text),
("status", status, message), ("raw", html, markdown) (already escaped, from
dlab.report.handin). Text may hold `code` and **bold** spans.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from dlab.provenance import check_manifest
from dlab.registry import EXPERIMENTS, PROGRAMS, ProgramInfo
from dlab.report import handin
from dlab.report.markup import inline
from dlab.steps import notebook_changes
from dlab.uncertainty import Difference
from dlab.verdicts import overall

Block = tuple


def fmt(value: Any) -> str:
    """A number the way a lab record prints it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return f"{value:.3e}"
        if abs(value) >= 100:
            return f"{value:,.1f}"
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value).replace("\n", " ")


def _flat_metrics(metrics: dict[str, Any], prefix: str = "") -> list[list[Any]]:
    rows: list[list[Any]] = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows += _flat_metrics(value, f"{prefix}{key}.")
        else:
            rows.append([f"{prefix}{key}", value])
    return rows


def anchor(program_id: str) -> str:
    return "p" + program_id.replace(".", "-")


def headline(program: ProgramInfo, summary: dict[str, Any] | None) -> str:
    if summary is None or program.headline is None:
        return ""
    value: Any = summary.get("metrics", {})
    for part in program.headline.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else f"{program.headline} = {fmt(value)}"


def verdict_of(summary: dict[str, Any] | None) -> str:
    """met / missed / n/a for a finished run; a run that did not end ok has no verdict."""
    if summary is None:
        return "not run"
    if summary.get("status", "ok") != "ok":
        return "n/a"
    return overall(summary.get("targets") or [])


def target_row(t: dict[str, Any]) -> list[Any]:
    """A checked target as a table row: rule, measured value, threshold or reference,
    verdict word (met / missed / n/a), why."""
    word = target_word(t)
    ref = (f"{t['reference']} = {fmt(t.get('reference_value'))}" if "reference" in t
           else t.get("threshold", ""))
    if isinstance(t.get("interval"), dict):
        ref = f"{ref}; {Difference.from_dict(t['interval']).text()}"
    elif t.get("uncertainty"):
        ref = f"{ref} ({t['uncertainty']})"
    return [t.get("rule", t.get("name")), t.get("value"), ref, word, t.get("why", "")]


def target_word(t: dict[str, Any]) -> str:
    """met / missed / not shown (a comparison inside its noise) / n/a."""
    met = t.get("met")
    if met is False and t.get("shown") is False:
        return "not shown"
    return "met" if met is True else "missed" if met is False else "n/a"


# ------------------------------------------------------------------------ blocks


def _how_run(summary: dict[str, Any]) -> str:
    """How the run was carried out and the command that repeats it, where one does."""
    command = f"`{summary.get('command', '')}`"
    nb = summary.get("notebook")
    if not nb:
        return f"Repeat with: {command}"
    if not nb.get("compared"):
        return ("Run step by step from " + ", ".join(f"`{w}`" for w in nb.get("where", []))
                + "; the code run between the steps was not compared with the package's. "
                f"The package's program at these settings: {command}")
    if nb.get("modified"):
        return (f"**Modified in a notebook** ({notebook_changes(nb)}). The program below is "
                "what the notebook ran, cell by cell; `dlab run` at these settings would "
                "not repeat it, so no command is given.")
    return f"Run step by step in a notebook, every step as in the package. Repeat with: {command}"


def program_blocks(summary: dict[str, Any], program: ProgramInfo, level: int = 1,
                   folder: str = "", run_note: str = "") -> list[Block]:
    """Aim, Procedure, Data, Results, Analysis and Inferences of one run; `run_note`
    says which run this is and how it was chosen."""
    rec = summary.get("record", {})
    b: list[Block] = [("h", level, f"{program.id} {program.title}", anchor(program.id))]
    if run_note:
        b.append(("p", run_note))
    if summary.get("profile") == "smoke":
        b.append(("p", "**Smoke run:** a seconds-long check that the code runs, on a few "
                       "examples; its numbers are not results and its targets are the smoke "
                       "profile's, not the quick or full profile's."))
    if rec.get("stand_in"):
        b.append(("p", f"**Stand-in data:** {rec['stand_in']}"))
    if summary.get("status", "ok") != "ok":
        b.append(("status", summary["status"], summary.get("message", "")))
    if summary.get("changed_files"):
        b.append(("p", "**Changed after the run:** " + "; ".join(summary["changed_files"])
                  + ". This section shows the folder as it is now, not as `dlab run` wrote "
                  "it (its manifest.json records the files as written)."))
    b += [("h", level + 1, "Aim", None), ("p", program.aim)]

    t = summary.get("timings", {})
    b += [("h", level + 1, "Procedure", None), ("p", _how_run(summary)),
          ("p", f"Profile `{summary.get('profile')}`, seed {summary.get('seed')}, device "
                f"`{summary.get('device')}`, {fmt(t.get('seconds', 0.0))} s, started "
                f"{t.get('started')}.")]
    cfg = summary.get("config", {})
    if cfg:
        b.append(("table", ["setting", "value"], [[k, v] for k, v in cfg.items()], None))
    code = rec.get("program") or []
    if code:
        b.append(("h", level + 2, "Program", None))
        b.append(("p", f"The program as it ran: `{code[0].get('function', '')}` in "
                       f"`{code[0].get('module', '')}`, step by step."))
        for step in code:
            edited = step.get("as") == "edited"
            b.append(("p", f"**Step {step['kind']}:** {step['title']}"
                           + (" **(edited in the notebook)**" if edited else "")))
            b.append(("code", step["code"], "python"))
            if edited and step.get("diff"):
                b.append(("p", "The lines changed against the package's step:"))
                b.append(("code", step["diff"], "diff"))

    output = rec.get("output_tail") or []
    if output:
        b.append(("h", level + 2, "Output", None))
        b.append(("p", f"The last {len(output)} lines the run printed (all of them in "
                       f"`{folder}output.log`)."))
        b.append(("code", "\n".join(output), "text"))

    b.append(("h", level + 1, "Data", None))
    b.append(("ul", rec.get("data") or ["(no data set: computed values only)"]))

    b.append(("h", level + 1, "Results", None))
    targets = summary.get("targets") or []
    if targets:
        b.append(("p", f"**Targets: {verdict_of(summary)}** (profile "
                       f"{summary.get('profile')})."))
        b.append(("table", ["target", "measured", "threshold or reference", "verdict", "why"],
                  [target_row(t) for t in targets],
                  "Targets (checked in code against the measured values)"))
    for table in rec.get("tables", []):
        b.append(("table", table["columns"], table["rows"], table["title"]))
    for fig in rec.get("figures", []):
        b.append(("fig", f"{folder}{fig['file']}", fig["caption"]))
    metrics = summary.get("metrics", {})
    if metrics:  # every number, for checking; folded away on screen, not printed
        b.append(("appendix", "All measured values (metrics.json)", ["metric", "value"],
                  _flat_metrics(metrics)))

    b.append(("h", level + 1, "Analysis and Inferences", None))
    b.append(("ul", rec.get("analysis") or ["(nothing measured to analyse)"]))
    for bg in rec.get("background", []):
        b.append(("p", f"**Background** (not measured by this run; {bg['source']}): "
                       f"{bg['text']}"))
    if program.defect:
        b.append(("p", f"**The manual's program:** {program.defect}"))
    for note in rec.get("notes", []):
        b.append(("quote", note))
    return b


def load_summaries(latest: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Each run's metrics.json, with "changed_files": what no longer matches the run
    folder's manifest ([] intact; None when the folder has no manifest)."""
    out = {}
    for pid, folder in latest.items():
        summary = json.loads((folder / "metrics.json").read_text())
        summary["changed_files"] = check_manifest(folder)
        out[pid] = summary
    return out


def lab_blocks(runs_dir: Path, latest: dict[str, Path], student: handin.Student | None = None,
               blank_answers: bool = False, experiment: int | None = None,
               notes: dict[str, str] | None = None) -> list[Block]:
    """The record: every experiment as a hand-in sheet (`dlab.report.handin`: student
    header, aim, pre-lab, its programs, viva-voce and the evaluator's box).

    experiment: only that experiment's sheet, from its first line (a hand-in); else the
    whole course: a title and contents, every sheet, then the course summary.
    notes: {program id: which run its section shows and why} (see `report.choose`).
    """
    summaries = load_summaries(latest)
    notes = notes or {}
    exps = [e for e in EXPERIMENTS if experiment is None or e.number == experiment]
    b: list[Block] = []
    if experiment is None:
        b += [("h", 1, "Deep Learning lab record", "top"),
              ("p", f"{len(summaries)} of {len(PROGRAMS)} programs have a run under "
                    f"`{runs_dir}`; the [course summary](#summary) follows the experiments.")]
        toc = [f"[Experiment {e.number}: {e.title}](#{e.key}): " + ", ".join(
               f"[{p.id}](#{anchor(p.id)})" for p in e.programs if p.id in summaries)
               for e in exps if any(p.id in summaries for p in e.programs)]
        if toc:
            b += [("h", 2, "Contents", "contents"), ("ul", toc)]
    for exp in exps:
        done = [p for p in exp.programs if p.id in summaries]
        if not done:
            continue
        b += handin.sheet_start(exp, summaries, student or handin.Student())
        b.append(("h", 2, f"Experiment {exp.number}: {exp.title}", exp.key))
        b += handin.prelab(exp, runs_dir, blank_answers, chosen=latest)
        for program in done:
            folder = latest[program.id].relative_to(runs_dir).as_posix() + "/"
            b += program_blocks(summaries[program.id], program, level=3, folder=folder,
                                run_note=notes.get(program.id, ""))
        b += handin.sheet_end(exp, runs_dir, blank_answers, chosen=latest)
    if experiment is None:
        b += course_summary(runs_dir, summaries)
    return b


def course_summary(runs_dir: Path, summaries: dict[str, dict[str, Any]]) -> list[Block]:
    """The 32-row table of every program's run, verdict and profile."""
    verdicts = {pid: verdict_of(summaries.get(pid)) for pid in PROGRAMS}
    count = {w: sum(v == w for v in verdicts.values()) for w in ("met", "missed", "n/a")}
    b: list[Block] = [("h", 2, "Course summary", "summary")]
    b.append(("p", f"**{count['met']} of {len(PROGRAMS)} programs meet their targets**; "
                   f"{count['missed']} missed, {count['n/a']} without an applicable target or "
                   f"a finished run, {len(PROGRAMS) - len(summaries)} not run. A target is a "
                   "check in code against the run's own numbers (each program's Targets "
                   "table), for the profile the run used."))
    rows = []
    for pid, program in PROGRAMS.items():
        s = summaries.get(pid)
        link = f"[{pid}](#{anchor(pid)})" if s else pid
        if s is None:
            rows.append([link, program.title, "not run", "", "", "", program.target or "",
                         "", "", ""])
            continue
        v = s.get("versions", {})
        status = s["status"] + (" (files changed since)" if s.get("changed_files") else "")
        rows.append([link, program.title, status, s.get("profile", ""), verdicts[pid],
                     headline(program, s), program.target or "",
                     fmt(s["timings"]["seconds"]) + " s",
                     f"{s['timings']['started'][:10]}, seed {s['seed']}, {s['device']}",
                     f"dlab {v.get('dlab', '?')}, torch {v.get('torch', '-')}"])
    b.append(("table", ["id", "program", "status", "profile", "verdict", "headline", "target",
                        "time", "run", "versions"], rows, "Summary"))
    return b


# -------------------------------------------------------------------- Markdown


def _md_cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|")


def md_table(columns: list[str], rows: list[list[Any]]) -> str:
    head = "| " + " | ".join(_md_cell(c) for c in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "table":
            title = f"**{block[3]}**\n\n" if block[3] else ""
            out.append(title + md_table(block[1], block[2]))
        elif kind == "fig":
            out.append(f"![{block[2]}]({block[1]})\n\n*{block[2]}*")
        elif kind == "quote":
            out.append(f"> {block[1]}")
        elif kind == "status":
            out.append(f"**Status: {block[1]}.** {block[2]}".rstrip())
        elif kind == "appendix":  # (kind, title, columns, rows)
            out.append(f"**{block[1]}**\n\n" + md_table(block[2], block[3]))
        elif kind == "code":  # (kind, text, language)
            fence = "````" if "```" in block[1] else "```"
            out.append(f"{fence}{block[2]}\n{block[1].rstrip()}\n{fence}")
        elif kind == "raw":  # (kind, html, markdown), made by dlab.report.handin
            out.append(block[2])
        out.append("")
    return "\n".join(out)


def program_record(summary: dict[str, Any], program: ProgramInfo) -> str:
    """record.md of one run folder (figures next to it)."""
    return to_markdown(program_blocks(summary, program))


# ------------------------------------------------------------------------ HTML

def _cell(value: Any) -> str:
    text = inline(fmt(value))
    if text in ("ok", "diverged", "interrupted", "failed", "not run", "met", "missed",
                "not shown"):
        return f'<span class="status {text.replace(" ", "-")}">{text}</span>'
    return text


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def to_html(blocks: list[Block], base: Path, title: str, page_css: str = "") -> str:
    """One self-contained page: figures embedded as data URIs, no scripts, no fonts;
    `page_css` sets the printed page (size, footer: `page_style`)."""
    body: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            ident = f' id="{html.escape(block[3])}"' if block[3] else ""
            body.append(f"<h{block[1]}{ident}>{inline(block[2])}</h{block[1]}>")
        elif kind == "p":
            body.append(f"<p>{inline(block[1])}</p>")
        elif kind == "ul":
            items = "".join(f"<li>{inline(i)}</li>" for i in block[1])
            body.append(f"<ul>{items}</ul>")
        elif kind == "table":
            cap = f"<caption>{inline(block[3])}</caption>" if block[3] else ""
            head = "".join(f"<th>{inline(c)}</th>" for c in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                           for row in block[2])
            body.append(f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
                        f"<tbody>{rows}</tbody></table></div>")
        elif kind == "fig":
            path = base / block[1]
            if path.is_file():
                body.append(f'<figure><img src="{_image(path)}" alt="{html.escape(block[2])}">'
                            f"<figcaption>{inline(block[2])}</figcaption></figure>")
            else:
                body.append(f'<p class="missing">Figure missing: {html.escape(block[1])}</p>')
        elif kind == "quote":
            body.append(f"<blockquote>{inline(block[1])}</blockquote>")
        elif kind == "status":
            body.append(f'<p class="banner {html.escape(block[1])}"><strong>Status: '
                        f"{html.escape(block[1])}.</strong> {inline(block[2])}</p>")
        elif kind == "code":
            body.append(f'<pre class="program"><code>{html.escape(block[1].rstrip())}'
                        "</code></pre>")
        elif kind == "appendix":
            head = "".join(f"<th>{inline(c)}</th>" for c in block[2])
            rows = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                           for row in block[3])
            body.append(f'<details class="appendix"><summary>{inline(block[1])}</summary>'
                        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
                        f"<tbody>{rows}</tbody></table></div></details>")
        elif kind == "raw":  # already escaped HTML from dlab.report.handin
            body.append(block[1])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}{handin.CSS}{page_css}</style>\n"
        "</head>\n<body>\n"
        '<main>\n' + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )


_CSS = """
:root { --fg: #1b1f24; --muted: #5b6570; --line: #d5dae0; --bg: #ffffff; --soft: #f4f6f8;
        --ok: #1a7f37; --bad: #b42318; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg);
       font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 62rem; margin: 0 auto; padding: 1rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; margin-top: 0.5rem; }
h2 { font-size: 1.5rem; border-bottom: 2px solid var(--line); padding-bottom: .2rem;
     margin-top: 2.5rem; }
h3 { font-size: 1.25rem; margin-top: 2rem; }
h4 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; color: var(--muted); }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       background: var(--soft); padding: .05em .3em; border-radius: 4px;
       overflow-wrap: anywhere; }
.scroll { overflow-x: auto; margin: .6rem 0 1rem; }
pre.program { background: var(--soft); padding: .6rem .8rem; border-radius: 6px;
              font-size: .8rem; line-height: 1.35; white-space: pre-wrap;
              overflow-wrap: anywhere; }
pre.program code { background: none; padding: 0; font-size: 1em; }
table { border-collapse: collapse; font-size: .9rem; min-width: 50%; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid var(--line); padding: .3rem .55rem; text-align: left;
         vertical-align: top; }
thead th { background: var(--soft); }
tbody tr:nth-child(even) { background: #fafbfc; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .9rem; }
blockquote { margin: .8rem 0; padding: .4rem .9rem; border-left: 4px solid var(--line);
             color: var(--muted); }
.status { font-weight: 600; white-space: nowrap; }
.status.ok, .status.met { color: var(--ok); }
.status.missed, .status.not-shown { color: #fff; background: var(--bad); padding: 0 .3em; border-radius: 3px; } .status.diverged, .status.failed { color: var(--bad); }
.status.interrupted { color: var(--warn); } .status.not-run { color: var(--muted); }
.banner { padding: .5rem .8rem; border-radius: 6px; background: #fff4e5; }
.missing { color: var(--bad); }
a { color: #0b5cad; }
@media (max-width: 40rem) { body { font-size: 15px; } main { padding: .6rem .7rem 3rem; }
  h1 { font-size: 1.5rem; } th, td { padding: .25rem .35rem; } }
@media print { body { font-size: 11pt; } main { max-width: none; padding: 0; }
  a { color: inherit; text-decoration: none; } #contents, #contents + ul { display: none; }
  h2 { break-before: page; } h2, h3, h4 { break-after: avoid; }
  figure, table, .banner { break-inside: avoid; } .scroll { overflow: visible; }
  figure img { max-height: 18cm; } }
"""


COURSE = "23AD2205R Deep Learning"
PAPERS = {"a4": "A4", "letter": "letter"}


def _css_string(text: str) -> str:
    """Text as a CSS string literal: quotes and backslashes escaped, no newlines, and
    < > as CSS escapes so that no student name can close the <style> element."""
    text = " ".join(str(text).split())
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("<", "\\3c ").replace(">", "\\3e ") + '"'  # no </style>


def page_style(paper: str = "a4", footer: str = COURSE) -> str:
    """CSS for the printed record: paper size and margins, the footer (course and
    student) at the bottom left and "page n of m" at the bottom right of every page."""
    if paper not in PAPERS:
        raise ValueError(f"paper {paper!r}: use {' or '.join(PAPERS)}")
    return (f"@page {{ size: {PAPERS[paper]}; margin: 14mm 13mm 16mm; "
            f"@bottom-left {{ content: {_css_string(footer)}; font: 8pt sans-serif; "
            "color: #5b6570; } "
            '@bottom-right { content: "page " counter(page) " of " counter(pages); '
            "font: 8pt sans-serif; color: #5b6570; } }\n"
            "@media print { details.appendix { display: none; } main { max-width: none; "
            "padding: 0; } pre.program { break-inside: auto; } }\n")
