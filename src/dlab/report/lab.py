"""`dlab report`: the latest run of each program, collected into one lab record.

Writes `lab-record.md` (figures linked) and `lab-record.html` (one self-contained page:
figures embedded, no scripts, fonts or network requests) into the runs folder, and a
PDF of the page when asked and a local Chromium is found.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from dlab.errors import UsageError
from dlab.io import atomic_path, escape_markup
from dlab.registry import EXPERIMENTS, PROGRAMS
from dlab.report.choose import choose
from dlab.report.handin import Student
from dlab.report.record import COURSE, PAPERS, lab_blocks, page_style, to_html, to_markdown
from dlab.runs import (
    check_writable,
    is_locked,
    make_folders,
    remove_created,
)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _warn(message: str) -> None:
    print(f"dlab: warning: {message}", file=sys.stderr)


def write_report(runs_dir: str | Path = "runs", out: str | Path | None = None,
                 pdf: bool = False, student: Student | None = None,
                 blank_answers: bool = False,
                 warn: Callable[[str], None] | None = None, *,
                 experiment: int | None = None, picks: dict[str, Path] | None = None,
                 allow_smoke: bool = False, paper: str = "a4") -> dict[str, Path]:
    """Write the record; return the paths written ({"markdown", "html"[, "pdf"]}).

    `out` names the HTML file (default RUNS_DIR/lab-record.html, or
    RUNS_DIR/experiment-NN.html for one experiment); the Markdown goes beside it with the
    suffix .md and links figures relative to RUNS_DIR. `student` fills the header of
    every experiment's sheet and the printed footer (blank fields without it);
    `blank_answers` leaves the pre-lab and viva answers for the student and evaluator.
    `experiment` makes the hand-in of one experiment; the run of each program is chosen
    by `dlab.report.choose` (`picks`, `allow_smoke`); `paper` is "a4" or "letter".
    """
    runs_dir = Path(runs_dir)
    warn = warn or _warn
    if not runs_dir.is_dir():
        raise UsageError(f"no runs folder at {runs_dir}; run programs first, e.g. `dlab run 1`")
    if paper not in PAPERS:
        raise UsageError(f"--paper {paper}: use a4 or letter")
    ids = [pid for pid, p in PROGRAMS.items() if experiment is None or p.experiment == experiment]
    if not ids:
        raise UsageError(f"--experiment {experiment}: there are experiments 1 to 16")
    default_name = f"experiment-{experiment:02d}.html" if experiment else "lab-record.html"
    html_path = Path(out) if out else runs_dir / default_name
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out {html_path}: the record page must be an .html file")
    if html_path.is_dir():
        raise UsageError(f"--out {html_path}: is a folder; give the page's file name, e.g. "
                         f"--out {html_path / default_name}")
    check_writable(html_path.parent, "--out")  # creates nothing
    chosen, skipped = choose(runs_dir, ids, picks, allow_smoke, warn)
    latest = {pid: c.folder for pid, c in chosen.items()}
    if not latest:
        what = f"experiment {experiment}" if experiment else "any program"
        raise UsageError(f"no runs of {what} under {runs_dir} to put in a record"
                         + ("; " + "; ".join(skipped) if skipped else
                            "; run programs first, e.g. `dlab run 1`"))
    for line in skipped:
        warn(f"left out {line}")
    notes = {pid: c.note for pid, c in chosen.items()}
    blocks = lab_blocks(runs_dir, latest, student=student, blank_answers=blank_answers,
                        experiment=experiment, notes=notes)
    blocks = _unfinished(blocks, latest)
    md_path = html_path.with_suffix(".md")
    if md_path.parent.resolve() == runs_dir.resolve():
        markdown = to_markdown(_md_safe(blocks))
    else:  # figure links in the Markdown are relative to the runs folder
        markdown = to_markdown(_md_safe(_relink(blocks, runs_dir, md_path.parent)))
    title = (f"Experiment {experiment}: {EXPERIMENTS[experiment - 1].title}" if experiment
             else "Deep Learning lab record")
    who = " · ".join(x for x in ((student or Student()).name, (student or Student()).id) if x)
    footer = f"{COURSE} · {title}" + (f" · {who}" if who else "")
    html = to_html(blocks, runs_dir, title, page_style(paper, footer))
    _write_both({md_path: markdown, html_path: html})
    written = {"markdown": md_path, "html": html_path}
    if pdf:
        written["pdf"] = print_pdf(html_path)
    return written


def _write_both(files: dict[Path, str]) -> None:
    """Write every file to a temporary name first and rename them only when all are
    written: a full or read-only disk leaves neither file half-written (one line, exit 2)."""
    created = make_folders(next(iter(files)).parent) if files else []
    temps: dict[Path, Path] = {}
    try:
        for path, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps[path] = Path(tmp)
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8"))
        for path, tmp in temps.items():
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except OSError as exc:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        remove_created(created)
        path = next(iter(files))
        raise UsageError(f"--out {path.with_suffix('.html')}: cannot write the lab record "
                         f"({exc.strerror or exc}); nothing was written; free some space or "
                         "choose another file with --out") from None


def _md_safe(blocks):
    """Blocks with user text escaped for Markdown (&, <, > as entities), so a class folder
    named `<script>` is shown, not run, by a Markdown viewer; figure paths, anchors and
    the hand-in header's ready-made Markdown are kept."""
    out = []
    for b in blocks:
        if b[0] == "fig":
            b = (b[0], b[1], *escape_markup(list(b[2:])))
        elif b[0] == "h":
            b = (b[0], b[1], escape_markup(b[2]), *b[3:])
        elif b[0] not in ("raw", "code"):  # fenced code is shown literally
            b = (b[0], *escape_markup(list(b[1:])))
        out.append(b)
    return out


