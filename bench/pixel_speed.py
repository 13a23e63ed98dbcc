"""Training-step time of 15.1's three models at the full profile's sizes (the manual's
PixelCNN, 64 channels and 7x7 masks; PixelCNN 64 channels x 7 residual blocks of 3x3 mask
B; Row LSTM, 64 hidden x 2 layers), batch 64 of 28x28 binarised digits, each in two forms
in one process on the same digits and the same initial weights:

- the PixelCNNs: masked convolutions cropped to the kernel's rows down to the centre
  (MaskedConv2d.forward) against the whole masked kernel (MaskedConv2d.dense_forward);
- the Row LSTM: the input-to-state map split into rows by one unbind (RowRecurrence.
  forward) against indexing it row by row (`indexed_rows` below, the earlier code).

Each form trains its own copy for --steps Adam steps after --warmup steps; the table gives
seconds per step and the mean training NLL of the last steps, which agree across the two
forms to float32 rounding.

Usage: python bench/pixel_speed.py [--steps 10] [--warmup 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch

from dlab import config as configs
from dlab.data import binary
from dlab.experiments import exp15_pixel as e15
from dlab.models import pixelrnn
from dlab.models.pixelcnn import MaskedConv2d


def indexed_rows(self, x: torch.Tensor) -> torch.Tensor:
    """RowRecurrence.forward as it was: a[:, :, i] taken from the whole map every row."""
    B, C, H, W = x.shape
    a = self.input_to_state(x)
    h = x.new_zeros(B, C, W)
    c = x.new_zeros(B, C, W) if self.cell == "lstm" else None
    rows = []
    for i in range(H):
        b = self.state_to_state(h)
        gates = a[:, :, i] + b if self.cell == "lstm" else (a[:, :, i], b)
        h, c = pixelrnn._cell_step(self.cell, gates, h, c)
        rows.append(h)
    return torch.stack(rows, dim=2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = configs.build(e15.PIXEL.config, e15.PIXEL.profiles, "full")
    data = binary.binarized_mnist("auto")
    n = args.batch * (args.steps + args.warmup)
    x = torch.as_tensor(data.x_train[:n], dtype=torch.float32).view(-1, 1, 28, 28)
    print(f"data: {data.source}; threads {args.threads}; batch {args.batch}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print("| model | form | seconds per step | mean NLL, last steps |")
    print("|---|---|---|---|")
    cropped, unbound = MaskedConv2d.forward, pixelrnn.RowRecurrence.forward
    forms = {"manual_pixelcnn": (MaskedConv2d, (("whole kernel", MaskedConv2d.dense_forward),
                                                ("cropped to the centre row", cropped))),
             "pixelcnn": (MaskedConv2d, (("whole kernel", MaskedConv2d.dense_forward),
                                         ("cropped to the centre row", cropped))),
             "pixelrnn": (pixelrnn.RowRecurrence, (("rows indexed one by one", indexed_rows),
                                                   ("rows split by one unbind", unbound)))}
    for name, (cls, pair) in forms.items():
        torch.manual_seed(0)
        model = e15.build_model(name, cfg)
        for form, fn in pair:
            cls.forward = fn
            m = copy.deepcopy(model)
            opt = torch.optim.Adam(m.parameters(), lr=cfg.lr)
            losses, t0 = [], time.perf_counter()
            for i in range(args.warmup + args.steps):
                if i == args.warmup:
                    t0 = time.perf_counter()
                xb = x[i * args.batch:(i + 1) * args.batch]
                loss = -m.log_prob(xb).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            per_step = (time.perf_counter() - t0) / args.steps
            last = losses[-min(5, args.steps):]
            print(f"| {name} | {form} | {per_step:.3f} | {sum(last) / len(last):.3f} |",
                  flush=True)
    MaskedConv2d.forward, pixelrnn.RowRecurrence.forward = cropped, unbound


if __name__ == "__main__":
    main()
