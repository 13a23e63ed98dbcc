"""A tiny program used by the tests of the run machinery and the training loop."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from dlab.registry import Implementation, ProgramInfo
from dlab.training import fit


@dataclass
class ToyConfig:
    epochs: int = 6
    lr: float = 0.05
    batch_size: int = 16
    patience: int = 0  # early stopping patience (0: none)


def run_toy(cfg: ToyConfig, ctx) -> None:
    g = ctx.torch_generator(99)
    x = torch.randn(256, 3, generator=g)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.1 * torch.randn(256, 1, generator=g)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)

    def hook(epoch, row):
        if epoch == int(os.environ.get("TOY_INTERRUPT_AT", "0")):
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C
        return {"weight_norm": float(model[0].weight.detach().norm())}

    result = fit(model, (x[:192], y[:192]), val=(x[192:], y[192:]), ctx=ctx, epochs=cfg.epochs,
                 optimizer=opt, loss_fn=nn.functional.mse_loss, batch_size=cfg.batch_size,
                 patience=cfg.patience or None, on_epoch_end=hook)
    ctx.metrics["val_loss"] = result.last("val_loss")
    ctx.metrics["weight_sum"] = float(sum(p.detach().sum() for p in model.parameters()))
    ctx.metrics["best_epoch"] = result.best_epoch
    ctx.save_model(model)
    ctx.infer(f"validation MSE {result.last('val_loss'):.4f}")


TOY = Implementation(config=ToyConfig, run=run_toy, profiles={"smoke": {"epochs": 3}})
TOY_INFO = ProgramInfo(id="0.1", title="Toy regression", aim="Test the machinery.",
                       entry="toy_program:TOY")
