"""One Jupyter notebook per experiment, generated from the registry so it cannot drift
from the package: `dlab notebook N [--out DIR]` writes `expNN.ipynb`; the copies shipped
in `notebooks/` are checked against this generator by the test suite.

Each notebook: the experiment's aim; for each program its settings and the manual's
defect, then the program's own steps (its run function, split at its `# step` markers by
`dlab.steps`: load and look at the data, build the model, train with a progress bar,
score, judge, write), each followed by a look at what it added, then the verdict against
its targets with its figures, and a "try this" cell that changes one setting and runs
again; the experiment's viva questions at the end. The
notebooks carry no outputs; `PROFILE` in the first cell picks smoke, quick or full.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlab.errors import UsageError

# One setting per program to change in its "try this" cell, and what to look for.
TRY_THIS: dict[str, tuple[dict[str, Any], str]] = {
    "1.1": ({"n_inputs": 3}, "the gates with three inputs: do the truth tables still hold?"),
    "1.2": ({"a": 1.0, "b": 2.0, "c": 5.0}, "a quadratic with complex roots"),
    "2.1": ({"hidden": 2}, "XOR with only two hidden units: how many seeds still solve it?"),
    "2.2": ({"activation": "sigmoid"}, "sigmoid hidden units instead of ReLU"),
    "3.1": ({"widths": (16,)}, "a single, narrower hidden layer"),
    "3.2": ({"lr": 0.01}, "a ten times larger learning rate"),
    "4.1": ({"lr": 0.1}, "a learning rate too large for Adam"),
    "4.2": ({"hidden": (32,)}, "one hidden layer of 32 units"),
    "5.1": ({"lrs": (0.001, 0.1, 3.0)}, "three other learning rates"),
    "5.2": ({"lr": 0.01}, "a ten times smaller learning rate"),
    "6.1": ({"minibatch": 8}, "smaller mini-batches"),
    "6.2": ({"widths": (8, 4)}, "a much narrower network"),
    "7.1": ({"hidden": 2}, "two hidden units, as in the manual's network"),
    "7.2": ({"hidden": 8}, "wider hidden layers"),
    "8.1": ({"input_size": 32}, "32x32 input: how does the parameter count change?"),
    "8.2": ({"lr": 0.003}, "a larger learning rate"),
    "9.1": ({"sizes": (48, 96)}, "other input sizes"),
    "9.2": ({"flip": False}, "no flipping augmentation"),
    "10.1": ({"window": 5}, "a window of 5 values instead of 20"),
    "10.2": ({"cells": ("rnn", "lstm")}, "only the plain RNN and the LSTM"),
    "11.1": ({"window": 10}, "a shorter history window"),
    "11.2": ({"num_layers": 1}, "one LSTM layer instead of two"),
    "12.1": ({"latent": 8}, "a code of 8 numbers instead of 32"),
    "12.2": ({"latents": (4, 16)}, "other code sizes"),
    "13.1": ({"noise": 0.3}, "less noise"),
    "13.2": ({"bottlenecks": (4, 16)}, "other bottleneck sizes"),
    "14.1": ({"made_masks": 1}, "a single MADE mask instead of an ensemble"),
    "14.2": ({"masks": (1, 4)}, "one against four masks"),
    "15.1": ({"cnn_kernel": 5}, "a larger PixelCNN kernel"),
    "15.2": ({"rnn_cells": ("gru",)}, "the GRU cell only"),
    "16.1": ({"lr": 0.001}, "a five times larger learning rate"),
    "16.2": ({"lrs": (0.001,)}, "one larger learning rate"),
}


def _md(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": _lines(text)}


def _code(text: str) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": _lines(text)}


def _lines(text: str) -> list[str]:
    lines = text.strip("\n").split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def _kwargs(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in settings.items())


def _program_cells(program: Any) -> list[dict[str, Any]]:
    """The program's cells: what it is, then its run function's steps as they stand in the
    package (`dlab.steps`), each followed by a look at what it added, then the verdict."""
    from dlab.steps import KINDS, steps

    pid, var = program.id, "r" + program.id.replace(".", "_")
    run = program.load().run
    module = run.__module__
    path = "src/" + module.replace(".", "/") + ".py"
    settings, what = TRY_THIS[pid]
    cells = [
        _md(f"## {pid} {program.title}\n\n{program.aim}"),
        _md("Its settings at each profile, the manual's defect and the target this program "
            "is checked against:"),
        _code(f'dlab.show("{pid}")'),
        _md(f"The program is the function `{run.__name__}` in `{path}`; `dlab run {pid}` "
            "calls it as it stands. The cells below are its steps, line for line, run one "
            "at a time with `cfg` (the settings) and `ctx` (this run: its folder, seed, "
            "device and record) from `dlab.start`. The functions they call are in the same "
            "file, the networks in `src/dlab/models/`. Change a line and run on from that "
            "cell to see what it does; `dlab.start` again begins a fresh run."),
        _code(f"from {module} import *\n\n"
              f'lab = dlab.start("{pid}", profile=PROFILE, out=OUT)\n'
              "cfg, ctx = lab.config, lab.ctx\ncfg"),
    ]
    for n, step in enumerate(steps(run), 1):
        names = step.assigned if step.kind == "model" else ()
        shown = ", ".join(f"{n}={n}" for n in names) if len(names) > 1 else "".join(names)
        cells += [_md(f"### {n}. {KINDS[step.kind]}: {step.title}"),
                  _code(f"{step.code}\nlab.look({shown})")]
    cells += [
        _md("### The verdict\n\nThe targets checked against what this run measured, its "
            "headline and its figures; the run folder now holds metrics.json and record.md."),
        _code(f"{var} = lab.finish()\n{var}"),
        _md(f"**Try this:** {what} (`{_kwargs(settings)}`). Compare the verdict and the "
            "figures with the run above."),
        _code(f'dlab.run("{pid}", profile=PROFILE, out=OUT, {_kwargs(settings)})'),
    ]
    return cells


def build(experiment: int) -> dict[str, Any]:
    """The notebook (nbformat 4 JSON) of experiment `experiment`."""
    from dlab.registry import EXPERIMENTS

    if not any(e.number == experiment for e in EXPERIMENTS):
        raise UsageError(f"no experiment {experiment}; experiments are 1-{len(EXPERIMENTS)}")
    exp = next(e for e in EXPERIMENTS if e.number == experiment)
    cells = [
        _md(f"# Experiment {exp.number}: {exp.title}\n\n"
            + " ".join(f"**{p.id}** {p.title}." for p in exp.programs)
            + "\n\nRun the cells from the top. `PROFILE` is `smoke` (seconds), `quick` "
              "(about a minute a program on two CPU cores) or `full` (the manual's sizes). "
              "Every number below is measured by the run that prints it."),
        _code('import dlab\n\nPROFILE = "quick"  # smoke, quick or full\n'
              'OUT = "runs"  # run folders go here'),
    ]
    for program in exp.programs:
        cells += _program_cells(program)
    cells += [
        _md("## Viva questions\n\nThe experiment's viva-voce questions with our answers "
            f"(`dlab viva {experiment}` in a terminal also fills in the numbers of your "
            "latest runs)."),
        _code(f"from dlab.questions.bank import load\n\n"
              f'for entry in load({experiment}).section("viva"):\n'
              f'    print(f"{{entry.label}}. {{entry.question}}\\n    {{entry.answer}}\\n")'),
    ]
    for i, cell in enumerate(cells):  # stable ids, so regenerating changes nothing
        cell["id"] = f"exp{experiment:02d}-{i:02d}"
    return {"cells": cells, "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}


def text(experiment: int) -> str:
    """The notebook as the exact text stored in notebooks/expNN.ipynb."""
    return json.dumps(build(experiment), indent=1, ensure_ascii=False) + "\n"


def write(experiment: int, out: str | Path = "notebooks", force: bool = False) -> Path:
    """Write expNN.ipynb into `out`. A notebook already there that differs from this one
    (a student's edits and outputs) is kept unless `force`."""
    from dlab.io import atomic_write

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: not a folder")
    path, made = out / f"exp{experiment:02d}.ipynb", text(experiment)
    if not force and path.is_file() and path.read_text(encoding="utf-8",
                                                       errors="replace") != made:
        raise UsageError(f"{path} exists and differs from the generated notebook (edited or "
                         "run?); kept. Write elsewhere with --out, or replace it with --force")
    return atomic_write(path, made)
