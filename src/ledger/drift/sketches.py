"""Mergeable, serializable sketches of a column and of a table, one per window.

A numeric column keeps a DataSketches KLL sketch of doubles (``k=200`` by default: any
rank it answers is within its normalized rank error, about 1.33 % of the count, with
99 % confidence; a PMF or CDF bin within about 1.65 %), its exact min, max, mean and
variance, and its null and type-error counts. A categorical column keeps its values'
counts (exact up to ``MAX_EXACT_CATEGORIES`` distinct values: see ``categories``).
Either fits in a few KiB and never grows past 64 KiB, however many rows it has seen.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Literal

import datasketches as ds
import numpy as np
import orjson
import pyarrow as pa

from ledger.drift.categories import MAX_EXACT_CATEGORIES, OTHER, CategoryCounts
from ledger.drift.reading import (
    Values,
    arrow_chunks,
    is_numeric_type,
    python_float,
    read_categories,
    read_numbers,
)

Kind = Literal["numeric", "categorical"]
DEFAULT_K = 200
SUMMARY_RANKS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
TOP_CATEGORIES = 5
_COLUMN_MAGIC = b"LDC1"
_TABLE_MAGIC = b"LDT1"

__all__ = ["DEFAULT_K", "MAX_EXACT_CATEGORIES", "ColumnSketch", "Kind", "TableSketch"]


class ColumnSketch:
    """One column's values over a window: counts, and a KLL sketch or category counts."""

    def __init__(self, kind: Kind, k: int = DEFAULT_K) -> None:
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"a column is numeric or categorical, not {kind!r}")
        self.kind: Kind = kind
        self.k = k
        self.count = 0  # valid values
        self.nulls = 0
        self.type_errors = 0
        self.min: float | None = None
        self.max: float | None = None
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations from the mean
        self.kll: Any = ds.kll_doubles_sketch(k) if kind == "numeric" else None
        self.categories = CategoryCounts() if kind == "categorical" else None

    @property
    def rows(self) -> int:
        """Every value seen: valid, null or unreadable."""
        return self.count + self.nulls + self.type_errors

    @property
    def std(self) -> float:
        """The population standard deviation of the numeric values (0 without any)."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    @property
    def normalized_rank_error(self) -> float:
        """The KLL sketch's single-sided rank error (99 % confidence)."""
        return float(ds.kll_doubles_sketch.get_normalized_rank_error(self.k, False))

    def update(self, values: Values) -> None:
        """Add ``values`` (a pyarrow Array or ChunkedArray, or a list)."""
        for chunk in arrow_chunks(values):
            if self.kind == "numeric":
                self._add_numbers(chunk)
            else:
                self._add_categories(chunk)

    def _add_numbers(self, chunk: pa.Array) -> None:
        numbers = read_numbers(chunk)
        self.nulls += numbers.nulls
        self.type_errors += numbers.type_errors
        array = at_model_precision(numbers.values)
        if not len(array):
            return
        self.kll.update(array)
        mean = float(array.mean())
        m2 = float(np.square(array - mean).sum())
        self._combine(len(array), mean, m2, float(array.min()), float(array.max()))

    def _combine(self, count: int, mean: float, m2: float, low: float, high: float) -> None:
        """Chan et al.'s pairwise update of count, mean and squared deviations."""
        total = self.count + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.count * count / total
        self.count = total
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)

    def _add_categories(self, chunk: pa.Array) -> None:
        categories = read_categories(chunk)
        self.nulls += categories.nulls
        self.type_errors += categories.type_errors
        self.count += sum(categories.counts.values())
        assert self.categories is not None
        self.categories.add(categories.counts)

    def merge(self, other: ColumnSketch) -> None:
        """Add ``other``'s values (a sketch of the same kind) to this one."""
        if other.kind != self.kind:
            raise ValueError(f"cannot merge a {other.kind} sketch into a {self.kind} one")
        self.nulls += other.nulls
        self.type_errors += other.type_errors
        if self.kind == "categorical":
            assert self.categories is not None and other.categories is not None
            self.count += other.count
            self.categories.merge(other.categories)
        elif other.count:
            self.kll.merge(other.kll)
            assert other.min is not None and other.max is not None
            self._combine(other.count, other.mean, other.m2, other.min, other.max)

    def category_counts(self) -> dict[str, float]:
        """Each category's count (exact while ``exact_categories``); categorical only."""
        if self.categories is None:
            raise ValueError("a numeric column has no category counts")
        return self.categories.counts(self.count)

    @property
    def exact_categories(self) -> bool:
        return self.categories is not None and self.categories.is_exact

    def summary(self) -> dict[str, Any]:
        """Counts and the distribution's shape, as JSON-able data."""
        summary: dict[str, Any] = {
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "type_errors": self.type_errors,
        }
        if self.kind == "numeric":
            quantiles = self.kll.get_quantiles(list(SUMMARY_RANKS)) if self.count else []
            shape = zip(SUMMARY_RANKS, quantiles, strict=False)  # none without values
            summary |= {
                "min": python_float(self.min),
                "max": python_float(self.max),
                "mean": python_float(self.mean) if self.count else None,
                "std": python_float(self.std) if self.count else None,
                "quantiles": {str(r): python_float(q) for r, q in shape},
            }
        else:
            assert self.categories is not None
            named = {k: v for k, v in self.category_counts().items() if k != OTHER}
            top = sorted(named.items(), key=lambda item: (-item[1], item[0]))
            summary |= {
                "distinct": self.categories.distinct(),
                "exact": self.categories.is_exact,
                "top": [[value, count] for value, count in top[:TOP_CATEGORIES]],
            }
        return summary

    # -- serialization -----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """A compact encoding: a JSON header, then the sketches' own serialization."""
        header: dict[str, Any] = {
            "kind": self.kind,
            "k": self.k,
            "counts": [self.count, self.nulls, self.type_errors],
            "moments": [self.min, self.max, self.mean, self.m2],
        }
        if self.categories is not None:
            header["categories"] = self.categories.header()
            blobs = self.categories.blobs()
        else:
            blobs = [self.kll.serialize()]
        return _pack(_COLUMN_MAGIC, header, blobs)

    @classmethod
    def from_bytes(cls, data: bytes) -> ColumnSketch:
        """The sketch ``to_bytes`` encoded."""
        header, blobs = _unpack(_COLUMN_MAGIC, data)
        sketch = cls(header["kind"], header["k"])
        sketch.count, sketch.nulls, sketch.type_errors = header["counts"]
        sketch.min, sketch.max, sketch.mean, sketch.m2 = header["moments"]
        if sketch.kind == "categorical":
            sketch.categories = CategoryCounts.restore(header["categories"], blobs)
        else:
            sketch.kll = ds.kll_doubles_sketch.deserialize(blobs[0])
        return sketch


