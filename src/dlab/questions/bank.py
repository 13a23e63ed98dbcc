"""The pre-lab and viva-voce question bank: one TOML file per experiment, checked on load.

Each file `expNN.toml` holds the experiment's aim and a list of `[[entry]]` tables:

    kind          "pre-lab" or "viva" (the manual's questions, in its order) or "ours"
    number        1, 2, ... within its kind, in the manual's order
    question      the question, in our words
    answer        our answer (1-5 sentences)
    manual        the manual's answer judged: "right", "incomplete" or "wrong"
                  (not for "ours")
    manual_note   what is missing or wrong in it, one sentence (when not "right")
    section       "pre-lab" or "viva": where an entry of ours is asked (only "ours")
    [entry.evidence]  optional: a sentence filled from a program's latest run
        program   "5.1"
        keys      {name = "metrics.rising_steps.30", ...}: paths into metrics.json
                  (a part `@name` stands for the value of `metrics.name`, e.g.
                  `metrics.grads.@longest.rnn` with metrics.longest = "adding T=30")
        text      "... {name:.0%} ...": a Python format string over those names

A path is split on dots and matched greedily against the keys of metrics.json, so
`metrics.final_loss.0.01` finds the key "0.01"; a part with `*` matches exactly one key
by shell-style pattern (`metrics.final_loss.SGD*`).
"""

from __future__ import annotations

import fnmatch
import functools
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from dlab.errors import DlabError

KINDS = ("pre-lab", "viva", "ours")
VERDICTS = ("right", "incomplete", "wrong")
N_EXPERIMENTS = 16


class QuestionFileError(DlabError):
    """A question file that does not follow the format above."""


class EvidenceError(LookupError):
    """A run that lacks a key an evidence sentence needs, or a value that will not format."""


@dataclass(frozen=True)
class Evidence:
    program: str
    keys: dict[str, str]
    text: str

    def fill(self, summary: dict[str, Any]) -> str:
        """The sentence with this run's values; EvidenceError when one is missing."""
        values = {name: lookup(summary, path) for name, path in self.keys.items()}
        values = {k: ("yes" if v else "no") if isinstance(v, bool) else v
                  for k, v in values.items()}
        try:
            return self.text.format(**values)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise EvidenceError(f"cannot format {self.text!r} with {values}: {exc}") from None


@dataclass(frozen=True)
class Entry:
    experiment: int
    kind: str  # pre-lab | viva | ours
    number: int
    question: str
    answer: str
    manual: str | None = None  # right | incomplete | wrong; None for ours
    manual_note: str | None = None
    section: str = "pre-lab"  # where it is asked: pre-lab or viva
    evidence: Evidence | None = None

    @property
    def id(self) -> str:
        """"5.P2", "5.V1", "5.O1": unique across the bank."""
        return f"{self.experiment}.{self.label}"

    @property
    def label(self) -> str:
        return {"pre-lab": "P", "viva": "V", "ours": "O"}[self.kind] + str(self.number)


@dataclass(frozen=True)
class QuestionSet:
    experiment: int
    title: str
    aim: str
    entries: tuple[Entry, ...]
    source: str

    def section(self, name: str) -> list[Entry]:
        """The entries asked in the pre-lab or in the viva: the manual's first, then ours."""
        return [e for e in self.entries if e.section == name]

    def count(self, kind: str) -> int:
        return sum(e.kind == kind for e in self.entries)


def _resolved(summary: dict[str, Any], path: str) -> str:
    """The path with every `@name` part replaced by the value of `metrics.name`."""
    parts = path.split(".")
    return ".".join(str(lookup(summary, f"metrics.{p[1:]}")) if p.startswith("@") else p
                    for p in parts)


def lookup(summary: dict[str, Any], path: str) -> Any:
    """The value at a dotted path in a run's metrics.json (see the module docstring)."""
    node: Any = summary
    rest = path = _resolved(summary, path)

    while rest:
        if not isinstance(node, dict):
            raise EvidenceError(f"{path}: {rest!r} is under a value, not a table")
        parts = rest.split(".")
        for n in range(len(parts), 0, -1):  # longest key first: "0.01" before "0"
            key = ".".join(parts[:n])
            if key in node:
                node, rest = node[key], ".".join(parts[n:])
                break
        else:
            if "*" not in parts[0]:
                raise EvidenceError(f"{path}: no key {parts[0]!r}")
            hits = [k for k in node if fnmatch.fnmatchcase(str(k), parts[0])]
            if len(hits) != 1:
                raise EvidenceError(f"{path}: {parts[0]!r} matches {len(hits)} keys")
            node, rest = node[hits[0]], ".".join(parts[1:])
    if node is None:
        raise EvidenceError(f"{path}: the run recorded no value")
    return node


# -------------------------------------------------------------------------- loading

_ENTRY_FIELDS = {"kind", "number", "question", "answer", "manual", "manual_note", "section",
                 "evidence"}


def _need_text(table: dict[str, Any], field: str, where: str) -> str:
    value = table.get(field)
    if not isinstance(value, str) or not value.strip():
        raise QuestionFileError(f"{where}: `{field}` must be a non-empty string")
    return " ".join(value.split())


