"""Experiment 8: the three-block ConvNet, counted (8.1) and trained (8.2).

Parameters of a 3x3 convolution from C_in to C_out channels: (3 * 3 * C_in + 1) * C_out
(a kernel per input/output pair plus one bias per output channel); of a dense layer
from n_in to n_out: (n_in + 1) * n_out; pooling and flattening have none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dlab.data.images import channel_stats, load_cifar10, prepare
from dlab.data.mnist import ImageData, find_fashion, load_fashion, load_mnist, stratified_split
from dlab.errors import DataError
from dlab.io import atomic_write
from dlab.metrics import confusion_matrix
from dlab.models.cnn import ConvNet, convnet_hand_count, count_parameters
from dlab.predict import classifier_metadata
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.training import accuracy, evaluate, fit

# ------------------------------------------------------------------ 8.1 summary


@dataclass
class SummaryConfig:
    input_size: int = 64  # H = W of the input (the manual: 64x64x3)
    channels: int = 3  # input channels
    n_classes: int = 10  # outputs
    compare_images: int = 8  # random images pushed through both models with shared weights

    def validate(self) -> None:
        if self.input_size < 22:
            raise ValueError(f"input_size must be at least 22 for three conv/pool blocks, "
                             f"got {self.input_size}")
        if self.channels < 1 or self.n_classes < 2 or self.compare_images < 1:
            raise ValueError("channels, n_classes (>= 2) and compare_images must be positive")


def torch_layer_rows(net: ConvNet) -> list[tuple[str, tuple, int]]:
    """(module name, output shape (C, H, W) or (n,), parameters) of every layer of `net`."""
    h, w = net.input_size
    x = torch.zeros(1, net.in_channels, h, w)
    rows = []
    with torch.inference_mode():
        for module in [*net.features, *net.classifier]:
            x = module(x)
            if isinstance(module, torch.nn.ReLU):
                continue
            rows.append((f"{type(module).__name__}", tuple(x.shape[1:]),
                         sum(p.numel() for p in module.parameters())))
    return rows


def run_summary(cfg: SummaryConfig, ctx: RunContext) -> None:
    from dlab.keras_programs import convnet as kc

    s = cfg.input_size
    keras_model = kc.build_convnet(s, cfg.channels, cfg.n_classes)
    net = ConvNet(s, cfg.channels, cfg.n_classes)
    hand = convnet_hand_count(s, cfg.channels, cfg.n_classes)
    k_rows = kc.layer_rows(keras_model)
    t_rows = torch_layer_rows(net)
    ctx.data(f"No data: the network is built for {s}x{s}x{cfg.channels} input and "
             f"{cfg.n_classes} classes; {cfg.compare_images} random images check that the "
             "Keras and PyTorch models compute the same function.")
    rows = []
    for (hname, _, hcount), (kname, kshape, kcount), (tname, tshape, tcount) in zip(
            hand, k_rows, t_rows, strict=True):
        rows.append([hname, kname, tname, "x".join(map(str, kshape)),
                     "x".join(map(str, tshape)), hcount, kcount, tcount,
                     hcount == kcount == tcount])
    ctx.table(f"Layer by layer, {s}x{s}x{cfg.channels} input (Keras shapes H x W x C, "
              "PyTorch shapes C x H x W)",
              ["layer", "Keras layer", "PyTorch module", "Keras output", "PyTorch output",
               "by hand", "Keras", "PyTorch", "equal"], rows)
    total_hand = sum(r[2] for r in hand)
    total_keras = int(keras_model.count_params())
    total_torch = count_parameters(net)

    kc.copy_to_torch(keras_model, net)
    images = ctx.rng.random((cfg.compare_images, s, s, cfg.channels), dtype=np.float32)
    diff = kc.compare_outputs(keras_model, net, images)

    atomic_write(ctx.path("keras_summary.txt"), kc.summary_text(keras_model) + "\n")
    atomic_write(ctx.path("torch_summary.txt"), f"{net}\n\nTotal parameters: {total_torch:,}\n")
    small = [(32, sum(r[2] for r in convnet_hand_count(32, 3, cfg.n_classes)),
              count_parameters(ConvNet(32, 3, cfg.n_classes)))]
    ctx.table("Totals", ["input", "by hand", "Keras", "PyTorch"],
              [[f"{s}x{s}x{cfg.channels}", total_hand, total_keras, total_torch],
               *[[f"{a}x{a}x3 (8.2)", h, "", t] for a, h, t in small]])
    dense = hand[-2][2]
    ctx.metrics.update({
        "parameters_by_hand": total_hand, "parameters_keras": total_keras,
        "parameters_torch": total_torch,
        "counts_equal": total_hand == total_keras == total_torch and all(r[-1] for r in rows),
        "max_probability_difference": diff,
        "flatten_size": int(np.prod(net.feature_shape)),
        "parameters_at_32x32": small[0][2],
    })
    ctx.infer(f"Parameters: {total_hand:,} by hand, {total_keras:,} in Keras and "
              f"{total_torch:,} in PyTorch: "
              f"{'all equal' if ctx.metrics['counts_equal'] else 'NOT equal'}, layer by layer.")
    ctx.infer(f"The first dense layer holds {dense:,} of them "
              f"({100 * dense / total_hand:.1f}%): its input is the flattened "
              f"{'x'.join(map(str, net.feature_shape[1:]))}x{net.feature_shape[0]} feature "
              f"map ({ctx.metrics['flatten_size']:,} numbers); at 32x32 input the same "
              f"network has {small[0][2]:,} parameters.")
    ctx.infer(f"With the Keras weights copied into the PyTorch model (kernels permuted to "
              f"channels-first, the first dense kernel's rows reordered from H, W, C to "
              f"C, H, W), their class probabilities on {cfg.compare_images} random images "
              f"differ by at most {diff:.2e}: the two are the same network.")
    ctx.note("Keras's model.summary() is in keras_summary.txt, PyTorch's in "
             "torch_summary.txt. The PyTorch model returns logits; the softmax of the Keras "
             "model's last layer is applied by the loss (cross-entropy) instead.")


# ------------------------------------------------------------------ 8.2 training


@dataclass
class TrainConfig:
    # auto (CIFAR-10 if present, else Fashion-MNIST, else MNIST), cifar10, fashion or mnist
    source: str = "auto"
    epochs: int = 4  # training epochs (the manual: 10)
    batch_size: int = 64  # mini-batch size
    lr: float = 1e-3  # Adam learning rate
    train_limit: int = 4000  # training images used, drawn at random (0: all)
    test_limit: int = 2000  # test images scored, drawn at random (0: all)
    val_fraction: float = 0.1  # of the training images, held out for the validation curves

    def validate(self) -> None:
        if self.source not in ("auto", "cifar10", "fashion", "mnist"):
            raise ValueError(f"source must be auto, cifar10, fashion or mnist, got "
                             f"{self.source!r}")
        if self.train_limit < 0 or self.test_limit < 0:
            raise ValueError("train_limit and test_limit must be 0 (all) or positive")
        if not 0.0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be between 0 and 0.5, got {self.val_fraction}")


def load_colour_images(source: str, ctx: RunContext) -> tuple[ImageData, str | None]:
    """CIFAR-10 when present; else a grey stand-in. Returns (data, stand-in text or None)."""
    if source in ("auto", "cifar10"):
        cifar = load_cifar10(ctx.data_dir)
        if cifar is not None:
            return cifar, None
        if source == "cifar10":
            raise DataError("CIFAR-10 not found: unpack cifar-10-python.tar.gz so that "
                            "DATA_DIR/cifar-10-batches-py/data_batch_1 exists (--data-dir or "
                            "DLAB_DATA), or use --set source=auto")
    why = "CIFAR-10 is not in the data folder (DATA_DIR/cifar-10-batches-py)"
    if source in ("auto", "fashion") and find_fashion(ctx.data_dir) is not None:
        data = load_fashion(ctx.data_dir)
        return data, (f"Fashion-MNIST (grey 28x28 clothing images, 10 classes) resized to "
                      f"32x32 and repeated to 3 channels stands in for CIFAR-10: {why}.")
    if source == "fashion":
        raise DataError("Fashion-MNIST not found; `apt-get install dataset-fashion-mnist`, "
                        "or use --set source=auto")
    data = load_mnist("auto", ctx.data_dir)
    return data, (f"{data.provenance.name} digits (grey 28x28) resized to 32x32 and repeated "
                  f"to 3 channels stand in for CIFAR-10: {why}, and Fashion-MNIST is not "
                  "installed either.")


def _subset(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if not limit or limit >= n else np.sort(rng.permutation(n)[:limit])


def curves_figure(ctx: RunContext, history: list[dict], name: str,
                  caption: str = "Training and validation loss and accuracy after every epoch.",
                  train_label: str = "training (mean during epoch)") -> None:
    """Loss and accuracy per epoch from fit's history (keys loss, acc, val_loss, val_acc)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(ep, [r["loss"] for r in history], "o-", label=train_label)
    a1.plot(ep, [r["val_loss"] for r in history], "s-", label="validation")
    a1.set_ylabel("cross-entropy")
    a2.plot(ep, [100 * r["acc"] for r in history], "o-", label=train_label)
    a2.plot(ep, [100 * r["val_acc"] for r in history], "s-", label="validation")
    a2.set_ylabel("accuracy (%)")
    for ax in (a1, a2):
        ax.set_xlabel("epoch")
        ax.set_xticks(ep)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ctx.figure(fig, name, caption)


