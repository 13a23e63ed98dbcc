"""Experiment 12: a dense autoencoder on MNIST (12.1) and the study of its settings (12.2).

12.1 trains the manual's 784-128-64-32-64-128-784 autoencoder (ReLU, sigmoid output,
mean squared error, Adam) and measures its test reconstruction error beside PCA with
as many components as the code has units: PCA is the best *linear* encoder-decoder
pair in squared error (Eckart-Young; an autoencoder with linear units learns the same
subspace, Baldi and Hornik 1989), so a non-linear autoencoder earns its keep only by
going below it. 12.2 runs the study the manual only describes (dlab.studies): each
setting is judged by its reconstruction error on validation digits carved from the
training digits; the test error is reported, never used to choose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from dlab.data.mnist import mnist_split
from dlab.data.subsets import class_counts, spread_over_classes
from dlab.figures import image_rows, loss_curves
from dlab.metrics import pca_basis, pca_reconstruction_mse
from dlab.models import count_parameters
from dlab.models.autoencoder import DenseAutoencoder, halving_widths
from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.studies import Study, StudyResult, StudySettings, execute, record
from dlab.training import FitResult, evaluate, fit, predict
from dlab.uncertainty import Difference, paired_bootstrap
from dlab.verdicts import Target

Activation = Literal["relu", "leaky_relu", "tanh", "sigmoid"]
Source = Literal["auto", "bundled", "full"]

# ---------------------------------------------------------------- 12.1 the model


@dataclass
class AutoencoderConfig:
    epochs: int = 150  # passes over the training digits (quick: 150 of 3,600 digits, the budget
    # at which the manual's network, lr and batch size pass PCA on validation digits)
    batch_size: int = 64  # digits per Adam step (the manual's 64)
    lr: float = 1e-3  # Adam learning rate (Keras' default, as in the manual)
    depth: int = 2  # hidden layers on each side of the code (manual: 2)
    width: int = 128  # first hidden layer; each next one is half as wide (manual: 128, 64)
    latent: int = 32  # code size, also the number of PCA components compared (manual: 32)
    activation: Activation = "relu"  # activation of every layer but the output (manual: relu)
    n_train: int = 0  # training digits used before the validation split (0 = all)
    val_fraction: float = 0.1  # share of the training digits held out for validation
    source: Source = "auto"  # MNIST: auto (full when present), bundled or full
    n_show: int = 10  # test digits drawn with their reconstructions

    def validate(self) -> None:
        if self.depth < 1 or self.latent < 1 or self.width < 2 ** (self.depth - 1):
            raise ValueError(f"depth {self.depth}, width {self.width}, latent {self.latent}: "
                             "need depth >= 1, latent >= 1 and width >= 2^(depth-1)")
        if not 0 < self.val_fraction < 1 or self.n_train < 0 or self.n_show < 1:
            raise ValueError("val_fraction must be in (0, 1), n_train >= 0, n_show >= 1")


def architecture(cfg: AutoencoderConfig, n_in: int = 784) -> str:
    hidden = halving_widths(cfg.width, cfg.depth)
    return "-".join(map(str, [n_in, *hidden, cfg.latent, *reversed(hidden), n_in]))


def load(cfg: AutoencoderConfig, ctx: RunContext) -> dict[str, Any]:
    """Flattened digits (N, 784) float32 tensors for train/val/test, and their labels."""
    d = mnist_split(cfg.source, ctx.data_dir, cfg.n_train, cfg.val_fraction, ctx.rng)
    ctx.data(d["describe"])
    flat = {k: torch.from_numpy(d[k].reshape(len(d[k]), -1)) for k in
            ("x_train", "x_val", "x_test")}  # (N, 784)
    ctx.data(f"Used: {len(flat['x_train']):,} training digits and {len(flat['x_val']):,} "
             "validation digits (a stratified sample of the training digits, used for the "
             f"validation curve and by the 12.2 study), and all {len(flat['x_test']):,} test "
             f"digits, class counts {class_counts(d['y_test'])}; pixels scaled to [0, 1] "
             "and flattened to 784.")
    return {**d, **flat}


def autoencoder_net(cfg: AutoencoderConfig, ctx: RunContext) -> DenseAutoencoder:
    """The dense autoencoder 784-hidden-latent-hidden-784 (hidden layers halving from
    `width`), initialised from the global torch generator, on the run's device."""
    return DenseAutoencoder(784, halving_widths(cfg.width, cfg.depth), cfg.latent,
                            cfg.activation).to(ctx.device)


