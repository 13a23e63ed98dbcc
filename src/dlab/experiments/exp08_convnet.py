"""Experiment 8: the three-block ConvNet, counted (8.1) and trained (8.2).

Parameters of a 3x3 convolution from C_in to C_out channels: (3 * 3 * C_in + 1) * C_out
(a kernel per input/output pair plus one bias per output channel); of a dense layer
from n_in to n_out: (n_in + 1) * n_out; pooling and flattening have none.

Both of the manual's programs pad every convolution ('same'), so only the pools shrink
the maps: 64 -> 32 -> 16 -> 8 in 8.1 (flatten 8 * 8 * 128 = 8,192, 1,143,242 parameters)
and 32 -> 16 -> 8 -> 4 in 8.2 (flatten 2,048, 356,810 parameters). dlab builds that
network in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from dlab import figures
from dlab.baselines import accuracy_difference, logistic_baseline, majority_predictions
from dlab.data.images import load_cifar10, prepare
from dlab.data.mnist import ImageData, find_fashion, load_fashion, load_mnist, stratified_split
from dlab.data.subsets import class_counts, stratified_sample
from dlab.errors import DataError
from dlab.io import atomic_write
from dlab.metrics import confusion_matrix
from dlab.models import count_parameters
from dlab.models.cnn import ConvNet, convnet_hand_count
from dlab.predict import classifier_metadata
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.training import accuracy, evaluate, fit
from dlab.uncertainty import Difference
from dlab.verdicts import Target

# ------------------------------------------------------------------ 8.1 summary


@dataclass
class SummaryConfig:
    input_size: int = 64  # H = W of the input (the manual: 64x64x3)
    channels: int = 3  # input channels
    n_classes: int = 10  # outputs
    compare_images: int = 8  # random images pushed through both models with shared weights

    def validate(self) -> None:
        if self.input_size < 8:
            raise ValueError(f"input_size must be at least 8 for three conv/pool blocks, "
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


# Keras and PyTorch compute "the same function" when their class probabilities on the
# same images differ by at most this much (float32 arithmetic in a different order).
SAME_OUTPUT_TOL = 1e-5


def keras_convnet(cfg: SummaryConfig):
    """The manual's Keras Sequential model for cfg's input: (B, H, W, C) -> probabilities."""
    from dlab.keras_programs import convnet as kc

    return kc.build_convnet(cfg.input_size, cfg.channels, cfg.n_classes)


def score_summary(cfg: SummaryConfig, keras_model, net: ConvNet,
                  rng: np.random.Generator) -> dict:
    """Parameter counts by hand, in Keras and in PyTorch, layer by layer; then the Keras
    weights copied into the PyTorch `net` and both run on the same random images (and, as a
    control, before the copy, while `net` still has weights of its own)."""
    from dlab.keras_programs import convnet as kc

    s = cfg.input_size
    hand = convnet_hand_count(s, cfg.channels, cfg.n_classes)
    rows = [[hname, kname, tname, "x".join(map(str, kshape)), "x".join(map(str, tshape)),
             hcount, kcount, tcount, hcount == kcount == tcount]
            for (hname, _, hcount), (kname, kshape, kcount), (tname, tshape, tcount)
            in zip(hand, kc.layer_rows(keras_model), torch_layer_rows(net), strict=True)]
    totals = (sum(r[2] for r in hand), int(keras_model.count_params()), count_parameters(net))
    images = rng.random((cfg.compare_images, s, s, cfg.channels), dtype=np.float32)
    unrelated = kc.compare_outputs(keras_model, net, images)   # before copying: own weights
    kc.copy_to_torch(keras_model, net)
    return {"keras_model": keras_model, "net": net, "hand": hand, "rows": rows,
            "totals": totals, "diff": kc.compare_outputs(keras_model, net, images),
            "diff_unrelated": unrelated,
            "small": (sum(r[2] for r in convnet_hand_count(32, 3, cfg.n_classes)),
                      count_parameters(ConvNet(32, 3, cfg.n_classes)))}


def summary_metrics(sc: dict) -> dict:
    hand, keras, torch_ = sc["totals"]
    return {"parameters_by_hand": hand, "parameters_keras": keras, "parameters_torch": torch_,
            "counts_equal": hand == keras == torch_ and all(r[-1] for r in sc["rows"]),
            "max_probability_difference": sc["diff"],
            "max_probability_difference_own_weights": sc["diff_unrelated"],
            "flatten_size": int(np.prod(sc["net"].feature_shape)),
            "parameters_at_32x32": sc["small"][1]}


def write_summary(cfg: SummaryConfig, ctx: RunContext, sc: dict) -> None:
    from dlab.keras_programs import convnet as kc

    s = cfg.input_size
    ctx.table(f"Layer by layer, {s}x{s}x{cfg.channels} input (Keras shapes H x W x C, "
              "PyTorch shapes C x H x W)",
              ["layer", "Keras layer", "PyTorch module", "Keras output", "PyTorch output",
               "by hand", "Keras", "PyTorch", "equal"], sc["rows"])
    hand, keras, torch_ = sc["totals"]
    ctx.table("Totals", ["input", "by hand", "Keras", "PyTorch"],
              [[f"{s}x{s}x{cfg.channels}", hand, keras, torch_],
               ["32x32x3 (8.2)", sc["small"][0], "", sc["small"][1]]])
    atomic_write(ctx.path("keras_summary.txt"), kc.summary_text(sc["keras_model"]) + "\n")
    atomic_write(ctx.path("torch_summary.txt"), f"{sc['net']}\n\nTotal parameters: "
                 f"{torch_:,}\n")
    ctx.note("Keras's model.summary() is in keras_summary.txt, PyTorch's in "
             "torch_summary.txt. The PyTorch model returns logits; the softmax of the Keras "
             "model's last layer is applied by the loss (cross-entropy) instead.")


def judge_summary(cfg: SummaryConfig, ctx: RunContext, sc: dict) -> None:
    m = ctx.metrics
    hand, keras, torch_ = sc["totals"]
    ctx.claim(f"Parameters: {hand:,} by hand, {keras:,} in Keras and {torch_:,} in PyTorch: "
              "equal in total and layer by layer.", m["counts_equal"],
              otherwise=f"Parameters: {hand:,} by hand, {keras:,} in Keras and {torch_:,} in "
              "PyTorch: NOT equal (see the layer table).", totals=list(sc["totals"]))
    dense = sc["hand"][-2][2]
    c, h, w = sc["net"].feature_shape
    ctx.infer(f"The network is the manual's: three 3x3 convolutions with padding='same' "
              f"(32, 64 and 128 filters), each followed by ReLU and 2x2 max-pooling, so the "
              f"maps shrink only at the pools, {cfg.input_size} -> {cfg.input_size // 2} -> "
              f"{cfg.input_size // 4} -> {h}; then dense 128, ReLU, dense {cfg.n_classes} "
              "and softmax.")
    ctx.infer(f"The first dense layer holds {dense:,} of the {hand:,} parameters by hand "
              f"({100 * dense / hand:.1f}%): its input is the flattened {h}x{w}x{c} feature "
              f"map ({m['flatten_size']:,} numbers); at 32x32 input the same network has "
              f"{m['parameters_at_32x32']:,} parameters.")
    same = m["counts_equal"] and sc["diff"] <= SAME_OUTPUT_TOL < sc["diff_unrelated"]
    ctx.claim(f"With the Keras weights copied into the PyTorch model (kernels permuted to "
              f"channels-first, the first dense kernel's rows reordered from H, W, C to "
              f"C, H, W), their class probabilities on {cfg.compare_images} random images "
              f"differ by at most {sc['diff']:.2e} (with weights of its own the PyTorch model "
              f"differs by {sc['diff_unrelated']:.2e}), and the parameter counts are equal: "
              "the two are the same network.", same,
              otherwise=f"The Keras and PyTorch models are not shown to be the same network: "
              f"parameter counts equal: {'yes' if m['counts_equal'] else 'no'}; class "
              f"probabilities with copied weights differ by up to {sc['diff']:.2e} "
              f"(tolerance {SAME_OUTPUT_TOL:g}), with weights of its own by "
              f"{sc['diff_unrelated']:.2e}.",
              counts_equal=m["counts_equal"], max_probability_difference=sc["diff"],
              own_weights_difference=sc["diff_unrelated"], tolerance=SAME_OUTPUT_TOL)


def run_summary(cfg: SummaryConfig, ctx: RunContext) -> None:
    # step model: the manual's network in Keras, and the same layers in PyTorch
    ctx.data(f"No data: the network is built for {cfg.input_size}x{cfg.input_size}x"
             f"{cfg.channels} input and {cfg.n_classes} classes; {cfg.compare_images} random "
             "images check whether the Keras and PyTorch models compute the same function.")
    keras_model = keras_convnet(cfg)
    net = ConvNet(cfg.input_size, cfg.channels, cfg.n_classes)
    # step score: parameters by hand, in Keras and in PyTorch; outputs with copied weights
    sc = score_summary(cfg, keras_model, net, ctx.rng)
    ctx.metrics.update(summary_metrics(sc))
    # step judge: equal counts, the same function
    judge_summary(cfg, ctx, sc)
    # step write: the layer table, the totals and both summaries
    write_summary(cfg, ctx, sc)


# ------------------------------------------------------------------ 8.2 training


@dataclass
class TrainConfig:
    # auto (CIFAR-10 if present, else Fashion-MNIST, else MNIST), cifar10, fashion or mnist
    source: Literal["auto", "cifar10", "fashion", "mnist"] = "auto"
    epochs: int = 4  # training epochs (the manual: 10)
    batch_size: int = 64  # mini-batch size
    lr: float = 1e-3  # Adam learning rate
    train_limit: int = 4000  # training images used, a seeded stratified sample (0: all)
    test_limit: int = 2000  # test images scored, a seeded stratified sample (0: all)
    val_fraction: float = 0.1  # of the training images, held out for the validation curves

    def validate(self) -> None:
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


@dataclass
class Colour:
    """The three splits as normalised (N, 3, 32, 32) tensors, and what the record needs."""

    x: list[torch.Tensor]  # fit, validation, test
    y: list[torch.Tensor]
    mean: list[float]
    std: list[float]
    classes: list[str]
    name: str  # the data set's name, e.g. "CIFAR-10"
    stand_in: bool
    source_size: tuple[int, int]


EXAMPLES_PER_CLASS = 8  # training images per class in the data step's figure


def examples_figure(d: Colour, per_class: int = EXAMPLES_PER_CLASS):
    """The first `per_class` training images of every class, one row per class, with the
    normalisation undone."""
    from dlab.figures import by_class_figure

    mean = torch.tensor(d.mean).view(1, -1, 1, 1)
    std = torch.tensor(d.std).view(1, -1, 1, 1)

    def pixels(x: torch.Tensor) -> np.ndarray:  # (n, 3, 32, 32) -> (n, 32, 32, 3)
        return (x * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()

    return by_class_figure(d.x[0], d.y[0].numpy(), list(d.classes), per_class,
                           f"{d.name}: training images by class", gap=1.0, to_pixels=pixels)


def load_splits(cfg: TrainConfig, ctx: RunContext) -> Colour:
    """Stratified samples of the training and test images, a stratified validation split
    of the training sample, resized to 32x32x3 and normalised with training statistics."""
    data, stand_in = load_colour_images(cfg.source, ctx)
    if stand_in:
        ctx.use_stand_in(stand_in)
    ctx.data(data.describe())
    tr = stratified_sample(data.y_train, cfg.train_limit, ctx.rng)
    te = stratified_sample(data.y_test, cfg.test_limit, ctx.rng)
    fit_idx, val_idx = stratified_split(data.y_train[tr], cfg.val_fraction, ctx.seed)
    x_fit, x_val = data.x_train[tr][fit_idx], data.x_train[tr][val_idx]
    ys = [data.y_train[tr][fit_idx], data.y_train[tr][val_idx], data.y_test[te]]
    size = (32, 32)
    mean, std = [0.0] * 3, [1.0] * 3  # pixels / 255 and nothing more, as the manual's program
    xs = [prepare(x, size, 3, mean, std) for x in (x_fit, x_val, data.x_test[te])]
    ctx.data(f"Used: {len(fit_idx):,} training, {len(val_idx):,} validation (stratified, "
             f"from the training set) and {len(te):,} test images"
             + (" (seeded stratified samples: train_limit/test_limit)"
                if cfg.train_limit or cfg.test_limit else "")
             + f"; test images per class {class_counts(ys[2])}; "
             f"{x_fit.shape[1]}x{x_fit.shape[2]} -> 32x32x3, pixels divided by 255 as the "
             "manual's program does (no other normalisation).")
    return Colour(xs, [torch.as_tensor(y) for y in ys], mean, std, data.classes,
                  data.provenance.name, bool(stand_in), tuple(x_fit.shape[1:3]))


def colour_convnet(ctx: RunContext, n_classes: int) -> ConvNet:
    """The ConvNet for 32x32x3 input and `n_classes` outputs, on the run's device."""
    return ConvNet(32, 3, n_classes).to(ctx.device)


