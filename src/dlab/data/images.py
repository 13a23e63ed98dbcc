"""Images in memory and on disk: tensors normalised once, image folders, CIFAR-10.

The one preprocessing function, `prepare`, turns images in any of the accepted forms
(uint8 0-255 or float 0-1; (N, H, W) or (N, H, W, C)) into the normalised (N, C, H, W)
float tensor a model was trained on. Training and `dlab predict` both call it with the
settings stored beside the model, so a prediction sees what training saw.

Image folders follow torchvision's `ImageFolder` layout, `root/<class>/<image>`: the
class names are the sub-folder names in sorted order, and the label of a class is its
index in that order. Each file is decoded once (Pillow) and kept as a uint8 array;
files Pillow cannot read are skipped and counted, not fatal.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dlab.data import Provenance
from dlab.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# ITU-R BT.601 luma weights, as Pillow's convert("L") uses
LUMA = (0.299, 0.587, 0.114)


# ------------------------------------------------------------ in-memory tensors


def check_array(images: np.ndarray, where: str = "images") -> np.ndarray:
    """Validate an image array: (N, H, W) or (N, H, W, C) with C in 1, 3, 4; uint8 0-255
    (or other integers within 0-255) or float within 0-1. Returns it unchanged."""
    a = np.asarray(images)
    if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[-1] not in (1, 3, 4)):
        raise DataError(f"{where}: expected images shaped (N, H, W) or (N, H, W, C) with C "
                        f"1, 3 or 4; got shape {a.shape}")
    if a.size == 0:
        raise DataError(f"{where}: no images (shape {a.shape})")
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise DataError(f"{where}: {int((~np.isfinite(a)).sum()):,} pixel values are NaN "
                            "or infinite; float images must lie in [0, 1]")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(f"{where}: float images must lie in [0, 1]; got values from "
                            f"{lo:g} to {hi:g} (divide 0-255 images by 255, or save uint8)")
    elif np.issubdtype(a.dtype, np.integer):
        if a.dtype != np.uint8 and (a.min() < 0 or a.max() > 255):
            raise DataError(f"{where}: integer images must lie in 0-255; got "
                            f"{a.min()} to {a.max()}")
    else:
        raise DataError(f"{where}: unsupported image dtype {a.dtype}; use uint8 or float")
    return a


def to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images (N, H, W) or (N, H, W, C) -> float32 tensor (N, C, H, W) in [0, 1].

    uint8 (and other integer) images are divided by 255; float images are taken as 0-1.
    """
    t = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if t.ndim == 3:
        t = t.unsqueeze(-1)                           # (N, H, W) -> (N, H, W, 1)
    x = t.permute(0, 3, 1, 2).float()                 # (N, C, H, W)
    return x if t.is_floating_point() else x / 255.0


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, channels, H, W): grey repeated to colour, colour to grey by
    BT.601 luma, an alpha channel dropped. Repeating returns a view (no copy)."""
    c = x.shape[1]
    if c == 4:
        x, c = x[:, :3], 3                            # drop alpha
    if c == channels:
        return x
    if c == 1:
        return x.expand(-1, channels, -1, -1)         # (N, 1, H, W) -> (N, channels, H, W)
    if c == 3 and channels == 1:
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)       # (N, 1, H, W)
    raise DataError(f"cannot turn {c}-channel images into {channels}-channel ones")


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize (N, C, H, W) -> (N, C, size[0], size[1]), anti-aliased when shrinking."""
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of (N, C, H, W), computed in float64,
    one channel at a time (a float64 copy of one channel at most)."""
    means, stds = [], []
    for c in range(x.shape[1]):
        v = x[:, c].double()                                  # (N, H, W)
        means.append(float(v.mean()))
        stds.append(max(float(v.std()), 1e-8))
    return means, stds


def pixel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation (n - 1) of uint8 images (N, H, W) or
    (N, H, W, C), on the 0-1 scale, from a 256-bin histogram per channel: the same values
    as `channel_stats(to_tensor(images))` without a float copy of the images."""
    a = np.asarray(images)
    if a.dtype != np.uint8:
        raise DataError(f"pixel_stats needs uint8 images, got {a.dtype}")
    a = a[..., None] if a.ndim == 3 else a
    levels = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(a.shape[-1]):
        channel = torch.from_numpy(np.ascontiguousarray(a[..., c])).ravel()
        counts = torch.bincount(channel, minlength=256).double().numpy()
        n = counts.sum()
        mean = float(counts @ levels / n)
        var = float(counts @ (levels - mean) ** 2 / max(n - 1, 1))
        means.append(mean)
        stds.append(max(var ** 0.5, 1e-8))
    return means, stds


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x - mean[c]) / std[c] per channel of (N, C, H, W)."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def resize_uint8(images: np.ndarray, size: Sequence[int], chunk: int = 4096) -> np.ndarray:
    """Integer images (N, H, W) or (N, H, W, C), 0-255 -> uint8 images of `size`.

    Bilinear and anti-aliased (`resize`), then rounded to the nearest grey level. Image
    folders, stand-ins and `dlab predict` all resize integer images with this one
    function, so a file gives the same pixels in training and in prediction.
    """
    a = np.asarray(images)
    out = []
    for start in range(0, len(a), chunk):
        x = resize(to_tensor(a[start:start + chunk]), size)        # (n, C, h, w) in [0, 1]
        y = x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
        out.append(y.permute(0, 2, 3, 1).numpy())                 # (n, h, w, C)
    res = np.concatenate(out)
    return res[..., 0] if a.ndim == 3 else res


