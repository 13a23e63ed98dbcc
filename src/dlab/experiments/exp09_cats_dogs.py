"""Experiment 9: a CNN for any input size (9.1) trained from an image folder (9.2).

The feature map after three 'same' 3x3 convolutions and three 2x2 poolings of an
H x W image is 128 x floor(H/8) x floor(W/8) (floor at each pooling), so the first dense
layer needs 128 * floor(floor(floor(H/2)/2)/2) * (same for W) inputs; the manual fixes
it at 128 * 4 * 4 = 2,048, right only for 32x32 images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dlab.data.images import (
    FolderImages,
    augment_batch,
    channel_stats,
    load_cifar10,
    load_image_folder,
    prepare,
    scan_image_folder,
    write_image_folder,
)
from dlab.data.mnist import find_fashion, load_fashion, load_mnist, stratified_split
from dlab.errors import DataError
from dlab.experiments.exp08_convnet import confusion_figure, curves_figure
from dlab.io import write_csv
from dlab.metrics import confusion_matrix
from dlab.models.cnn import AnySizeCNN, ManualCatDogCNN, count_parameters, pool_out
from dlab.predict import classifier_metadata
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.training import accuracy, evaluate, fit, supervised_step

# ------------------------------------------------------------------ 9.1 any size


@dataclass
class AnySizeConfig:
    sizes: tuple[int, ...] = (32, 50, 64, 128, 224)  # square input sizes to build and run
    channels: int = 3  # input channels
    n_classes: int = 2  # outputs

    def validate(self) -> None:
        if not self.sizes or min(self.sizes) < 8:
            raise ValueError(f"every size must be at least 8 (three 2x2 poolings), "
                             f"got {self.sizes}")
        if self.channels < 1 or self.n_classes < 2:
            raise ValueError("channels must be positive and n_classes at least 2")


def flatten_size(h: int, w: int, channels: int = 128, blocks: int = 3) -> int:
    """channels * H' * W' after `blocks` halvings (floor) of H and W."""
    for _ in range(blocks):
        h, w = pool_out(h), pool_out(w)
    return channels * h * w


def run_any_size(cfg: AnySizeConfig, ctx: RunContext) -> None:
    ctx.data(f"No data: two random {cfg.channels}-channel images of each size are pushed "
             "through the networks to check output shapes.")
    rows, ok_all = [], True
    manual_ok: dict[int, bool] = {}
    for s in cfg.sizes:
        net = AnySizeCNN(s, cfg.channels, cfg.n_classes).eval()
        x = torch.rand(2, cfg.channels, s, s, generator=ctx.torch_generator(s))
        with torch.inference_mode():
            feats = net.features(x)                               # (2, 128, s/8, s/8)
            out = net(x)                                          # (2, n_classes)
        measured = int(feats[0].numel())
        formula = flatten_size(s, s)
        good = measured == formula == net.flatten_size and tuple(out.shape) == (2, cfg.n_classes)
        ok_all &= good
        manual = ManualCatDogCNN(cfg.channels, cfg.n_classes).eval()
        try:
            with torch.inference_mode():
                manual(x)
            manual_result, manual_ok[s] = "runs", True
        except RuntimeError as exc:
            manual_result, manual_ok[s] = f"error: {str(exc).splitlines()[0]}", False
        rows.append([f"{s}x{s}", "x".join(map(str, feats.shape[1:])), formula, measured,
                     "x".join(map(str, out.shape)), count_parameters(net), manual_result])
    ctx.table("The CNN at several input sizes (the manual's network fixes 128*4*4 = 2048)",
              ["input", "feature map", "flatten (formula)", "flatten (measured)", "output",
               "parameters", "manual's network"], rows)
    ctx.metrics.update({
        "all_shapes_right": ok_all,
        "flatten_sizes": {str(s): flatten_size(s, s) for s in cfg.sizes},
        "parameters": {str(s): int(r[5]) for s, r in zip(cfg.sizes, rows, strict=True)},
        "manual_runs_at": [s for s, ok in manual_ok.items() if ok],
    })
    ctx.infer(f"The flatten size computed from the input size matched the measured feature "
              f"map at every size tried ({', '.join(f'{s}x{s}' for s in cfg.sizes)}): "
              f"{'yes' if ok_all else 'NO'}; each network gave (2, {cfg.n_classes}) outputs.")
    fails = [s for s, ok in manual_ok.items() if not ok]
    ctx.infer(f"The manual's hard-coded 128*4*4 ran only at "
              f"{', '.join(f'{s}x{s}' for s in ctx.metrics['manual_runs_at']) or 'no size'}"
              f" and failed with a shape error at {', '.join(f'{s}x{s}' for s in fails) or 'none'}."
              " Only the dense layer's size changes with the input: the parameter count grows "
              f"from {rows[0][5]:,} at {cfg.sizes[0]}x{cfg.sizes[0]} to {rows[-1][5]:,} at "
              f"{cfg.sizes[-1]}x{cfg.sizes[-1]}.")


# ---------------------------------------------------------------- 9.2 image folder


@dataclass
class FolderConfig:
    data: str = ""  # an image folder root/<class>/*.png|jpg; empty: CIFAR-10 cat/dog or a stand-in
    image_size: int = 32  # every image is resized to image_size x image_size
    epochs: int = 6  # training epochs
    batch_size: int = 32  # mini-batch size
    lr: float = 1e-3  # Adam learning rate
    val_fraction: float = 0.2  # held out (stratified) for validation accuracy
    per_class: int = 600  # images used per class, drawn at random (0: all)
    flip: bool = True  # augmentation: random left-right flips (off for digit stand-ins)
    crop_pad: int = 4  # augmentation: random crops shifted up to this many pixels (0: none)
    # without data=: auto (CIFAR-10 cat/dog, else Fashion-MNIST, else MNIST), fashion, mnist
    stand_in: str = "auto"

    def validate(self) -> None:
        if self.image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {self.image_size}")
        if not 0.0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be between 0 and 0.5, got {self.val_fraction}")
        if self.per_class < 0 or self.crop_pad < 0:
            raise ValueError("per_class and crop_pad must be 0 or positive")
        if self.crop_pad >= self.image_size:
            raise ValueError(f"crop_pad ({self.crop_pad}) must be smaller than image_size")
        if self.stand_in not in ("auto", "fashion", "mnist"):
            raise ValueError(f"stand_in must be auto, fashion or mnist, got {self.stand_in!r}")


# Fashion-MNIST classes 0 and 6 (T-shirt/top and shirt) are the pair most often confused,
# as cats and dogs are; MNIST's 3 and 5 are a hard pair of digits.
FASHION_PAIR = (0, 6)
DIGIT_PAIR = (3, 5)


def write_stand_in(cfg: FolderConfig, ctx: RunContext, folder: Path) -> tuple[str, bool]:
    """Write a two-class image folder from a real data set; returns (description, is_digits).

    CIFAR-10's cat and dog classes when CIFAR-10 is in the data folder (the real task),
    else two Fashion-MNIST classes, else two MNIST digits.
    """
    cifar = load_cifar10(ctx.data_dir) if cfg.stand_in == "auto" else None
    if cifar is not None:
        pair, x, y = (3, 5), np.concatenate([cifar.x_train, cifar.x_test]), \
            np.concatenate([cifar.y_train, cifar.y_test])
        names, text = ["cat", "dog"], None
        source = cifar.provenance
    elif cfg.stand_in in ("auto", "fashion") and find_fashion(ctx.data_dir) is not None:
        data = load_fashion(ctx.data_dir)
        pair, names = FASHION_PAIR, ["T-shirt_top", "shirt"]
        x, y = np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train,
                                                                            data.y_test])
        source = data.provenance
        text = ("two Fashion-MNIST classes, T-shirt/top and shirt (grey 28x28), written as PNG "
                "files to an image folder, stand in for photos of cats and dogs")
    elif cfg.stand_in == "fashion":
        raise DataError("Fashion-MNIST not found; `apt-get install dataset-fashion-mnist`, "
                        "or use --set stand_in=auto")
    else:
        data = load_mnist("auto", ctx.data_dir)
        pair, names = DIGIT_PAIR, ["three", "five"]
        x, y = np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train,
                                                                            data.y_test])
        source = data.provenance
        text = ("two MNIST digit classes, 3 and 5 (grey 28x28), written as PNG files to an "
                "image folder, stand in for photos of cats and dogs (Fashion-MNIST is not "
                "installed)")
    keep = []
    for c in pair:
        idx = np.flatnonzero(y == c)
        if cfg.per_class and cfg.per_class < len(idx):
            idx = np.sort(ctx.rng.permutation(idx)[:cfg.per_class])
        keep.append(idx)
    idx = np.concatenate(keep)
    labels = np.concatenate([np.full(len(k), i) for i, k in enumerate(keep)])
    counts = write_image_folder(folder, x[idx], labels, names)
    where = "CIFAR-10's cat and dog classes" if text is None else "the stand-in"
    ctx.data(f"{where}: {', '.join(f'{k} {v:,}' for k, v in counts.items())} PNG files written "
             f"to {folder.name}/ in the run folder from {source.name} ({source.source}; "
             f"licence: {source.licence}).")
    if text:
        ctx.use_stand_in(text + ": no image folder was given (--set data=PATH) and CIFAR-10 "
                         "is not in the data folder.")
    return text or "CIFAR-10 cat/dog", pair == DIGIT_PAIR


def misclassified_figure(ctx: RunContext, images: np.ndarray, true: np.ndarray,
                         pred: np.ndarray, prob: np.ndarray, classes: list[str],
                         n: int = 24) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wrong = np.flatnonzero(pred != true)
    wrong = wrong[np.argsort(-prob[wrong])][:n]  # most confident mistakes first
    if len(wrong) == 0:
        return 0
    cols = min(8, len(wrong))
    rows = (len(wrong) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.45, rows * 1.7), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        img = images[i]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img,
                  cmap="gray" if img.shape[-1] == 1 else None)
        ax.set_title(f"true {classes[true[i]]}\npred {classes[pred[i]]} {prob[i]:.2f}",
                     fontsize=7, color="red")
    ctx.figure(fig, "misclassified.png", f"Validation images the network got wrong (the "
               f"{len(wrong)} most confident mistakes), with the predicted class and its "
               "probability.")
    return len(wrong)


def run_folder(cfg: FolderConfig, ctx: RunContext) -> None:
    digits = False
    if cfg.data:
        root = Path(cfg.data).expanduser()
        scan_image_folder(root)                      # clear error before anything heavy
        origin = f"the image folder {root}"
    else:
        root = ctx.path("image_folder")
        origin, digits = write_stand_in(cfg, ctx, root)
    flip = cfg.flip and not digits
    imgs: FolderImages = load_image_folder(root, cfg.image_size, per_class=cfg.per_class if
                                           cfg.data else 0, rng=ctx.rng, log=ctx.log)
    ctx.data(imgs.describe())
    if imgs.skipped:
        shown = "; ".join(f"{p.name} ({why})" for p, why in imgs.skipped[:5])
        ctx.data(f"Skipped {len(imgs.skipped)} unreadable files: {shown}"
                 + (" ..." if len(imgs.skipped) > 5 else ""))
    counts = imgs.counts()
    if min(counts.values()) < 2:
        raise DataError(f"{root}: every class needs at least two readable images to split; "
                        f"counts: {counts}")

    tr, va = stratified_split(imgs.labels, cfg.val_fraction, ctx.seed)
    c = imgs.images.shape[-1]
    size = (cfg.image_size, cfg.image_size)
    mean, std = channel_stats(prepare(imgs.images[tr], size, c, [0.0] * c, [1.0] * c))
    x = prepare(imgs.images, size, c, mean, std)     # (N, C, S, S), normalised once
    y = torch.as_tensor(imgs.labels)
    ctx.data(f"Split (stratified, seed {ctx.seed}): {len(tr):,} training and {len(va):,} "
             f"validation images; per-channel mean {np.round(mean, 4).tolist()} and std "
             f"{np.round(std, 4).tolist()} of the training images. Augmentation of training "
             f"batches: {'random left-right flips, ' if flip else ''}"
             f"{f'random crops shifted up to {cfg.crop_pad} pixels' if cfg.crop_pad else ''}"
             f"{'' if flip or cfg.crop_pad else 'none'}.")
    if cfg.flip and not flip:
        ctx.note("Left-right flips are off for the digit stand-in: a mirrored 3 or 5 is no "
                 "longer that digit.")

    k = len(imgs.classes)
    net = AnySizeCNN(cfg.image_size, c, k).to(ctx.device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    base = supervised_step(net, opt, F.cross_entropy, {"acc": accuracy})
    gen = ctx.torch_generator(901)

    def step(batch):  # augment the batch, then the usual zero_grad/backward/step
        xb, yb = batch
        return base((augment_batch(xb, gen, flip=flip, pad=cfg.crop_pad), yb))

    result = fit(net, (x[tr], y[tr]), val=(x[va], y[va]), ctx=ctx, epochs=cfg.epochs,
                 optimizer=opt, loss_fn=F.cross_entropy, step=step, batch_size=cfg.batch_size,
                 metrics={"acc": accuracy}, name="cnn")
    val = evaluate(net, (x[va], y[va]), F.cross_entropy, {"acc": accuracy}, device=ctx.device)
    net.eval()
    with torch.inference_mode():
        p = torch.cat([torch.softmax(net(x[va][i:i + 512].to(ctx.device)), -1).cpu()
                       for i in range(0, len(va), 512)])          # (N_val, k)
    prob, pred = p.max(dim=-1)
    prob, pred, true = prob.numpy(), pred.numpy(), imgs.labels[va]
    cm = confusion_matrix(pred, true, k)
    write_csv(ctx.path("val_predictions.csv"),
              [{"file": str(imgs.files[i]), "true": imgs.classes[true[j]],
                "predicted": int(pred[j]), "probability": f"{prob[j]:.6f}"}
               for j, i in enumerate(va)])
    ctx.save_model(net, **classifier_metadata(
        "anysize_cnn", {"input_size": cfg.image_size, "in_channels": c, "n_classes": k},
        size, c, mean, std, imgs.classes, ctx.program.id, source_size=imgs.source_size))

    h = result.history
    curves_figure(ctx, h, "curves.png",
                  "Loss and accuracy per epoch: training batches (augmented) and the "
                  "validation images.", train_label="training (augmented, mean in epoch)")
    confusion_figure(ctx, cm, imgs.classes, "confusion.png", "Validation confusion matrix")
    shown = misclassified_figure(ctx, imgs.images[va], true, pred, prob, imgs.classes)

    majority = max(np.bincount(true, minlength=k)) / len(true)
    ctx.table("Validation confusion matrix (rows: true, columns: predicted)",
              ["true \\ predicted", *imgs.classes],
              [[cls, *map(int, cm[i])] for i, cls in enumerate(imgs.classes)])
    ctx.table("Per epoch", ["epoch", "train loss", "train acc", "val loss", "val acc", "seconds"],
              [[r["epoch"], r["loss"], r["acc"], r["val_loss"], r["val_acc"], r["seconds"]]
               for r in h])
    ctx.metrics.update({
        "val_accuracy": val["acc"], "val_loss": val["loss"],
        "majority_baseline": float(majority), "classes": imgs.classes,
        "class_counts": counts, "skipped_files": len(imgs.skipped),
        "train_size": len(tr), "val_size": len(va), "image_size": cfg.image_size,
        "channels": c, "epochs": len(h), "parameters": count_parameters(net),
        "confusion_matrix": cm.tolist(), "misclassified": int((pred != true).sum()),
        "data": origin,
    })
    ctx.infer(f"Validation accuracy after {len(h)} epochs: {100 * val['acc']:.2f}% on "
              f"{len(va):,} held-out images ({', '.join(imgs.classes)}), against "
              f"{100 * majority:.2f}% for always answering the most common class.")
    errs = {f"{imgs.classes[i]} taken for {imgs.classes[j]}": int(cm[i, j])
            for i in range(k) for j in range(k) if i != j}
    top = max(errs, key=errs.get) if errs else "none"
    ctx.infer(f"{int((pred != true).sum())} validation images were misclassified; the most "
              f"common mistake: {top} ({errs.get(top, 0)} times). {shown} of them are shown.")
    if imgs.skipped:
        ctx.infer(f"{len(imgs.skipped)} unreadable image files were skipped and counted, "
                  "not fatal.")
    ctx.note("The manual's loop never calls optimizer.zero_grad(), so every step adds the "
             "new gradient to all earlier ones; here each step zeroes the gradients first "
             "(dlab.training.supervised_step).")


ANY_SIZE_CNN = Implementation(config=AnySizeConfig, run=run_any_size, profiles={
    "smoke": {"sizes": (32, 64)},
    "full": {},
})

IMAGE_FOLDER = Implementation(config=FolderConfig, run=run_folder, profiles={
    "smoke": {"epochs": 1, "per_class": 60, "image_size": 16, "crop_pad": 2},
    "full": {"epochs": 10, "per_class": 0, "image_size": 64, "crop_pad": 8},
})