def train_convnet(cfg: TrainConfig, ctx: RunContext, net: ConvNet, d: Colour):
    """Adam for fixed epochs, no early stopping: the validation split only draws the
    curves. Trains `net` in place; returns fit's result (one history row per epoch)."""
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    return fit(net, (d.x[0], d.y[0]), val=(d.x[1], d.y[1]), ctx=ctx, epochs=cfg.epochs,
               optimizer=opt, loss_fn=F.cross_entropy, batch_size=cfg.batch_size,
               metrics={"acc": accuracy}, name="convnet")


def predict_classes(net: torch.nn.Module, x: torch.Tensor, device: str) -> np.ndarray:
    with torch.inference_mode():
        net.eval()
        return torch.cat([net(x[i:i + 1024].to(device)).argmax(-1).cpu()
                          for i in range(0, len(x), 1024)]).numpy()


def convnet_baseline(d: Colour, seed: int) -> dict:
    """Logistic regression on the same training images' pixels (the network's inputs,
    flattened), its L2 strength chosen on the validation images; see
    `exp04_mnist_mlp.logistic_baseline`. A grey stand-in's three equal channels are given
    once (the copies add nothing a chosen L2 strength cannot, and triple the time)."""
    grey = all(torch.equal(x[:, 0], x[:, c]) for x in d.x for c in range(1, x.shape[1]))
    xs = [x[:, :1] if grey else x for x in d.x]
    return logistic_baseline(xs[0], d.y[0], xs[1], d.y[1], xs[2], seed)