def _evidence(raw: Any, where: str) -> Evidence:
    from dlab.registry import PROGRAMS

    where = f"{where}.evidence"
    if not isinstance(raw, dict):
        raise QuestionFileError(f"{where}: must be a table")
    extra = set(raw) - {"program", "keys", "text"}
    if extra:
        raise QuestionFileError(f"{where}: unknown field `{sorted(extra)[0]}`")
    program = raw.get("program")
    if program not in PROGRAMS:
        raise QuestionFileError(f"{where}.program: {program!r} is not a program id (1.1-16.2)")
    keys = raw.get("keys")
    if not isinstance(keys, dict) or not keys:
        raise QuestionFileError(f"{where}.keys: must be a table of name = \"metrics.path\"")
    for name, path in keys.items():
        if not name.isidentifier():
            raise QuestionFileError(f"{where}.keys: {name!r} is not a valid name")
        if not isinstance(path, str) or path.split(".")[0] not in ("metrics", "config"):
            raise QuestionFileError(f"{where}.keys.{name}: the path must start with "
                                    "`metrics.` or `config.`")
    text = _need_text(raw, "text", where)
    try:
        used = {f[1].split(".")[0].split("[")[0] for f in string.Formatter().parse(text)
                if f[1] is not None}
    except ValueError as exc:
        raise QuestionFileError(f"{where}.text: not a format string ({exc})") from None
    if used - set(keys) or set(keys) - used:
        raise QuestionFileError(f"{where}.text: its fields {sorted(used)} must be exactly "
                                f"the names in keys {sorted(keys)}")
    return Evidence(program=program, keys=dict(keys), text=text)


def _entry(raw: Any, experiment: int, where: str) -> Entry:
    if not isinstance(raw, dict):
        raise QuestionFileError(f"{where}: must be a table")
    extra = set(raw) - _ENTRY_FIELDS
    if extra:
        raise QuestionFileError(f"{where}: unknown field `{sorted(extra)[0]}`")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise QuestionFileError(f"{where}.kind: {kind!r} must be one of {', '.join(KINDS)}")
    number = raw.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise QuestionFileError(f"{where}.number: must be a whole number from 1")
    manual, note = raw.get("manual"), raw.get("manual_note")
    if kind == "ours":
        if manual is not None or note is not None:
            raise QuestionFileError(f"{where}: a question of ours has no `manual` verdict")
        section = raw.get("section")
        if section not in ("pre-lab", "viva"):
            raise QuestionFileError(f"{where}.section: must be \"pre-lab\" or \"viva\"")
    else:
        if "section" in raw:
            raise QuestionFileError(f"{where}.section: only questions of ours have one")
        section = kind
        if manual not in VERDICTS:
            raise QuestionFileError(f"{where}.manual: {manual!r} must be one of "
                                    f"{', '.join(VERDICTS)}")
        if manual == "right" and note is not None:
            raise QuestionFileError(f"{where}.manual_note: only for answers not judged right")
        if manual != "right":
            note = _need_text(raw, "manual_note", where)
    evidence = _evidence(raw["evidence"], where) if "evidence" in raw else None
    return Entry(experiment=experiment, kind=kind, number=number,
                 question=_need_text(raw, "question", where),
                 answer=_need_text(raw, "answer", where), manual=manual, manual_note=note,
                 section=section, evidence=evidence)


def parse(text: str, source: str, experiment: int | None = None) -> QuestionSet:
    """Check one question file's text; QuestionFileError names the file and the field."""
    from dlab.registry import EXPERIMENTS

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise QuestionFileError(f"{source}: not valid TOML ({exc})") from None
    extra = set(data) - {"experiment", "aim", "entry"}
    if extra:
        raise QuestionFileError(f"{source}: unknown field `{sorted(extra)[0]}`")
    number = data.get("experiment")
    if not isinstance(number, int) or not 1 <= number <= N_EXPERIMENTS:
        raise QuestionFileError(f"{source}: `experiment` must be a number from 1 to 16")
    if experiment is not None and number != experiment:
        raise QuestionFileError(f"{source}: `experiment` is {number}, expected {experiment}")
    aim = _need_text(data, "aim", source)
    raw = data.get("entry")
    if not isinstance(raw, list) or not raw:
        raise QuestionFileError(f"{source}: no [[entry]] tables")
    entries = [_entry(r, number, f"{source}: entry {i + 1}") for i, r in enumerate(raw)]
    for kind in KINDS:  # numbered 1, 2, 3 ... in file order, so ids are unique
        numbers = [e.number for e in entries if e.kind == kind]
        if numbers != list(range(1, len(numbers) + 1)):
            raise QuestionFileError(f"{source}: {kind} numbers are {numbers}, expected "
                                    f"1 to {len(numbers)} in order")
    for kind in ("pre-lab", "viva"):
        if not any(e.kind == kind for e in entries):
            raise QuestionFileError(f"{source}: no {kind} entries")
    return QuestionSet(experiment=number, title=EXPERIMENTS[number - 1].title, aim=aim,
                       entries=tuple(entries), source=source)


def load_file(path: str | Path) -> QuestionSet:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"{path}: cannot be read ({exc})") from None
    return parse(text, str(path))


@functools.cache
def load(experiment: int) -> QuestionSet:
    """The packaged question set of one experiment (1-16)."""
    name = f"exp{experiment:02d}.toml"
    resource = resources.files("dlab.questions") / name
    try:
        text = resource.read_text(encoding="utf-8")
    except (OSError, FileNotFoundError):
        raise QuestionFileError(f"{name}: the question file is missing from the "
                                "installed package") from None
    return parse(text, f"dlab/questions/{name}", experiment)


def load_all() -> list[QuestionSet]:
    return [load(n) for n in range(1, N_EXPERIMENTS + 1)]


def experiment_number(text: str) -> int:
    """"5", "05" or "exp05" -> 5; UsageError for anything else."""
    import re

    from dlab.errors import UsageError

    m = re.fullmatch(r"(?:exp)?0*(\d{1,2})", text.strip(), re.IGNORECASE)
    if not m or not 1 <= int(m.group(1)) <= N_EXPERIMENTS:
        raise UsageError(f"unknown experiment {text!r}; use a number from 1 to 16 "
                         "(see `dlab list`)")
    return int(m.group(1))
