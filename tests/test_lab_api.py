"""The public Python API (dlab.run, show, list_programs, load_run, report, Result)."""

import subprocess
import sys

import pytest

import dlab
from dlab.errors import UsageError


def test_import_dlab_stays_light():
    code = "import sys, dlab; dlab.list_programs(); assert 'torch' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_list_and_show():
    programs = dlab.list_programs()
    assert len(programs) == 32 and programs[0]["id"] == "1.1"
    view = dlab.show("1.2")
    assert view.settings["a"] == {"smoke": 1.0, "full": 1.0, "quick": 1.0}
    assert "| newton_steps |" in view._repr_markdown_()
    with pytest.raises(UsageError, match="give one"):
        dlab.show("1")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("api")
    return dlab.run("1.2", profile="smoke", out=out, quiet=True, device="cpu", a=1, b=-3, c=2)


def test_run_returns_the_measured_result(result):
    assert result.ok and result.program == "1.2"
    assert result.summary["config"]["b"] == -3.0  # the keyword setting reached the program
    assert result.verdict == "met" and result.targets
    assert result.metrics["max_rel_error_vs_numpy"] < 1e-8
    assert result.figures and all(p.is_file() for p, _ in result.figures)
    assert "--set b=-3" in result.summary["command"]
    assert result.record.startswith("# 1.2 ")


def test_load_run_reads_the_same_result(result):
    again = dlab.load_run(result.folder)
    assert again.metrics == result.metrics and again.verdict == result.verdict


def test_notebook_display(result):
    page = result._repr_html_()
    assert "verdict" in page and "data:image/png;base64," in page
    assert "| target | measured |" in result._repr_markdown_()


def test_bad_settings_raise_the_cli_errors(tmp_path):
    with pytest.raises(UsageError, match="no setting 'zz'"):
        dlab.run("1.2", profile="smoke", out=tmp_path, zz=1)
    with pytest.raises(UsageError, match="newton_steps"):
        dlab.run("1.2", profile="smoke", out=tmp_path, newton_steps=0)
    with pytest.raises(UsageError):
        dlab.run("1.2", profile="smoke", out=tmp_path, seed=-1)
    with pytest.raises(UsageError, match="no metrics.json"):
        dlab.load_run(tmp_path)
    # worded for Python, not for the command line
    with pytest.raises(UsageError, match=r"^lrs=0\.1,fast: expected a list of float") as err:
        dlab.run("5.1", profile="smoke", out=tmp_path, lrs=(0.1, "fast"))
    assert "--" not in str(err.value)
    with pytest.raises(UsageError, match=r"^resume=True: no interrupted run"):
        dlab.run("5.1", profile="smoke", out=tmp_path, resume=True)
    assert not any(tmp_path.rglob("metrics.json"))