def score_convnet(net: torch.nn.Module, h: list[dict], d: Colour, base: dict, device: str,
                  seed: int) -> dict:
    """Test values of the trained ConvNet, and its accuracy against the majority class
    and the logistic-regression baseline `base` on the same test images (paired
    bootstrap intervals)."""
    test = evaluate(net, (d.x[2], d.y[2]), F.cross_entropy, {"acc": accuracy}, device=device)
    pred, true = predict_classes(net, d.x[2], device), d.y[2].numpy()
    k = len(d.classes)
    cm = confusion_matrix(pred, true, k)
    majority = majority_predictions(d.y[0].numpy(), len(true))
    what = "test images"
    return {
        "test_accuracy": float((pred == true).mean()), "test_loss": test["loss"],
        "majority_test_accuracy": float((true == majority).mean()),
        "logreg_test_accuracy": float((base["pred"] == true).mean()),
        "logreg_C": base["C"], "logreg_val_accuracy": base["val_accuracy"][base["C"]],
        "test_accuracy_vs_majority": accuracy_difference(pred, majority, true, seed,
                                                         what).as_dict(),
        "test_accuracy_vs_logreg": accuracy_difference(pred, base["pred"], true, seed,
                                                       what).as_dict(),
        "val_accuracy": h[-1]["val_acc"], "train_accuracy_last_epoch": h[-1]["acc"],
        "data": d.name, "stand_in": d.stand_in,
        "train_size": len(d.y[0]), "val_size": len(d.y[1]), "test_size": len(d.y[2]),
        "test_class_counts": {d.classes[c]: n for c, n in class_counts(true).items()},
        "epochs": len(h), "parameters": count_parameters(net),
        "images_per_second": float(np.mean([r["samples_per_s"] for r in h])),
        "per_class_accuracy": (cm.diagonal() / np.maximum(cm.sum(axis=1), 1)).tolist(),
        "confusion_matrix": cm.tolist(),
    }


