"""Classify image files with a trained classifier's run folder (`dlab predict`).

A classifier program saves `model.pt` (the state_dict) and `model.json` (what rebuilds
the model and repeats its preprocessing). `model.json` holds:

    task          "classification"
    architecture  a key of ARCHITECTURES; kwargs: its constructor arguments
    input         size [H, W], channels, per-channel mean and std (of the [0, 1] pixels),
                  flatten (the model takes (N, C H W) vectors), source_size (the size of
                  the images it was trained from, resized to `size`; null if the same)
    classes       class names; a class's index is the model's output index
    program       the program that trained it

Every file goes through `dlab.data.images.prepare` with these settings, the same
function training used, so a prediction sees exactly what training saw.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
import os
import pickle
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from dlab.errors import DataError, UsageError

ARCHITECTURES = {
    "mlp": "dlab.models.mlp:MLP",
    "convnet": "dlab.models.cnn:ConvNet",
    "anysize_cnn": "dlab.models.cnn:AnySizeCNN",
}
CLASSIFIER_PROGRAMS = "4.1, 4.2, 8.2 or 9.2"


def classifier_metadata(architecture: str, kwargs: dict[str, Any], size: Sequence[int],
                        channels: int, mean: Sequence[float], std: Sequence[float],
                        classes: Sequence[str], program: str, flatten: bool = False,
                        source_size: Sequence[int] | None = None) -> dict[str, Any]:
    """The `model.json` content of a classifier (pass to `ctx.save_model(model, **meta)`)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}")
    source = [int(s) for s in source_size] if source_size is not None else None
    return {
        "task": "classification",
        "architecture": architecture,
        "kwargs": dict(kwargs),
        "input": {"size": [int(size[0]), int(size[1])], "channels": int(channels),
                  "mean": [float(m) for m in mean], "std": [float(s) for s in std],
                  "flatten": bool(flatten),
                  "source_size": source if source != [int(size[0]), int(size[1])] else None},
        "classes": [str(c) for c in classes],
        "program": program,
    }


MAX_PARAMETERS = 100_000_000  # a model.json describing more is refused before building


def build_model(meta: dict[str, Any]):
    """A fresh (untrained) model from `model.json`'s architecture and kwargs."""
    module, name = ARCHITECTURES[meta["architecture"]].split(":")
    cls = getattr(importlib.import_module(module), name)
    return cls(**meta["kwargs"])


def _plain_json(value: Any) -> bool:
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def _numbers(value: Any, n: int | None = None) -> bool:
    return (isinstance(value, list) and (n is None or len(value) == n) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in value))


def check_metadata(meta: Any, meta_path: Path) -> dict[str, Any]:
    """model.json checked field by field: DataError (one line) naming what is wrong."""
    def bad(why: str) -> DataError:
        return DataError(f"{meta_path}: {why}; rerun the program that trained it")

    if not isinstance(meta, dict):
        raise bad(f"holds a JSON {type(meta).__name__}, not a model description")
    if meta.get("task") != "classification":
        raise UsageError(f"{meta_path.parent}: program {meta.get('program', '?')} trained a "
                         f"{meta.get('task', 'non-classifier')} model, not a classifier; "
                         f"predict takes runs of {CLASSIFIER_PROGRAMS}")
    if meta.get("architecture") not in ARCHITECTURES:
        raise bad(f"unknown architecture {str(meta.get('architecture'))[:40]!r} (known: "
                  f"{', '.join(ARCHITECTURES)})")
    kwargs = meta.get("kwargs")
    if not isinstance(kwargs, dict) or not all(_plain_json(v) for v in kwargs.values()):
        raise bad("'kwargs' is not an object of numbers, strings and lists")
    inp = meta.get("input")
    if not isinstance(inp, dict):
        raise bad("no 'input' object (image size, channels, mean, std)")
    size, channels = inp.get("size"), inp.get("channels")
    if not _numbers(size, 2) or not all(isinstance(v, int) and 1 <= v <= 4096 for v in size):
        raise bad(f"'input.size' must be [height, width] of 1-4096 pixels, got {size!r:.40}")
    if channels not in (1, 3):
        raise bad(f"'input.channels' must be 1 or 3, got {channels!r:.20}")
    for key in ("mean", "std"):
        if not _numbers(inp.get(key)) or len(inp[key]) not in (1, channels):
            raise bad(f"'input.{key}' must be {channels} finite number(s)")
    if any(v <= 0 for v in inp["std"]):
        raise bad("'input.std' must be positive")
    src = inp.get("source_size")
    if src is not None and not (_numbers(src, 2) and all(isinstance(v, int) for v in src)):
        raise bad("'input.source_size' must be [height, width] or null")
    classes = meta.get("classes")
    if not isinstance(classes, list) or not classes or not all(
            isinstance(c, str | int) for c in classes):
        raise bad("'classes' must be a non-empty list of class names")
    return meta


