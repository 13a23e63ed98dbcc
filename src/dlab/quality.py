"""An honest quality score for generated MNIST digits.

Inception-based FID needs ImageNet weights and says little about 28x28 digits, so dlab
trains a small MNIST classifier once (seeded, cached in the data directory) and scores
generated images in its terms:

- the Frechet distance (Heusel et al. 2017; `dlab.metrics.frechet_distance`) between
  Gaussians fit to the classifier's penultimate features of real test digits and of
  generated ones, shown between a *floor* (a sample of real training digits against
  the test digits: what a perfect generator would get with as many samples) and a
  *ceiling* (uniform noise images against the test digits);
- the class spread of generated digits (`dlab.metrics.class_spread`): entropy of the
  predicted-class histogram and the number of classes with under 2% of the samples.
  A generator that collapsed to a few modes leaves many classes empty;
- the mean classifier confidence (largest softmax probability) on generated digits.

The classifier is cached as a state_dict (loaded with weights_only=True) in
`<data dir>/classifiers/`, named after the data source, the training set size, the
architecture and training settings, the seed and `CLASSIFIER_VERSION`, so every run
with the same settings scores against the very same network. Where that folder cannot
be written (a read-only data folder) the user cache folder is used, and where neither
can, the classifier is trained for this run only; the run says which. Its training
draws its randomness from its own seed inside `torch.random.fork_rng`, so whether it
was trained or loaded leaves the caller's random state (and thus the rest of a run)
unchanged.

The judge is itself checked (`real_calibration`): real held-out digits scored by the
classifier must not be called collapsed, and the Frechet distance between two disjoint
halves of the real digits must sit at the floor, far below noise.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dlab.io import atomic_path, write_json
from dlab.metrics import class_spread, frechet_distance
from dlab.models.classifier import MNISTClassifier
from dlab.runs import RunContext

CLASSIFIER_VERSION = "3"  # bump when the classifier's code or training data change
RARE_FRACTION = 0.02  # a class is "rare" among generated digits below this share


def to_unit_range(images: np.ndarray) -> torch.Tensor:
    """uint8 images (N, 28, 28) in 0..255 -> float32 tensor (N, 1, 28, 28) in [-1, 1]."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    return (x / 127.5 - 1.0).unsqueeze(1)  # (N, 28, 28) -> (N, 1, 28, 28)


# ------------------------------------------------------------------ the classifier


@dataclass(frozen=True)
class ClassifierSpec:
    """How the scoring classifier is built and trained (part of its cache key)."""

    channels: tuple[int, ...] = (16, 32)  # conv channels of the two blocks
    feature_dim: int = 64  # width of the feature layer the distance is measured in
    epochs: int = 10  # training epochs
    batch_size: int = 128
    lr: float = 3e-3  # Adam's initial learning rate, decayed to 0 along a cosine
    seed: int = 0  # initial weights, dropout and shuffling

    def cache_name(self, source: str, n_train: int) -> str:
        ch = "x".join(str(c) for c in self.channels)
        return (f"mnist-{source}-n{n_train}-c{ch}-f{self.feature_dim}-e{self.epochs}"
                f"-b{self.batch_size}-lr{self.lr:g}-seed{self.seed}-v{CLASSIFIER_VERSION}")


@dataclass
class TrainedClassifier:
    model: MNISTClassifier
    test_accuracy: float  # on the test split of the same source
    path: Path | None  # the cached state_dict (None: trained for this run only)
    cached: bool  # True when loaded from the cache rather than trained now
    train_seconds: float  # time the training took (when it was trained)
    note: str = ""  # where it was cached when the data folder could not take it


class _SeededBatches:
    """Shuffled batches of in-memory tensors, reshuffled on every pass with a generator
    of its own (so the order depends on the classifier's seed, not the run's)."""

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, seed: int):
        from dlab.training import batches

        self._batches = batches
        self.tensors, self.batch_size = tensors, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.tensors[0]) / self.batch_size)

    def __iter__(self):
        return self._batches(self.tensors, self.batch_size, True, self.generator)


def cache_dir(ctx: RunContext | None = None) -> Path:
    """`<data dir>/classifiers`: the run's --data-dir, else $DLAB_DATA, else ~/.cache/dlab."""
    from dlab.data import data_dir

    return data_dir(ctx.data_dir if ctx is not None else None) / "classifiers"


