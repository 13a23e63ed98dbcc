"""NADE training-step time at 14.1's full size (784 inputs, 500 hidden units, batch 100):
the dense form eager, the dense form through torch.compile, and the chunked running sum
that NADE uses on a CPU, on the same binarised digits in one process.

Each form trains its own copy of the same initial weights with Adam for --steps steps
(after --warmup steps, which for the compiled form include compiling) and reports seconds
per step and the mean training NLL of the last ten steps, which agree across the three to
within float32 rounding.

Usage: python bench/nade_speed.py [--steps 40] [--warmup 3] [--threads 1] [--chunk 8]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch
import torch.nn.functional as F

from dlab.data import binary
from dlab.models import nade as nade_module
from dlab.models.nade import NADE, RunningSum


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=nade_module.CHUNK)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = binary.binarized_mnist("auto")
    x = torch.as_tensor(data.x_train[: args.batch * (args.steps + args.warmup)],
                        dtype=torch.float32)
    print(f"data: {data.source}, {x.shape[0]} digits; threads {args.threads}; "
          f"load average {os.getloadavg()[0]:.2f}")
    base = NADE(x.shape[1], args.hidden, generator=torch.Generator().manual_seed(0))
    compiled_dense = None

    def dense(m, xb):
        return m.dense_logits(xb)

    def running(m, xb):
        return RunningSum.apply(xb, m.W, m.c, m.V, m.b, args.chunk)

    def compiled(m, xb):
        nonlocal compiled_dense
        if compiled_dense is None:
            compiled_dense = torch.compile(m.dense_logits)
        return compiled_dense(xb)

    print("| form | seconds per step | first steps (s) | mean NLL, last 10 steps |")
    print("|---|---|---|---|")
    for name, form in (("dense, eager", dense), ("dense, torch.compile", compiled),
                       (f"running sum, chunks of {args.chunk}", running)):
        model = copy.deepcopy(base)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses, t_warm, t0 = [], 0.0, time.perf_counter()
        for i in range(args.warmup + args.steps):
            if i == args.warmup:
                t_warm, t0 = time.perf_counter() - t0, time.perf_counter()
            xb = x[i * args.batch:(i + 1) * args.batch]
            loss = F.binary_cross_entropy_with_logits(form(model, xb), xb,
                                                      reduction="sum") / xb.shape[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        per_step = (time.perf_counter() - t0) / args.steps
        print(f"| {name} | {per_step:.3f} | {t_warm:.1f} | {sum(losses[-10:]) / 10:.4f} |",
              flush=True)


if __name__ == "__main__":
    main()
