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
