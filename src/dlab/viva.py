"""`dlab viva` and `dlab quiz`: an experiment's pre-lab and viva-voce questions, answered.

Answers come from the question bank (`dlab.questions`); where an entry has an evidence
link, its sentence is filled from the run of that program the record would show
(`dlab.report.evidence`), or says which command would measure it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from dlab.errors import UsageError
from dlab.questions import Entry, QuestionSet
from dlab.report.evidence import RunReader, Shown

__all__ = ["RunReader", "Shown", "check_runs_dir", "quiz_order", "render", "run_quiz",
           "select", "to_json"]

VERDICT_STYLE = {"right": "green", "incomplete": "yellow", "wrong": "bold red"}
SECTION_TITLE = {"pre-lab": "Pre-lab", "viva": "Viva-voce"}


def check_runs_dir(runs_dir: Path | None) -> Path:
    """The runs folder to read; an explicitly named one must exist."""
    if runs_dir is None:
        return Path("runs")
    if not runs_dir.is_dir():
        raise UsageError(f"--runs {runs_dir}: no such folder; run programs first, e.g. "
                         "`dlab run 5 --out " + str(runs_dir) + "`")
    return runs_dir


def select(qset: QuestionSet, prelab: bool = False, viva: bool = False) -> list[Entry]:
    """The entries to show: both sections unless one is asked for; manual's order, ours last."""
    sections = [s for s, on in (("pre-lab", prelab), ("viva", viva)) if on] or ["pre-lab",
                                                                                  "viva"]
    return [e for s in sections for e in qset.section(s)]


def entry_dict(entry: Entry, shown: Shown | None, answers: bool = True) -> dict[str, Any]:
    """One entry for `--format json`."""
    evidence = None
    if shown is not None and answers:
        evidence = {"program": shown.program, "measured": shown.measured, "text": shown.text,
                    "run": shown.run, "settings": shown.settings}
    return {"id": entry.id, "experiment": entry.experiment, "number": entry.number,
            "kind": entry.kind, "section": entry.section, "question": entry.question,
            "answer": entry.answer if answers else None,
            "manual_verdict": entry.manual if answers else None,
            "manual_note": entry.manual_note if answers else None,
            "evidence": evidence}


def to_json(qset: QuestionSet, entries: list[Entry], reader: RunReader,
            answers: bool = True) -> str:
    return json.dumps([entry_dict(e, reader.show(e), answers) for e in entries],
                      ensure_ascii=False, indent=2) + "\n"


# ------------------------------------------------------------------------- text


def _line(console: Console, text: Text) -> None:
    _block(console, text, indent=0)


def _block(console: Console, text: Text, first: Text | None = None, indent: int = 5) -> None:
    """Print text wrapped to the console's width with a hanging indent, no trailing spaces."""
    width = max(20, console.width - indent)
    for i, line in enumerate(text.wrap(console, width)):
        line.rstrip()
        prefix = first if i == 0 and first is not None else Text(" " * indent)
        console.print(Text.assemble(prefix, line), soft_wrap=True)


def print_entry(console: Console, entry: Entry, shown: Shown | None, answers: bool = True,
                question: bool = True) -> None:
    """One entry: its question (unless `question` is False), answer, verdict, evidence."""
    if question:
        label = Text(f"{entry.label + '.':<5}", style="bold cyan")
        text = Text()
        if entry.kind == "ours":
            text.append("(ours) ", style="magenta")
        text.append(entry.question, style="bold")
        _block(console, text, first=label)
    if not answers:
        return
    _block(console, Text(entry.answer))
    if entry.manual is not None:
        verdict = Text("Manual's answer: ", style="dim")
        verdict.append(entry.manual, style=VERDICT_STYLE[entry.manual])
        verdict.append(f": {entry.manual_note}" if entry.manual_note else ".")
        _block(console, verdict)
    if shown is not None:
        note = Text("Measured: " if shown.measured else "Not measured yet: ",
                    style="green" if shown.measured else "dim")
        note.append(shown.text)
        if shown.measured:
            note.append(f" ({shown.run})", style="dim")
            if shown.settings:
                note.append(f" Careful, {shown.settings}.", style="yellow")
        _block(console, note)