def _unfinished(blocks, latest: dict[str, Path]):
    """A run whose metrics.json still says "running" is shown as "did not finish" when no
    process holds its folder any more (killed, or the machine stopped)."""
    from dlab.report.record import anchor

    dead = {pid for pid, folder in latest.items()
            if _status(folder) == "running" and not is_locked(folder)}
    if not dead:
        return blocks
    label = "did not finish"
    anchors = {anchor(pid): pid for pid in dead}
    out, current = [], None
    for b in blocks:
        if b[0] == "h" and len(b) > 3:
            current = anchors.get(b[3], None)
        if b[0] == "status" and b[1] == "running" and current in dead:
            b = ("status", label, b[2])
        elif b[0] == "table" and "status" in b[1]:
            col = b[1].index("status")
            rows = []
            for row in b[2]:
                first = str(row[0]) if row else ""
                if row[col] == "running" and any(first == pid or first.startswith(f"[{pid}]")
                                                  for pid in dead):
                    row = [*row[:col], label, *row[col + 1:]]
                rows.append(row)
            b = (b[0], b[1], rows, *b[3:])
        out.append(b)
    return out


def _status(folder: Path) -> str:
    try:
        return str(json.loads((folder / "metrics.json").read_text()).get("status"))
    except (OSError, ValueError, AttributeError):
        return ""


def _relink(blocks, runs_dir: Path, target: Path):
    import os

    out = []
    for b in blocks:
        if b[0] == "fig":
            rel = os.path.relpath((runs_dir / b[1]).resolve(), target.resolve())
            b = ("fig", Path(rel).as_posix(), b[2])
        out.append(b)
    return out


def print_pdf(html_path: Path) -> Path:
    """Print the page to PDF with a local headless Chromium."""
    chromium = find_chromium()
    if chromium is None:
        raise UsageError("--pdf needs a local Chromium (`apt-get install chromium`); "
                         "the HTML page was written")
    pdf_path = html_path.with_suffix(".pdf")
    with tempfile.TemporaryDirectory() as profile, atomic_path(pdf_path) as tmp:
        proc = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
             f"--print-to-pdf={tmp}", html_path.resolve().as_uri()],
            capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
            raise UsageError(f"--pdf: Chromium could not print the page ({proc.stderr[-200:]})")
    return pdf_path
