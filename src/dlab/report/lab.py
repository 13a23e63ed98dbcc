"""`dlab report`: the latest run of each program, collected into one lab record.

Writes `lab-record.md` (figures linked) and `lab-record.html` (one self-contained page:
figures embedded, no scripts, fonts or network requests) into the runs folder, and a
PDF of the page when asked and a local Chromium is found.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from dlab.errors import UsageError
from dlab.io import atomic_path, atomic_write
from dlab.registry import PROGRAMS
from dlab.report.handin import Student
from dlab.report.record import lab_blocks, to_html, to_markdown
from dlab.runs import latest_run

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def write_report(runs_dir: str | Path = "runs", out: str | Path | None = None,
                 pdf: bool = False, student: Student | None = None,
                 blank_answers: bool = False) -> dict[str, Path]:
    """Write the record; return the paths written ({"markdown", "html"[, "pdf"]}).

    `out` names the HTML file (default RUNS_DIR/lab-record.html); the Markdown goes
    beside it with the suffix .md and links figures relative to RUNS_DIR. `student`
    fills the header of every experiment's sheet (blank fields without it);
    `blank_answers` leaves the pre-lab and viva answers for the student and evaluator.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UsageError(f"no runs folder at {runs_dir}; run programs first, e.g. `dlab run 1`")
    latest = {}
    for pid in PROGRAMS:
        folder = latest_run(runs_dir, pid)
        if folder is not None:
            latest[pid] = folder
    if not latest:
        raise UsageError(f"no finished runs under {runs_dir}; run programs first, e.g. `dlab run 1`")
    html_path = Path(out) if out else runs_dir / "lab-record.html"
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out {html_path}: the record page must be an .html file")
    try:
        html_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {html_path}: cannot create its folder ({exc.strerror})") from None
    blocks = lab_blocks(runs_dir, latest, student=student, blank_answers=blank_answers)
    md_path = html_path.with_suffix(".md")
    if md_path.parent.resolve() == runs_dir.resolve():
        atomic_write(md_path, to_markdown(blocks))
    else:  # figure links in the Markdown are relative to the runs folder
        atomic_write(md_path, to_markdown(_relink(blocks, runs_dir, md_path.parent)))
    atomic_write(html_path, to_html(blocks, runs_dir, "Deep Learning lab record"))
    written = {"markdown": md_path, "html": html_path}
    if pdf:
        written["pdf"] = print_pdf(html_path)
    return written


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