def write_convnet(ctx: RunContext, s: dict, h: list[dict], d: Colour) -> None:
    ctx.figure(figures.learning_curves(h, acc=True), "curves.png",
               "Training and validation loss and accuracy after every epoch.")
    ctx.figure(figures.confusion_figure(np.array(s["confusion_matrix"]), d.classes,
                                        "Test confusion matrix"), "confusion.png",
               "Test confusion matrix: rows are true classes, columns predicted ones.")
    ctx.table("Per epoch", ["epoch", "train loss", "train acc", "val loss", "val acc",
                            "seconds", "images/s"],
              [[r["epoch"], r["loss"], r["acc"], r["val_loss"], r["val_acc"], r["seconds"],
                r["samples_per_s"]] for r in h])
    cm = np.array(s["confusion_matrix"])
    ctx.table("Test accuracy per class", ["class", "accuracy", "test images"],
              [[c, a, int(n)] for c, a, n in zip(d.classes, s["per_class_accuracy"],
                                                 cm.sum(axis=1), strict=True)])


def judge_convnet(ctx: RunContext, s: dict, d: Colour) -> None:
    per = s["per_class_accuracy"]
    ctx.infer(f"After {s['epochs']} epochs the ConvNet ({s['parameters']:,} parameters at "
              f"32x32x3) classifies {100 * s['test_accuracy']:.2f}% of {s['test_size']:,} "
              f"held-out {d.name} test images correctly; validation accuracy "
              f"{100 * s['val_accuracy']:.2f}%.")
    ctx.infer(f"The majority-class baseline (always the most common training class) scores "
              f"{100 * s['majority_test_accuracy']:.2f}% of the test images; logistic "
              f"regression on the same training images' pixels (C = {s['logreg_C']:g}, "
              f"chosen on the validation images) {100 * s['logreg_test_accuracy']:.2f}%.")
    ctx.compare("test accuracy", "The ConvNet", s["test_accuracy"], "the majority-class "
                "baseline", s["majority_test_accuracy"], better="higher",
                diff=Difference.from_dict(s["test_accuracy_vs_majority"]))
    ctx.compare("test accuracy", "The ConvNet", s["test_accuracy"], "the pixel logistic "
                "regression", s["logreg_test_accuracy"], better="higher",
                diff=Difference.from_dict(s["test_accuracy_vs_logreg"]))
    ctx.infer(f"Lowest per-class test accuracy: {d.classes[int(np.argmin(per))]} "
              f"({100 * min(per):.1f}%); highest: {d.classes[int(np.argmax(per))]} "
              f"({100 * max(per):.1f}%).")
    ctx.infer(f"In the last epoch, training accuracy (the mean over its batches, taken while "
              f"the weights still moved) was {100 * s['train_accuracy_last_epoch']:.2f}% and "
              f"validation accuracy after it {100 * s['val_accuracy']:.2f}%; the two are "
              "measured differently (running mean against end of epoch), so their "
              "difference is not read as overfitting or its absence.")
    ctx.note(f"As in the manual's program: the network (three 'same' 3x3 convolutions, "
             f"{s['parameters']:,} parameters at 32x32x3), Adam at learning rate 1e-3, batch "
             f"64, pixels / 255. Changed: {s['epochs']} epochs here (the manual: 10; the full "
             "profile trains 10); the manual passes the test images as validation_data, so "
             "its 'validation' curve is the test set seen after every epoch, while here the "
             "validation images are a stratified split of the training images and the test "
             "images are scored once, at the end.")


