"""`dlab handin` writes one experiment's zip; `dlab verify` checks it and reruns its runs."""

import json
import re
import shutil
import zipfile

import pytest

from dlab.bundle import open_handin, read_handin
from dlab.errors import DataError
from dlab.provenance import sha256_file
from dlab.registry import PROGRAMS
from dlab.running import run_program


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Smoke runs of experiment 1 (1.1 and 1.2, about a second each)."""
    out = tmp_path_factory.mktemp("runs")
    for pid in ("1.1", "1.2"):
        run_program(PROGRAMS[pid], profile="smoke", out=out, quiet=True, device="cpu")
    return out


@pytest.fixture(scope="module")
def handin(runs, tmp_path_factory):
    from dlab.cli import main

    path = tmp_path_factory.mktemp("handin") / "h.zip"
    code = main(["handin", str(runs), "--experiment", "1", "--allow-smoke", "--student-name",
                 "Ann Bee", "--student-id", "AB1", "--out", str(path)])
    assert code == 0
    return path


def _run_folder(runs, pid):
    (folder,) = (runs / pid).iterdir()
    return folder


def _rewrite(src, dst, change):
    """Copy a zip member by member; change(name, data) -> new bytes, or None to drop it."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for m in zin.infolist():
            data = change(m.filename, zin.read(m))
            if data is not None:
                zout.writestr(m.filename, data)
    return dst


def test_handin_holds_handin_json_the_record_and_every_file_of_each_run(runs, handin, tmp_path,
                                                                         cli):
    with zipfile.ZipFile(handin) as zf:
        names = set(zf.namelist())
        info = json.loads(zf.read("handin.json"))
        markdown = zf.read("record/experiment-01.md").decode()
        page = zf.read("record/experiment-01.html").decode()
    assert info["format"] == 1 and info["experiment"] == 1
    assert info["student"] == {"name": "Ann Bee", "id": "AB1"}
    assert len(info["dlab"]["source_sha256"]) == 64 and info["created"]
    assert [e["program"] for e in info["programs"]] == ["1.1", "1.2"]
    for entry in info["programs"]:
        folder = _run_folder(runs, entry["program"])
        assert entry["run"] == f"runs/{entry['program']}/{folder.name}"
        assert entry["profile"] == "smoke" and entry["seed"] == 0 and entry["status"] == "ok"
        assert entry["manifest_sha256"] == sha256_file(folder / "manifest.json")
        assert "latest at the default settings" in entry["chosen"]
        files = {f"{entry['run']}/{p.relative_to(folder).as_posix()}"
                 for p in folder.rglob("*") if p.is_file()}
        assert files and files <= names
    # the record as `dlab report --experiment 1` writes it from the same runs
    code, _, _ = cli("report", runs, "--experiment", "1", "--allow-smoke", "--student-name",
                     "Ann Bee", "--student-id", "AB1", "--out", tmp_path / "r.html")
    assert code == 0 and (tmp_path / "r.html").read_text() == page
    assert "Ann Bee" in page and page.count("data:image/png;base64,") >= 2
    links = re.findall(r"\]\((\.\./runs/[^)]+\.png)\)", markdown)
    assert len(links) >= 2 and all(link.replace("../", "", 1) in names for link in links)


def test_smoke_runs_need_allow_smoke(runs, tmp_path, cli):
    out = tmp_path / "h.zip"
    code, _, err = cli("handin", runs, "--experiment", "1", "--out", out)
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and "only smoke runs" in err and "--allow-smoke" in err


def test_existing_out_is_kept_without_force(runs, tmp_path, cli):
    out = tmp_path / "h.zip"
    out.write_bytes(b"keep me")
    code, _, err = cli("handin", runs, "--experiment", "1", "--allow-smoke", "--out", out)
    assert code == 2 and "--force" in err and out.read_bytes() == b"keep me"
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left beside it
    code, out_text, _ = cli("handin", runs, "--experiment", "1", "--allow-smoke", "--out", out,
                            "--force")
    assert code == 0 and zipfile.is_zipfile(out) and f"hand-in: {out}" in out_text
    code, _, err = cli("handin", runs, "--experiment", "1", "--allow-smoke", "--out",
                       tmp_path / "no" / "h.zip")
    assert code == 2 and "does not exist" in err


