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
  predicted-class histogram and the number of classes with under 2% of the samples,
  reported only (uniform noise falls into few classes too, so it cannot tell collapse);
- the mean classifier confidence (largest softmax probability) on generated digits and
  the recognisable rate (the share classified with confidence >= 0.9);
- the collapse judge (`judge_verdict`): "not converged", "collapsed" or "near real",
  from the Frechet distance, the recognisable rate and the samples' diversity in the
  classifier's feature space (their near-copies and mean pairwise distance).

The classifier is cached as a state_dict (loaded with weights_only=True) in
`<data dir>/classifiers/`, named after the data source, the training set size, the
architecture and training settings, the seed and `CLASSIFIER_VERSION`, so every run
with the same settings scores against the very same network. Where that folder cannot
be written (a read-only data folder) the user cache folder is used, and where neither
can, the classifier is trained for this run only; the run says which. Its training
draws its randomness from its own seed inside `torch.random.fork_rng`, so whether it
was trained or loaded leaves the caller's random state (and thus the rest of a run)
unchanged.

The judge is itself checked (`calibrate`, `real_halves`): real held-out digits must be
judged near real, uniform noise not converged and jittered copies of a handful of real
digits collapsed, and two disjoint halves of the real digits must sit at the floor.
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
    real_diversity: float = math.nan  # mean pairwise feature distance of the reference
    real_neighbours: int = 0  # distinct nearest reference digits of the n training digits
    real_recognisable: float = math.nan  # recognisable rate of the reference digits
    duplicate_cutoff: float = 0.0  # DUPLICATE_QUANTILE of the n training digits' nearest
    # other-digit distances: closer than this, a sample counts as a near-copy


def quality_reference(model: MNISTClassifier, x_train: torch.Tensor, x_test: torch.Tensor,
                      n_samples: int, generator: torch.Generator,
                      device: str = "cpu") -> QualityReference:
    """Floor and ceiling of the Frechet distance for samples of size n_samples, and the
    real-digit yardsticks of the collapse judge.

    x_train: real training images, x_test: the reference images (validation or test
    digits, held out from training), both (N, 1, 28, 28) in [-1, 1]. The floor draws
    n_samples training digits (without replacement, with `generator`); the ceiling draws
    n_samples images of uniform noise in [-1, 1]. Both are compared with all of x_test,
    as generated samples will be, so the three numbers share the same small-sample bias.
    The same training digits give real_neighbours (how many distinct reference digits
    are their nearest neighbours: what a perfect generator reaches with n samples) and
    duplicate_cutoff (the near-copy distance of the collapse judge).
    """
    n = min(int(n_samples), len(x_train))
    real_f, real_p = classify(model, x_test, device=device)
    idx = torch.randperm(len(x_train), generator=generator)[:n]
    train_f, _ = classify(model, x_train[idx], device=device)
    noise = torch.rand((n, *x_test.shape[1:]), generator=generator) * 2 - 1
    noise_f, _ = classify(model, noise, device=device)
    return QualityReference(real_f, frechet(train_f, real_f), frechet(noise_f, real_f),
                            float(real_p.max(axis=1).mean()), n,
                            mean_pairwise_distance(real_f),
                            distinct_neighbours(train_f, real_f), recognisable_rate(real_p),
                            float(np.quantile(nearest_other(train_f), DUPLICATE_QUANTILE)))


def real_halves(model: MNISTClassifier, x_real: torch.Tensor, ref: QualityReference,
                generator: torch.Generator, device: str = "cpu") -> dict[str, Any]:
    """The Frechet distance between two disjoint random halves of real held-out digits
    x_real (N, 1, 28, 28) in [-1, 1] (the reference set of `ref`): a working judge puts it
    at the floor (`frechet_real_halves_relative`, its place between ref's floor and
    ceiling, near 0)."""
    feats, _ = classify(model, x_real, device=device)
    order = torch.randperm(len(x_real), generator=generator).numpy()
    half = len(order) // 2
    d = frechet(feats[order[:half]], feats[order[half:2 * half]])
    span = ref.ceiling - ref.floor
    return {"frechet_real_halves": d,
            "frechet_real_halves_relative": (d - ref.floor) / span if span > 0 else math.nan,
            "n_real_half": half}