def train(cfg: AutoencoderConfig, model: DenseAutoencoder, d: dict[str, Any],
          ctx: RunContext) -> FitResult:
    """Adam on the mean squared error of the reconstruction (input = target); trains
    `model` in place and returns fit's result (one history row per epoch)."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ctx.log(f"autoencoder {architecture(cfg)} ({cfg.activation}), "
            f"{count_parameters(model):,} parameters")
    result = fit(model, (d["x_train"], d["x_train"]), val=(d["x_val"], d["x_val"]), ctx=ctx,
                 epochs=cfg.epochs, optimizer=opt, loss_fn=nn.functional.mse_loss,
                 batch_size=cfg.batch_size, name="autoencoder")
    return result


def per_image_errors(model: nn.Module, d: dict[str, Any], latent: int, device: str
                     ) -> dict[str, np.ndarray]:
    """Reconstruction MSE of every test digit (N,) for the autoencoder, for PCA with
    `latent` components and for the mean training image (both fit on the training digits)."""
    xtr = d["x_train"].numpy().astype(np.float64)
    xte = d["x_test"].numpy().astype(np.float64)
    recon = predict(model, d["x_test"].to(device)).reshape(len(xte), -1)
    mean, v = pca_basis(xtr, latent)
    pca = mean + (xte - mean) @ v @ v.T
    return {"autoencoder": np.mean((recon - xte) ** 2, axis=1),
            "pca": np.mean((pca - xte) ** 2, axis=1),
            "mean_image": np.mean((xte - mean) ** 2, axis=1)}


def gaps(errors: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """The autoencoder's test MSE minus PCA's and minus the mean image's, each with the 95%
    interval of a paired bootstrap over the test digits; also flat ends of both intervals
    (for a study's table) and whether it beats PCA beyond that interval."""
    out: dict[str, Any] = {}
    for name in ("pca", "mean_image"):
        diff = paired_bootstrap(errors["autoencoder"], errors[name], seed=seed,
                                what="test digits")
        out[f"test_mse_vs_{name}"] = diff.as_dict()
        out[f"test_mse_vs_{name}_low"], out[f"test_mse_vs_{name}_high"] = diff.low, diff.high
    out["beats_pca"] = out["test_mse_vs_pca_high"] < 0
    return out


def score(cfg: AutoencoderConfig, model: nn.Module, result: FitResult, d: dict[str, Any],
          device: str, seed: int = 0) -> dict[str, Any]:
    """Measured values: reconstruction MSE per pixel of the autoencoder on each split,
    of PCA with `latent` components and of the mean training image (both fit on the
    training digits only), and the autoencoder's gaps to both with their intervals."""
    mse = nn.functional.mse_loss

    def err(x: torch.Tensor) -> float:
        return evaluate(model, (x, x), mse, device=device)["loss"]

    xtr = d["x_train"].numpy().astype(np.float64)
    xva = d["x_val"].numpy().astype(np.float64)
    errors = per_image_errors(model, d, cfg.latent, device)
    return {
        "test_mse": float(errors["autoencoder"].mean()), "val_mse": err(d["x_val"]),
        "train_mse": err(d["x_train"]), "pca_test_mse": float(errors["pca"].mean()),
        "pca_val_mse": pca_reconstruction_mse(xtr, xva, cfg.latent),
        "mean_image_test_mse": float(errors["mean_image"].mean()),
        **gaps(errors, seed), "architecture": architecture(cfg),
        "parameters": count_parameters(model), "train_seconds": round(result.seconds, 2),
        "epochs_run": len(result.history), "test_digits": len(errors["pca"]),
        "test_class_counts": class_counts(d["y_test"]),
    }


def judge(cfg: AutoencoderConfig, m: dict[str, Any], ctx: RunContext) -> None:
    arch = m["architecture"]
    ctx.infer(f"The {arch} autoencoder reconstructs the {m['test_digits']:,} test digits with "
              f"MSE {m['test_mse']:.5f} per pixel after {m['epochs_run']} epochs; PCA with "
              f"{cfg.latent} components gives {m['pca_test_mse']:.5f}.")
    ctx.compare("test MSE", f"The {arch} autoencoder", m["test_mse"],
                f"the PCA-{cfg.latent} reconstruction", m["pca_test_mse"],
                diff=Difference.from_dict(m["test_mse_vs_pca"]), better="lower", digits=4,
                then="The non-linear code reconstructs better than the best linear code of "
                     "its size.")
    ctx.compare("test MSE", "The autoencoder", m["test_mse"], "the mean training image",
                m["mean_image_test_mse"], diff=Difference.from_dict(m["test_mse_vs_mean_image"]),
                better="lower", digits=4)
    ctx.infer(f"Reconstruction MSE on the training digits {m['train_mse']:.5f}, on the "
              f"validation digits {m['val_mse']:.5f}, on the test digits {m['test_mse']:.5f}.")


def write(cfg: AutoencoderConfig, model: nn.Module, result: FitResult, d: dict[str, Any],
          m: dict[str, Any], ctx: RunContext) -> None:
    arch = m["architecture"]
    ctx.table("Test reconstruction error (MSE per pixel, pixels in [0, 1])",
              ["model", "code size", "test MSE"],
              [[f"autoencoder {arch} ({cfg.activation})", cfg.latent, m["test_mse"]],
               [f"PCA, {cfg.latent} components (fit on the training digits)", cfg.latent,
                m["pca_test_mse"]],
               ["mean training image (no code)", 0, m["mean_image_test_mse"]]])
    pick = torch.from_numpy(spread_over_classes(d["y_test"], cfg.n_show))
    with torch.inference_mode():
        model.eval()
        recon = model(d["x_test"][pick].to(ctx.device)).cpu().numpy().reshape(-1, 28, 28)
    originals = d["x_test"][pick].numpy().reshape(-1, 28, 28)
    ctx.figure(image_rows([("test digit", originals), ("reconstruction", recon)],
                          f"{arch} autoencoder: test MSE {m['test_mse']:.4f}"),
               "reconstructions.png",
               f"Top: {cfg.n_show} test digits (one per class in turn); bottom: the "
               f"autoencoder's reconstructions from {cfg.latent} numbers each.")
    ctx.figure(loss_curves(result.history, f"{arch} autoencoder"), "loss.png",
               "Training and validation reconstruction error (MSE per pixel) per epoch.")
    ctx.save_model(model, input="MNIST pixels / 255, flattened to 784", architecture=arch,
                   activation=cfg.activation, hidden=list(halving_widths(cfg.width, cfg.depth)),
                   latent=cfg.latent)


def run_autoencoder(cfg: AutoencoderConfig, ctx: RunContext) -> None:
    # step data: MNIST digits flattened to 784 pixels, validation digits carved from training
    d = load(cfg, ctx)
    # step model: the dense autoencoder (manual: 784-128-64-32-64-128-784)
    model = autoencoder_net(cfg, ctx)
    # step train: Adam on the reconstruction's mean squared error, the digit its own target
    result = train(cfg, model, d, ctx)
    # step score: reconstruction error on each split, beside PCA and the mean image
    ctx.metrics.update(score(cfg, model, result, d, ctx.device, ctx.seed))
    # step judge: sentences from the scores
    judge(cfg, ctx.metrics, ctx)
    # step write: the table, the reconstructions, the loss curves and the saved model
    write(cfg, model, result, d, ctx.metrics, ctx)


AUTOENCODER = Implementation(
    config=AutoencoderConfig, run=run_autoencoder,
    profiles={
        "smoke": {"epochs": 2, "n_train": 600, "batch_size": 64, "n_show": 6},
        # full: the manual's batch 64 over all training digits, 10 epochs: after the
        # manual's 5 the network was still behind PCA on the test digits (0.01743 against
        # 0.01683, seed 0); after 10 its validation error was 0.0136
        "full": {"epochs": 10},
    },
    targets=(
        Target("test_mse", below="pca_test_mse", profiles=("quick", "full"),
               interval="test_mse_vs_pca",
               why="a non-linear code must beat the best linear code of its size (PCA), "
                   "beyond the spread of a paired bootstrap over the test digits"),
    ),
    crippled={"epochs": 1, "n_train": 600},
)


# ----------------------------------------------------------------- 12.2 the study


@dataclass
class AEStudyConfig(StudySettings):
    # quick: six trials, each factor moved once from 12.1's setting (depth 2, width 128,
    # relu, code 32, lr 1e-3); full tries every value listed in the comments
    trial_epochs: int = 6  # epochs of every trial (eight runs of 6 epochs: six settings and
    # the base setting at two more seeds, the training of six 8-epoch runs)
    depths: tuple[int, ...] = (1, 2)  # hidden layers on each side (full: 1, 2, 3)
    widths: tuple[int, ...] = (128, 256)  # first hidden layer, halving after it (full: 64,
    # 128, 256)
    activations: tuple[Activation, ...] = ("relu", "tanh")  # (full: relu, leaky_relu, tanh,
    # sigmoid)
    latents: tuple[int, ...] = (8, 32)  # code sizes (full: 8, 16, 32, 64)
    lrs: tuple[float, ...] = (1e-3, 3e-3)  # Adam learning rates (full: 3e-4, 1e-3, 3e-3)
    spread_seeds: int = 2  # further seeds the base setting runs at (the seed noise)


REPORTED = ("test_mse", "pca_test_mse", "beats_pca", "mean_image_test_mse",
            "test_mse_vs_mean_image_low", "test_mse_vs_mean_image_high", "parameters")


def ae_study(cfg: AEStudyConfig) -> Study:
    """The 12.2 study over 12.1's settings, chosen by validation MSE, with the base setting
    repeated at cfg.spread_seeds further seeds to measure the seed noise."""
    return Study(program="12.1", base_profile=cfg.trial_profile,
                 base={"epochs": cfg.trial_epochs},
                 space={"depth": cfg.depths, "width": cfg.widths,
                        "activation": cfg.activations, "latent": cfg.latents, "lr": cfg.lrs},
                 metric="val_mse", direction="minimize", mode=cfg.mode,
                 n_trials=cfg.n_trials, report=REPORTED,
                 spread_seeds=cfg.spread_seeds if cfg.mode != "sampled" else 0)


def score_ae_study(result: StudyResult) -> dict[str, Any]:
    """The chosen setting's test MSE and its gap to the mean training image (with the
    trial's paired-bootstrap interval), when a trial completed; the number of completed
    settings whose test MSE is below PCA's beyond that interval, and whether any is."""
    out: dict[str, Any] = {}
    best = result.best
    if best is not None:
        out["best_test_mse"] = best["test_mse"]
        out["best_mean_image_test_mse"] = best["mean_image_test_mse"]
        out["best_vs_mean_image"] = Difference(
            best["test_mse"] - best["mean_image_test_mse"], best["test_mse_vs_mean_image_low"],
            best["test_mse_vs_mean_image_high"],
            f"paired bootstrap over the test digits, in trial {best['trial']}", 1).as_dict()
    out["trials_beating_pca"] = len(beating_pca(result))
    out["any_setting_beats_pca"] = out["trials_beating_pca"] > 0
    return out


def beating_pca(result: StudyResult) -> list[dict[str, Any]]:
    """The completed trials' rows whose test MSE is below their PCA test MSE beyond the
    trial's paired-bootstrap interval."""
    return [r for r in result.complete if r["beats_pca"]]


def judge_ae_study(ctx: RunContext, result: StudyResult, epochs: int) -> None:
    """Sentences: the chosen setting's test error, and which settings beat PCA."""
    best, beat = result.best, beating_pca(result)
    if best is not None:
        ctx.infer(f"The setting chosen by validation MSE (trial {best['trial']}) has test MSE "
                  f"{best['test_mse']:.5f} (reported, not used for the choice).")
        ctx.compare("test MSE", "The chosen setting", best["test_mse"],
                    "the mean training image (no code)", best["mean_image_test_mse"],
                    diff=Difference.from_dict(ctx.metrics["best_vs_mean_image"]),
                    better="lower", digits=4)
    n = len(result.complete)
    ctx.claim(f"At this budget ({epochs} epochs per trial) {len(beat)} of {n} completed "
              "settings reconstruct the test digits better than PCA with as many components "
              "as their code, beyond the paired-bootstrap interval: "
              + "; ".join(f"trial {r['trial']} ({_changed(r)})" for r in beat) + ".",
              holds=bool(beat),
              otherwise=f"At this budget ({epochs} epochs per trial) none of the {n} completed "
              "settings reconstructs the test digits better than PCA with as many components "
              "as its code (beyond the paired-bootstrap interval); 12.1's own quick run, "
              "which trains for 150 epochs, is where that target is checked.",
              trials_beating_pca=len(beat), settings=n)


def run_ae_study(cfg: AEStudyConfig, ctx: RunContext) -> None:
    # step train: one run of 12.1 per setting, all with this run's seed
    study_result = execute(ae_study(cfg), ctx, workers=cfg.workers,
                           storage=cfg.storage or None)
    # step score: the trials' table and plots, the setting chosen by validation MSE
    record(study_result, ctx)
    ctx.metrics.update(score_ae_study(study_result))
    # step judge: the chosen setting's test error, and the settings that beat PCA
    judge_ae_study(ctx, study_result, cfg.trial_epochs)


def _changed(row: dict[str, Any]) -> str:
    v = row.get("varied")
    return "base setting" if v in ("base", "") else f"{v}={row[v]}"


AE_STUDY = Implementation(
    config=AEStudyConfig, run=run_ae_study,
    profiles={
        "smoke": {"trial_profile": "smoke", "trial_epochs": 1, "depths": (2,),
                  "widths": (128,), "activations": ("relu", "tanh"), "latents": (8, 32),
                  "lrs": (1e-3,), "spread_seeds": 1},
        # a trial at full is the base program's full run with one setting changed: its
        # epochs, on fewer digits where the base run is long (bench/full_profile.py)
        "full": {"trial_profile": "full", "trial_epochs": 10, "depths": (1, 2, 3),
                 "widths": (64, 128, 256),
                 "activations": ("relu", "leaky_relu", "tanh", "sigmoid"),
                 "latents": (8, 16, 32, 64), "lrs": (3e-4, 1e-3, 3e-3)},
    },
    targets=(
        Target("study_chosen_beats_worst", equals=True, profiles=("quick", "full"),
               why="the settings studied change the validation error: the chosen and the "
                   "worst differ by more than the band the seed alone spans (spread_seeds)"),
        Target("best_test_mse", below="best_mean_image_test_mse", interval="best_vs_mean_image",
               profiles=("quick", "full"),
               why="the chosen setting has learned a code: it reconstructs the test digits "
                   "better than the mean training image, beyond the bootstrap interval"),
    ),
    crippled={"trial_epochs": 1, "trial_profile": "smoke"},
)
