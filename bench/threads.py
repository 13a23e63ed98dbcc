"""Torch threads per program: each program at one profile, once on one thread and once on
every core, each run in a fresh process (`dlab run ID --profile P` with DLAB_THREADS set),
one after the other, so that nothing else of this benchmark shares the cores.

Printed per program: the program's own seconds (from its metrics.json) with 1 and with N
threads, their ratio and whether the two runs measured the same headline; then the load
average before and after. This is the measurement behind `dlab.runs.ONE_THREAD`, the
programs a single run starts on one thread.

Usage: python bench/threads.py [IDS ...] [--profile quick] [--json PATH]
       (no IDS: all 32 programs; run on an idle machine)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(pid: str, profile: str, threads: int, out: Path) -> dict:
    env = dict(os.environ, DLAB_THREADS=str(threads))
    env.pop("OMP_NUM_THREADS", None)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dlab", "run", pid, "--profile", profile,
                           "--out", str(out), "--quiet"], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"threads: dlab run {pid} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    meta = sorted((out / pid).glob("*/metrics.json"))[-1]
    summary = json.loads(meta.read_text())
    return {"seconds": summary["timings"]["seconds"], "wall_s": wall,
            "metrics": summary["metrics"]}


def main(argv: list[str] | None = None) -> dict:
    from dlab.registry import PROGRAMS, resolve
    from dlab.runs import cpu_count

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="program ids (default: all)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    programs = resolve(args.ids) if args.ids else list(PROGRAMS.values())
    cores = cpu_count()
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dlab-threads-") as tmp:
        for k, p in enumerate(programs):
            order = (1, cores) if k % 2 == 0 else (cores, 1)  # alternate which goes first
            got = {n: run_once(p.id, args.profile, n, Path(tmp) / f"t{n}") for n in order}
            one, many = got[1]["seconds"], got[cores]["seconds"]
            same = got[1]["metrics"].get(p.headline) == got[cores]["metrics"].get(p.headline)
            rows.append({"program": p.id, "one_thread_s": one, f"{cores}_threads_s": many,
                         "ratio": many / one, "same_headline": same})
            print(f"{p.id:>5}: 1 thread {one:6.1f} s, {cores} threads {many:6.1f} s, "
                  f"{cores} threads / 1 thread = {many / one:4.2f}"
                  f"{'' if same else '  (headline differs in the last digits)'}", flush=True)
    out = {"benchmark": "threads", "profile": args.profile, "cores": cores,
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "PASSIVE (dlab's default)"),
           "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
           "rows": rows}
    faster_one = [r["program"] for r in rows if r["ratio"] > 1.0]
    print(f"faster on one thread: {', '.join(faster_one) or 'none'}; load average "
          f"{load_before[0]:.2f} before, {out['load_average_after'][0]:.2f} after")
    if args.json:
        Path(args.json).write_text(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
