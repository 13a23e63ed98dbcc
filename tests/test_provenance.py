"""Every run records the code that ran and a manifest of its files; edits show."""

import json
import sys
from pathlib import Path

from dlab.provenance import check_manifest, code_info, source_hash
from dlab.report.record import load_summaries, program_blocks, to_markdown
from dlab.running import run_program

sys.path.insert(0, str(Path(__file__).parent))
from toy_program import TOY_INFO  # noqa: E402


def test_source_hash_follows_content_and_names(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.toml").write_text("k = 2\n")
    (pkg / "notes.txt").write_text("not source\n")
    first = source_hash(pkg)
    (pkg / "notes.txt").write_text("changed, still not source\n")
    assert source_hash(pkg) == first
    (pkg / "a.py").write_text("x = 2\n")
    assert source_hash(pkg) != first
    (pkg / "a.py").write_text("x = 1\n")
    assert source_hash(pkg) == first
    (pkg / "a.py").rename(pkg / "c.py")  # same bytes under another name
    assert source_hash(pkg) != first


def test_a_run_records_its_code_and_a_manifest_that_catches_edits(tmp_path):
    out = run_program(TOY_INFO, profile="smoke", out=tmp_path, quiet=True, device="cpu")
    folder = out.folder
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["code"]["source_sha256"] == source_hash() == code_info()["source_sha256"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"metrics.json", "record.md", "model.pt"} <= set(manifest["files"])
    assert check_manifest(folder) == []

    saved["metrics"]["val_loss"] = 0.001  # a student "improves" a number
    (folder / "metrics.json").write_text(json.dumps(saved))
    (folder / "model.pt").unlink()
    (folder / "extra.png").write_bytes(b"not a figure of this run")
    assert check_manifest(folder) == ["metrics.json changed", "model.pt is missing",
                                      "extra.png was added"]
    summary = load_summaries({"0.1": folder})["0.1"]
    md = to_markdown(program_blocks(summary, TOY_INFO))
    assert "**Changed after the run:** metrics.json changed; model.pt is missing" in md
    assert "val_loss | 0.001" in md  # the edited number is shown, flagged above
    assert check_manifest(tmp_path) is None  # a folder without a manifest


def test_the_record_shows_the_code_that_ran_and_its_output(tmp_path):
    import inspect
    import textwrap

    from dlab.steps import program_code
    from toy_program import run_toy

    out = run_program(TOY_INFO, profile="smoke", out=tmp_path, quiet=True, device="cpu")
    record = (out.folder / "record.md").read_text()
    source = textwrap.dedent(inspect.getsource(run_toy))
    assert "### Program" in record and f"```python\n{source.rstrip()}\n```" in record
    log = (out.folder / "output.log").read_text().splitlines()
    assert log[0].startswith("Toy regression") and len(log) >= 3  # start line and epochs
    assert "### Output" in record and log[-1] in record
    assert "output.log" in json.loads((out.folder / "manifest.json").read_text())["files"]
    # a program written as steps is shown step by step, each with its own code
    from dlab.experiments.exp01_mcculloch_pitts import run_mcculloch_pitts

    steps = program_code(run_mcculloch_pitts)
    assert len(steps) >= 3 and {s["kind"] for s in steps} >= {"data", "score"}
    body = "\n".join(s["code"] for s in steps)
    assert all(line.strip() in inspect.getsource(run_mcculloch_pitts)
               for line in body.splitlines() if line.strip())
