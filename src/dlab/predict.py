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
import os
import sys
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


def build_model(meta: dict[str, Any]):
    """A fresh (untrained) model from `model.json`'s architecture and kwargs."""
    module, name = ARCHITECTURES[meta["architecture"]].split(":")
    cls = getattr(importlib.import_module(module), name)
    return cls(**meta["kwargs"])


def load_classifier(run_dir: str | os.PathLike):
    """(model in eval mode on the CPU, metadata) from a classifier's run folder."""
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
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{meta_path}: unreadable ({exc}); rerun the program") from None
    if meta.get("task") != "classification":
        raise UsageError(f"{run_dir}: program {meta.get('program', '?')} trained a "
                         f"{meta.get('task', 'non-classifier')} model, not a classifier; "
                         f"predict takes runs of {CLASSIFIER_PROGRAMS}")
    if meta.get("architecture") not in ARCHITECTURES:
        raise DataError(f"{meta_path}: unknown architecture {meta.get('architecture')!r}")
    model = build_model(meta)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, EOFError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{weights}: does not hold the weights model.json describes "
                        f"({first}); rerun the program") from None
    model.eval()
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