def load_classifier(run_dir: str | os.PathLike):
    """(model in eval mode on the CPU, metadata) from a classifier's run folder.

    model.json is checked before anything is built, the model's size is counted on
    torch's meta device (no memory) before it is made for real, model.pt is loaded with
    weights_only=True (a file that would run code is refused), and one forward pass
    checks that the outputs match the class list.
    """
    import torch

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder; give the folder of a run of "
                         f"{CLASSIFIER_PROGRAMS} (runs/<id>/<date>-...)")
    meta_path, weights = run_dir / "model.json", run_dir / "model.pt"
    if not meta_path.is_file() or not weights.is_file():
        raise UsageError(f"{run_dir}: not the run folder of a trained model (no model.json / "
                         f"model.pt); train a classifier first, e.g. `dlab run 4.1`")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{meta_path}: unreadable ({' '.join(str(exc).split())[:120]}); "
                        "rerun the program") from None
    meta = check_metadata(meta, meta_path)
    try:
        with torch.device("meta"):
            probe = build_model(meta)
        n_params = sum(p.numel() for p in probe.parameters())
    except Exception as exc:  # arguments the constructor refuses
        raise DataError(f"{meta_path}: its kwargs do not build a {meta['architecture']} "
                        f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]}); rerun "
                        "the program") from None
    if n_params > MAX_PARAMETERS:
        raise DataError(f"{meta_path}: describes a model of {n_params:,} parameters (more "
                        f"than {MAX_PARAMETERS:,}); refused; rerun the program")
    model = build_model(meta)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(weights, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        from dlab.training import unpickler_detail

        raise DataError(f"{weights}: refused: not a file of plain tensors "
                        f"({unpickler_detail(exc)}); such a file could run code when loaded, "
                        "so nothing in it was run; rerun the program to save the model "
                        "again") from None
    except Exception as exc:  # random bytes, a truncated file
        first = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise DataError(f"{weights}: not a saved model ({first}); rerun the program") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{weights}: does not hold the weights model.json describes "
                        f"({first[:160]}); rerun the program") from None
    model.eval()
    inp = meta["input"]
    shape = (1, inp["channels"], *inp["size"])
    try:
        with torch.inference_mode():
            x = torch.zeros(shape)
            out = model(x.reshape(1, -1) if inp.get("flatten") else x)
    except Exception as exc:
        raise DataError(f"{meta_path}: the model does not take {inp['channels']}-channel "
                        f"{inp['size'][0]}x{inp['size'][1]} images as model.json says "
                        f"({type(exc).__name__}); rerun the program") from None
    if out.ndim != 2 or out.shape[1] != len(meta["classes"]):
        raise DataError(f"{meta_path}: lists {len(meta['classes'])} classes but the model has "
                        f"{out.shape[-1]} outputs; rerun the program")
    return model, meta


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def predict_files(run_dir: str | os.PathLike, files: Iterable[str | os.PathLike],
                  labels: bool = False, warn: Callable[[str], None] | None = None,
                  batch_size: int = 512) -> list[dict[str, Any]]:
    """Classify every image in `files` with the classifier saved in `run_dir`.

    files: PNG/JPEG images, .npy arrays or .npz files with an `images` array, shaped
           (N, H, W) or (N, H, W, C), uint8 0-255 or float 0-1.
    labels: report class names instead of class indices in `predicted`.
    warn:  called with one line when images are resized (default: print to stderr).

    Returns one dict per image: file, index (position within its file), predicted,
    probability (the softmax probability of the predicted class).
    """
    import torch

    from dlab.data.images import prepare, read_images_file

    files = [Path(f) for f in files]
    if not files:
        raise UsageError("predict: give at least one image file (.png, .jpg, .npy, .npz)")
    model, meta = load_classifier(run_dir)
    warn = warn or _stderr
    inp = meta["input"]
    size = tuple(inp["size"])
    source = tuple(inp["source_size"]) if inp.get("source_size") else None
    classes = meta["classes"]
    rows: list[dict[str, Any]] = []
    resized: dict[tuple[int, int], list[Path]] = {}
    for path in files:
        images = read_images_file(path)
        hw = tuple(images.shape[1:3])
        if hw != size and hw != source:
            resized.setdefault(hw, []).append(path)
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = prepare(images[start:start + batch_size], size, inp["channels"],
                            inp["mean"], inp["std"])            # (B, C, H, W)
                if inp.get("flatten"):
                    x = x.reshape(len(x), -1)                   # (B, C H W)
                prob = torch.softmax(model(x), dim=-1)          # (B, n_classes)
                p, k = prob.max(dim=-1)
                for j, (pj, kj) in enumerate(zip(p.tolist(), k.tolist(), strict=True)):
                    rows.append({"file": str(path), "index": start + j,
                                 "predicted": classes[kj] if labels else kj,
                                 "probability": pj})
    for (h, w), paths in resized.items():
        warn(f"{len(paths)} file(s) of {h}x{w} images (first: {paths[0]}) resized to "
             f"{size[0]}x{size[1]}, the size the model was trained on")
    return rows


def format_csv(rows: Iterable[dict[str, Any]]) -> str:
    """CSV text with the header file,index,predicted,probability (probability to 6 places)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "index", "predicted", "probability"])
    for r in rows:
        writer.writerow([r["file"], r["index"], r["predicted"], f"{r['probability']:.6f}"])
    return buf.getvalue()
