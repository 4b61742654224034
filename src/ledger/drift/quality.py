"""Data quality of a window against a reference: null, type-error, out-of-bounds rates."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.drift.sketches import ColumnSketch, TableSketch

DEFAULT_TOLERANCE = 0.01
"""A rate breaches when it exceeds the reference's by more than this (absolute)."""


@dataclass(frozen=True)
class DataQuality:
    """A column's rates in the window and in the reference, and which of them breach.

    Null and type-error rates are shares of all the column's values; the out-of-bounds
    rate is the share of the window's valid values below the reference's min or above
    its max (numeric only, else None; within the KLL sketch's rank error, and exactly 0
    when the window's own min and max lie within the reference's).
    """

    column: str
    null_rate: float
    type_error_rate: float
    out_of_bounds_rate: float | None
    reference_null_rate: float
    reference_type_error_rate: float
    tolerance: float
    breaches: tuple[str, ...]

    @property
    def breach(self) -> bool:
        return bool(self.breaches)


def data_quality(
    reference: ColumnSketch,
    window: ColumnSketch,
    tolerance: float = DEFAULT_TOLERANCE,
    column: str = "",
) -> DataQuality:
    """The window's rates against the reference's; a rate over the reference's by more
    than ``tolerance`` is a breach (the reference's out-of-bounds rate is 0)."""
    rates = {
        "null_rate": (_share(window.nulls, window.rows), _share(reference.nulls, reference.rows)),
        "type_error_rate": (
            _share(window.type_errors, window.rows),
            _share(reference.type_errors, reference.rows),
        ),
    }
    bounds = out_of_bounds_rate(reference, window)
    if bounds is not None:
        rates["out_of_bounds_rate"] = (bounds, 0.0)
    breaches = tuple(name for name, (rate, base) in rates.items() if rate > base + tolerance)
    return DataQuality(
        column=column,
        null_rate=rates["null_rate"][0],
        type_error_rate=rates["type_error_rate"][0],
        out_of_bounds_rate=bounds,
        reference_null_rate=rates["null_rate"][1],
        reference_type_error_rate=rates["type_error_rate"][1],
        tolerance=tolerance,
        breaches=breaches,
    )


def out_of_bounds_rate(reference: ColumnSketch, window: ColumnSketch) -> float | None:
    """The share of the window's values outside the reference's [min, max]; None for a
    categorical column or when either side has no values."""
    if reference.kind != "numeric" or window.kind != "numeric":
        return None
    if reference.min is None or reference.max is None or window.min is None or window.max is None:
        return None
    below = 0.0
    if window.min < reference.min:
        below = float(window.kll.get_rank(reference.min, False))
    above = 0.0
    if window.max > reference.max:
        above = 1.0 - float(window.kll.get_rank(reference.max, True))
    return min(max(below + above, 0.0), 1.0)


def table_quality(
    reference: TableSketch, window: TableSketch, tolerance: float = DEFAULT_TOLERANCE
) -> list[DataQuality]:
    """``data_quality`` of each of the reference's columns the window also has."""
    return [
        data_quality(sketch, window.columns[name], tolerance, name)
        for name, sketch in reference.columns.items()
        if name in window.columns
    ]


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