def run_train(cfg: TrainConfig, ctx: RunContext) -> None:
    # step data: colour images (or a grey stand-in) at 32x32x3, three stratified splits
    d = load_splits(cfg, ctx)
    ctx.figure(examples_figure(d), "examples.png", f"Training images of {d.name}, "
               f"{EXAMPLES_PER_CLASS} per class, as the network gets them (32x32x3), shown "
               "with the normalisation undone.")
    # step model: the three-block ConvNet for 32x32x3 input
    net = colour_convnet(ctx, len(d.classes))
    # step train: Adam for a fixed number of epochs; the logistic-regression baseline
    result = train_convnet(cfg, ctx, net, d)
    base = convnet_baseline(d, ctx.seed)
    ctx.save_model(net, **classifier_metadata(
        "convnet", {"input_size": 32, "in_channels": 3, "n_classes": len(d.classes)},
        (32, 32), 3, d.mean, d.std, d.classes, ctx.program.id, source_size=d.source_size))
    # step score: test accuracy, per class, against the majority class and the baseline
    s = score_convnet(net, result.history, d, base, ctx.device, ctx.seed)
    ctx.metrics.update(s)
    # step judge: sentences from the scores
    judge_convnet(ctx, s, d)
    # step write: the learning curves, the confusion matrix and the tables
    write_convnet(ctx, s, result.history, d)


