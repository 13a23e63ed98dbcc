"""A program's steps, read from the source of its run function.

Every program's `run(cfg, ctx)` is a short function whose top-level statements are grouped
by marker comments:

    def run_gd(cfg: GDConfig, ctx: RunContext) -> None:
        # step data: Iris, versicolor against virginica
        s = prepare(iris_two_classes(), cfg.test_fraction, seed=ctx.seed)
        # step model: the 4-2-2 network
        net = make_net((4, cfg.hidden, 2), cfg.activation, ctx.seed)
        # step train: full-batch descent at three learning rates
        ...

`dlab run` calls the function as it is. A notebook (`dlab notebook N`) shows each step as
one cell holding exactly these lines, run in the notebook's namespace after
`from <module> import *`, so the cells cannot drift from what the command line runs.
`steps(run)` checks what that needs and raises ValueError naming the line otherwise:
every statement under a marker, markers only at the function's top level, the
parameters named `cfg` and `ctx`, no `return`, no private (`_name`) module globals, and
no variable that hides a public name of the module.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

KINDS = {
    "data": "Load and look at the data",
    "model": "Build the model",
    "train": "Train",
    "score": "Score",
    "judge": "Judge",
    "write": "Tables and figures",
}
MARKER = re.compile(r"^(?P<indent>\s*)# step (?P<kind>[a-z]+): (?P<title>\S.*)$")


@dataclass(frozen=True)
class Step:
    kind: str  # one of KINDS
    title: str  # what the step does, in words
    code: str  # the step's lines, dedented to the top level
    assigned: tuple[str, ...]  # names bound by the step's top-level assignments


def _stored(nodes: list[ast.stmt]) -> set[str]:
    """Names a block of statements binds (assignments, loops, with, imports)."""
    names: set[str] = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, ast.alias):
                names.add((sub.asname or sub.name).split(".")[0])
            elif isinstance(sub, ast.FunctionDef | ast.ClassDef):
                names.add(sub.name)
    return names


def _top_assigned(nodes: list[ast.stmt]) -> tuple[str, ...]:
    """Names bound by the top-level `x = ...` / `a, b = ...` statements, in order."""
    out: list[str] = []
    for node in nodes:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name) and sub.id not in out:
                    out.append(sub.id)
    return tuple(out)


def steps(run: Callable) -> list[Step]:
    """The steps of a program's run function, checked (ValueError otherwise)."""
    module = inspect.getmodule(run)
    lines, first = inspect.getsourcelines(run)
    source = textwrap.dedent("".join(lines))
    where = f"{inspect.getsourcefile(run)}, {run.__name__}"
    fn = ast.parse(source).body[0]
    assert isinstance(fn, ast.FunctionDef)
    params = [a.arg for a in fn.args.args]
    if params != ["cfg", "ctx"]:
        raise ValueError(f"{where}: parameters must be (cfg, ctx), not ({', '.join(params)})")
    body = list(fn.body)
    scan_from = fn.lineno  # markers are looked for after the def line ...
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        scan_from = body[0].end_lineno or scan_from  # ... and after the docstring
        body = body[1:]
    if not body:
        raise ValueError(f"{where}: empty body")
    text = source.splitlines()
    indent = body[0].col_offset
    start = body[0].lineno - 1  # 0-based line of the first statement
    markers: list[tuple[int, str, str]] = []
    for i in range(scan_from, len(text)):
        m = MARKER.match(text[i])
        if not m:
            continue
        line = first + i
        if len(m["indent"]) != indent:
            raise ValueError(f"{where}, line {line}: a step marker inside a block; markers "
                             "go between the function's top-level statements")
        if m["kind"] not in KINDS:
            raise ValueError(f"{where}, line {line}: step kind {m['kind']!r} is not one of "
                             f"{', '.join(KINDS)}")
        markers.append((i, m["kind"], m["title"].strip()))
    if not markers or markers[0][0] > start:
        raise ValueError(f"{where}, line {first + start}: the first statement has no "
                         "`# step <kind>: <title>` marker above it")
    for node in body:
        if isinstance(node, ast.Return):
            raise ValueError(f"{where}, line {first + node.lineno - 1}: no top-level return "
                             "(a notebook runs the steps as cells)")
    names = vars(module) if module else {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and \
                node.id.startswith("_") and node.id in names:
            raise ValueError(f"{where}, line {first + node.lineno - 1}: {node.id} is private "
                             "to the module and not imported by `from module import *`")
    public = {k for k, v in names.items() if not k.startswith("_") and not inspect.ismodule(v)}
    clash = sorted(_stored(body) & public)
    if clash:
        raise ValueError(f"{where}: the variable(s) {', '.join(clash)} would hide the "
                         "module's name(s) in a notebook, where the steps of both programs "
                         "run in one namespace; rename the variable")
    out: list[Step] = []
    for k, (i, kind, title) in enumerate(markers):
        end = markers[k + 1][0] if k + 1 < len(markers) else len(text)
        block = [n for n in body if i < n.lineno - 1 < end]
        if not block:
            raise ValueError(f"{where}, line {first + i}: step {title!r} has no statements")
        code = textwrap.dedent("\n".join(text[i + 1:end])).strip("\n")
        out.append(Step(kind, title, code, _top_assigned(block)))
    return out


def program_code(run: Callable) -> list[dict[str, str]]:
    """The source of a run function as the record shows it: one entry per step (kind,
    title, code), or the whole function as one entry when it has no step markers."""
    where = {"module": run.__module__, "function": run.__name__}
    try:
        found = [{**where, "kind": s.kind, "title": s.title, "code": s.code} for s in steps(run)]
    except (ValueError, OSError, TypeError):
        found = []
    if found:
        return found
    try:
        source = textwrap.dedent(inspect.getsource(run))
    except (OSError, TypeError):
        return []
    return [{**where, "kind": "program", "title": run.__name__, "code": source}]


# ------------------------------------------------------------ what a notebook ran

LOOK_LINE = re.compile(r"^\s*[A-Za-z_]\w*\.look\(.*\)\s*$")


def cell_code(cell: str) -> str:
    """A notebook cell's code as compared with a step: without its `lab.look(...)` line,
    trailing spaces and blank lines at either end."""
    lines = [line.rstrip() for line in cell.splitlines() if not LOOK_LINE.match(line)]
    return "\n".join(lines).strip("\n")


def compare_cells(package: list[Step], cells: list[str]) -> dict:
    """What a notebook ran, cell by cell, against the package's steps.

    `cells` are the sources of the cells that called `look()`, in the order they ran. A
    cell equal to a step (after `cell_code`) is that step as in the package; any other
    cell is an edited step, matched to the step its code is most like (the next step in
    order on a tie) and kept with a unified diff. A step matched more than once was
    repeated, one never matched was skipped, and steps run in another order are named.
    The run is modified when any of these is so: `dlab run` at the same settings would
    not do what the notebook did."""
    import difflib

    expected = [cell_code(s.code) for s in package]
    ran: list[dict] = []
    nxt = 0  # the step the package would run next
    for source in cells:
        code = cell_code(source)
        if not code:
            continue  # a cell that only looked
        same = [i for i, e in enumerate(expected) if e == code]
        if same:
            i = next((j for j in same if j >= nxt), same[0])
            entry = {"step": i + 1, "as": "package"}
        else:
            scores = [(difflib.SequenceMatcher(None, e, code).ratio(), -abs(j - nxt), j)
                      for j, e in enumerate(expected)]
            i = max(scores)[2]
            diff = difflib.unified_diff(expected[i].splitlines(), code.splitlines(),
                                        f"step {i + 1} in the package", "as run", lineterm="")
            entry = {"step": i + 1, "as": "edited", "diff": "\n".join(diff)}
        step = package[i]
        ran.append({**entry, "kind": step.kind, "title": step.title, "code": code})
        nxt = i + 1
    order = [r["step"] for r in ran]
    counts = {n: order.count(n) for n in range(1, len(package) + 1)}
    name = {n: f"{n}. {s.kind}: {s.title}" for n, s in enumerate(package, 1)}
    edited = [name[r["step"]] for r in ran if r["as"] == "edited"]
    repeated = [name[n] for n, c in counts.items() if c > 1]
    skipped = [name[n] for n, c in counts.items() if c == 0]
    firsts = sorted(set(order), key=order.index)
    out_of_order = firsts != sorted(firsts)
    return {"compared": True, "cells": ran, "edited": edited, "repeated": repeated,
            "skipped": skipped, "out_of_order": out_of_order,
            "modified": bool(edited or repeated or skipped or out_of_order)}


def notebook_changes(notebook: dict) -> str:
    """The ways a notebook run differs from the package's steps, in words ("" if none)."""
    parts = []
    for key, words in (("edited", "edited"), ("repeated", "run more than once"),
                       ("skipped", "not run")):
        if notebook.get(key):
            parts.append(f"{words}: " + "; ".join(notebook[key]))
    if notebook.get("out_of_order"):
        parts.append("steps run out of order")
    return "; ".join(parts)
