"""A study in writing: the sentences, table and plots of the study program's record, and
the study folder's trials.csv, table.md and one plot per varied field."""

from __future__ import annotations

import os
import socket
from typing import Any

from dlab.studies.results import StudyResult, _is_test_metric
from dlab.studies.study import Value


def _sort_values(values: list[Value]) -> list[Value]:
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return sorted(values)
    return values


def plot_field(result: StudyResult, name: str) -> Any:
    """A figure of each plotted metric against one varied field (failed trials marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.study
    metrics = list(s.plot or (s.metric,))
    rows = result.rows
    if s.mode == "one_at_a_time":
        rows = [r for r in rows if r["varied"] in (name, "base")]
    values = _sort_values(list(dict.fromkeys(r[name] for r in rows)))
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    log_x = numeric and min(values) > 0 and max(values) / min(values) >= 20
    pos = {v: (v if numeric else i) for i, v in enumerate(values)}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        ok = [r for r in rows if r["status"] == "ok" and isinstance(r.get(metric), int | float)]
        bad = [r for r in rows if r["status"] not in ("ok", "running", "waiting")]
        ax.scatter([pos[r[name]] for r in ok], [r[metric] for r in ok], color="tab:blue",
                   zorder=3, label="trial")
        means = [(pos[v], float(sum(r[metric] for r in ok if r[name] == v)
                                / max(1, sum(1 for r in ok if r[name] == v))))
                 for v in values if any(r[name] == v for r in ok)]
        if len(means) > 1 and numeric:
            ax.plot(*zip(*means, strict=True), color="tab:blue", alpha=0.6,
                    label="mean" if s.mode != "one_at_a_time" else None)
        if s.mode == "one_at_a_time" and name in result.plan.base_params:
            base = [r for r in ok if r["varied"] == "base"]
            if base:
                ax.scatter([pos[base[0][name]]], [base[0][metric]], s=110, facecolors="none",
                           edgecolors="black", zorder=4, label="base setting")
        if bad:
            y = max([r[metric] for r in ok], default=1.0)
            ax.scatter([pos[r[name]] for r in bad], [y] * len(bad), marker="x", color="tab:red",
                       zorder=3, label="failed / diverged / lost")
        if log_x:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(values)), [str(v) for v in values])
        elif len(values) <= 8:
            ax.set_xticks(values, [str(v) for v in values])
            ax.minorticks_off()
        ax.set_xlabel(name)
        ax.set_ylabel(result.column(metric))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    others = "others at the base setting" if s.mode == "one_at_a_time" else "all trials"
    fig.suptitle(f"{s.info.id}: {', '.join(metrics)} against {name} ({others})", fontsize=9)
    fig.tight_layout()
    return fig


def trial_folder_lines(result: StudyResult) -> list[str]:
    """Where the trials' run folders are: one line per host that ran trials, naming each
    trial's folder as `host:/absolute/folder` (and its status when not ok).

    Each worker writes the trials it runs under its own --out on its own machine, and
    stores with each trial its host name and the folder's absolute path. The record may
    be written by any worker, or by `--report` from a third folder or machine, so a path
    relative to the record's own study folder would point at the wrong place (or at
    nothing) for every trial run elsewhere. Every folder is therefore named absolute and
    with its host, on this machine too: `host:/path` is what scp and rsync take, and on a
    file system the machines share the path opens as it is. A trial stored before dlab
    kept absolute folders names its folder relative to that worker's study folder, and
    the line says so.
    """
    here = socket.gethostname()
    by_host: dict[str, list[str]] = {}
    for r in result.trials:
        if not r.get("run_folder"):
            continue  # waiting, a duplicate, or failed before a folder was made
        host, folder = r["host"] or "?", str(r["run_folder"])
        where = f"{host}:{folder}" + ("" if os.path.isabs(folder)
                                      else " (relative to that worker's study folder)")
        status = "" if r["status"] == "ok" else f" ({r['status']})"
        by_host.setdefault(host, []).append(f"trial {r['trial']} {where}{status}")
    return [f"Run folders on host {host}"
            + (" (this machine, where this record was written)" if host == here else "")
            + ": " + ", ".join(items) + "." for host, items in by_host.items()]


def _write_outputs(result: StudyResult) -> None:
    import matplotlib.pyplot as plt

    from dlab.io import atomic_path, atomic_write, write_csv
    from dlab.report.record import md_table

    write_csv(result.folder / "trials.csv", result.trials)
    cols, rows = result.table()
    s = result.study
    lines = [f"# Study {result.name}", ""]
    if not result.finished and result.progress is not None:
        lines += [f"**Unfinished** when this was written: {result.progress.text()}.", ""]
    lines += [f"Base program {s.info.id} at profile `{s.base_profile}`, mode `{s.mode}`, "
              f"{s.direction} `{s.metric}` (the objective: the chosen trial is picked on it "
              f"alone); storage {result.storage}.", "", md_table(cols, rows), ""]
    failed = [r for r in result.trials if r["status"] not in ("ok", "running", "waiting",
                                                               "duplicate")]
    if failed:
        lines += ["Failed, interrupted or lost trials:", ""]
        lines += [f"- trial {r['trial']}: {r['status']}: {r['reason']}" for r in failed]
        lines.append("")
    lines += [f"- {line}" for line in trial_folder_lines(result)] + [""]
    atomic_write(result.folder / "table.md", "\n".join(lines))
    for name in result.varied_params:
        fig = plot_field(result, name)
        with atomic_path(result.folder / f"{name}.png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        plt.close(fig)
        result.figures[name] = result.folder / f"{name}.png"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def record(result: StudyResult, ctx: Any) -> None:
    """Put the study's table, plots, numbers and measured sentences into ctx's record."""
    s = result.study
    cols, rows = result.table()
    ctx.table(f"Study over {s.info.id} ({s.mode.replace('_', ' ')}): {s.metric}, "
              f"{s.direction}d", cols, rows)
    for name in result.varied_params:
        ctx.figure(plot_field(result, name), f"study-{name}.png",
                   f"{', '.join(s.plot or (s.metric,))} of {s.info.id} against {name}.")
    hosts = _say_where(result, ctx)
    best = result.best
    failed = [r for r in result.rows if r["status"] not in ("ok", "running", "waiting", "lost")]
    progress = result.progress
    ctx.metrics["study"] = {
        "name": result.name, "folder": str(result.folder), "storage": result.storage,
        "mode": s.mode, "settings": len(result.rows), "complete": len(result.complete),
        "failed": len(failed), "lost": [r["trial"] for r in result.lost],
        "finished": result.finished, "ran_now": result.ran, "workers": result.workers,
        "seconds": round(result.seconds, 2), "hosts": hosts,
        "best": ({"trial": best["trial"], "params": {f: best[f] for f in result.params},
                  s.metric: best[s.metric]} if best else None),
    }
    if not result.finished and progress is not None:
        ctx.infer(f"This record was written from the storage while the study was still "
                  f"running: {progress.text()}. Rows marked running or waiting have no "
                  "result yet, and the choice below is among the trials done so far.")
    if best is not None:
        ctx.metrics[f"best_{s.metric}"] = best[s.metric]
        where = ", ".join(f"{f}={best[f]}" for f in result.params)
        kind = " (a validation metric)" if s.metric.lower().startswith("val") else ""
        tests = [c for c in s.report if _is_test_metric(c)]
        ctx.infer(f"The chosen trial is {best['trial']} ({where}), picked on the objective "
                  f"{s.metric}{kind} alone: {s.metric} {_fmt(best[s.metric])}, the best of "
                  f"{len(result.complete)} completed trials"
                  + (f"; {', '.join(tests)} (not used for selection) are shown beside it "
                     "and played no part in the choice." if tests else "."))
    for sentence in _effects(result):
        ctx.infer(sentence)
    _say_ranking(result, ctx)
    for r in result.lost:
        retry = next((t for t in result.trials if t["trial"] == r["retried_as"]), None)
        ctx.infer(f"Trial {r['trial']} ({', '.join(f'{f}={r[f]}' for f in result.params)}) "
                  f"was lost: {r['reason']}"
                  + (f", which ended {retry['status']}." if retry else
                     "; it was not retried again (rerun the study command to try it)."))
    for r in failed:
        ctx.infer(f"Trial {r['trial']} ({', '.join(f'{f}={r[f]}' for f in result.params)}) "
                  f"ended {r['status']}: {r['reason']}")


def _say_where(result: StudyResult, ctx: Any) -> dict[str, int]:
    """The record's Data lines on what each trial ran and where its run folder is;
    returns how many trials each host ran."""
    s = result.study
    folders = trial_folder_lines(result)
    fixed = ", ".join(f"{k}={v}" for k, v in s.base.items())
    ctx.data(f"Each trial is a full run of {s.info.id} ({s.info.title}) at profile "
             f"{s.base_profile}{' with ' + fixed if fixed else ''}, seed {ctx.seed}, in a run "
             "folder of its own on the machine whose worker ran it"
             + ("; the folders, as host:folder:" if folders else "; no trial has run yet."))
    for line in folders:
        ctx.data(line)
    hosts: dict[str, int] = {}
    for r in result.trials:
        if r["host"] and r["status"] not in ("waiting", "duplicate"):
            hosts[r["host"]] = hosts.get(r["host"], 0) + 1
    ctx.data(f"Study {result.name} in {result.storage}; {len(result.trials)} trials stored "
             f"(" + (", ".join(f"{n} on {h}" for h, n in hosts.items()) or "none run") +
             f"), {result.ran} run by this command's {result.workers} worker(s) in "
             f"{result.seconds:.1f} s; heartbeat every {result.heartbeat} s, a trial silent "
             f"for {result.grace} s counts as lost and is retried.")
    return hosts


def _say_ranking(result: StudyResult, ctx: Any) -> None:
    """The study's ranking against its measured seed noise (metrics and sentences)."""
    s, rank = result.study, result.ranking()
    ctx.metrics["study"]["ranking"] = rank
    for key in ("noise_band", "ranks_chosen", "chosen_beats_worst", "settings_within_noise"):
        if rank.get(key) is not None:
            ctx.metrics[f"study_{key}"] = rank[key]
    if "lead_over_runner_up" not in rank:
        return
    band = rank["noise_band"]
    if band is None:
        ctx.infer(f"Every setting ran once, at seed {ctx.seed}: the seed noise of {s.metric} "
                  "was not measured, so this ranking rests on one seed and no gap in it is "
                  "shown to come from the settings.")
        return
    runs = result.seed_runs
    ctx.infer(f"Seed noise: the base setting at {len(runs)} seeds gives {s.metric} "
              f"{', '.join(_fmt(v) for v in runs)}; two single runs differ by the seed alone "
              f"by up to {_fmt(band)} (95%).")
    lead = rank["lead_over_runner_up"]
    ctx.claim(f"The chosen trial leads the runner-up (trial {rank['runner_up_trial']}) by "
              f"{_fmt(lead)}, more than the noise band {_fmt(band)}: the study ranks it first.",
              holds=rank["ranks_chosen"],
              otherwise=f"The chosen trial leads the runner-up (trial {rank['runner_up_trial']})"
              f" by {_fmt(lead)}, inside the noise band {_fmt(band)}: the study cannot rank "
              f"them; {rank['settings_within_noise']} setting(s) lie within the band of the "
              "chosen one.", lead=lead, band=band)
    ctx.claim(f"The best and worst settings differ by {_fmt(rank['best_to_worst'])}, beyond "
              f"the noise band: the settings studied do change {s.metric}.",
              holds=rank["chosen_beats_worst"],
              otherwise=f"The best and worst settings differ by {_fmt(rank['best_to_worst'])}, "
              f"inside the noise band {_fmt(band)}: no setting studied is shown to change "
              f"{s.metric}.", span=rank["best_to_worst"], band=band)