class TableSketch:
    """A window of a table: its row count and a sketch per column."""

    def __init__(self, rows: int = 0, columns: dict[str, ColumnSketch] | None = None) -> None:
        self.rows = rows
        self.columns: dict[str, ColumnSketch] = columns if columns is not None else {}

    @classmethod
    def of_table(
        cls, table: pa.Table, kinds: dict[str, Kind] | None = None, k: int = DEFAULT_K
    ) -> TableSketch:
        """A sketch of ``table``; ``kinds`` names a column's kind, else the arrow type does."""
        sketch = cls()
        sketch.update(table, kinds, k)
        return sketch

    def update(
        self, table: pa.Table, kinds: dict[str, Kind] | None = None, k: int = DEFAULT_K
    ) -> None:
        """Add ``table``'s rows; a column not seen before gets a sketch of its own."""
        for name, column in zip(table.column_names, table.columns, strict=True):
            if name not in self.columns:
                kind = (kinds or {}).get(name) or infer_kind(column.type)
                self.columns[name] = ColumnSketch(kind, k)
            self.columns[name].update(column)
        self.rows += table.num_rows

    def merge(self, other: TableSketch) -> None:
        """Add ``other``'s rows and columns to this sketch."""
        for name, column in other.columns.items():
            if name in self.columns:
                self.columns[name].merge(column)
            else:
                self.columns[name] = ColumnSketch.from_bytes(column.to_bytes())
        self.rows += other.rows

    def summary(self) -> dict[str, Any]:
        """The row count and each column's summary, as JSON-able data."""
        columns = {name: column.summary() for name, column in self.columns.items()}
        return {"rows": self.rows, "columns": columns}

    def to_bytes(self) -> bytes:
        """The row count, the column names, then each column's ``to_bytes``."""
        names = list(self.columns)
        header = {"rows": self.rows, "columns": names}
        return _pack(_TABLE_MAGIC, header, [self.columns[name].to_bytes() for name in names])

    @classmethod
    def from_bytes(cls, data: bytes) -> TableSketch:
        """The sketch ``to_bytes`` encoded."""
        header, blobs = _unpack(_TABLE_MAGIC, data)
        columns = {
            name: ColumnSketch.from_bytes(blob)
            for name, blob in zip(header["columns"], blobs, strict=True)
        }
        return cls(header["rows"], columns)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def at_model_precision(values: np.ndarray) -> np.ndarray:
    """``values`` rounded to float32, the precision models are fed at (and collected
    at): a float64 reference and the float32 inputs a model saw then agree exactly on
    repeated values such as 0.2, so identical data never reads as drifted. Values past
    float32's range are kept as they are."""
    with np.errstate(over="ignore"):
        rounded = values.astype(np.float32).astype(np.float64)
    return np.where(np.abs(values) <= FLOAT32_MAX, rounded, values)


def infer_kind(kind: pa.DataType) -> Kind:
    """Integer, float and decimal columns are numeric; any other type is categorical."""
    return "numeric" if is_numeric_type(kind) else "categorical"


def _pack(magic: bytes, header: dict[str, Any], blobs: list[bytes]) -> bytes:
    head = orjson.dumps(header | {"blobs": [len(blob) for blob in blobs]})
    return b"".join([magic, struct.pack("<I", len(head)), head, *blobs])


def _unpack(magic: bytes, data: bytes) -> tuple[dict[str, Any], list[bytes]]:
    if data[:4] != magic:
        raise ValueError("not an encoded sketch of this kind")
    (length,) = struct.unpack_from("<I", data, 4)
    header: dict[str, Any] = orjson.loads(data[8 : 8 + length])
    blobs, offset = [], 8 + length
    for size in header.pop("blobs"):
        blobs.append(bytes(data[offset : offset + size]))
        offset += size
    if offset != len(data):
        raise ValueError("an encoded sketch with trailing or missing bytes")
    return header, blobs