def prepare(images: np.ndarray | torch.Tensor, size: Sequence[int], channels: int,
            mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """The one image preprocessing of dlab, for training and for prediction:

        resize to `size` (integer images: `resize_uint8`; float images: `resize`) ->
        / 255 (integer images) -> (N, C, H, W) -> `channels` channels ->
        per-channel (x - mean) / std.

    images: (N, H, W) or (N, H, W, C), integer 0-255 or float 0-1.
    Returns float32 (N, channels, size[0], size[1]). Grey images repeated to colour with
    equal statistics per channel are normalised before the repeat, so the result is a
    view of a 1-channel tensor: no copy.
    """
    size = (int(size[0]), int(size[1]))
    if not isinstance(images, torch.Tensor):
        images = np.asarray(images)
        if not np.issubdtype(images.dtype, np.floating) and images.shape[1:3] != size:
            images = resize_uint8(images, size)
    x = resize(to_tensor(images), size)
    if x.shape[1] == 1 and channels > 1 and len(set(mean)) == 1 and len(set(std)) == 1:
        return match_channels(normalize(x, mean[:1], std[:1]), channels)
    return normalize(match_channels(x, channels), mean, std)


def augment_batch(x: torch.Tensor, generator: torch.Generator, flip: bool = True,
                  pad: int = 0) -> torch.Tensor:
    """Random horizontal flips and random crops of a batch (B, C, H, W), as tensor ops.

    flip: each image is mirrored left-right with probability 1/2.
    pad:  each image is reflect-padded by `pad` pixels a side and a random H x W window
          of the padded image is kept (shifts of up to `pad` pixels each way).
    The random numbers come from `generator` (a CPU generator); returns (B, C, H, W).
    """
    b, _, h, w = x.shape
    if flip:
        mirror = (torch.rand(b, generator=generator) < 0.5).to(x.device)
        x = torch.where(mirror.view(b, 1, 1, 1), x.flip(-1), x)
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")        # (B, C, H + 2p, W + 2p)
        oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
        ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
        rows = oy[:, None] + torch.arange(h, device=x.device)      # (B, H)
        cols = ox[:, None] + torch.arange(w, device=x.device)      # (B, W)
        idx = torch.arange(b, device=x.device)[:, None, None]
        x = xp.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
        x = x.permute(0, 3, 1, 2)                                  # (B, C, H, W)
    return x


# ----------------------------------------------------------------- image files


def read_image(path: str | os.PathLike) -> np.ndarray:
    """One PNG/JPEG file -> uint8 array (H, W) for grey images, (H, W, 3) otherwise.

    Raises DataError when Pillow cannot decode the file (truncated, not an image).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("L", "1", "I;16", "I", "F"):
                im = im.convert("L")
            elif im.mode != "RGB":
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: not a readable image (too large to decode safely: "
                        f"{' '.join(str(exc).split()[:4])} ...)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, MemoryError) as exc:
        raise DataError(f"{path}: not a readable image ({' '.join(str(exc).split())})") from None


def read_images_file(path: str | os.PathLike) -> np.ndarray:
    """An image file or an array file -> images (N, H, W) or (N, H, W, C).

    .png/.jpg/.jpeg: one image (N = 1). .npy: an array. .npz: its `images` array.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return read_image(path)[None]                 # (1, H, W[, C])
    if suffix in (".npy", ".npz"):
        try:
            with open(path, "rb") as fh:
                loaded = np.load(fh, allow_pickle=False)
                if suffix == ".npz" or not isinstance(loaded, np.ndarray):
                    if not hasattr(loaded, "files"):
                        raise ValueError("not an .npz archive")
                    with loaded:
                        if "images" not in loaded.files:
                            raise DataError(f"{path}: no array named 'images' (found: "
                                            f"{', '.join(loaded.files) or 'none'})")
                        arr = loaded["images"]
                else:
                    arr = loaded
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: not a readable NumPy file "
                            f"({' '.join(str(exc).split())[:160]})") from None
        return check_array(arr, str(path))
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'}; use .png, .jpg, "
                    ".npy or .npz")


