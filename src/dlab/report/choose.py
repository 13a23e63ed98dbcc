"""Which run of each program a record (or a hand-in) shows.

By default, for each program: the most recent run at the program's *default settings*
for its profile (no `--set`), at the quick or full profile. A run with changed
settings is taken only when no default run exists, and the record then names every
setting that differs. Smoke runs (seconds-long checks of the code) are left out unless
`allow_smoke`. `picks` ({"5.1": folder}) choose a run by hand and win over everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlab import config as configs
from dlab.errors import DlabError, UsageError
from dlab.registry import PROGRAMS
from dlab.runs import read_summary, runs_of

REAL_PROFILES = ("quick", "full")


@dataclass(frozen=True)
class Choice:
    folder: Path
    profile: str
    changed: tuple[str, ...]  # "lr = 0.3 (default 0.1)" for each setting off its default
    why: str  # how the run was chosen, for the record

    @property
    def note(self) -> str:
        at = ("at the program's default settings" if not self.changed else
              "with changed settings: " + ", ".join(self.changed))
        return f"Run `{self.folder.name}` ({self.why}), profile {self.profile}, {at}."


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def changed_settings(program_id: str, summary: dict[str, Any]) -> tuple[str, ...]:
    """Settings of a run that differ from its program's defaults at the run's profile."""
    impl = PROGRAMS[program_id].load()
    try:
        default = configs.to_dict(configs.build(impl.config, impl.profiles,
                                                summary.get("profile", "quick")))
    except DlabError:
        return ("(its profile is unknown to this dlab)",)
    saved = summary.get("config") or {}
    return tuple(f"{k} = {saved.get(k)} (default {default[k]})" for k in default
                 if _plain(saved.get(k)) != _plain(default[k]))


def parse_picks(pairs: list[str] | None) -> dict[str, Path]:
    """"5.1=PATH" options as {"5.1": Path}; UsageError names a bad one."""
    picks: dict[str, Path] = {}
    for pair in pairs or []:
        pid, sep, path = pair.partition("=")
        pid = pid.strip()
        if not sep or pid not in PROGRAMS or not path:
            raise UsageError(f"--pick {pair!r}: use ID=RUN_FOLDER with a program id, e.g. "
                             "--pick 5.1=runs/5.1/20260101-120000-quick-seed0")
        folder = Path(path)
        try:
            summary = read_summary(folder / "metrics.json")
        except (OSError, ValueError) as exc:
            raise UsageError(f"--pick {pair}: {folder} is not a run folder ({exc})") from None
        if summary.get("program") not in (None, pid):
            raise UsageError(f"--pick {pair}: {folder} is a run of {summary['program']}, not "
                             f"{pid}")
        picks[pid] = folder
    return picks


def choose(runs_dir: Path, program_ids: list[str], picks: dict[str, Path] | None = None,
           allow_smoke: bool = False, warn=None) -> tuple[dict[str, Choice], list[str]]:
    """The chosen run of each program that has one, and a line for each program left
    out although it has runs (only smoke runs, or none that finished ok)."""
    picks = picks or {}
    chosen: dict[str, Choice] = {}
    skipped: list[str] = []
    for pid in program_ids:
        if pid in picks:
            summary = read_summary(picks[pid] / "metrics.json")
            chosen[pid] = Choice(picks[pid], summary["profile"],
                                 changed_settings(pid, summary), "picked by hand")
            continue
        runs = runs_of(runs_dir, pid, warn)  # a killed run is shown as "did not finish"
        if not runs:
            continue
        usable = [(f, s) for f, s in runs
                  if allow_smoke or s["profile"] in REAL_PROFILES]
        if not usable:
            skipped.append(f"{pid}: only smoke runs (seconds-long checks of the code, not "
                           "results); run it at --profile quick, or pass --allow-smoke")
            continue
        ranked = [(f, s, changed_settings(pid, s)) for f, s in usable]
        default = [r for r in ranked if not r[2] and r[1]["status"] == "ok"]
        folder, summary, changed = (default or ranked)[0]
        why = ("the latest at the default settings" if default else
               "the latest; no run at the default settings")
        chosen[pid] = Choice(folder, summary["profile"], changed, why)
    return chosen, skipped
