"""Tables: scikit-learn's classic sets, vega-datasets' Auto MPG and Seattle weather,
and the bundled German credit data. Each comes with its provenance.

Loading does not scale or impute. `prepare` splits a table and fits the preprocessing
(`TablePreprocessor`: imputation, standardisation, one-hot codes) on the training rows
only; every tabular program goes through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlab.data import Provenance
from dlab.errors import DataError


@dataclass
class TableData:
    frame: pd.DataFrame
    target: str
    task: str  # "classification" or "regression"
    provenance: Provenance
    dropped: int = 0  # rows dropped because the target was missing

    def describe(self) -> str:
        gaps = int(self.frame.drop(columns=[self.target]).isna().sum().sum())
        text = (f"{self.provenance.name}: {len(self.frame):,} rows, "
                f"{self.frame.shape[1] - 1} features, target `{self.target}`")
        if self.dropped:
            text += f"; {self.dropped} rows without a target dropped"
        if gaps:
            text += f"; {gaps} missing feature values (imputed from training rows)"
        return text + f"; source: {self.provenance.source}; licence: {self.provenance.licence}"


def _sklearn(name: str, loader, task: str, licence: str) -> TableData:
    bunch = loader(as_frame=True)
    frame = bunch.frame.copy()
    prov = Provenance(name, f"scikit-learn {loader.__name__}()", licence, f"{len(frame)} rows")
    return TableData(frame, "target", task, prov)


def iris() -> TableData:
    from sklearn.datasets import load_iris

    return _sklearn("Iris", load_iris, "classification", "CC BY 4.0 (UCI)")


def breast_cancer() -> TableData:
    from sklearn.datasets import load_breast_cancer

    return _sklearn("Breast cancer (Wisconsin diagnostic)", load_breast_cancer,
                    "classification", "CC BY 4.0 (UCI)")


def wine() -> TableData:
    from sklearn.datasets import load_wine

    return _sklearn("Wine", load_wine, "classification", "CC BY 4.0 (UCI)")


def diabetes() -> TableData:
    from sklearn.datasets import load_diabetes

    return _sklearn("Diabetes", load_diabetes, "regression", "BSD (scikit-learn)")


def _vega_file(name: str) -> Path:
    """A file that vega-datasets ships in its package folder (read without its loader)."""
    import vega_datasets

    return Path(vega_datasets.__file__).parent / "_data" / name


def auto_mpg() -> TableData:
    """Auto MPG with its real gaps: rows without mpg are dropped and counted."""
    import json

    raw = pd.DataFrame(json.loads(_vega_file("cars.json").read_text()))
    frame = pd.DataFrame({
        "mpg": raw["Miles_per_Gallon"],
        "cylinders": raw["Cylinders"],
        "displacement": raw["Displacement"],
        "horsepower": raw["Horsepower"],
        "weight": raw["Weight_in_lbs"],
        "acceleration": raw["Acceleration"],
        "model_year": pd.to_datetime(raw["Year"]).dt.year,
        "origin": raw["Origin"].astype(str),
    })
    missing = int(frame["mpg"].isna().sum())
    frame = frame.dropna(subset=["mpg"]).reset_index(drop=True)
    prov = Provenance("Auto MPG", "vega-datasets `cars` (UCI Auto MPG, 406 rows)",
                      "CC BY 4.0 (UCI)", f"{len(raw)} rows")
    return TableData(frame, "mpg", "regression", prov, dropped=missing)


def seattle_weather() -> TableData:
    frame = pd.read_csv(_vega_file("seattle-weather.csv"), parse_dates=["date"])
    prov = Provenance("Seattle daily weather 2012-2015", "vega-datasets `seattle_weather`",
                      "BSD-3-Clause (vega-datasets)", f"{len(frame)} days")
    return TableData(frame, "temp_max", "regression", prov)


def german_credit() -> TableData:
    """UCI Statlog German credit: 1,000 applicants, target 1 = bad risk."""
    path = resources.files("dlab.data").joinpath("files/german_credit.csv.gz")
    with resources.as_file(path) as p:
        frame = pd.read_csv(Path(p), compression="gzip")
    frame["bad_risk"] = (frame.pop("creditability") == "bad").astype(int)
    prov = Provenance(
        "German credit (UCI Statlog)",
        "bundled file dlab/data/files/german_credit.csv.gz; Hofmann, H. (1994), Statlog "
        "(German Credit Data), UCI Machine Learning Repository, doi:10.24432/C5NC77",
        "CC BY 4.0", "1,000 rows")
    return TableData(frame, "bad_risk", "classification", prov)


def read_csv(path: str | Path, target: str) -> TableData:
    """A user's CSV with a named target column (rows without a target dropped)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"--set csv={path}: file not found") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"--set csv={path}: cannot read as CSV ({exc})") from None
    if target not in frame.columns:
        raise DataError(f"--set target={target}: no such column in {path}; columns are: "
                        + ", ".join(map(str, frame.columns)))
    missing = int(frame[target].isna().sum())
    frame = frame.dropna(subset=[target]).reset_index(drop=True)
    if len(frame) < 10:
        raise DataError(f"{path}: only {len(frame)} rows with a target; need at least 10")
    task = "regression" if pd.api.types.is_float_dtype(frame[target]) else "classification"
    prov = Provenance(path.name, f"user file {path}", "the user's", f"{len(frame)} rows")
    return TableData(frame, target, task, prov, dropped=missing)


