"""The evidence of the question bank's answers, read from a student's runs: for each
program, the run the record shows (`dlab.report.choose`), and each evidence sentence
filled from it or saying which command would measure it. Used by `dlab viva`, `dlab
quiz` and the record's pre-lab and viva sections."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlab.questions import Entry, EvidenceError
from dlab.report.choose import choose


@dataclass(frozen=True)
class Shown:
    """An evidence sentence as it reads for one runs folder."""

    program: str
    text: str
    measured: bool
    run: str | None = None  # the run folder it was filled from
    settings: str | None = None  # set when that run's settings differ from the defaults


class RunReader:
    """The run of each program that evidence is read from, read once: the run the record
    would show (`dlab.report.choose`: the latest at the program's default settings, quick
    or full; smoke runs only with `allow_smoke`; `picks` {"5.1": folder} win), or the
    folder in `chosen` ({"5.1": folder}) where the caller has chosen already."""

    def __init__(self, runs_dir: str | Path = "runs", picks: dict[str, Path] | None = None,
                 allow_smoke: bool = False, chosen: dict[str, Path] | None = None) -> None:
        self.runs_dir = Path(runs_dir)
        self.picks, self.allow_smoke = picks or {}, allow_smoke
        self.chosen = chosen
        self._cache: dict[str, tuple[Path, dict[str, Any]] | None] = {}
        self.notes: dict[str, str] = {}  # program -> why no run was taken

    def _folder(self, program: str) -> Path | None:
        if self.chosen is not None and program in self.chosen:
            return self.chosen[program]
        picked, skipped = choose(self.runs_dir, [program], self.picks, self.allow_smoke)
        if skipped:
            self.notes[program] = skipped[0]
        choice = picked.get(program)
        if choice is None:
            return None
        if choice.changed:
            self.notes[program] = "its settings differ from the defaults: " + "; ".join(
                choice.changed)
        return choice.folder

    def latest(self, program: str) -> tuple[Path, dict[str, Any]] | None:
        if program not in self._cache:
            folder = self._folder(program)
            self._cache[program] = None
            if folder is not None:
                try:
                    summary = json.loads((folder / "metrics.json").read_text())
                except (OSError, json.JSONDecodeError):
                    summary = None
                if isinstance(summary, dict):
                    self._cache[program] = (folder, summary)
        return self._cache[program]

    def show(self, entry: Entry) -> Shown | None:
        ev = entry.evidence
        if ev is None:
            return None
        found = self.latest(ev.program)
        note = self.notes.get(ev.program)
        if found is None:
            why = f" ({note})" if note else ""
            return Shown(ev.program, f"Run `dlab run {ev.program}` to see this measured{why}.",
                         False)
        folder, summary = found
        try:
            return Shown(ev.program, ev.fill(summary), True, str(folder), note)
        except EvidenceError:
            missing = ", ".join(ev.keys.values())
            settings = f"; {note}" if note else ""
            return Shown(ev.program, f"Your run of {ev.program} ({folder}{settings}) does not "
                                     f"record {missing}; run `dlab run {ev.program}` at its "
                                     "default settings to see this measured.", False,
                         str(folder))