COLLAPSED_SET_DIGITS = 5  # the synthetic collapsed set repeats this many real digits
COLLAPSED_SET_NOISE = 0.1  # ... each copy with N(0, 0.1^2) pixel noise (in [-1, 1] units)
CALIBRATION_SETS = {"real": "near real", "noise": "not converged", "collapsed": "collapsed"}


def calibration_sets(x_heldout: torch.Tensor, x_train: torch.Tensor, n: int,
                     generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Three sets of n images whose verdicts are known, images (N, 1, 28, 28) in [-1, 1]:

    real: n real digits held out from the classifier and the GANs (x_heldout, drawn
          without replacement), never collapsed;
    noise: n images of uniform noise (a fresh draw, not the ceiling's), never digits;
    collapsed: n copies of COLLAPSED_SET_DIGITS real training digits, each copy with
          small Gaussian pixel noise (clipped to [-1, 1]): digits, but only a handful.
    """
    n_real = min(n, len(x_heldout))
    real = x_heldout[torch.randperm(len(x_heldout), generator=generator)[:n_real]]
    noise = torch.rand((n, *x_train.shape[1:]), generator=generator) * 2 - 1
    few = x_train[torch.randperm(len(x_train), generator=generator)[:COLLAPSED_SET_DIGITS]]
    copies = few[torch.arange(n) % len(few)]
    jitter = torch.randn(copies.shape, generator=generator) * COLLAPSED_SET_NOISE
    return {"real": real, "noise": noise, "collapsed": (copies + jitter).clamp(-1, 1)}


def calibrate(model: MNISTClassifier, sets: dict[str, torch.Tensor], ref: QualityReference,
              device: str = "cpu") -> dict[str, dict[str, Any]]:
    """`quality_score` of each calibration set (from `calibration_sets`), with "expected"
    (its known verdict) and "passed" (the judge's verdict is that one)."""
    out = {}
    for name, images in sets.items():
        feats, probs = classify(model, images, device=device)
        s = quality_score(feats, probs, ref)
        out[name] = {**s, "expected": CALIBRATION_SETS[name],
                     "passed": s["verdict"] == CALIBRATION_SETS[name]}
    return out


def collapse_criterion() -> str:
    """The collapse judge's rule in words (the thresholds above)."""
    return (f"not converged = Frechet distance at or beyond the noise ceiling, or a "
            f"recognisable rate (share of samples classified with confidence >= "
            f"{RECOGNISABLE:g}) under {MIN_RECOGNISABLE:.0%} of real digits'; collapsed = "
            f"otherwise, with at "
            f"least {COLLAPSED_DUPLICATES:.0%} of the samples having a near-copy among the "
            f"others (nearer, in the classifier's feature space, than "
            f"{1 - DUPLICATE_QUANTILE:.0%} of real digits are to theirs) or a mean pairwise "
            f"feature distance under {COLLAPSED_DIVERSITY:.0%} of real digits'; near real = "
            f"neither, and Frechet under {NEAR_REAL_RELATIVE:.0%} of the way from real digits "
            "to noise; else not converged")


def judge_verdict(frechet_relative: float, recognisable_relative: float, duplicates: float,
                  diversity_relative: float) -> str:
    """"not converged", "collapsed" or "near real" (see `collapse_criterion`);
    recognisable_relative: the samples' recognisable rate over real digits'."""
    if not (frechet_relative < 1 and recognisable_relative >= MIN_RECOGNISABLE):
        return "not converged"  # also when a score is NaN: nothing to judge
    if duplicates >= COLLAPSED_DUPLICATES or not diversity_relative >= COLLAPSED_DIVERSITY:
        return "collapsed"
    return "near real" if frechet_relative < NEAR_REAL_RELATIVE else "not converged"


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else math.nan


def quality_score(features: np.ndarray, probs: np.ndarray,
                  ref: QualityReference) -> dict[str, Any]:
    """Score generated samples from their classifier features (N, F) and probabilities (N, C).

    Returns frechet, frechet_relative ((d - floor) / (ceiling - floor): 0 = as close as
    real digits, 1 = as far as noise), class_entropy, class_entropy_fraction,
    rare_classes (reported; they decide nothing), mean_confidence, recognisable (share of
    samples with confidence >= RECOGNISABLE), diversity (mean pairwise feature distance)
    and diversity_relative (over real digits'), duplicates (share of samples with a
    near-copy among the others), neighbours (distinct nearest real digits) and
    neighbours_relative (over real training digits'), and the judge's verdict with
    collapsed = (verdict == "collapsed").
    """
    probs = np.asarray(probs, dtype=np.float64)
    fd = frechet(features, ref.real_features)
    spread = class_spread(probs.argmax(axis=1), probs.shape[1], RARE_FRACTION)
    span = ref.ceiling - ref.floor
    div, nn = mean_pairwise_distance(features), distinct_neighbours(features, ref.real_features)
    out = {  # plain Python numbers: they go into checkpoints loaded with weights_only
        "frechet": float(fd),
        "frechet_relative": float((fd - ref.floor) / span) if span > 0 else float("nan"),
        "class_entropy": float(spread["class_entropy"]) + 0.0,  # -0.0 (one class) prints as 0
        "class_entropy_fraction": float(spread["class_entropy_fraction"]) + 0.0,
        "rare_classes": int(spread["rare_classes"]),
        "mean_confidence": float(probs.max(axis=1).mean()),
        "recognisable": recognisable_rate(probs),
        "diversity": div,
        "diversity_relative": _ratio(div, ref.real_diversity),
        "duplicates": duplicate_share(features, ref.duplicate_cutoff),
        "neighbours": nn,
        "neighbours_relative": _ratio(nn, ref.real_neighbours),
    }
    out["verdict"] = judge_verdict(out["frechet_relative"],
                                   _ratio(out["recognisable"], ref.real_recognisable),
                                   out["duplicates"], out["diversity_relative"])
    out["collapsed"] = out["verdict"] == "collapsed"
    return out


# ------------------------------------------------------------ the collapse judge
#
# Class spread alone cannot tell collapse from noise: uniform noise, scored by the
# classifier, falls into a few classes too. The judge therefore asks three questions of
# a generator's samples, in this order:
#
# 1. Are they digits to the classifier at all? Samples whose Frechet distance is at or
#    beyond the noise ceiling (relative >= 1), or whose recognisable rate (the share the
#    classifier gives a confidence >= RECOGNISABLE) is under MIN_RECOGNISABLE of real
#    digits' rate, have "not converged": nothing is said about their modes. (The
#    Frechet distance alone cannot tell: a collapsed set of real digits lies near the
#    ceiling too, its covariance being missing, while noise may sit just under it.)
# 2. Are they diverse? Samples that pass 1 are "collapsed" when at least
#    COLLAPSED_DUPLICATES of them have a near-copy among the others (a nearest other
#    sample, in the classifier's feature space, closer than all but DUPLICATE_QUANTILE of
#    real digits are to theirs, at the same sample size), or when their mean pairwise
#    feature distance is under COLLAPSED_DIVERSITY of real digits'.
# 3. Diverse samples are "near real" when their Frechet distance is under
#    NEAR_REAL_RELATIVE of the way from real digits to noise, else "not converged".
#
# A collapse to a handful of different digits keeps the mean pairwise distance high
# (different digits are as far apart as any two), so the near-copy share decides it;
# the mean pairwise distance catches a collapse to one blurred mode.

RECOGNISABLE = 0.9  # a sample is recognisable when the classifier gives it >= 0.9
MIN_RECOGNISABLE = 0.25  # recognisable rate under a quarter of real digits': not digits
NEAR_REAL_RELATIVE = 0.5  # near real: Frechet under halfway from real digits to noise
DUPLICATE_QUANTILE = 0.05  # near-copy: closer than 95% of real digits' nearest neighbours
COLLAPSED_DUPLICATES = 0.5  # collapsed: at least half the samples have a near-copy
COLLAPSED_DIVERSITY = 0.5  # ... or mean pairwise feature distance under half of real's
VERDICTS = ("near real", "collapsed", "not converged")
DIVERSITY_PAIRS_MAX = 1000  # samples used for the mean pairwise distance (seeded subset)


def mean_pairwise_distance(features: np.ndarray, seed: int = 0,
                           max_n: int = DIVERSITY_PAIRS_MAX) -> float:
    """Mean Euclidean distance between distinct samples, features (N, F) -> float.

    Above max_n samples a seeded subset of max_n is used (the mean is an average of
    ~max_n^2 / 2 pairs, so the subset moves it little)."""
    from scipy.spatial.distance import pdist

    f = np.asarray(features, dtype=np.float64)
    if len(f) > max_n:
        f = f[np.random.default_rng(seed).choice(len(f), max_n, replace=False)]
    return float(pdist(f).mean()) if len(f) > 1 else 0.0


def nearest_real(features: np.ndarray, real_features: np.ndarray) -> np.ndarray:
    """Index (N,) of each sample's nearest real digit in feature space (Euclidean)."""
    f = np.asarray(features, dtype=np.float64)
    r = np.asarray(real_features, dtype=np.float64)
    out = np.empty(len(f), dtype=np.int64)
    r2 = (r ** 2).sum(1)
    for start in range(0, len(f), 1000):  # (1000, N_ref) distances at a time
        block = f[start:start + 1000]
        d2 = r2[None, :] - 2 * block @ r.T  # |x|^2 is the same for every r: left out
        out[start:start + 1000] = d2.argmin(1)
    return out


def nearest_other(features: np.ndarray) -> np.ndarray:
    """Distance (N,) from each sample to its nearest other sample (Euclidean)."""
    from scipy.spatial.distance import cdist

    f = np.asarray(features, dtype=np.float64)
    out = np.empty(len(f))
    for start in range(0, len(f), 1000):
        d = cdist(f[start:start + 1000], f)
        d[np.arange(len(d)), np.arange(start, start + len(d))] = np.inf  # not itself
        out[start:start + 1000] = d.min(1)
    return out


def duplicate_share(features: np.ndarray, cutoff: float) -> float:
    """Share of samples whose nearest other sample is closer than `cutoff`."""
    return float((nearest_other(features) < cutoff).mean()) if len(features) > 1 else 1.0


def distinct_neighbours(features: np.ndarray, real_features: np.ndarray) -> int:
    """How many different real digits are the nearest neighbour of some sample."""
    return int(len(np.unique(nearest_real(features, real_features))))


def recognisable_rate(probs: np.ndarray, threshold: float = RECOGNISABLE) -> float:
    """Share of samples the classifier assigns a class with probability >= threshold."""
    p = np.asarray(probs, dtype=np.float64)
    return float((p.max(axis=1) >= threshold).mean())




# ------------------------------------------------- the uncertainty of a Frechet difference

FRECHET_RESAMPLES = 500  # bootstrap resamples of each generator's samples


def _frechet_to(mu_r: np.ndarray, c_r: np.ndarray):
    """A fast Frechet distance to one fixed Gaussian (mu_r, C_r): a function of (mu, C).

    tr (C C_r)^1/2 = sum of the square roots of the eigenvalues of the symmetric
    S C S, S = C_r^1/2 (similar to C C_r), so one symmetric eigensolve per call."""
    w, v = np.linalg.eigh(c_r)
    root_r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_r = float(np.trace(c_r))

    def distance(mu: np.ndarray, c: np.ndarray) -> float:
        eig = np.linalg.eigvalsh(root_r @ c @ root_r)
        return float(((mu - mu_r) ** 2).sum() + np.trace(c) + tr_r
                     - 2 * np.sqrt(np.clip(eig, 0, None)).sum())

    return distance


def frechet_difference(features_a: np.ndarray, features_b: np.ndarray,
                       real_features: np.ndarray, *, seed: int,
                       resamples: int = FRECHET_RESAMPLES) -> Any:
    """Frechet(a, real) - Frechet(b, real) with a 95% percentile bootstrap interval.

    features_a (Na, F), features_b (Nb, F): two generators' samples in the classifier's
    feature space; real_features: the reference digits, held fixed. Each generator's
    samples are resampled independently (they are independent draws), `resamples` times
    with a generator seeded by `seed`; the interval is the 2.5% and 97.5% quantiles of the
    resampled difference. It measures how much the difference depends on which samples
    were drawn, not on the training seed. Returns a dlab.uncertainty.Difference whose
    estimate is the difference of the two `frechet` values.
    """
    from dlab.uncertainty import LEVEL, Difference

    fa, fb = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    r = np.asarray(real_features, np.float64)
    to_real = _frechet_to(r.mean(0), np.cov(r, rowvar=False))
    est = frechet(fa, r) - frechet(fb, r)
    rng = np.random.default_rng(seed)

    def one(f: np.ndarray) -> float:
        g = f[rng.integers(0, len(f), len(f))]
        return to_real(g.mean(0), np.cov(g, rowvar=False))

    values = np.array([one(fa) - one(fb) for _ in range(resamples)])
    lo, hi = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Difference(float(est), float(lo), float(hi),
                      f"percentile bootstrap over each generator's {len(fa)} and {len(fb)} "
                      f"samples, {resamples} resamples", min(len(fa), len(fb)))
