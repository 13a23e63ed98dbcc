"""The full profile, measured: each program at `--profile full` on the full data sets
present, in a fresh process on one thread (as `dlab run all --profile full --jobs 2` runs
it), its wall time, peak memory and target verdicts.

Each program is first run whole; one that has not finished after --try-full seconds is
killed and run for a bounded part instead, twice: every epoch count it has set to
`--epochs` (1 by default), then to one more. The full run is projected along the straight
line through the two times (what a run costs besides its epochs, plus the cost of one more
epoch of everything it trains, times the full epoch count). Where the second bounded run
does not finish, the projection comes from the first run's history.csv instead (outside-
training time plus each logged model's seconds per epoch times its full epochs; it misses
training that logs no epochs, such as the Keras twins). A
projection ignores early stopping (`patience`) and assumes every epoch costs what the
second did; it is an estimate, not a bound (whole runs of 9.2, 10.2 and 13.1 took 523, 435
and 500 s against earlier projections of 411, 290 and 403 s made on a more loaded machine).
It is marked "projected"; its verdicts are those of the bounded run, not the full run's.
A study (12.2, 13.2, 14.2, 15.2, 16.2) is not run whole unless --studies is given: one
trial at its base setting (the base program at full with the study's fixed settings) is
run for 1 and for 2 epochs, projected along the line to the trials' epochs, and times the
number of trials in its plan (per part, for 15.2's two studies); the other settings of a
study cost more or less than its base, so this is an estimate, marked "projected". Where the
2-epoch run is the faster one (the first paid a one-time cost: a scoring classifier or the
binarised digits, trained or written once and cached), the 1-epoch run is timed again. A run
that does not finish its bounded part within --timeout seconds is killed and reported so.

Usage: python bench/full_profile.py [IDS ...] [--try-full 120] [--epochs 1] [--timeout 900]
       [--studies] [--json PATH]
       (needs full MNIST: `dlab data get mnist`; Fashion-MNIST: apt-get install
       dataset-fashion-mnist)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STUDIES = {"12.2": ("dlab.experiments.exp12_autoencoder", "ae_study"),
           "13.2": ("dlab.experiments.exp13_denoising", "dae_study"),
           "14.2": ("dlab.experiments.exp14_nade_made", "density_study"),
           "15.2": ("dlab.experiments.exp15_pixel", "pixel_studies"),
           "16.2": ("dlab.experiments.exp16_gan", "gan_study")}
# epoch counts a bounded run sets to --epochs, and the history models each one counts
EPOCH_KEYS = {"epochs": "", "manual_epochs": "manual", "markov_epochs": "markov",
              "gaussian_epochs": "gauss", "trial_epochs": ""}


def full_settings(pid: str) -> dict:
    from dlab import config as configs
    from dlab.registry import PROGRAMS

    impl = PROGRAMS[pid].load()
    return configs.to_dict(configs.build(impl.config, impl.profiles, "full"))


def bounded(pid: str, epochs: int) -> dict[str, int]:
    """The epoch settings a bounded run lowers to `epochs` (none: run the full program)."""
    cfg = full_settings(pid)
    return {k: epochs for k in EPOCH_KEYS if isinstance(cfg.get(k), int) and cfg[k] > epochs}


def study_parts(pid: str) -> list[tuple[str, dict[str, str], int]]:
    """Per part of a study at full: its base program, the `--set` text of a trial at the
    base setting, and the number of trials in its plan."""
    from importlib import import_module

    from dlab import config as configs
    from dlab.registry import PROGRAMS
    from dlab.studies.plan import make_plan
    from dlab.studies.study import as_text, encode

    module, builder = STUDIES[pid]
    impl = PROGRAMS[pid].load()
    built = getattr(import_module(module), builder)(configs.build(impl.config, impl.profiles,
                                                                  "full"))
    parts = []
    for study in (built.values() if isinstance(built, dict) else [built]):
        sets = {k: as_text(encode(v, k)) for k, v in study.base.items()}
        parts.append((study.info.id, sets, len(make_plan(study, 0).points)))
    return parts


def project_study(pid: str, out: Path, timeout: float) -> dict:
    """A study's projected seconds: per part, a base trial at 1 and 2 epochs, the line to
    its epochs, times its number of trials."""
    total, cpu, notes, peak = 0.0, 0.0, [], 0.0
    for base, sets, n_trials in study_parts(pid):
        epochs = int(sets["epochs"])
        one, two = two_points(base, {**sets, "epochs": 1}, {**sets, "epochs": 2}, out,
                              timeout)
        bad = next((r for r in (one, two) if r is not None and r["status"] != "ok"), None)
        if bad:
            return {"status": f"trial of {base}: {bad['status']}", "wall_s": bad["wall_s"]}
        trial = along_line(one["seconds"], two["seconds"], 1, epochs)
        total += n_trials * trial
        cpu += n_trials * trial * cpu_share(one)
        peak = max(peak, one.get("peak_mb", 0), two.get("peak_mb", 0))
        notes.append(f"{n_trials} trials x {trial:,.0f} s ({base}, {epochs} epochs, "
                     f"{one['seconds']:.0f}/{two['seconds']:.0f} s at 1/2)")
    return {"status": "ok", "projected_s": total, "projected_cpu_s": cpu, "peak_mb": peak,
            "notes": notes}


def two_points(pid: str, low: dict, high: dict, out: Path, timeout: float
               ) -> tuple[dict, dict | None]:
    """A run with the settings `low`, then, where it ended ok, one with `high` (one epoch
    more). Where the second is the faster, the first paid a one-time cost (a scoring
    classifier or the binarised digits, made once and cached) and is timed again, warm."""
    first = run_once(pid, low, out, timeout)
    if first["status"] != "ok":
        return first, None
    second = run_once(pid, high, out, timeout)
    if second["status"] == "ok" and second["seconds"] < first["seconds"]:
        first = run_once(pid, low, out, timeout)
    return first, second


def along_line(at_e: float, at_next: float, e: int, epochs: int) -> float:
    """Seconds at `epochs` on the straight line through a run of `e` epochs (`at_e`
    seconds) and one of `e + 1` (`at_next`)."""
    return at_e + (at_next - at_e) * (epochs - e)


def cpu_share(got: dict) -> float:
    """CPU seconds per wall second of a run (below 1 when the machine was shared)."""
    return got.get("cpu_s", 0.0) / got["wall_s"] if got.get("wall_s") else 1.0


def run_once(pid: str, sets: dict[str, int | str], out: Path, timeout: float) -> dict:
    env = dict(os.environ, DLAB_THREADS="1", OMP_NUM_THREADS="1")
    cmd = ["/usr/bin/time", "-f", "peak_kb=%M cpu_s=%U+%S", sys.executable, "-m", "dlab", "run", pid,
           "--profile", "full", "--out", str(out), "--quiet"]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the run itself, not only /usr/bin/time
        proc.communicate()
        return {"status": f"killed after {timeout:.0f} s", "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    timed = next((line for line in stderr.splitlines() if line.startswith("peak_kb=")), "")
    fields = dict(part.split("=") for part in timed.split())
    peak = int(fields.get("peak_kb", 0))
    cpu = sum(float(x) for x in fields.get("cpu_s", "0").split("+"))
    metas = sorted((out / pid).glob("*/metrics.json"))
    if not metas:
        return {"status": f"failed ({proc.returncode}): {stderr.strip()[-300:]}",
                "wall_s": wall, "peak_mb": peak / 1024}
    summary = json.loads(metas[-1].read_text())
    history = metas[-1].parent / "history.csv"
    rows = list(csv.DictReader(history.open())) if history.is_file() else []
    return {"status": summary["status"], "wall_s": wall, "peak_mb": peak / 1024, "cpu_s": cpu,
            "seconds": summary["timings"]["seconds"], "history": rows,
            "targets": [t for t in summary.get("targets", [])
                        if t.get("met") != "not applicable"]}


def project(pid: str, got: dict, sets: dict[str, int]) -> float | None:
    """Seconds a full run would take (an estimate). With two bounded runs (E and E + 1
    epochs): a straight line through their times, which counts every model trained,
    logged in history.csv or not (Keras twins); else from one run's history."""
    cfg = full_settings(pid)
    if got.get("second") is not None:
        key = "epochs" if "epochs" in sets else next(iter(sets))
        return along_line(got["seconds"], got["second"], sets[key], cfg[key])
    per_model: dict[str, list[float]] = {}
    for row in got.get("history", []):
        try:
            seconds = float(row["seconds"])
        except (KeyError, TypeError, ValueError):
            continue
        per_model.setdefault(row.get("model", ""), []).append(seconds)
    if not per_model:  # no per-epoch times: the whole run scaled by its epochs
        key = "epochs" if "epochs" in sets else next(iter(sets))
        return got["seconds"] * cfg[key] / sets[key]
    trained = sum(sum(v) for v in per_model.values())
    total = got["seconds"] - trained
    for model, secs in per_model.items():
        key = next((k for k, tag in EPOCH_KEYS.items() if tag and tag in model.lower()
                    and k in sets), "epochs" if "epochs" in sets else next(iter(sets)))
        total += sum(secs) / len(secs) * cfg[key]
    return total