# ---------------------------------------------------------------- image folders


@dataclass
class FolderImages:
    """Images decoded from an image folder, in memory.

    images: uint8 (N, H, W, C), all resized to one size; labels: int64 (N,);
    classes: class names (label = index); files: path of each image;
    skipped: (path, reason) of every file that could not be read.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    files: list[Path]
    root: Path
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    source_size: tuple[int, int] | None = None  # the files' own (H, W) when all share one

    def counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}

    def describe(self) -> str:
        h, w, c = self.images.shape[1:]
        per = ", ".join(f"{k} {v:,}" for k, v in self.counts().items())
        return (f"image folder {self.root}: {len(self.images):,} images ({per}), decoded "
                f"once and resized to {h}x{w}x{c}; {len(self.skipped)} unreadable files "
                "skipped")


def scan_image_folder(root: str | os.PathLike,
                      extensions: Sequence[str] = IMAGE_EXTENSIONS) -> dict[str, list[Path]]:
    """Class name -> sorted image files of `root/<class>/`, checked before any decoding.

    Raises DataError when the folder is missing, has fewer than two class folders, or a
    class folder holds no image file.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} not found; give a folder laid out as "
                        "root/<class>/*.png|jpg, e.g. --set data=PATH")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not
                     d.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"image folder {root}: found {len(classes)} class folder(s) "
                        f"({', '.join(classes) or 'none'}); a classifier needs at least two, "
                        "as root/<class>/*.png|jpg")
    exts = tuple(e.lower() for e in extensions)
    found = {c: sorted(p for p in (root / c).rglob("*")
                       if p.is_file() and p.suffix.lower() in exts) for c in classes}
    empty = [c for c, files in found.items() if not files]
    if empty:
        raise DataError(f"image folder {root}: class folder(s) {', '.join(empty)} hold no "
                        f"{'/'.join(e.lstrip('.') for e in exts)} files; add images or "
                        "remove the folder")
    return found