def confusion_figure(ctx: RunContext, cm: np.ndarray, classes: list[str], name: str,
                     title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * k, 1.2 + 0.5 * k))
    ax.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    ctx.figure(fig, name, f"{title}: rows are true classes, columns predicted ones.")


def run_train(cfg: TrainConfig, ctx: RunContext) -> None:
    data, stand_in = load_colour_images(cfg.source, ctx)
    if stand_in:
        ctx.use_stand_in(stand_in)
    ctx.data(data.describe())
    tr = _subset(len(data.x_train), cfg.train_limit, ctx.rng)
    te = _subset(len(data.x_test), cfg.test_limit, ctx.rng)
    fit_idx, val_idx = stratified_split(data.y_train[tr], cfg.val_fraction, ctx.seed)
    x_fit, y_fit = data.x_train[tr][fit_idx], data.y_train[tr][fit_idx]
    x_val, y_val = data.x_train[tr][val_idx], data.y_train[tr][val_idx]
    x_te, y_te = data.x_test[te], data.y_test[te]
    size = (32, 32)
    # statistics of the training images only, after the resize (grey: one channel, repeated)
    c = 1 if x_fit.ndim == 3 else x_fit.shape[-1]
    mean, std = channel_stats(prepare(x_fit, size, c, [0.0] * c, [1.0] * c))
    if c == 1:
        mean, std = mean * 3, std * 3
    xs = [prepare(x, size, 3, mean, std) for x in (x_fit, x_val, x_te)]  # (N, 3, 32, 32)
    ys = [torch.as_tensor(y) for y in (y_fit, y_val, y_te)]
    ctx.data(f"Used: {len(x_fit):,} training, {len(x_val):,} validation (stratified, from the "
             f"training set) and {len(x_te):,} test images"
             + (" (a random subset: train_limit/test_limit)" if cfg.train_limit or
                cfg.test_limit else "") +
             f"; {x_fit.shape[1]}x{x_fit.shape[2]} -> 32x32x3, normalised once in memory with "
             f"the training images' per-channel mean {np.round(mean, 4).tolist()} and std "
             f"{np.round(std, 4).tolist()}.")

    n_classes = len(data.classes)
    net = ConvNet(32, 3, n_classes).to(ctx.device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    result = fit(net, (xs[0], ys[0]), val=(xs[1], ys[1]), ctx=ctx, epochs=cfg.epochs,
                 optimizer=opt, loss_fn=F.cross_entropy, batch_size=cfg.batch_size,
                 metrics={"acc": accuracy}, name="convnet")
    test = evaluate(net, (xs[2], ys[2]), F.cross_entropy, {"acc": accuracy}, device=ctx.device)
    with torch.inference_mode():
        net.eval()
        pred = torch.cat([net(xs[2][i:i + 1024].to(ctx.device)).argmax(-1).cpu()
                          for i in range(0, len(xs[2]), 1024)]).numpy()
    cm = confusion_matrix(pred, y_te, n_classes)
    per_class = cm.diagonal() / np.maximum(cm.sum(axis=1), 1)
    ctx.save_model(net, **classifier_metadata(
        "convnet", {"input_size": 32, "in_channels": 3, "n_classes": n_classes}, size, 3,
        mean, std, data.classes, ctx.program.id, source_size=x_fit.shape[1:3]))

    curves_figure(ctx, result.history, "curves.png")
    confusion_figure(ctx, cm, data.classes, "confusion.png", "Test confusion matrix")
    h = result.history
    ctx.table("Per epoch", ["epoch", "train loss", "train acc", "val loss", "val acc",
                            "seconds", "images/s"],
              [[r["epoch"], r["loss"], r["acc"], r["val_loss"], r["val_acc"], r["seconds"],
                r["samples_per_s"]] for r in h])
    ctx.table("Test accuracy per class", ["class", "accuracy", "test images"],
              [[c, float(a), int(n)] for c, a, n in zip(data.classes, per_class,
                                                        cm.sum(axis=1), strict=True)])
    ctx.metrics.update({
        "test_accuracy": test["acc"], "test_loss": test["loss"],
        "val_accuracy": h[-1]["val_acc"], "train_accuracy_last_epoch": h[-1]["acc"],
        "data": data.provenance.name, "stand_in": bool(stand_in),
        "train_size": len(x_fit), "val_size": len(x_val), "test_size": len(x_te),
        "epochs": len(h), "parameters": count_parameters(net),
        "images_per_second": float(np.mean([r["samples_per_s"] for r in h])),
    })
    worst, best = int(np.argmin(per_class)), int(np.argmax(per_class))
    ctx.infer(f"After {len(h)} epochs the ConvNet ({count_parameters(net):,} parameters at "
              f"32x32x3) classifies {100 * test['acc']:.2f}% of {len(x_te):,} held-out "
              f"{data.provenance.name} test images correctly (chance: {100 / n_classes:.0f}%); "
              f"validation accuracy {100 * h[-1]['val_acc']:.2f}%, training "
              f"{100 * h[-1]['acc']:.2f}%.")
    ctx.infer(f"Hardest class: {data.classes[worst]} ({100 * per_class[worst]:.1f}%); easiest: "
              f"{data.classes[best]} ({100 * per_class[best]:.1f}%).")
    gap = h[-1]["acc"] - h[-1]["val_acc"]
    ctx.infer(f"In the last epoch, training accuracy (the mean over its batches, taken while "
              f"the weights still moved) was {100 * abs(gap):.2f} points "
              f"{'above' if gap >= 0 else 'below'} validation accuracy.")


CONVNET_SUMMARY = Implementation(config=SummaryConfig, run=run_summary, profiles={
    "smoke": {"compare_images": 2},
    "full": {},
})

CONVNET_TRAIN = Implementation(config=TrainConfig, run=run_train, profiles={
    "smoke": {"epochs": 1, "train_limit": 300, "test_limit": 200},
    "full": {"epochs": 10, "train_limit": 0, "test_limit": 0},
})