def user_cache_dir() -> Path:
    """The fallback cache: $XDG_CACHE_HOME/dlab/classifiers, else ~/.cache/dlab/classifiers."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "dlab" / "classifiers"


def _folders(folder: Path) -> list[Path]:
    fallback = user_cache_dir()
    return [folder] if fallback == folder else [folder, fallback]


def _load_cached(folder: Path, name: str, spec: ClassifierSpec, ctx: RunContext,
                 forked: list[int]) -> TrainedClassifier | None:
    path, meta_path = folder / f"{name}.pt", folder / f"{name}.json"
    if not (path.exists() and meta_path.exists()):
        return None
    try:
        with torch.random.fork_rng(devices=forked):  # building it draws initial weights
            model = MNISTClassifier(spec.channels, spec.feature_dim)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        meta = json.loads(meta_path.read_text())
        ctx.log(f"scoring classifier loaded from {path}")
        return TrainedClassifier(model.to(ctx.device).eval(), float(meta["test_accuracy"]),
                                 path, True, float(meta.get("train_seconds", 0.0)))
    except Exception as exc:  # any unreadable cache entry is trained again, not trusted
        ctx.log(f"cached classifier {path} unreadable ({exc}); training it again")
        return None


def _save(folders: list[Path], name: str, model: MNISTClassifier,
          meta: dict[str, Any]) -> tuple[Path | None, str]:
    """Cache the classifier in the first folder that takes it: (path or None, a note)."""
    refused = []
    for folder in folders:
        path = folder / f"{name}.pt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
            write_json(folder / f"{name}.json", meta)
        except OSError as exc:
            refused.append(f"{folder} ({exc.strerror or exc})")
            continue
        note = (f"{' and '.join(refused)} could not be written, so it is cached in {folder}"
                if refused else "")
        return path, note
    return None, (f"{' and '.join(refused)} could not be written, so it was trained for "
                  "this run only")


def _train(x_train: torch.Tensor, y_train: torch.Tensor, spec: ClassifierSpec,
           ctx: RunContext, forked: list[int]) -> MNISTClassifier:
    from dlab.training import accuracy, fit

    device = ctx.device
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(spec.seed)  # initial weights and dropout
        model = MNISTClassifier(spec.channels, spec.feature_dim).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
        # cosine decay (Loshchilov and Hutter, SGDR, 2017): the last epochs settle
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spec.epochs)
        data = _SeededBatches((x_train.to(device), y_train.to(device)), spec.batch_size,
                              spec.seed)
        fit(model, data, ctx=ctx, epochs=spec.epochs, optimizer=opt, loss_fn=F.cross_entropy,
            metrics={"acc": accuracy}, name="classifier", scheduler=schedule)
    return model.eval()


def load_or_train_classifier(x_train: torch.Tensor, y_train: torch.Tensor,
                             x_test: torch.Tensor, y_test: torch.Tensor, *, source: str,
                             ctx: RunContext, spec: ClassifierSpec = ClassifierSpec(),
                             folder: Path | None = None) -> TrainedClassifier:
    """The scoring classifier for one data source: from the cache, else trained and cached.

    x_train, x_test: images (N, 1, 28, 28) in [-1, 1]; y_train, y_test: labels (N,) int64.
    source: a short name of the data ("bundled", "full") for the cache key.
    Training goes through `dlab.training.fit` (history rows named "classifier"). The cache
    is `folder` (default `cache_dir(ctx)`), else `user_cache_dir()` when that folder
    cannot be written, else none (the returned `note` says so).
    """
    from dlab.training import accuracy, evaluate

    folders = _folders(Path(folder) if folder is not None else cache_dir(ctx))
    name = spec.cache_name(source, len(x_train))
    forked = [torch.cuda.current_device()] if ctx.device == "cuda" else []
    for f in folders:
        found = _load_cached(f, name, spec, ctx, forked)
        if found is not None:
            return found

    t0 = time.perf_counter()
    model = _train(x_train, y_train, spec, ctx, forked)
    seconds = time.perf_counter() - t0
    test_acc = evaluate(model, (x_test, y_test), None, {"acc": accuracy},
                        device=ctx.device)["acc"]
    meta = {"source": source, "n_train": len(x_train), "n_test": len(x_test),
            "test_accuracy": test_acc, "train_seconds": seconds,
            "spec": {k: getattr(spec, k) for k in spec.__dataclass_fields__},
            "version": CLASSIFIER_VERSION}
    path, note = _save(folders, name, model, meta)
    ctx.log(f"scoring classifier trained ({test_acc:.2%} test accuracy); "
            + (f"cached at {path}" if path else "not cached") + (f": {note}" if note else ""))
    return TrainedClassifier(model, float(test_acc), path, False, seconds, note)


@torch.inference_mode()
def classify(model: MNISTClassifier, images: torch.Tensor, batch_size: int = 1000,
             device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Features (N, F) float64 and class probabilities (N, C) of images (N, 1, 28, 28)."""
    was_training = model.training
    model.eval()
    feats, probs = [], []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        f = model.features(x)
        feats.append(f.double().cpu())
        probs.append(torch.softmax(model.head(f), dim=1).double().cpu())
    model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


# ---------------------------------------------------------------------- the score


def frechet(features1: np.ndarray, features2: np.ndarray) -> float:
    """`dlab.metrics.frechet_distance` of (N1, F) and (N2, F) features, quietly.

    ReLU features have dead units and a collapsed generator has a near-zero covariance,
    so cov1 @ cov2 is often singular and scipy's sqrtm warns that its result "might be
    inaccurate". The square root of such a product (similar to a positive semi-definite
    matrix) is still well defined and sqrtm gets it right (checked against an
    eigendecomposition in tests/test_quality.py), so the warning is silenced here.
    """
    from scipy.linalg import LinAlgWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        return frechet_distance(features1, features2)


