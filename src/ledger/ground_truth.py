"""Ground truth for online endpoints: the true label of requests, by correlation id.

A labels file (CSV or Parquet) has a ``correlation_id`` column (the id a score request
answered with), a label column, and optionally ``row``: the row's index within its
request (0 when absent: one row per request). It is stored normalized, as Parquet with
exactly those three columns, so monitors join it with the collected rows.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ledger.data_profile import read_table
from ledger.errors import InvalidInputError
from ledger.outages import first_line

CORRELATION, ROW, LABEL = "correlation_id", "row", "label"


def normalized_labels(path: Path, label_column: str = LABEL) -> pa.Table:
    """The labels of ``path`` as a (correlation_id, row, label) table; InvalidInputError
    naming what is missing or wrong."""
    table = read_table(path)
    missing = [c for c in (CORRELATION, label_column) if c not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"{path}: no column {', '.join(map(repr, missing))}; a labels file has "
            f"{CORRELATION!r}, the label column ({label_column!r}) and optionally {ROW!r}"
        )
    if table.num_rows == 0:
        raise InvalidInputError(f"{path} holds no labels")
    try:
        rows = (
            table.column(ROW).cast(pa.int64())
            if ROW in table.column_names
            else pa.array([0] * table.num_rows, pa.int64())
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise InvalidInputError(
            f"{path}: column {ROW!r} must hold whole numbers ({first_line(error)})"
        ) from None
    try:
        correlation = table.column(CORRELATION).cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise InvalidInputError(
            f"{path}: column {CORRELATION!r} must hold text ({first_line(error)})"
        ) from None
    labels = pa.table({CORRELATION: correlation, ROW: rows, LABEL: table.column(label_column)})
    for name, column in ((CORRELATION, CORRELATION), (ROW, ROW), (LABEL, label_column)):
        if labels.column(name).null_count:
            raise InvalidInputError(f"{path}: column {column!r} has empty values")
    if pc.min(labels.column(ROW)).as_py() < 0:
        raise InvalidInputError(f"{path}: column {ROW!r} must not be negative")
    label_type = labels.column(LABEL).type
    if pa.types.is_floating(label_type) and not pc.all(pc.is_finite(labels.column(LABEL))).as_py():
        raise InvalidInputError(f"{path}: column {label_column!r} has NaN or infinite labels")
    return labels
