"""Dataset profiles for drift detection: row count and per-column summary statistics.

Reads CSV (``.csv``; ``.tsv`` is tab-delimited) and Parquet (``.parquet``, ``.pq``) with
pyarrow only: a local file or directory, or an object by URL (``ledger.data_objects``).
A single file or object is profiled as it streams past, batch by batch
(``ledger.column_profiles``); a directory is read as one table. The profile is plain JSON
data without NaN or infinities, so it can be stored in an event and compared later with
``json.dumps(..., allow_nan=False)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, NotRequired, Protocol, TypedDict

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ledger.artifacts.files import hash_file, scan_tree
from ledger.column_profiles import (
    TOP_VALUES,
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    TemporalProfile,
    column_stats,
    profile_column,
)
from ledger.data_formats import Format, format_of
from ledger.data_objects import DataObject, data_source
from ledger.errors import InvalidInputError
from ledger.outages import first_line

__all__ = [
    "TOP_VALUES",
    "CategoricalProfile",
    "ColumnProfile",
    "DatasetProfile",
    "NumericProfile",
    "SketchRef",
    "TemporalProfile",
    "profile_column",
]

_CSV_CONVERT = pacsv.ConvertOptions(strings_can_be_null=True)
"""Empty CSV cells (and pyarrow's usual null markers such as ``NA``) are nulls in text
columns too, as they are in numeric ones."""

CSV_BLOCK_BYTES = 1 << 20
"""A streamed CSV's first block, from which pyarrow infers its column types. Should a
later value not fit them, the file is read again with a block four times larger, until
the first block covers the file: the types are then those of the whole file."""

PARQUET_BUFFER_BYTES = 1 << 20
"""How much of a Parquet column chunk is read at a time."""


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


class DataFile(Protocol):
    """One CSV or Parquet file to stream: a local file or an object in a store."""

    label: str
    """How messages name it (its path or URL)."""

    name: str
    """Its file name (the suffix tells the format)."""

    size: int

    def sequential(self) -> str | BinaryIO:
        """What pyarrow reads it from front to back through (a path or a stream)."""
        ...

    def random_access(self) -> str | BinaryIO:
        """What pyarrow reads parts of it through (a path or a seekable file)."""
        ...


class LocalFile:
    """A file on this machine, as a DataFile."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.label = str(path)
        self.name = self.path.name
        self.size = self.path.stat().st_size

    def sequential(self) -> str:
        return str(self.path)

    def random_access(self) -> str:
        return str(self.path)


# -- public API --------------------------------------------------------------------------


def profile_dataset(source: Path | str) -> DatasetProfile:
    """Profile a CSV/Parquet file, a directory of files of one format read as one table,
    or an object by URL (``s3://``, ``az://``, ``gs://``), streamed.

    Raises InvalidInputError (naming the file) for a missing path or object, an
    unsupported extension, mixed formats, files that pyarrow cannot parse, or mismatched
    columns.
    """
    data = data_source(source)
    if isinstance(data, DataObject):
        return profile_file(data)
    path = data
    fmt, files = dataset_files(path)
    if path.is_file():
        return profile_file(LocalFile(path))
    table = _read_tables(path, fmt, files)
    builder = _ProfileBuilder(table.schema, str(path))
    for batch in table.to_batches():
        builder.add(batch)
    return builder.profile(fmt)


def profile_file(data: DataFile) -> DatasetProfile:
    """Profile one file, streamed batch by batch (see CSV_BLOCK_BYTES for CSV types)."""
    fmt = format_of(data.label, data.name)
    block = CSV_BLOCK_BYTES
    while True:
        try:
            with file_batches(data, block_bytes=block) as (schema, batches):
                builder = _ProfileBuilder(schema, data.label)
                for batch in batches:
                    builder.add(batch)
            return builder.profile(fmt)
        except pa.ArrowInvalid as exc:
            if fmt == "csv" and "conversion error" in str(exc) and block < data.size:
                block *= 4  # a later value does not fit the types of the first block
                continue
            raise unreadable(data.label, fmt, exc) from exc
        except (pa.ArrowException, OSError) as exc:
            raise unreadable(data.label, fmt, exc) from exc


@contextmanager
def file_batches(
    data: DataFile,
    *,
    types: dict[str, pa.DataType] | None = None,
    batch_rows: int = 65_536,
    block_bytes: int = CSV_BLOCK_BYTES,
) -> Iterator[tuple[pa.Schema, Iterator[Any]]]:
    """A file's schema and its record batches (Parquet: ``batch_rows`` at a time; CSV:
    blocks of ``block_bytes``, read as ``types`` where given), its source closed after."""
    fmt = format_of(data.label, data.name)
    if fmt == "parquet":
        source = data.random_access()
        try:
            # Column chunks read through a small buffer, one row group after another (pre-
            # buffering would fetch every row group's chunks, the whole file, at once).
            parquet = pq.ParquetFile(source, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
            yield parquet.schema_arrow, parquet.iter_batches(batch_size=batch_rows)
        finally:
            _close(source)
        return
    options = csv_options(Path(data.name))
    convert = pacsv.ConvertOptions(strings_can_be_null=True, column_types=types or {})
    read = pacsv.ReadOptions(block_size=block_bytes)
    source = data.sequential()
    try:
        with pacsv.open_csv(source, read_options=read, parse_options=options["parse_options"],
                            convert_options=convert) as reader:  # fmt: skip
            yield reader.schema, iter(reader)
    finally:
        _close(source)


def count_rows(data: DataFile) -> int:
    """A file's row count: a Parquet file's footer says it; a CSV file is streamed, its
    columns read as text (no type to infer, so none to get wrong)."""
    fmt = format_of(data.label, data.name)
    try:
        if fmt == "parquet":
            source = data.random_access()
            try:
                return int(pq.ParquetFile(source).metadata.num_rows)
            finally:
                _close(source)
        with file_batches(data) as (schema, _):
            names = schema.names
        text = dict.fromkeys(names, pa.string())
        with file_batches(data, types=text) as (_, batches):
            return sum(batch.num_rows for batch in batches)
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(data.label, fmt, exc) from exc


def read_table(path: Path) -> Any:
    """A CSV or Parquet file, or a directory of them, as one pyarrow Table."""
    path = Path(path)
    fmt, files = dataset_files(path)
    if path.is_file():
        return _read_file(path)
    return _read_tables(path, fmt, files)


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


def unreadable(label: str, fmt: Format, exc: BaseException) -> InvalidInputError:
    """The error for data pyarrow cannot read as ``fmt``."""
    kind = "Parquet" if fmt == "parquet" else "CSV"
    return InvalidInputError(f"cannot read {label} as {kind}: {first_line(exc)}")


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


def _read_tables(path: Path, fmt: Format, files: list[Path]) -> Any:
    tables = [_read_file(file) for file in files]
    _check_same_columns(files, tables)
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as exc:
        raise InvalidInputError(f"{path}: files do not share a schema: {first_line(exc)}") from exc


def _is_hidden(relative: str) -> bool:
    """Bookkeeping files such as ``_SUCCESS`` or ``.part-0.crc`` are not data."""
    return any(part.startswith((".", "_")) for part in relative.split("/"))


def _format_of(file: Path) -> Format:
    return format_of(str(file), file.name)


def _read_file(file: Path) -> Any:
    fmt = _format_of(file)
    try:
        if fmt == "parquet":
            return pq.read_table(file)
        return pacsv.read_csv(file, **csv_options(file))
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(str(file), fmt, exc) from exc


def _check_same_columns(files: list[Path], tables: list[Any]) -> None:
    expected = sorted(tables[0].column_names)
    for file, table in zip(files[1:], tables[1:], strict=True):
        if sorted(table.column_names) != expected:
            raise InvalidInputError(
                f"{file} has columns {sorted(table.column_names)}, but {files[0]} has {expected}"
            )


def _close(source: object) -> None:
    close = getattr(source, "close", None)
    if callable(close):
        close()


class _ProfileBuilder:
    """A dataset's profile, its batches added one at a time."""

    def __init__(self, schema: pa.Schema, label: str) -> None:
        names = schema.names
        if len(set(names)) != len(names):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            raise InvalidInputError(f"{label}: duplicate column names {duplicates}")
        self.rows = 0
        self.columns = {field.name: column_stats(field.type) for field in schema}

    def add(self, batch: Any) -> None:
        self.rows += batch.num_rows
        for index, stats in enumerate(self.columns.values()):
            stats.add(batch.column(index))

    def profile(self, fmt: Format) -> DatasetProfile:
        columns = {name: stats.profile() for name, stats in self.columns.items()}
        return {"format": fmt, "rows": self.rows, "columns": columns}
