"""Dataset profiles for drift detection: row count and per-column summary statistics.

Reads CSV (``.csv``; ``.tsv`` is tab-delimited) and Parquet (``.parquet``, ``.pq``) with
pyarrow only. The profile is plain JSON data without NaN or infinities, so it can be
stored in an event and compared later with ``json.dumps(..., allow_nan=False)``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ledger.artifacts.files import hash_file, scan_tree
from ledger.errors import InvalidInputError

TOP_VALUES = 5
"""How many most frequent values a categorical column profile lists."""

Format: TypeAlias = Literal["csv", "parquet"]

_CSV_CONVERT = pacsv.ConvertOptions(strings_can_be_null=True)
"""Empty CSV cells (and pyarrow's usual null markers such as ``NA``) are nulls in text
columns too, as they are in numeric ones."""

_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class NumericProfile(TypedDict):
    """Integer, floating-point or decimal column. NaN counts as null."""

    type: str
    nulls: int
    min: int | float | None
    max: int | float | None
    mean: float | None


class TemporalProfile(TypedDict):
    """Date, time or timestamp column; ``min``/``max`` are ISO 8601 strings."""

    type: str
    nulls: int
    min: str | None
    max: str | None


class CategoricalProfile(TypedDict):
    """Any other column: distinct non-null values and the most frequent ones.

    ``top`` holds ``[value as string, count]`` pairs, most frequent first, ties by value.
    """

    type: str
    nulls: int
    distinct: int
    top: list[list[str | int]]


ColumnProfile: TypeAlias = NumericProfile | TemporalProfile | CategoricalProfile


class SketchRef(TypedDict):
    """Where a dataset's sketch (``ledger.data_sketch``) is kept: its blob's sha256, size."""

    digest: str
    bytes: int


class DatasetProfile(TypedDict):
    """A whole dataset: its format, row count, one profile per column and, once its
    sketch is stored, where that is."""

    format: Format
    rows: int
    columns: dict[str, ColumnProfile]
    sketch: NotRequired[SketchRef]


# -- public API --------------------------------------------------------------------------


def profile_dataset(path: Path) -> DatasetProfile:
    """Profile a CSV/Parquet file, or a directory of files of one format read as one table.

    Raises InvalidInputError (naming the file) for a missing path, an unsupported
    extension, mixed formats, files that pyarrow cannot parse, or mismatched columns.
    """
    path = Path(path)
    fmt, table = _read_dataset(path)
    names = table.column_names
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise InvalidInputError(f"{path}: duplicate column names {duplicates}")
    columns = {name: profile_column(table.column(name)) for name in names}
    return {"format": fmt, "rows": int(table.num_rows), "columns": columns}


def profile_column(column: Any) -> ColumnProfile:
    """Profile one pyarrow (chunked) array."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column], type=column.type)
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return _numeric_profile(column)
    if pa.types.is_temporal(kind) and not pa.types.is_duration(kind):
        return _temporal_profile(column)
    return _categorical_profile(column)


def read_table(path: Path) -> Any:
    """A CSV or Parquet file, or a directory of them, as one pyarrow Table."""
    return _read_dataset(Path(path))[1]


def digest_path(path: Path) -> str:
    """sha256 hex of a file's bytes; for a directory, of its sorted (path, digest) pairs.

    A directory digest hashes one ``<relative POSIX path>\\0<file sha256>\\n`` line per
    regular file (symlinks inside the directory followed), so it changes when any file's
    name or content does.
    """
    path = Path(path)
    if path.is_file():
        return hash_file(path)[0]
    if not path.is_dir():
        raise InvalidInputError(f"no such file or directory: {path}")
    hasher = hashlib.sha256()
    for relative, file in scan_tree(path):
        line = f"{relative}\0{hash_file(file)[0]}\n"
        hasher.update(line.encode("utf-8", "surrogateescape"))
    return hasher.hexdigest()


# -- reading -----------------------------------------------------------------------------


def dataset_files(path: Path) -> tuple[Format, list[Path]]:
    """The data files of a CSV or Parquet file or directory, in reading order, and their
    format (one for all)."""
    path = Path(path)
    if path.is_file():
        return _format_of(path), [path]
    if not path.is_dir():
        raise InvalidInputError(f"no such file or directory: {path}")
    files = [file for relative, file in scan_tree(path) if not _is_hidden(relative)]
    if not files:
        raise InvalidInputError(f"no CSV or Parquet files in {path}")
    formats = {_format_of(file) for file in files}
    if len(formats) > 1:
        raise InvalidInputError(f"{path} mixes CSV and Parquet files; use one format")
    return formats.pop(), files


def csv_options(file: Path) -> dict[str, Any]:
    """pyarrow's CSV ``parse_options`` and ``convert_options`` for ``file``, as read here."""
    delimiter = "\t" if file.suffix.lower() == ".tsv" else ","
    return {
        "parse_options": pacsv.ParseOptions(delimiter=delimiter),
        "convert_options": _CSV_CONVERT,
    }


def _read_dataset(path: Path) -> tuple[Format, Any]:
    fmt, files = dataset_files(path)
    if path.is_file():
        return fmt, _read_file(path)
    tables = [_read_file(file) for file in files]
    _check_same_columns(files, tables)
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as exc:
        raise InvalidInputError(f"{path}: files do not share a schema: {_first_line(exc)}") from exc
    return fmt, table


def _is_hidden(relative: str) -> bool:
    """Bookkeeping files such as ``_SUCCESS`` or ``.part-0.crc`` are not data."""
    return any(part.startswith((".", "_")) for part in relative.split("/"))


def _format_of(file: Path) -> Format:
    fmt = _FORMATS.get(file.suffix.lower())
    if fmt is None:
        supported = ", ".join(sorted(_FORMATS))
        raise InvalidInputError(f"unsupported dataset file {file} (expected {supported})")
    return fmt


def _read_file(file: Path) -> Any:
    suffix = file.suffix.lower()
    try:
        if _FORMATS[suffix] == "parquet":
            return pq.read_table(file)
        return pacsv.read_csv(file, **csv_options(file))
    except (pa.ArrowException, OSError) as exc:
        label = "Parquet" if _FORMATS[suffix] == "parquet" else "CSV"
        raise InvalidInputError(f"cannot read {file} as {label}: {_first_line(exc)}") from exc


def _check_same_columns(files: list[Path], tables: list[Any]) -> None:
    expected = sorted(tables[0].column_names)
    for file, table in zip(files[1:], tables[1:], strict=True):
        if sorted(table.column_names) != expected:
            raise InvalidInputError(
                f"{file} has columns {sorted(table.column_names)}, but {files[0]} has {expected}"
            )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# -- column profiles ---------------------------------------------------------------------


def _numeric_profile(column: Any) -> NumericProfile:
    type_name = str(column.type)
    nulls = int(column.null_count)
    if not pa.types.is_integer(column.type):
        column = column.cast(pa.float64())
        nan_mask = pc.is_nan(column)
        nulls += int(pc.sum(nan_mask).as_py() or 0)
        column = column.filter(pc.invert(nan_mask))
    extremes = pc.min_max(column)
    return {
        "type": type_name,
        "nulls": nulls,
        "min": _finite_number(extremes["min"].as_py()),
        "max": _finite_number(extremes["max"].as_py()),
        "mean": _finite_float(pc.mean(column).as_py()),
    }


def _temporal_profile(column: Any) -> TemporalProfile:
    extremes = pc.min_max(column)
    return {
        "type": str(column.type),
        "nulls": int(column.null_count),
        "min": _iso(extremes["min"]),
        "max": _iso(extremes["max"]),
    }


def _categorical_profile(column: Any) -> CategoricalProfile:
    profile: CategoricalProfile = {
        "type": str(column.type),
        "nulls": int(column.null_count),
        "distinct": 0,
        "top": [],
    }
    values = pc.drop_null(column)
    if len(values) == 0:
        return profile
    try:
        distinct, top = _arrow_top_values(values)
    except pa.ArrowException:  # types without hash/sort kernels (lists, structs, ...)
        distinct, top = _python_top_values(values)
    profile["distinct"] = distinct
    profile["top"] = top
    return profile


def _arrow_top_values(values: Any) -> tuple[int, list[list[str | int]]]:
    counted = pc.value_counts(values)
    table = pa.table({"value": counted.field("values"), "count": counted.field("counts")})
    order = [("count", "descending"), ("value", "ascending")]
    best = table.take(pc.select_k_unstable(table, k=TOP_VALUES, sort_keys=order))
    top: list[list[str | int]] = [
        [_as_text(value), int(count)]
        for value, count in zip(
            best.column("value").to_pylist(), best.column("count").to_pylist(), strict=True
        )
    ]
    return len(counted), top


def _python_top_values(values: Any) -> tuple[int, list[list[str | int]]]:
    counts = Counter(_as_text(value) for value in values.to_pylist())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return len(counts), [[value, count] for value, count in ranked[:TOP_VALUES]]


# -- value conversion --------------------------------------------------------------------


def _finite_number(value: object) -> int | float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        return _finite_float(value)
    return None


def _finite_float(value: object) -> float | None:
    if not isinstance(value, int | float | Decimal) or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _iso(scalar: Any) -> str | None:
    if not scalar.is_valid:
        return None
    try:
        value = scalar.as_py()
    except (ValueError, OverflowError, pa.ArrowException):  # outside Python's date range
        return str(scalar.cast(pa.string()).as_py())
    isoformat = getattr(value, "isoformat", None)  # datetime, date, time, pandas.Timestamp
    return str(isoformat()) if callable(isoformat) else str(value)


def _as_text(value: object) -> str:
    """Render a value for ``top``: strings as is, booleans as true/false, JSON otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return json.dumps(value, sort_keys=True, default=str)