@dataclass
class QualityReference:
    """What generated samples are compared with, computed once per run."""

    real_features: np.ndarray  # (N_ref, F) features of the reference digits (held out)
    floor: float  # distance of n real training digits to the reference digits
    ceiling: float  # distance of n uniform-noise images to the reference digits
    real_confidence: float  # mean classifier confidence on the reference digits
    n_samples: int  # n, the sample size of floor, ceiling and every score


def quality_reference(model: MNISTClassifier, x_train: torch.Tensor, x_test: torch.Tensor,
                      n_samples: int, generator: torch.Generator,
                      device: str = "cpu") -> QualityReference:
    """Floor and ceiling of the Frechet distance for samples of size n_samples.

    x_train: real training images, x_test: the reference images (validation or test
    digits, held out from training), both (N, 1, 28, 28) in [-1, 1]. The floor draws
    n_samples training digits (without replacement, with `generator`); the ceiling draws
    n_samples images of uniform noise in [-1, 1]. Both are compared with all of x_test,
    as generated samples will be, so the three numbers share the same small-sample bias.
    """
    n = min(int(n_samples), len(x_train))
    real_f, real_p = classify(model, x_test, device=device)
    idx = torch.randperm(len(x_train), generator=generator)[:n]
    train_f, _ = classify(model, x_train[idx], device=device)
    noise = torch.rand((n, *x_test.shape[1:]), generator=generator) * 2 - 1
    noise_f, _ = classify(model, noise, device=device)
    return QualityReference(real_f, frechet(train_f, real_f), frechet(noise_f, real_f),
                            float(real_p.max(axis=1).mean()), n)


def real_calibration(model: MNISTClassifier, x_real: torch.Tensor, ref: QualityReference,
                     generator: torch.Generator, collapse_rare_classes: int = 5,
                     device: str = "cpu") -> dict[str, Any]:
    """The judge applied to real digits, where the answers are known.

    x_real: real held-out digits (N, 1, 28, 28) in [-1, 1] (the reference set of `ref`).
    Returns the class spread of the classifier's predictions on them (a working judge
    calls them not collapsed) and the Frechet distance between two disjoint random halves
    of them (a working judge puts it at the floor: `frechet_real_halves_relative`, its
    place between ref's floor and ceiling, near 0).
    """
    feats, probs = classify(model, x_real, device=device)
    spread = class_spread(probs.argmax(axis=1), probs.shape[1], RARE_FRACTION)
    order = torch.randperm(len(x_real), generator=generator).numpy()
    half = len(order) // 2
    d = frechet(feats[order[:half]], feats[order[half:2 * half]])
    span = ref.ceiling - ref.floor
    return {
        "real_class_entropy_fraction": float(spread["class_entropy_fraction"]) + 0.0,
        "real_rare_classes": int(spread["rare_classes"]),
        "real_mode_collapse": bool(spread["rare_classes"] >= collapse_rare_classes),
        "frechet_real_halves": d,
        "frechet_real_halves_relative": (d - ref.floor) / span if span > 0 else float("nan"),
        "n_real_half": half,
    }


def collapse_criterion(collapse_rare_classes: int) -> str:
    return (f"mode collapse = at least {collapse_rare_classes} of the 10 digit classes each "
            f"get under {RARE_FRACTION:.0%} of the generated samples (by the classifier)")


def quality_score(features: np.ndarray, probs: np.ndarray, ref: QualityReference,
                  collapse_rare_classes: int = 5) -> dict[str, Any]:
    """Score generated samples from their classifier features (N, F) and probabilities (N, C).

    Returns frechet, frechet_relative ((d - floor) / (ceiling - floor): 0 = as close as
    real digits, 1 = as far as noise), class_entropy, class_entropy_fraction,
    rare_classes, mean_confidence and mode_collapse (see `collapse_criterion`).
    """
    probs = np.asarray(probs, dtype=np.float64)
    fd = frechet(features, ref.real_features)
    spread = class_spread(probs.argmax(axis=1), probs.shape[1], RARE_FRACTION)
    spread["class_entropy"] += 0.0  # -0.0 (one class) prints as 0
    spread["class_entropy_fraction"] += 0.0
    span = ref.ceiling - ref.floor
    return {  # plain Python numbers: they go into checkpoints loaded with weights_only
        "frechet": float(fd),
        "frechet_relative": float((fd - ref.floor) / span) if span > 0 else float("nan"),
        "class_entropy": float(spread["class_entropy"]),
        "class_entropy_fraction": float(spread["class_entropy_fraction"]),
        "rare_classes": int(spread["rare_classes"]),
        "mean_confidence": float(probs.max(axis=1).mean()),
        "mode_collapse": bool(spread["rare_classes"] >= collapse_rare_classes),
    }
