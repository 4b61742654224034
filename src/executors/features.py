"""Model inputs from datasets: the numeric columns of CSV or Parquet files, as float32 rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ledger.errors import InvalidInputError

NUMERIC_TYPES = ("int", "uint", "float", "double", "halffloat")


def numeric_features(
    path: Path, features: int | None, *, rows: int | None = None, exact: bool = False
) -> np.ndarray:
    """The first ``features`` numeric columns (None: all), in order, of up to ``rows``
    rows of a CSV or Parquet file (or a directory of them); ``exact``: no more."""
    from ledger.data_profile import read_table  # pyarrow takes a while to import

    if not path.exists():
        raise InvalidInputError(f"no such file or directory: {path}")
    table = read_table(path)
    if rows is not None:
        table = table.slice(0, rows)
    names = feature_columns(path, table.schema, features, exact=exact)
    columns = [table.column(name).to_numpy(zero_copy_only=False) for name in names]
    return np.column_stack(columns).astype(np.float32)


def feature_columns(
    path: Path, schema: Any, features: int | None, *, exact: bool = False
) -> list[str]:
    """The names of the first ``features`` numeric columns (None: all) of a pyarrow
    ``schema`` read from ``path``; InvalidInputError when there are too few (``exact``:
    or too many)."""
    numeric = [f.name for f in schema if str(f.type).startswith(NUMERIC_TYPES)]
    if features is None:
        features = len(numeric)
    if not numeric or len(numeric) < features or (exact and len(numeric) != features):
        raise InvalidInputError(
            f"{path} has {len(numeric)} numeric column(s) ({', '.join(numeric)}); "
            f"the model takes {features} features"
        )
    return numeric[:features]


def random_features(features: int, rows: int, seed: int = 0) -> np.ndarray:
    """Standard-normal rows: a sample when no data is known."""
    return np.random.default_rng(seed).standard_normal((rows, features)).astype(np.float32)
