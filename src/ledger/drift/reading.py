"""Reading a column's values as numbers or as categories, vectorised over pyarrow.

Each reader splits what it is given into the readable values, the nulls (None, NaN)
and the type errors (values that cannot be read as the column's kind).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Values: TypeAlias = pa.Array | pa.ChunkedArray | Iterable[Any]
"""What a sketch's ``update`` takes: a pyarrow Array or ChunkedArray, or a Python iterable."""

NUMBER_PATTERN = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
"""A string in a numeric column is read as a number when it is written as one (spaces
around it aside)."""


@dataclass(frozen=True)
class Numbers:
    """A chunk of a numeric column: its finite values, null and type-error counts."""

    values: np.ndarray[Any, np.dtype[np.float64]]
    nulls: int
    type_errors: int


@dataclass(frozen=True)
class Categories:
    """A chunk of a categorical column: the count of each value, nulls and type errors."""

    counts: dict[str, int]
    nulls: int
    type_errors: int


def arrow_chunks(values: Values) -> Iterator[pa.Array]:
    """``values`` as pyarrow arrays (a Python list of mixed types is one object array)."""
    if isinstance(values, pa.ChunkedArray):
        yield from values.chunks
    elif isinstance(values, pa.Array):
        yield values
    else:
        items = list(values)
        try:
            yield pa.array(items)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            yield from _mixed(items)


def _mixed(items: list[Any]) -> Iterator[pa.Array]:
    """A list pyarrow cannot type as one array: numbers, strings and the rest apart."""
    numbers = [v for v in items if isinstance(v, int | float) and not isinstance(v, bool)]
    strings = [v for v in items if isinstance(v, str)]
    nulls = sum(v is None for v in items)
    others = len(items) - len(numbers) - len(strings) - nulls
    yield pa.array(numbers, pa.float64())
    yield pa.array(strings, pa.string())
    yield pa.nulls(nulls)
    # Values neither numbers nor strings (lists, dicts, objects) are unreadable either way.
    yield pa.array([[0]] * others, pa.list_(pa.int8()))


def is_numeric_type(kind: pa.DataType) -> bool:
    """Integers, floats and decimals are numeric; anything else is categorical."""
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def read_numbers(chunk: pa.Array) -> Numbers:
    """The finite numbers of ``chunk``; infinities are type errors (not finite numbers)."""
    kind = chunk.type
    nulls = chunk.null_count
    if pa.types.is_null(kind):
        return Numbers(np.empty(0), len(chunk), 0)
    if pa.types.is_dictionary(kind):
        chunk = chunk.dictionary_decode()
        kind = chunk.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        valid = pc.utf8_trim_whitespace(chunk.drop_null())
        readable = pc.match_substring_regex(valid, NUMBER_PATTERN)
        parsed = pc.cast(valid.filter(readable), pa.float64())
        unreadable = len(valid) - len(parsed)
        return _finite(parsed, nulls, unreadable)
    if is_numeric_type(kind) or pa.types.is_boolean(kind):
        return _finite(pc.cast(chunk.drop_null(), pa.float64()), nulls, 0)
    return Numbers(np.empty(0), nulls, len(chunk) - nulls)


def _finite(floats: pa.Array, nulls: int, type_errors: int) -> Numbers:
    # Writable and contiguous: the KLL sketch takes no read-only view of arrow's buffer.
    array = np.require(
        floats.to_numpy(zero_copy_only=False), np.float64, ["C_CONTIGUOUS", "WRITEABLE"]
    )
    nan = np.isnan(array)
    infinite = np.isinf(array)
    finite = array[~(nan | infinite)] if nan.any() or infinite.any() else array
    return Numbers(finite, nulls + int(nan.sum()), type_errors + int(infinite.sum()))


def read_categories(chunk: pa.Array) -> Categories:
    """The count of each value of ``chunk`` as text; NaN is null, nested values are errors."""
    kind = chunk.type
    nulls = chunk.null_count
    if pa.types.is_null(kind):
        return Categories({}, len(chunk), 0)
    if pa.types.is_floating(kind):
        nan = pc.is_nan(chunk)
        nulls += int(pc.sum(nan).as_py() or 0)
        chunk = pc.if_else(nan, None, chunk)
    try:
        text = pc.cast(chunk.drop_null(), pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return Categories({}, nulls, len(chunk) - chunk.null_count)
    counted = pc.value_counts(text)
    values = counted.field("values").to_pylist()
    counts = counted.field("counts").to_pylist()
    return Categories(dict(zip(values, counts, strict=True)), nulls, 0)


def python_float(value: float | None) -> float | None:
    """``value`` as a plain float for JSON, None for a missing or non-finite one."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)