def load_image_folder(root: str | os.PathLike, size: int | Sequence[int],
                      channels: int | None = None,
                      extensions: Sequence[str] = IMAGE_EXTENSIONS,
                      per_class: int = 0, rng: np.random.Generator | None = None,
                      log: Callable[[str], None] | None = None) -> FolderImages:
    """Decode every image of `root/<class>/` once, resized to `size`, into memory.

    channels: 1 or 3; None picks 1 when every readable image is grey, else 3.
    per_class: read at most this many files of each class, drawn with `rng` (0: all).
    Unreadable files are skipped and listed in `skipped`; a class left with no readable
    image is an error. Images are resized with `resize_uint8`. Returns uint8 images
    (N, size, size, channels).
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    found = scan_image_folder(root, extensions)
    if per_class:
        rng = rng if rng is not None else np.random.default_rng(0)
        found = {c: sorted(rng.permutation(np.array(f, dtype=object))[:per_class].tolist())
                 if len(f) > per_class else f for c, f in found.items()}
    classes = list(found)
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    sizes: set[tuple[int, int]] = set()
    for label, cls in enumerate(classes):
        for path in found[cls]:
            try:
                a = read_image(path)
            except DataError as exc:
                skipped.append((path, str(exc).split(": ", 1)[-1]))
                continue
            sizes.add(a.shape[:2])
            if a.shape[:2] != (h, w):
                a = resize_uint8(a[None], (h, w))[0]
            arrays.append(a)
            labels.append(label)
            files.append(path)
        if log is not None:
            log(f"{cls}: {labels.count(label):,} images read")
    counts = {c: labels.count(i) for i, c in enumerate(classes)}
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise DataError(f"image folder {root}: no readable image in class(es) "
                        f"{', '.join(empty)} ({len(skipped)} unreadable files skipped)")
    grey = all(a.ndim == 2 for a in arrays)
    channels = channels or (1 if grey else 3)
    out = np.empty((len(arrays), h, w, channels), dtype=np.uint8)
    for i, a in enumerate(arrays):
        if a.ndim == 2:
            a = a[:, :, None]                         # (H, W) -> (H, W, 1)
        if a.shape[2] != channels:
            a = (np.repeat(a, 3, axis=2) if channels == 3 else
                 np.round(a @ np.array(LUMA)).clip(0, 255).astype(np.uint8)[:, :, None])
        out[i] = a
    return FolderImages(out, np.array(labels, dtype=np.int64), classes, files, Path(root),
                        skipped, sizes.pop() if len(sizes) == 1 else None)


def write_image_folder(root: str | os.PathLike, images: np.ndarray, labels: np.ndarray,
                       classes: Sequence[str], prefix: str = "") -> dict[str, int]:
    """Write uint8 images (N, H, W) or (N, H, W, 3) as PNG files root/<class>/<n>.png.

    labels (N,) index `classes`; class names are used as folder names (slashes replaced).
    Returns the number of files written per class.
    """
    from PIL import Image

    root = Path(root)
    names = [c.replace("/", "-").replace(" ", "_") for c in classes]
    for n in names:
        (root / n).mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(names, 0)
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        name = names[int(lab)]
        Image.fromarray(np.asarray(img, dtype=np.uint8)).save(root / name / f"{prefix}{i:05d}.png")
        counts[name] += 1
    return counts


# -------------------------------------------------------------------- CIFAR-10


def find_cifar10(root: str | os.PathLike | None) -> Path | None:
    """The `cifar-10-batches-py` folder (torchvision's CIFAR10 layout) under root, or None."""
    from dlab.data import data_dir

    folder = data_dir(root) / "cifar-10-batches-py"
    needed = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    return folder if all((folder / n).is_file() for n in needed) else None


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CIFAR-10 batch ({exc}); unpack "
                        "cifar-10-python.tar.gz again") from None


def load_cifar10(root: str | os.PathLike | None):
    """CIFAR-10 (Krizhevsky 2009) from its python-version batches, as mnist.ImageData
    with uint8 images (N, 32, 32, 3); None when the folder is not there.

    The batches are Python pickles, the format the data set is distributed in; only
    load a folder you trust.
    """
    from dlab.data.mnist import ImageData

    folder = find_cifar10(root)
    if folder is None:
        return None

    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        d = _unpickle(folder / name)
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)  # (N, C, H, W)
        return x.transpose(0, 2, 3, 1), np.asarray(d[b"labels"], dtype=np.int64)

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = batch("test_batch")
    meta = _unpickle(folder / "batches.meta")
    classes = [c.decode() for c in meta[b"label_names"]]
    prov = Provenance("CIFAR-10", f"python-version batches in {folder}",
                      "see https://www.cs.toronto.edu/~kriz/cifar.html (Krizhevsky 2009)",
                      "50,000 + 10,000 images")
    return ImageData(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                     x_test, y_test, classes, prov)