def render(console: Console, qset: QuestionSet, entries: list[Entry], reader: RunReader,
           answers: bool = True) -> None:
    """Print the questions (and answers) of one experiment, section by section."""
    _line(console, Text(f"Experiment {qset.experiment}: {qset.title}", style="bold"))
    _line(console, Text(f"Aim: {qset.aim}"))
    shown = {e.id: reader.show(e) for e in entries}
    linked = [s for s in shown.values() if s is not None]
    counts = (f"{qset.count('pre-lab')} pre-lab and {qset.count('viva')} viva-voce questions "
              f"from the manual, {qset.count('ours')} of ours")
    if answers:
        counts += (f"; answers backed by your runs under {reader.runs_dir}/: "
                   f"{sum(s.measured for s in linked)} of {len(linked)} with a run link")
    _line(console, Text(counts + ".", style="dim"))
    section = None
    for entry in entries:
        if entry.section != section:
            section = entry.section
            console.print()
            _line(console, Text(SECTION_TITLE[section], style="bold underline"))
        print_entry(console, entry, shown[entry.id], answers)
    missing = sorted({s.program for s in linked if not s.measured},
                     key=lambda p: tuple(int(x) for x in p.split(".")))
    if answers and missing:
        console.print()
        _line(console, Text(f"To measure the rest: dlab run {' '.join(missing)} "
                           f"--out {reader.runs_dir}", style="dim"))


# ------------------------------------------------------------------------- quiz


def quiz_order(entries: list[Entry], seed: int, count: int | None) -> list[Entry]:
    """A seeded random order of the entries, the first `count` of them."""
    if count is not None and count < 1:
        raise UsageError(f"--count must be 1 or more, got {count}")
    order = list(entries)
    random.Random(seed).shuffle(order)
    return order if count is None else order[:count]


def run_quiz(console: Console, qset: QuestionSet, entries: list[Entry], reader: RunReader,
             read_line: Callable[[], str | None], seed: int, echo: bool = False) -> tuple[int, int]:
    """Ask each entry, wait for Enter, reveal, ask y/n. Returns (known, asked).

    `read_line` returns one line of input without its newline, or None at the end of
    input (then the quiz stops where it is). With `echo` the lines read are printed, so a
    transcript of piped input reads like a session at the keyboard.
    """

    def ask(prompt: str) -> str | None:
        console.print(Text(prompt, style="dim"), end="", soft_wrap=True)
        console.file.flush()
        line = read_line()
        if echo or line is None:
            console.print("" if line is None else line, soft_wrap=True, markup=False)
        return line

    n = len(entries)
    _line(console, Text(f"Quiz: experiment {qset.experiment}, {qset.title}: {n} question"
                       f"{'s' if n != 1 else ''} (seed {seed}; the same seed gives the same "
                       "order).", style="bold"))
    known, asked, revisit = 0, 0, []
    for i, entry in enumerate(entries, 1):
        console.print()
        head = Text(f"{i}/{n}  ", style="bold cyan")
        head.append(f"{SECTION_TITLE[entry.section]} {entry.label}"
                    f"{' (ours)' if entry.kind == 'ours' else ''}: ", style="cyan")
        head.append(entry.question, style="bold")
        _block(console, head, indent=0)
        if ask("Press Enter to see the answer. ") is None:
            break
        print_entry(console, entry, reader.show(entry), question=False)
        reply = ask("Did you know it? [y/n] ")
        if reply is None:
            break
        asked += 1
        if reply.strip().lower().startswith("y"):
            known += 1
        else:
            revisit.append(entry.id)
    console.print()
    if asked < n:
        _line(console, Text(f"Input ended after {asked} of {n} questions.", style="dim"))
    _line(console, Text(f"You marked {known} of {asked} as known.", style="bold"))
    if revisit:
        _line(console, Text(f"To revisit: {', '.join(revisit)}", style="dim"))
    return known, asked