def batch_wall(seconds: dict[str, float], jobs: int = 2, start: float = 4.0) -> float:
    """Wall seconds of `dlab run IDS --jobs N` over programs taking `seconds` each (in
    the given order, each job started when one of the N slots frees, as dlab.batch does),
    with `start` seconds of process start-up per program."""
    slots = [0.0] * jobs
    for secs in seconds.values():
        i = slots.index(min(slots))
        slots[i] += secs + start
    return max(slots)


def verdicts(targets: list[dict]) -> str:
    words = {True: "met", False: "missed"}
    return "; ".join(f"{t['rule']}: {words.get(t.get('met'), t.get('met'))}" for t in targets)


def main(argv: list[str] | None = None) -> list[dict]:
    from dlab.registry import PROGRAMS, resolve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="program ids (default: all)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--try-full", type=float, default=120,
                        help="seconds the whole full run may take before it is bounded")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--studies", action="store_true", help="run studies too")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    programs = resolve(args.ids) if args.ids else list(PROGRAMS.values())
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    print("| program | run | seconds | CPU seconds | peak MB | verdicts (of the run made) |")
    print("|---|---|---|---|---|---|")
    results = []
    with tempfile.TemporaryDirectory(prefix="dlab-full-") as tmp:
        for p in programs:
            if p.id in STUDIES and not args.studies:
                got = project_study(p.id, Path(tmp), args.timeout)
                results.append({"program": p.id, **got})
                if got["status"] == "ok":
                    print(f"| {p.id} | projected: {'; '.join(got['notes'])} | "
                          f"{got['projected_s']:,.0f} | {got['projected_cpu_s']:,.0f} | "
                          f"{got['peak_mb']:,.0f} | not run |", flush=True)
                else:
                    print(f"| {p.id} | {got['status']} | | | | |", flush=True)
                continue
            sets = {}
            got = run_once(p.id, sets, Path(tmp), args.try_full)  # the whole run, if short
            if got["status"].startswith("killed") and bounded(p.id, args.epochs):
                sets = bounded(p.id, args.epochs)
                more = {k: v + 1 for k, v in sets.items()}  # one epoch more, for the slope
                got, again = two_points(p.id, sets, more, Path(tmp), args.timeout)
                if again is not None:
                    got["second"] = again["seconds"] if again["status"] == "ok" else None
            row = {"program": p.id, "bounded": sets, **{k: v for k, v in got.items()
                                                        if k != "history"}}
            if got["status"] != "ok":
                kind, secs, cpu = got["status"], got["wall_s"], got.get("cpu_s", 0.0)
            elif sets:
                row["projected_s"] = project(p.id, got, sets)
                kind = "projected from " + ", ".join(f"{k}={v}" for k, v in sets.items())
                secs = row["projected_s"]
                cpu = row["projected_cpu_s"] = secs * cpu_share(got)
            else:
                kind, secs, cpu = "measured", got["seconds"], got["cpu_s"]
            results.append(row)
            print(f"| {p.id} | {kind} | {secs:,.0f} | {cpu:,.0f} | {got.get('peak_mb', 0):,.0f} | "
                  f"{verdicts(got.get('targets', []))} |", flush=True)
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    times = {r["program"]: r.get("projected_s") or r.get("seconds") for r in results}
    if len(times) == len(PROGRAMS) and all(times.values()):
        print(f"all {len(times)} programs: {sum(times.values()):,.0f} s on one thread; "
              f"`dlab run all --profile full --jobs 2` in this order: "
              f"{batch_wall(times) / 3600:.1f} h wall")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
