"""Experiment 4: a 784-128-64-10 MLP on MNIST (4.1) and its measured learning curves (4.2).

The network maps a flattened 28x28 digit x (784,) to ten logits,
z = W3 relu(W2 relu(W1 x + b1) + b2) + b3, trained with the cross-entropy
-log softmax(z)_y and Adam (Kingma and Ba 2015). Pixels are scaled to [0, 1] and
standardised with the mean and standard deviation of the training pixels, once, in
memory; batches are slices of that tensor.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dlab.data.images import channel_stats, prepare, to_tensor
from dlab.data.mnist import load_mnist
from dlab.models.mlp import MLP
from dlab.predict import classifier_metadata
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.training import FitResult, accuracy, evaluate, fit

# The manual's statement: the optimizer is built from `model` while `model` is being made.
MANUAL_STATEMENT = "model, optimizer = Net(), optim.Adam(model.parameters(), lr=0.001)"


@dataclass
class MLPConfig:
    source: str = "auto"  # auto (full MNIST if in the data folder, else bundled), bundled, full
    hidden: tuple[int, ...] = (128, 64)  # hidden widths: 784-128-64-10
    epochs: int = 5  # the manual's five epochs
    batch_size: int = 64  # mini-batch size
    lr: float = 1e-3  # Adam learning rate
    train_limit: int = 0  # use only this many training images (0: all of them)
    defect_epochs: int = 1  # epochs of the manual's optimizer-on-an-old-model run (4.1)

    def validate(self) -> None:
        if self.source not in ("auto", "bundled", "full"):
            raise ValueError(f"source must be auto, bundled or full, got {self.source!r}")
        if self.train_limit < 0:
            raise ValueError(f"train_limit must be 0 (all) or positive, got {self.train_limit}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden widths must be positive, got {self.hidden}")


@dataclass
class Digits:
    x_train: torch.Tensor  # (N, 784) standardised
    y_train: torch.Tensor  # (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: list[float]
    std: list[float]
    classes: list[str]
    test_images: np.ndarray  # uint8 (M, 28, 28), for figures


def load_digits(cfg: MLPConfig, ctx: RunContext) -> Digits:
    """MNIST as flat standardised tensors; statistics from the training images only."""
    data = load_mnist(cfg.source, ctx.data_dir)
    ctx.data(data.describe())
    xtr, ytr = data.x_train, data.y_train
    if cfg.train_limit and cfg.train_limit < len(xtr):
        keep = np.sort(ctx.rng.permutation(len(xtr))[:cfg.train_limit])
        xtr, ytr = xtr[keep], ytr[keep]
        ctx.data(f"Training on a random {len(xtr):,} of those training images "
                 f"(train_limit={cfg.train_limit}).")
    mean, std = channel_stats(to_tensor(xtr))
    ctx.data(f"Pixels scaled to [0, 1], then standardised with the training pixels' mean "
             f"{mean[0]:.4f} and standard deviation {std[0]:.4f}; test images use the same.")
    flat = [prepare(x, (28, 28), 1, mean, std).reshape(len(x), -1)  # (N, 784)
            for x in (xtr, data.x_test)]
    return Digits(flat[0], torch.as_tensor(ytr), flat[1], torch.as_tensor(data.y_test),
                  mean, std, data.classes, data.x_test)


def new_mlp(cfg: MLPConfig, ctx: RunContext, k: int) -> MLP:
    return MLP((784, *cfg.hidden, 10), generator=ctx.torch_generator(k)).to(ctx.device)


def train_mlp(cfg: MLPConfig, ctx: RunContext, d: Digits,
              train_eval: bool = False) -> tuple[MLP, FitResult]:
    """The correct program: make the model, then its optimizer; train with the one loop.

    The test set is scored after every epoch (columns val_*) for the curves; nothing is
    selected on it (no early stopping). With train_eval, the whole training set is also
    scored in eval mode at each epoch's end (columns train_eval_*).
    """
    model = new_mlp(cfg, ctx, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    metrics = {"acc": accuracy}
    extra = None
    if train_eval:
        def extra() -> dict[str, float]:
            s = evaluate(model, (d.x_train, d.y_train), F.cross_entropy, metrics,
                         device=ctx.device)
            return {f"train_eval_{k}": v for k, v in s.items()}
    result = fit(model, (d.x_train, d.y_train), val=(d.x_test, d.y_test), ctx=ctx,
                 epochs=cfg.epochs, optimizer=optimizer, loss_fn=F.cross_entropy,
                 batch_size=cfg.batch_size, metrics=metrics, name="mlp", validate=extra)
    return model, result


def save(model: MLP, cfg: MLPConfig, ctx: RunContext, d: Digits) -> None:
    ctx.save_model(model, **classifier_metadata(
        "mlp", {"sizes": [784, *cfg.hidden, 10], "activation": "relu"}, (28, 28), 1,
        d.mean, d.std, d.classes, ctx.program.id, flatten=True))


def manual_defect(cfg: MLPConfig, ctx: RunContext, d: Digits) -> dict[str, object]:
    """The manual's optimizer line, run both ways it can run.

    In a fresh interpreter the statement raises NameError. In a notebook that still
    holds an older `model`, the optimizer is bound to that old model: the loop computes
    the loss of the new model, fills the new model's gradients, and steps the old
    model's parameters (which have no gradients, so Adam skips them). Nothing learns.
    The same loop (`fit` with `supervised_step`) is used, only the optimizer differs.
    """
    try:
        exec(MANUAL_STATEMENT, {"Net": lambda: new_mlp(cfg, ctx, 9), "optim": torch.optim})
        fresh = "no error"
    except NameError as exc:
        fresh = f"NameError: {exc}"
    old_model = new_mlp(cfg, ctx, 2)  # the `model` left over from an earlier cell
    optimizer = torch.optim.Adam(old_model.parameters(), lr=cfg.lr)
    model = new_mlp(cfg, ctx, 3)      # the new model the loop then trains and tests
    old_before = copy.deepcopy(old_model.state_dict())
    new_before = copy.deepcopy(model.state_dict())
    result = fit(model, (d.x_train, d.y_train), ctx=ctx, epochs=cfg.defect_epochs,
                 optimizer=optimizer, loss_fn=F.cross_entropy, batch_size=cfg.batch_size,
                 metrics={"acc": accuracy}, name="manual_defect", checkpoint=False)
    test = evaluate(model, (d.x_test, d.y_test), F.cross_entropy, {"acc": accuracy},
                    device=ctx.device)

    def changed(before: dict, m: MLP) -> bool:
        return any(not torch.equal(before[k], v) for k, v in m.state_dict().items())

    return {"fresh_interpreter": fresh, "train_loss": result.last("loss"),
            "test_loss": test["loss"], "test_accuracy": test["acc"],
            "old_model_changed": changed(old_before, old_model),
            "new_model_changed": changed(new_before, model)}


def _digit_grid(ctx: RunContext, images: np.ndarray, true: np.ndarray, pred: np.ndarray,
                name: str, caption: str, n: int = 32) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(n, len(images))
    cols = 8
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.35), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap="gray")
            ok = pred[i] == true[i]
            ax.set_title(f"{pred[i]}" + ("" if ok else f" (true {true[i]})"), fontsize=8,
                         color="black" if ok else "red")
    ctx.figure(fig, name, caption)


def run_mnist_mlp(cfg: MLPConfig, ctx: RunContext) -> None:
    d = load_digits(cfg, ctx)
    model, result = train_mlp(cfg, ctx, d)
    test = evaluate(model, (d.x_test, d.y_test), F.cross_entropy, {"acc": accuracy},
                    device=ctx.device)
    defect = manual_defect(cfg, ctx, d)
    save(model, cfg, ctx, d)

    with torch.inference_mode():
        pred = model.eval()(d.x_test.to(ctx.device)).argmax(-1).cpu().numpy()
    true = d.y_test.numpy()
    per_class = [float((pred[true == c] == c).mean()) for c in range(10)]
    ctx.metrics.update({
        "test_accuracy": test["acc"], "test_loss": test["loss"],
        "train_loss_last_epoch": result.last("loss"),
        "train_accuracy_last_epoch": result.last("acc"),
        "epochs": len(result.history), "train_size": len(d.x_train),
        "test_size": len(d.x_test),
        "seconds_per_epoch": result.seconds / max(len(result.history), 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "manual_defect": defect,
    })
    ctx.table("Per-epoch training (running mean over the epoch) and test scores",
              ["epoch", "train loss", "train accuracy", "test loss", "test accuracy",
               "seconds"],
              [[r["epoch"], r["loss"], r["acc"], r["val_loss"], r["val_acc"], r["seconds"]]
               for r in result.history])
    ctx.table("Test accuracy per digit", ["digit", "accuracy"],
              [[c, a] for c, a in zip(d.classes, per_class, strict=True)])
    ctx.table("The manual's optimizer statement, measured",
              ["setting", "test loss", "test accuracy"],
              [["correct: model made first, then Adam(model.parameters())", test["loss"],
                test["acc"]],
               [f"manual in a notebook: Adam bound to an older model, {cfg.defect_epochs} "
                "epoch(s)", defect["test_loss"], defect["test_accuracy"]]])
    wrong = np.flatnonzero(pred != true)
    show = np.concatenate([np.arange(16), wrong[:16]])
    _digit_grid(ctx, d.test_images[show], true[show], pred[show], "test_digits.png",
                "First 16 test digits, then up to 16 misclassified ones; the title is the "
                "predicted digit (red: wrong, with the true digit).")

    ctx.infer(f"The 784-{'-'.join(map(str, cfg.hidden))}-10 MLP reached "
              f"{100 * test['acc']:.2f}% test accuracy on {len(d.x_test):,} held-out digits "
              f"after {len(result.history)} epochs (test loss {test['loss']:.4f}).")
    worst = int(np.argmin(per_class))
    ctx.infer(f"The hardest digit was {d.classes[worst]} ({100 * per_class[worst]:.1f}% "
              f"right); the easiest {d.classes[int(np.argmax(per_class))]} "
              f"({100 * max(per_class):.1f}%).")
    ctx.infer(f"The manual's statement `{MANUAL_STATEMENT}` in a fresh interpreter: "
              f"{defect['fresh_interpreter']}.")
    ctx.infer(f"Run as a notebook would run it (optimizer bound to an older model), the "
              f"trained model's loss stayed at {defect['train_loss']:.3f} (ln 10 = 2.303 is "
              f"a uniform guess) and its test accuracy was "
              f"{100 * defect['test_accuracy']:.2f}% (chance: 10%), against "
              f"{100 * test['acc']:.2f}% when the optimizer holds the model being trained; "
              f"the old model's weights changed: "
              f"{'yes' if defect['old_model_changed'] else 'no'}, the new model's: "
              f"{'yes' if defect['new_model_changed'] else 'no'}. The manual printed a flat "
              "loss of 2.30 and 11.81% accuracy.")


def run_curves(cfg: MLPConfig, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = load_digits(cfg, ctx)
    model, result = train_mlp(cfg, ctx, d, train_eval=True)
    save(model, cfg, ctx, d)
    h = result.history
    epochs = [r["epoch"] for r in h]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [r["train_eval_loss"] for r in h], "o-", label="training set (end of epoch)")
    ax1.plot(epochs, [r["loss"] for r in h], "o--", alpha=0.6, label="training (mean during epoch)")
    ax1.plot(epochs, [r["val_loss"] for r in h], "s-", label="test set")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    ax1.set_title("Loss")
    ax1.legend(fontsize=8)
    ax2.plot(epochs, [100 * r["train_eval_acc"] for r in h], "o-", label="training set")
    ax2.plot(epochs, [100 * r["val_acc"] for r in h], "s-", label="test set")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    ax2.set_title("Accuracy")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
    ctx.figure(fig, "curves.png", "Measured after every epoch: loss and accuracy on the "
               "whole training set and on the held-out test set (dashed: the running mean "
               "of the training loss during the epoch).")
    gap = h[-1]["train_eval_acc"] - h[-1]["val_acc"]
    best = max(h, key=lambda r: r["val_acc"])
    ctx.metrics.update({
        "test_accuracy": h[-1]["val_acc"], "test_loss": h[-1]["val_loss"],
        "train_accuracy": h[-1]["train_eval_acc"], "train_loss": h[-1]["train_eval_loss"],
        "generalisation_gap": gap, "best_test_epoch": best["epoch"],
        "test_accuracy_per_epoch": [r["val_acc"] for r in h],
        "train_accuracy_per_epoch": [r["train_eval_acc"] for r in h],
    })
    ctx.table("Measured curves", ["epoch", "train loss", "train accuracy", "test loss",
                                  "test accuracy"],
              [[r["epoch"], r["train_eval_loss"], r["train_eval_acc"], r["val_loss"],
                r["val_acc"]] for r in h])
    falling = all(b["train_eval_loss"] < a["train_eval_loss"]
                  for a, b in zip(h, h[1:], strict=False))
    ctx.infer(f"Training loss went from {h[0]['train_eval_loss']:.4f} after epoch 1 to "
              f"{h[-1]['train_eval_loss']:.4f} after epoch {h[-1]['epoch']} "
              f"({'falling every epoch' if falling else 'not falling every epoch'}); test "
              f"loss from {h[0]['val_loss']:.4f} to {h[-1]['val_loss']:.4f}.")
    ctx.infer(f"Final accuracy: {100 * h[-1]['train_eval_acc']:.2f}% on the training set and "
              f"{100 * h[-1]['val_acc']:.2f}% on the test set, a gap of {100 * gap:.2f} "
              f"points; the best test accuracy was at epoch {best['epoch']}.")
    ctx.note("Every point of the curves is measured in this run (history.csv holds them); "
             "the manual's plot shows numbers typed in by hand.")


MNIST_MLP = Implementation(config=MLPConfig, run=run_mnist_mlp, profiles={
    "smoke": {"epochs": 1, "train_limit": 1000},
    "full": {},
})

CURVES = Implementation(config=MLPConfig, run=run_curves, profiles={
    "smoke": {"epochs": 2, "train_limit": 1000},
    "full": {},
})