def _effects(result: StudyResult) -> list[str]:
    """Per varied field: how far the metric moved across its values (measured)."""
    s = result.study
    ok = result.complete
    spans: list[tuple[float, str]] = []
    out = []
    base = next((r for r in ok if r["varied"] == "base"), None)
    for f in result.params:
        group = [r for r in ok if r["varied"] in (f, "base")] if s.mode == "one_at_a_time" \
            else ok
        means: dict[Value, float] = {}
        for v in dict.fromkeys(r[f] for r in group):
            vals = [r[s.metric] for r in group if r[f] == v]
            means[v] = sum(vals) / len(vals)
        if len(means) < 2:
            continue
        lo = min(means, key=means.get)
        hi = max(means, key=means.get)
        best, worst = (lo, hi) if s.direction == "minimize" else (hi, lo)
        span = means[hi] - means[lo]
        spans.append((span, f))
        how = "alone, others at the base setting" if s.mode == "one_at_a_time" \
            else "averaged over the other fields"
        rel = f" ({span / abs(base[s.metric]) * 100:.1f}% of the base value)" \
            if base and base[s.metric] else ""
        out.append(f"Varying {f} ({how}): {s.metric} ranges from {_fmt(means[best])} at "
                   f"{f}={best} to {_fmt(means[worst])} at {f}={worst}, a spread of "
                   f"{_fmt(span)}{rel}.")
    if len(spans) >= 2:
        spans.sort()
        out.append(f"Over these values, {spans[-1][1]} moves {s.metric} the most "
                   f"({_fmt(spans[-1][0])}) and {spans[0][1]} the least ({_fmt(spans[0][0])}).")
    return out