# ------------------------------------------------------------------ preprocessing
# One split and one preprocessing for every tabular program: the rows are split first,
# then every statistic (medians, means, standard deviations, categories) is learnt from
# the training rows only and applied unchanged to the validation and test rows.

MISSING = "(missing)"


@dataclass
class TablePreprocessor:
    """Median imputation and standardisation z = (x - mean) / std of numeric columns
    (or, with `scale` False, imputation only), one-hot codes of the other columns.

    medians, means, stds: per numeric column, statistics of the fitting rows (std with
    ddof 0, taken after imputation; a constant column gets std 1); categories: per other
    column, the values seen in the fitting rows (a gap is its own category, MISSING).
    Values not seen when fitting code as all zeros.
    """

    numeric: list[str]
    categorical: list[str]
    medians: dict[str, float]
    means: dict[str, float]
    stds: dict[str, float]
    categories: dict[str, list[str]]
    scale: bool = True

    @classmethod
    def fit(cls, frame: pd.DataFrame, scale: bool = True) -> TablePreprocessor:
        """Learn the statistics from `frame` (the training rows only)."""
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
                   and not pd.api.types.is_bool_dtype(frame[c])]
        categorical = [c for c in frame.columns if c not in numeric]
        medians, means, stds = {}, {}, {}
        for c in numeric:
            col = frame[c].astype(float)
            med = float(col.median()) if col.notna().any() else 0.0
            filled = col.fillna(med)
            medians[c], means[c] = med, float(filled.mean())
            std = float(filled.std(ddof=0))
            stds[c] = std if std > 0 else 1.0
        categories = {c: sorted(frame[c].astype("string").fillna(MISSING).unique().tolist())
                      for c in categorical}
        return cls(numeric, categorical, medians, means, stds, categories, scale)

    @property
    def feature_names(self) -> list[str]:
        return self.numeric + [f"{c}={v}" for c in self.categorical for v in self.categories[c]]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows -> float64 features (N, F), F = len(feature_names)."""
        parts = []
        for c in self.numeric:
            col = frame[c].astype(float).fillna(self.medians[c]).to_numpy()
            if self.scale:
                col = (col - self.means[c]) / self.stds[c]
            parts.append(col[:, None])  # (N, 1)
        for c in self.categorical:
            col = frame[c].astype("string").fillna(MISSING).to_numpy()
            cats = np.array(self.categories[c], dtype=object)
            parts.append((col[:, None] == cats[None, :]).astype(np.float64))  # (N, K)
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(frame), 0))

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def split_rows(n: int, test_fraction: float, val_fraction: float = 0.0, seed: int = 0,
               labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Disjoint sorted row indices {train, val, test} of a table of n rows.

    The test rows are drawn first (a share `test_fraction` of all rows), then the
    validation rows (a share `val_fraction` of the rest; none when 0). With `labels`
    (N,) both draws are stratified, so every part keeps the classes' shares.
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    rest, test = train_test_split(idx, test_size=test_fraction, random_state=seed,
                                  stratify=labels)
    val = np.array([], dtype=np.int64)
    if val_fraction > 0:
        rest, val = train_test_split(rest, test_size=val_fraction, random_state=seed,
                                     stratify=None if labels is None else labels[rest])
    return {"train": np.sort(rest), "val": np.sort(val), "test": np.sort(test)}


@dataclass
class Split:
    """A table split and preprocessed. x_*: (N, F) float64 features; y_*: (N,) targets
    as stored in the table (class labels, or the target in its own units)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    pre: TablePreprocessor
    rows: dict[str, np.ndarray]  # row indices of each part in the table

    @property
    def feature_names(self) -> list[str]:
        return self.pre.feature_names

    def sizes(self) -> str:
        """'N training, M validation and K test rows' for the record's Data section."""
        parts = [f"{len(self.y_train)} training"]
        if len(self.y_val):
            parts.append(f"{len(self.y_val)} validation")
        return ", ".join(parts) + f" and {len(self.y_test)} test rows"


def prepare(table: TableData, test_fraction: float, val_fraction: float = 0.0,
            seed: int = 0, scale: bool = True, stratify: bool | None = None,
            rows: dict[str, np.ndarray] | None = None) -> Split:
    """Split `table` (stratified for a classification table unless `stratify` says
    otherwise), fit the preprocessing on the training rows only and apply it to every
    part. `rows` gives the split instead (e.g. the same rows, raw and standardised)."""
    features = table.frame.drop(columns=[table.target])
    y = table.frame[table.target].to_numpy()
    if rows is None:
        if stratify is None:
            stratify = table.task == "classification"
        rows = split_rows(len(y), test_fraction, val_fraction, seed,
                          labels=y if stratify else None)
    pre = TablePreprocessor.fit(features.iloc[rows["train"]], scale=scale)
    x = {k: pre.transform(features.iloc[idx]) for k, idx in rows.items()}
    return Split(x["train"], y[rows["train"]], x["val"], y[rows["val"]], x["test"],
                 y[rows["test"]], pre, rows)


def as_tensors(x: np.ndarray, y: np.ndarray, device: str = "cpu", *,
               binary: bool = False):
    """Float32 features (N, F) and targets as torch tensors: for a binary classifier with
    one logit, y as float32 (N, 1) of 0/1; otherwise int64 class indices (N,)."""
    import torch

    xt = torch.as_tensor(np.asarray(x, np.float32), device=device)
    if binary:
        return xt, torch.as_tensor(np.asarray(y, np.float32).reshape(-1, 1), device=device)
    return xt, torch.as_tensor(np.asarray(y, np.int64), device=device)
