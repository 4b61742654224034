"""Column profiles built batch by batch: a dataset is profiled as it streams past, so a
profile never needs the whole table in memory (only a categorical column's distinct
values and their counts).

Numbers keep nulls (NaN counts as one), extremes and an exact running sum for the mean;
dates and times their extremes; any other column the count of each distinct value.
Every statistic merges exactly, so the profile does not depend on how the data was cut
into batches (the mean of floating-point values up to rounding of the running sum).
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections import Counter
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TypeAlias, TypedDict

import pyarrow as pa
import pyarrow.compute as pc

TOP_VALUES = 5
"""How many most frequent values a categorical column profile lists."""

MERGE_ROWS = 1 << 20
"""Distinct values' counts kept per batch, at least, before they are merged."""


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


def column_stats(kind: pa.DataType) -> ColumnStats:
    """The statistics to keep for a column of arrow type ``kind``."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return NumericStats(kind)
    if pa.types.is_temporal(kind) and not pa.types.is_duration(kind):
        return TemporalStats(kind)
    return CategoricalStats(kind)


def profile_column(column: Any) -> ColumnProfile:
    """Profile one pyarrow (chunked) array."""
    stats = column_stats(column.type)
    stats.add(column)
    return stats.profile()


class ColumnStats(ABC):
    """One column's statistics so far; ``add`` each batch's array, then ``profile``."""

    def __init__(self, kind: pa.DataType) -> None:
        self.kind = kind
        self.nulls = 0

    def add(self, column: Any) -> None:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        self.nulls += int(column.null_count)
        self._add(column)

    @abstractmethod
    def _add(self, column: Any) -> None:
        """Take in a column's values (nulls are counted already)."""

    @abstractmethod
    def profile(self) -> ColumnProfile:
        """What the values taken in so far make."""


class NumericStats(ColumnStats):
    def __init__(self, kind: pa.DataType) -> None:
        super().__init__(kind)
        self.integer = pa.types.is_integer(kind)
        self.extremes: list[Any] = []  # the least and greatest value so far (arrow scalars)
        self.total: int | float = 0
        self.count = 0

    def _add(self, column: Any) -> None:
        if not self.integer:
            column = column.cast(pa.float64())
            nan_mask = pc.is_nan(column)
            self.nulls += int(pc.sum(nan_mask).as_py() or 0)
            column = column.filter(pc.invert(nan_mask))
        self.extremes = _extremes(self.extremes, column)
        self.total += pc.sum(column).as_py() or 0
        self.count += int(pc.count(column).as_py())

    def profile(self) -> NumericProfile:
        least, greatest = _as_py(self.extremes)
        mean = self.total / self.count if self.count else None
        return {
            "type": str(self.kind),
            "nulls": self.nulls,
            "min": _finite_number(least),
            "max": _finite_number(greatest),
            "mean": _finite_float(mean),
        }


class TemporalStats(ColumnStats):
    def __init__(self, kind: pa.DataType) -> None:
        super().__init__(kind)
        self.extremes: list[Any] = []

    def _add(self, column: Any) -> None:
        self.extremes = _extremes(self.extremes, column)

    def profile(self) -> TemporalProfile:
        least, greatest = self.extremes or [pa.scalar(None, self.kind)] * 2
        return {"type": str(self.kind), "nulls": self.nulls, "min": _iso(least),
                "max": _iso(greatest)}  # fmt: skip


class CategoricalStats(ColumnStats):
    """Counts of each distinct value: in arrow while its kernels take the type, else (lists,
    structs...) in Python by the value's text. A batch's counts wait with others and are
    merged once they outnumber those merged so far, so each value is merged a few times
    however many batches there are."""

    def __init__(self, kind: pa.DataType) -> None:
        super().__init__(kind)
        self.counted: pa.Table | None = None  # value, count: merged
        self.pending: list[pa.Table] = []  # value, count: a batch's each
        self.pending_rows = 0
        self.texts: Counter[str] | None = None

    def _add(self, column: Any) -> None:
        values = pc.drop_null(column)
        if len(values) == 0:
            return
        if self.texts is None:
            try:
                counts = pc.value_counts(values)
            except pa.ArrowException:  # types without hash kernels: counted by text
                self._by_text()
            else:
                table = pa.table({"value": counts.field("values"), "count": counts.field("counts")})
                self.pending.append(table)
                self.pending_rows += table.num_rows
                merged = self.counted.num_rows if self.counted is not None else 0
                if self.pending_rows >= max(MERGE_ROWS, merged):
                    self._merge()
                return
        assert self.texts is not None
        self.texts.update(_as_text(value) for value in values.to_pylist())

    def _merge(self) -> None:
        tables = self._tables()
        if not tables:
            return
        try:
            grouped = pa.concat_tables(tables).group_by("value").aggregate([("count", "sum")])
        except pa.ArrowException:
            self._by_text()
            return
        self.counted = grouped.rename_columns(["value", "count"])
        self.pending, self.pending_rows = [], 0

    def _tables(self) -> list[pa.Table]:
        return ([self.counted] if self.counted is not None else []) + self.pending

    def _by_text(self) -> None:
        """Count by text from now on, the counts so far included."""
        self.texts = Counter()
        for table in self._tables():
            values, counts = table.column("value").to_pylist(), table.column("count").to_pylist()
            for value, count in zip(values, counts, strict=True):
                self.texts[_as_text(value)] += count
        self.counted, self.pending, self.pending_rows = None, [], 0

    def profile(self) -> CategoricalProfile:
        profile: CategoricalProfile = {"type": str(self.kind), "nulls": self.nulls,
                                       "distinct": 0, "top": []}  # fmt: skip
        if self.texts is None:
            self._merge()
        if self.texts is not None:
            ranked = sorted(self.texts.items(), key=lambda item: (-item[1], item[0]))
            profile["distinct"] = len(self.texts)
            profile["top"] = [[value, count] for value, count in ranked[:TOP_VALUES]]
        elif self.counted is not None:
            order = [("count", "descending"), ("value", "ascending")]
            best = self.counted.take(pc.select_k_unstable(self.counted, TOP_VALUES, order))
            pairs = zip(best.column("value").to_pylist(), best.column("count").to_pylist(),
                        strict=True)  # fmt: skip
            profile["distinct"] = self.counted.num_rows
            profile["top"] = [[_as_text(value), int(count)] for value, count in pairs]
        return profile


def _extremes(extremes: list[Any], column: Any) -> list[Any]:
    """The least and greatest of ``extremes`` and ``column``'s values, as arrow scalars."""
    found = pc.min_max(column)
    candidates = [*extremes, found["min"], found["max"]]
    merged = pc.min_max(pa.array(candidates, type=found["min"].type))
    return [merged["min"], merged["max"]]


def _as_py(extremes: list[Any]) -> tuple[Any, Any]:
    if not extremes:
        return None, None
    return extremes[0].as_py(), extremes[1].as_py()


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