CONVNET_SUMMARY = Implementation(config=SummaryConfig, run=run_summary, profiles={
    "smoke": {"compare_images": 2},
    "full": {},
}, crippled="8.1 trains nothing: it counts the parameters of untrained networks and "
            "compares their outputs on random images", targets=(
    Target("counts_equal", equals=True,
           why="hand count, Keras and PyTorch agree in total and layer by layer"),
    Target("max_probability_difference", at_most=SAME_OUTPUT_TOL,
           why="with copied weights Keras and PyTorch compute the same probabilities"),
))

CONVNET_TRAIN = Implementation(config=TrainConfig, run=run_train, profiles={
    "smoke": {"epochs": 1, "train_limit": 300, "test_limit": 200},
    "full": {"epochs": 10, "train_limit": 0, "test_limit": 0},
}, crippled={"epochs": 1, "train_limit": 300}, targets=(
    Target("test_accuracy", above="majority_test_accuracy", profiles=("quick", "full"),
           interval="test_accuracy_vs_majority",
           why="the ConvNet beats always answering the most common class"),
    Target("test_accuracy", above="logreg_test_accuracy", profiles=("quick", "full"),
           interval="test_accuracy_vs_logreg",
           why="the ConvNet beats a linear classifier fit on the same training pixels"),
    Target("test_accuracy", at_least=0.65, profiles=("full",),
           when=lambda m: m["data"] == "CIFAR-10", when_text="the data are CIFAR-10",
           why="ten epochs of a three-block ConvNet of this size reach about 0.70 on "
               "CIFAR-10 (the TensorFlow CNN tutorial's network of the same shape)"),
))
