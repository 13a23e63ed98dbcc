"""Programs as steps: the marker parser (dlab.steps) and running a program one step at a
time through dlab.start, as the notebooks do."""

import importlib.util
import json
import sys
import textwrap

import pytest

import dlab
from dlab.errors import UsageError
from dlab.registry import PROGRAMS
from dlab.steps import KINDS, steps


def _module(tmp_path, name, source):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


GOOD = '''
def load_rows(n):
    return list(range(n))

def run(cfg, ctx):
    """A docstring is allowed."""
    # step data: some rows
    rows = load_rows(3)
    # step model: a pair
    net, other = {"w": 1}, {"w": 2}
    # step score: their sum
    for r in rows:
        ctx.append(r)
    total = sum(rows)
'''


def test_steps_are_read_from_the_markers(tmp_path):
    module = _module(tmp_path, "good_prog", GOOD)
    got = steps(module.run)
    assert [(s.kind, s.title) for s in got] == [
        ("data", "some rows"), ("model", "a pair"), ("score", "their sum")]
    assert got[1].assigned == ("net", "other")
    assert got[2].code == "for r in rows:\n    ctx.append(r)\ntotal = sum(rows)"
    ns = {"load_rows": module.load_rows, "ctx": [], "cfg": None}  # the cells run as written
    for s in got:
        exec(s.code, ns)
    assert ns["total"] == 3 and ns["ctx"] == [0, 1, 2]


@pytest.mark.parametrize("body, message", [
    ("    rows = [1]\n    # step data: rows\n    more = rows\n", "no `# step"),
    ("    # step data: rows\n    for i in range(2):\n        # step score: inside\n"
     "        x = i\n", "inside a block"),
    ("    # step data: rows\n    rows = _private()\n", "private"),
    ("    # step data: rows\n    load_rows = 3\n", "would hide"),
    ("    # step data: rows\n    rows = [1]\n    return rows\n", "no top-level return"),
    ("    # step fetch: rows\n    rows = [1]\n", "not one of"),
    ("    # step data: rows\n    # step model: none\n    rows = [1]\n", "has no statements"),
])
def test_bad_step_layouts_are_refused_with_the_line(tmp_path, body, message):
    source = ("def _private():\n    return 1\n\ndef load_rows():\n    return []\n\n"
              "def run(cfg, ctx):\n" + body)
    module = _module(tmp_path, f"bad_prog_{abs(hash(body))}", source)
    with pytest.raises(ValueError, match=message):
        steps(module.run)


def test_parameters_must_be_cfg_and_ctx(tmp_path):
    module = _module(tmp_path, "params_prog",
                     "def run(config, context):\n    # step data: x\n    x = 1\n")
    with pytest.raises(ValueError, match=r"\(cfg, ctx\)"):
        steps(module.run)


@pytest.mark.parametrize("pid", sorted(PROGRAMS, key=lambda p: tuple(map(int, p.split(".")))))
def test_every_program_is_written_as_steps(pid):
    got = steps(PROGRAMS[pid].load().run)
    kinds = [s.kind for s in got]
    assert len(got) >= 3 and set(kinds) <= set(KINDS)
    assert "score" in kinds or "write" in kinds, kinds


def test_a_program_run_step_by_step_measures_what_dlab_run_measures(tmp_path):
    import dlab.experiments.exp05_gradient_descent as module

    lab = dlab.start("5.2", profile="smoke", out=tmp_path / "steps")
    assert lab.config.epochs == 30  # the smoke profile's settings
    ns = {name: getattr(module, name) for name in dir(module) if not name.startswith("_")}
    ns.update(cfg=lab.config, ctx=lab.ctx)
    for k, step in enumerate(lab.steps):
        exec(step.code, ns)
        if k < len(lab.steps) - 1:
            lab.look(*[ns[n] for n in step.assigned] if step.kind == "model" else [])
    with pytest.raises(UsageError, match="run the cells above"):
        lab.finish()  # the last step has not been looked at: not every cell ran
    assert json.loads((lab.ctx.folder / "metrics.json").read_text())["status"] == "running"
    lab.look()
    stepped = lab.finish()
    assert lab.finish() is stepped
    whole = dlab.run("5.2", profile="smoke", out=tmp_path / "whole", quiet=True)
    assert stepped.status == whole.status == "ok"
    assert stepped.metrics == whole.metrics
    assert [t["met"] for t in stepped.targets] == [t["met"] for t in whole.targets]
    assert stepped.summary["command"] == "dlab run 5.2 --profile smoke --seed 0"
    assert not (stepped.folder / ".lock").exists()
    # steps run from a file, not notebook cells: where they came from, not compared
    assert stepped.summary["notebook"] == {"compared": False, "where": [__file__],
                                           "modified": None}
    assert "was not compared with the package's" in (stepped.folder / "record.md").read_text()


