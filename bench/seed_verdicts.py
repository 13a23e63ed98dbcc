"""Run programs at several seeds and table every comparative verdict and target.

    python bench/seed_verdicts.py 2.2 5.2 7.2 --seeds 0 1 2 3 --profile quick --out /tmp/sv

For each program, each comparison sentence (`ctx.compare`: its verdict word) and each
target (met / missed / not shown) is listed per seed; a row whose words include both
"better" and "worse" (or both met and missed for a comparative target) is a flip and
is marked FLIP. Writes seed_verdicts.json beside the runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def words(info: dict) -> dict[str, str]:
    out = {}
    for c in info.get("record", {}).get("claims", []):
        if "verdict" in c:
            out["compare: " + c["claim"]] = c["verdict"]
    for t in info.get("targets", []):
        met = t["met"]
        word = ("not shown" if t.get("shown") is False else
                {True: "met", False: "missed"}.get(met, "n/a"))
        out["target: " + t["rule"]] = word
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("programs", nargs="+")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--out", default="/tmp/seed-verdicts")
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    table: dict[str, dict[str, list[str]]] = {}
    for pid in a.programs:
        rows: dict[str, list[str]] = {}
        for i, seed in enumerate(a.seeds):
            out = Path(a.out) / f"seed{seed}"
            cmd = [sys.executable, "-m", "dlab", "run", pid, "--profile", a.profile, "--seed",
                   str(seed), "--out", str(out), "--quiet"]
            for s in a.set:
                cmd += ["--set", s]
            subprocess.run(cmd, check=False)
            folder = max((out / pid).glob("*/metrics.json"), key=lambda p: p.stat().st_mtime)
            for k, w in words(json.loads(folder.read_text())).items():
                rows.setdefault(k, ["-"] * len(a.seeds))[i] = w
        table[pid] = rows
        print(f"\n{pid} ({a.profile}), seeds {' '.join(map(str, a.seeds))}")
        for k, ws in rows.items():
            flip = ({"better", "worse"} <= set(ws)) or ({"met", "missed"} <= set(ws)
                                                       and k.startswith("target"))
            print(f"  {'FLIP ' if flip else '     '}{' | '.join(f'{w:>19}' for w in ws)}  {k}")
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "seed_verdicts.json").write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
