"""A finished run as a Python object: what `dlab.run(...)` returns and `dlab.load_run(folder)`
reads back. In Jupyter it shows its verdicts, headline numbers and figures."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlab.errors import UsageError


@dataclass
class Result:
    """One run of one program, read from its run folder.

    program:  "12.1"; title: the program's title.
    status:   "ok", "diverged", "interrupted", "failed" or "running".
    verdict:  "met", "missed" or "n/a" (no applicable target, or the run did not end ok).
    targets:  the target checks from metrics.json (name, rule, value, met, why, ...).
    metrics:  the measured values; figures: [(path, caption)]; record: record.md text.
    """

    program: str
    title: str
    status: str
    message: str
    verdict: str
    targets: list[dict[str, Any]]
    metrics: dict[str, Any]
    figures: list[tuple[Path, str]]
    record: str
    folder: Path
    summary: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def headline(self) -> str:
        from dlab.registry import PROGRAMS
        from dlab.report.record import headline

        program = PROGRAMS.get(self.program)
        return headline(program, self.summary) if program else ""

    def __repr__(self) -> str:
        return (f"Result({self.program} {self.status}, verdict {self.verdict}, "
                f"{self.headline or 'no headline'}, folder {self.folder})")

    # -- Jupyter
    def _verdict_rows(self) -> list[list[str]]:
        """The record's target rows without the why column, as text."""
        from dlab.report.record import fmt, target_row

        return [[fmt(cell) for cell in target_row(t)[:4]] for t in self.targets]

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.program} {self.title}**: status `{self.status}`, "
                 f"verdict **{self.verdict}**. {self.headline}", ""]
        if self.targets:
            from dlab.report.record import md_table

            lines.append(md_table(["target", "measured", "threshold or reference", "verdict"],
                                  self._verdict_rows()))
        for path, caption in self.figures:
            lines += ["", f"![{caption}]({path})", f"*{caption}*"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {"met": "#1a7f37", "missed": "#b42318"}.get(self.verdict, "#5b6570")
        out = [f"<p><strong>{html.escape(self.program)} {html.escape(self.title)}</strong>: "
               f"status <code>{html.escape(self.status)}</code>, verdict "
               f'<strong style="color:{colour}">{html.escape(self.verdict)}</strong>. '
               f"{html.escape(self.headline)}</p>"]
        if self.message:
            out.append(f"<p>{html.escape(self.message)}</p>")
        if self.targets:
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                           + "</tr>" for row in self._verdict_rows())
            out.append("<table><thead><tr><th>target</th><th>measured</th><th>threshold or "
                       f"reference</th><th>verdict</th></tr></thead><tbody>{rows}</tbody>"
                       "</table>")
        for path, caption in self.figures:
            if path.is_file():
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                out.append(f'<figure><img src="data:image/png;base64,{data}" '
                           f'alt="{html.escape(caption)}" style="max-width:100%">'
                           f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        return "\n".join(out)


def load_run(folder: str | Path) -> Result:
    """Read a run folder (the one holding metrics.json) back into a Result."""
    folder = Path(folder)
    meta = folder / "metrics.json"
    from dlab.runs import read_summary

    if not meta.is_file():
        raise UsageError(f"{folder}: no metrics.json here; give a run folder such as "
                         "runs/4.1/<date>-<time>-quick-seed0")
    try:
        summary = read_summary(meta)  # the same checks as `dlab report` makes
    except ValueError as exc:
        raise UsageError(f"{meta}: not a dlab run summary ({exc})") from None
    if "program" not in summary:
        raise UsageError(f"{meta}: not a dlab run summary (no 'program')")
    from dlab.report.record import verdict_of

    record = folder / "record.md"
    rec = summary.get("record") or {}
    figures = [(folder / f["file"], f.get("caption", "")) for f in rec.get("figures", [])
               if isinstance(f, dict) and "file" in f]
    return Result(program=str(summary["program"]), title=str(summary.get("title", "")),
                  status=str(summary.get("status", "?")), message=summary.get("message", ""),
                  verdict=verdict_of(summary), targets=list(summary.get("targets") or []),
                  metrics=dict(summary.get("metrics") or {}), figures=figures,
                  record=record.read_text(encoding="utf-8") if record.is_file() else "",
                  folder=folder, summary=summary)
