"""A data asset version's sketch: the ``TableSketch`` of its whole table, kept as a blob.

The data is streamed batch by batch (Parquet row groups through ``iter_batches``, CSV
blocks through ``open_csv``), from a local file or an object by URL, so at most one batch
is in memory for the sketch however large the data. Each column's kind and, for CSV, its
type come from the version's profile, so every batch is read as the whole table was when
it was profiled.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ledger.data_formats import format_of
from ledger.data_objects import DataObject, data_source
from ledger.data_profile import (
    DataFile,
    DatasetProfile,
    LocalFile,
    SketchRef,
    dataset_files,
    file_batches,
    unreadable,
)
from ledger.drift.sketches import Kind, TableSketch
from ledger.errors import IntegrityViolationError, NotFoundError

if TYPE_CHECKING:
    from ledger.artifacts.store import ArtifactStore

BATCH_ROWS = 65_536
"""Rows per Parquet batch read for a sketch (CSV batches are pyarrow's 1 MiB blocks)."""


def sketch_dataset(source: Path | str, profile: DatasetProfile | None = None) -> TableSketch:
    """The sketch of a CSV/Parquet file or directory, or of an object by URL, read one
    batch at a time.

    ``profile`` (the data's ``profile_dataset``) names each column's kind and CSV type.
    """
    kinds = column_kinds(profile) if profile else None
    sketch = TableSketch()
    for batch in iter_batches(source, csv_types(profile) if profile else {}):
        sketch.update(pa.Table.from_batches([batch]), kinds)
    return sketch


def iter_batches(source: Path | str, types: dict[str, pa.DataType] | None = None) -> Iterator[Any]:
    """The record batches of a CSV/Parquet file or directory (file by file, in order), or
    of an object by URL."""
    data = data_source(source)
    if isinstance(data, DataObject):
        yield from _file_batches(data, types)
        return
    _, files = dataset_files(data)
    for file in files:
        yield from _file_batches(LocalFile(file), types)


def _file_batches(data: DataFile, types: dict[str, pa.DataType] | None) -> Iterator[Any]:
    fmt = format_of(data.label, data.name)
    try:
        with file_batches(data, types=types, batch_rows=BATCH_ROWS) as (_, batches):
            yield from batches
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(data.label, fmt, exc) from exc


def column_kinds(profile: DatasetProfile) -> dict[str, Kind]:
    """Numeric for the columns the profile read as numbers (they have a mean)."""
    return {
        name: "numeric" if "mean" in column else "categorical"
        for name, column in profile["columns"].items()
    }


def csv_types(profile: DatasetProfile) -> dict[str, pa.DataType]:
    """The arrow types the profile found, where pyarrow names them by alias (a streamed
    CSV otherwise infers types from its first block alone)."""
    types = {}
    for name, column in profile["columns"].items():
        try:
            types[name] = pa.type_for_alias(column["type"])
        except ValueError:
            continue  # e.g. a timestamp with a time zone: left to pyarrow's inference
    return types


def store_sketch(artifacts: ArtifactStore, sketch: TableSketch) -> SketchRef:
    """Keep ``sketch`` in the artifact store; return its blob's digest and size."""
    digest, size = artifacts.put_stream(io.BytesIO(sketch.to_bytes()))
    return {"digest": digest, "bytes": size}


def load_sketch(artifacts: ArtifactStore, ref: SketchRef) -> TableSketch:
    """The stored sketch ``ref`` names, checked against its digest."""
    with artifacts.open_blob(ref["digest"]) as blob:
        data = blob.read()
    if hashlib.sha256(data).hexdigest() != ref["digest"]:
        raise IntegrityViolationError(f"sketch blob {ref['digest']} is corrupted")
    return TableSketch.from_bytes(data)


def version_sketch(artifacts: ArtifactStore, version: Mapping[str, Any], name: str) -> TableSketch:
    """The sketch of a version of data asset ``name`` (as the assets view or the aggregate
    holds it: ``version`` and ``content``), for a monitor to compare its windows with."""
    sketch = version["content"]["profile"].get("sketch")
    if sketch is None:
        exact = f"{name}:{version['version']}"
        raise NotFoundError(
            f"data asset {exact} has no sketch (it was registered before sketches were "
            f"kept): add one with `ledger data profile {exact}`"
        )
    return load_sketch(artifacts, sketch)