def test_look_describes_a_model_and_what_the_step_added(tmp_path, capsys):
    lab = dlab.start("5.2", profile="smoke", out=tmp_path)
    from dlab.experiments.exp05_gradient_descent import iris_net

    lab.ctx.data("a data line")
    lab.ctx.metrics["answer"] = 42
    lab.look(iris_net(lab.config, lab.ctx, 0))
    shown = capsys.readouterr().out
    assert "`MLP`, 15 parameters, written in `src/dlab/models/mlp.py`" in shown
    assert "- a data line" in shown and "| answer | 42 |" in shown
    lab.look()
    assert "a data line" not in capsys.readouterr().out  # only what is new


def test_start_with_a_bad_setting_leaves_nothing(tmp_path):
    with pytest.raises(UsageError, match="epochs"):
        dlab.start("5.2", profile="smoke", out=tmp_path / "runs", epochs=-1)
    assert not (tmp_path / "runs" / "5.2").exists()


def _run_cells(lab, cells, tmp_path):
    """Run `cells` as IPython runs notebook cells: each compiled under a name that is no
    file, its source kept in linecache, in one namespace after `from module import *`."""
    import linecache

    import dlab.experiments.exp05_gradient_descent as module

    ns = {name: getattr(module, name) for name in dir(module) if not name.startswith("_")}
    ns.update(cfg=lab.config, ctx=lab.ctx, lab=lab)
    for i, source in enumerate(cells):
        name = str(tmp_path / f"ipykernel_0/cell{i}.py")  # as ipykernel names a cell
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        exec(compile(source, name, "exec"), ns)


def _cell(step):
    shown = ", ".join(step.assigned) if step.kind == "model" else ""
    return f"{step.code}\nlab.look({shown})"


def test_a_notebook_run_as_in_the_package_keeps_its_repeat_command(tmp_path):
    lab = dlab.start("5.2", profile="smoke", out=tmp_path)
    _run_cells(lab, [_cell(s) for s in lab.steps], tmp_path)
    result = lab.finish()
    nb = result.summary["notebook"]
    assert nb["compared"] is True and nb["modified"] is False
    assert [c["as"] for c in nb["cells"]] == ["package"] * len(lab.steps)
    record = (result.folder / "record.md").read_text()
    assert ("every step as in the package. Repeat with: `dlab run 5.2 --profile smoke "
            "--seed 0`") in record


def test_an_edited_notebook_run_is_marked_modified_with_its_diff(tmp_path):
    """The walk of the issue: a changed model line, the train cell run twice, the judge
    cell skipped. The record says so, shows the diff and no repeat command; verify
    refuses to rerun it as if it were the package's program."""
    from dlab.verify import MODIFIED, verify_run

    lab = dlab.start("5.2", profile="smoke", out=tmp_path / "runs", lr=0.3)
    kinds = [s.kind for s in lab.steps]
    cells = []
    for step in lab.steps:
        cell = _cell(step)
        if step.kind == "model":
            assert "iris_net(cfg, ctx, ctx.seed)" in cell
            cell = cell.replace("iris_net(cfg, ctx, ctx.seed)", "iris_net(cfg, ctx, 7)")
        if step.kind == "judge":
            continue
        cells += [cell, cell] if step.kind == "train" else [cell]
    _run_cells(lab, cells, tmp_path)
    result = lab.finish()
    nb = result.summary["notebook"]
    model_n, train_n, judge_n = (kinds.index(k) + 1 for k in ("model", "train", "judge"))
    assert nb["modified"] is True and nb["out_of_order"] is False
    assert [e.split(".")[0] for e in nb["edited"]] == [str(model_n)]
    assert [e.split(".")[0] for e in nb["repeated"]] == [str(train_n)]
    assert [e.split(".")[0] for e in nb["skipped"]] == [str(judge_n)]
    edited = next(c for c in nb["cells"] if c["as"] == "edited")
    assert "-model = iris_net(cfg, ctx, ctx.seed)" in edited["diff"]
    assert "+model = iris_net(cfg, ctx, 7)" in edited["diff"]
    record = (result.folder / "record.md").read_text()
    assert "**Modified in a notebook** (edited: " in record
    assert "Repeat with" not in record and "--set lr=0.3" not in record
    assert "(edited in the notebook)" in record and "+model = iris_net(cfg, ctx, 7)" in record
    verdict = verify_run(result.folder, tmp_path / "scratch")
    assert verdict.status == MODIFIED and "skipped" not in verdict.details[0]
    assert "not run: " in verdict.details[0] and "run more than once: " in verdict.details[0]
    assert not (tmp_path / "scratch").exists()  # nothing was rerun


def test_cells_are_matched_to_steps_by_their_code():
    from dlab.experiments.exp05_gradient_descent import run_iris
    from dlab.steps import compare_cells

    package = steps(run_iris)
    cells = [_cell(s) for s in package]
    assert compare_cells(package, cells)["modified"] is False
    assert compare_cells(package, cells + ["lab.look()"])["modified"] is False  # a look only
    swapped = compare_cells(package, [cells[1], cells[0], *cells[2:]])
    assert swapped["out_of_order"] is True and swapped["modified"] is True
    assert not swapped["edited"] and not swapped["skipped"]
    spaced = compare_cells(package, [c + "\n\n" for c in cells])  # trailing blank lines
    assert spaced["modified"] is False
