"""The lab record page, checked as a person would see it: in a real headless Chromium."""

import re
import shutil

import pytest

from dlab.registry import PROGRAMS
from dlab.report.lab import CHROMIUM_FLAGS, find_chromium, write_report
from dlab.running import run_program


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    for pid in ("1.1", "1.2"):
        run_program(PROGRAMS[pid], profile="smoke", out=runs, quiet=True, device="cpu")
    return write_report(runs, allow_smoke=True)["html"]


def test_page_is_valid_html_and_self_contained(page_file):
    html5lib = pytest.importorskip("html5lib")
    text = page_file.read_text()
    html5lib.HTMLParser(strict=True).parse(text)  # raises on any parse error
    assert "<script" not in text and "@import" not in text and "url(" not in text
    # no reference leaves the file: every src/href is a data URI or an in-page anchor
    for ref in re.findall(r'(?:src|href)="([^"]*)"', text):
        assert ref.startswith(("data:image/png;base64,", "#")), ref[:60]
    assert text.count("<img ") == 2
    for heading in ("Aim", "Procedure", "Data", "Results", "Analysis and Inferences"):
        assert f">{heading}</h4>" in text
    assert "Summary" in text and text.count('class="status not-run"') == 30


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium here (apt-get install chromium)")
def test_page_in_headless_chromium(page_file, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    console_errors, page_errors, requests = [], [], []
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=find_chromium(), headless=True,
            args=[f for f in CHROMIUM_FLAGS if f != "--headless"])
        page = context.new_page()
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_file.resolve().as_uri(), wait_until="load")
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        missing_targets = page.evaluate(
            "Array.from(document.querySelectorAll('a[href^=\"#\"]'))"
            ".map(a => a.getAttribute('href').slice(1))"
            ".filter(id => !document.getElementById(id))")
        links = page.evaluate("document.querySelectorAll('a[href^=\"#\"]').length")
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        page.set_viewport_size({"width": 1200, "height": 900})
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        context.close()
    assert len(images) == 2 and all(done and width > 0 for done, width in images), images
    assert links >= 4 and missing_targets == []
    assert console_errors == [] and page_errors == []
    outside = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert outside == [], outside
    assert overflow <= 1  # wide tables scroll inside their box, the page does not
    assert (tmp_path / "page.png").stat().st_size > 10_000


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium here (apt-get install chromium)")
def test_pdf_is_printed(page_file, tmp_path):
    copy = tmp_path / "lab.html"
    shutil.copy(page_file, copy)
    from dlab.report.lab import print_pdf

    pdf = print_pdf(copy)
    assert pdf.read_bytes()[:5] == b"%PDF-"
