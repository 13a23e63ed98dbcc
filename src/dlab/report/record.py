"""The one record writer: Markdown for a program's run and for the whole lab.

Everything here is rendered from a run's `metrics.json`, so a record can always be
rebuilt from the run folder and never says more than the run measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlab.registry import EXPERIMENTS, PROGRAMS, ProgramInfo


def fmt(value: Any) -> str:
    """A number the way a lab record prints it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return f"{value:.3e}"
        if abs(value) >= 100:
            return f"{value:,.1f}"
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(columns: list[str], rows: list[list[Any]]) -> str:
    head = "| " + " | ".join(fmt(c) for c in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def _flat_metrics(metrics: dict[str, Any], prefix: str = "") -> list[list[Any]]:
    rows: list[list[Any]] = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows += _flat_metrics(value, f"{prefix}{key}.")
        else:
            rows.append([f"{prefix}{key}", value])
    return rows


def program_record(summary: dict[str, Any], program: ProgramInfo, level: int = 1,
                   figure_prefix: str = "") -> str:
    """The record of one run: Aim, Procedure, Data, Results, Analysis and Inferences."""
    h = "#" * level
    rec = summary.get("record", {})
    lines: list[str] = []
    lines.append(f"{h} {program.id} {program.title}")
    lines.append("")
    if rec.get("stand_in"):
        lines += [f"**Stand-in data:** {rec['stand_in']}", ""]
    status = summary.get("status", "?")
    if status != "ok":
        lines += [f"**Status: {status}.** {summary.get('message', '')}".rstrip(), ""]
    lines += [f"{h}# Aim", "", program.aim, ""]

    lines += [f"{h}# Procedure", ""]
    lines.append(f"Repeat with: `{summary.get('command', '')}`")
    lines.append("")
    t = summary.get("timings", {})
    lines.append(
        f"Profile `{summary.get('profile')}`, seed {summary.get('seed')}, device "
        f"`{summary.get('device')}`, {fmt(t.get('seconds', 0.0))} s, started {t.get('started')}."
    )
    lines.append("")
    cfg = summary.get("config", {})
    if cfg:
        lines += [md_table(["setting", "value"], [[k, v] for k, v in cfg.items()]), ""]

    lines += [f"{h}# Data", ""]
    lines += [f"- {d}" for d in rec.get("data", [])] or ["- (no data set: computed values only)"]
    lines.append("")

    lines += [f"{h}# Results", ""]
    metrics = summary.get("metrics", {})
    if metrics:
        lines += [md_table(["metric", "value"], _flat_metrics(metrics)), ""]
    for table in rec.get("tables", []):
        lines += [f"**{table['title']}**", "", md_table(table["columns"], table["rows"]), ""]
    for fig in rec.get("figures", []):
        lines += [f"![{fig['caption']}]({figure_prefix}{fig['file']})", "",
                  f"*{fig['caption']}*", ""]

    lines += [f"{h}# Analysis and Inferences", ""]
    lines += [f"- {s}" for s in rec.get("analysis", [])] or ["- (nothing measured to analyse)"]
    lines.append("")
    if program.defect:
        lines += [f"**The manual's program:** {program.defect}", ""]
    for note in rec.get("notes", []):
        lines += [f"> {note}", ""]
    return "\n".join(lines)


def _headline(program: ProgramInfo, summary: dict[str, Any] | None) -> str:
    if summary is None or program.headline is None:
        return ""
    value: Any = summary.get("metrics", {})
    for part in program.headline.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else f"{program.headline} = {fmt(value)}"


def lab_record(runs_dir: Path, latest: dict[str, Path]) -> str:
    """The whole lab: a summary table, then every experiment's latest runs."""
    summaries: dict[str, dict[str, Any]] = {}
    for pid, folder in latest.items():
        summaries[pid] = json.loads((folder / "metrics.json").read_text())
    lines = ["# Deep Learning lab record", ""]
    ran = len(summaries)
    lines.append(f"{ran} of {len(PROGRAMS)} programs have a run under `{runs_dir}`.")
    lines.append("")
    rows = []
    for pid, program in PROGRAMS.items():
        s = summaries.get(pid)
        if s is None:
            rows.append([pid, program.title, "not run", "", program.target or "", "", ""])
            continue
        rows.append([pid, program.title, s["status"], _headline(program, s), program.target or "",
                     fmt(s["timings"]["seconds"]) + " s",
                     f"{s['timings']['started'][:10]} seed {s['seed']} {s['device']}"])
    lines += [md_table(["id", "program", "status", "headline", "target", "time", "run"], rows), ""]
    for exp in EXPERIMENTS:
        done = [p for p in exp.programs if p.id in summaries]
        if not done:
            continue
        lines += [f"## Experiment {exp.number}: {exp.title}", ""]
        for program in done:
            prefix = latest[program.id].relative_to(runs_dir).as_posix() + "/"
            lines.append(program_record(summaries[program.id], program, level=3,
                                        figure_prefix=prefix))
    return "\n".join(lines)