def test_default_name_is_the_student_id_in_the_current_folder(runs, tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    code, _, _ = cli("handin", runs, "--experiment", "1", "--allow-smoke", "--student-id",
                     "CS 21/07")
    assert code == 0 and (tmp_path / "CS-21-07-experiment-01.zip").is_file()


def test_a_run_changed_after_it_ran_is_refused(runs, tmp_path, cli):
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    metrics = _run_folder(copy, "1.2") / "metrics.json"
    metrics.write_text(metrics.read_text() + " ")
    code, _, err = cli("handin", copy, "--experiment", "1", "--allow-smoke", "--out",
                       tmp_path / "h.zip")
    assert code == 2 and "1.2" in err and "metrics.json changed" in err
    assert not (tmp_path / "h.zip").exists()


def test_verify_accepts_the_handin(handin, cli):
    code, out, _ = cli("verify", handin)
    assert code == 0 and "2 verified of 2 runs" in out
    lines = [line for line in out.splitlines() if ": verified" in line]
    assert len(lines) == 2 and all(line.startswith(f"{handin}: 1.") for line in lines)


def test_verify_finds_a_changed_number_a_missing_run_and_an_edited_record(handin, tmp_path,
                                                                          cli):
    def bump(name, data):
        if name.startswith("runs/1.1/") and name.endswith("metrics.json"):
            saved = json.loads(data)
            key = next(k for k, v in saved["metrics"].items()
                       if isinstance(v, int) and not isinstance(v, bool))
            saved["metrics"][key] += 1
            return json.dumps(saved)
        return data

    code, out, _ = cli("verify", _rewrite(handin, tmp_path / "bumped.zip", bump))
    assert code == 1 and "1.1 runs/1.1/" in out and "modified: metrics.json changed" in out

    dropped = _rewrite(handin, tmp_path / "dropped.zip",
                       lambda name, data: None if name.startswith("runs/1.2/") else data)
    code, out, _ = cli("verify", dropped)
    assert code == 1 and "1.2 runs/1.2/" in out
    assert "listed in handin.json but not in the zip" in out

    edited = _rewrite(handin, tmp_path / "edited.zip", lambda name, data: data.replace(
        b"Ann Bee", b"Someone Else") if name.endswith(".html") else data)
    code, out, _ = cli("verify", edited)
    assert code == 1 and "hand-in: modified" in out and "is not the record its runs give" in out


def test_a_truncated_or_foreign_zip_is_one_line_exit_2(handin, tmp_path, cli):
    cut = tmp_path / "cut.zip"
    cut.write_bytes(handin.read_bytes()[: handin.stat().st_size // 2])
    code, out, err = cli("verify", cut)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert "not a readable zip" in err
    foreign = _rewrite(handin, tmp_path / "foreign.zip",
                       lambda name, data: None if name == "handin.json" else data)
    code, _, err = cli("verify", foreign)
    assert code == 2 and err.count("\n") == 1 and "no handin.json" in err


def test_members_outside_the_folder_are_refused(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("handin.json", "{}")
        zf.writestr("../escaped.txt", "x")
    with pytest.raises(DataError, match=r"outside the hand-in"):
        read_handin(bad, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out").exists()


def test_open_handin_extracts_and_cleans_up(handin):
    with open_handin(handin) as (info, root):
        assert (root / info["record"]["html"]).is_file()
        assert all((root / e["run"] / "manifest.json").is_file() for e in info["programs"])
    assert not root.exists()


def test_pdf_goes_in_the_zip(runs, tmp_path, cli):
    from dlab.report.lab import find_chromium

    if find_chromium() is None:
        pytest.skip("no local Chromium to print the PDF")
    out = tmp_path / "h.zip"
    code, _, _ = cli("handin", runs, "--experiment", "1", "--allow-smoke", "--pdf", "--out", out)
    with zipfile.ZipFile(out) as zf:
        info = json.loads(zf.read("handin.json"))
        assert code == 0 and info["record"]["pdf"] == "record/experiment-01.pdf"
        assert zf.read("record/experiment-01.pdf").startswith(b"%PDF")
