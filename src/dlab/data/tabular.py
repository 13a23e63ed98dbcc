"""Tables: scikit-learn's classic sets, vega-datasets' Auto MPG and Seattle weather,
and the bundled German credit data. Each comes with its provenance.

Nothing here scales or imputes: that is fit on a training split by the programs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

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
