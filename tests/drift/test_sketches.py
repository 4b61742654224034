"""Column and table sketches: reading values, merging, serialization, size."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ledger.drift import MAX_EXACT_CATEGORIES, ColumnSketch, TableSketch

RANK_ERROR = ColumnSketch("numeric").normalized_rank_error
MAX_SKETCH_BYTES = 64 * 1024


def exact_rank(sorted_values: np.ndarray, value: float) -> float:
    return float(np.searchsorted(sorted_values, value, side="right") / len(sorted_values))


def test_nulls_nan_and_type_errors_are_counted_apart_from_values() -> None:
    numeric = ColumnSketch("numeric")
    numeric.update([1, 2.5, None, float("nan"), "abc", float("inf"), [1]])
    numeric.update(pa.array([" 4e2", "x", None, "-.5"]))
    assert (numeric.count, numeric.nulls, numeric.type_errors) == (4, 3, 4)
    assert (numeric.min, numeric.max) == (-0.5, 400.0)

    categorical = ColumnSketch("categorical")
    categorical.update(pa.array([1.5, float("nan"), None, 2.0]))
    categorical.update(["a", "a", None, [1]])
    assert (categorical.count, categorical.nulls, categorical.type_errors) == (4, 3, 1)
    assert categorical.category_counts() == {"1.5": 1, "2": 1, "a": 2}


def test_kinds_are_inferred_from_the_arrow_type_unless_given() -> None:
    table = pa.table(
        {
            "i": pa.array([1, 2], pa.int32()),
            "f": [0.5, 1.5],
            "d": pa.array([1, 2], pa.decimal128(5, 2)),
            "s": ["a", "b"],
            "b": [True, False],
            "code": [10, 20],
        }
    )
    sketch = TableSketch.of_table(table, kinds={"code": "categorical"})
    kinds = {name: column.kind for name, column in sketch.columns.items()}
    assert kinds == {
        "i": "numeric",
        "f": "numeric",
        "d": "numeric",
        "s": "categorical",
        "b": "categorical",
        "code": "categorical",
    }
    sketch.update(pa.table({"f": [2.5], "new": ["z"]}))
    assert sketch.rows == 3 and sketch.columns["f"].count == 3
    assert sketch.columns["new"].category_counts() == {"z": 1}


def sample_table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    numbers = rng.lognormal(size=rows)
    numbers[rng.random(rows) < 0.02] = np.nan
    labels = rng.choice(np.array(["red", "green", "blue", "cyan"]), rows, p=[0.5, 0.3, 0.15, 0.05])
    with_errors = pc.cast(pa.array(np.round(numbers, 3)), pa.string()).to_pylist()
    for index in np.flatnonzero(rng.random(rows) < 0.01):
        with_errors[index] = "n/a"
    return pa.table(
        {
            "x": numbers,
            "label": pa.array(labels).dictionary_encode(),
            "parsed": pa.array(with_errors),
        },
    )


def test_four_merged_parts_equal_one_sketch_over_all_rows() -> None:
    table = sample_table(200_000, seed=1)
    parts = [table.slice(offset, 50_000) for offset in range(0, 200_000, 50_000)]
    whole = TableSketch.of_table(table, kinds={"parsed": "numeric"})
    merged = TableSketch.of_table(parts[0], kinds={"parsed": "numeric"})
    for part in parts[1:]:
        merged.merge(TableSketch.of_table(part, kinds={"parsed": "numeric"}))

    assert merged.rows == whole.rows == 200_000
    for name in ("x", "parsed", "label"):
        one, many = whole.columns[name], merged.columns[name]
        assert (many.count, many.nulls, many.type_errors) == (one.count, one.nulls, one.type_errors)
    assert merged.columns["label"].category_counts() == whole.columns["label"].category_counts()
    x_one, x_many = whole.columns["x"], merged.columns["x"]
    assert (x_many.min, x_many.max) == (x_one.min, x_one.max)
    assert x_many.mean == pytest.approx(x_one.mean, rel=1e-12)
    assert x_many.std == pytest.approx(x_one.std, rel=1e-9)
    values = np.sort(table["x"].to_numpy())
    values = values[~np.isnan(values)]
    for rank in (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
        for sketch in (x_one, x_many):
            quantile = sketch.kll.get_quantile(rank)
            assert abs(exact_rank(values, quantile) - rank) <= 2 * RANK_ERROR


def test_sketches_survive_a_round_trip_through_bytes() -> None:
    sketch = TableSketch.of_table(sample_table(20_000, seed=2))
    sketch.update(pa.table({"many": pc.cast(pa.array(np.arange(5_000)), pa.string())}))
    assert not sketch.columns["many"].exact_categories  # past MAX_EXACT_CATEGORIES

    restored = TableSketch.from_bytes(sketch.to_bytes())
    assert restored.summary() == sketch.summary()
    assert json.loads(json.dumps(sketch.summary(), allow_nan=False)) == sketch.summary()
    for name in ("label", "many"):
        assert restored.columns[name].category_counts() == sketch.columns[name].category_counts()
    x = restored.columns["x"]
    assert x.kll.get_quantiles([0.1, 0.5]) == sketch.columns["x"].kll.get_quantiles([0.1, 0.5])
    with pytest.raises(ValueError):
        ColumnSketch.from_bytes(sketch.to_bytes())


def test_past_the_exact_limit_categories_are_the_frequent_ones() -> None:
    rng = np.random.default_rng(3)
    rare = pc.cast(pa.array(rng.integers(0, 20_000, 50_000)), pa.string())
    common = pa.array(["common"] * 25_000)
    sketch = ColumnSketch("categorical")
    sketch.update(pa.chunked_array([rare, common]))

    assert not sketch.exact_categories and MAX_EXACT_CATEGORIES < 20_000
    counts = sketch.category_counts()
    assert abs(counts["common"] - 25_000) <= 0.0069 * 75_000
    assert sum(counts.values()) == pytest.approx(75_000)
    assert sketch.summary()["distinct"] == pytest.approx(len(set(rare.to_pylist())) + 1, rel=0.05)


def test_a_column_sketch_stays_under_64_kib_at_a_million_rows() -> None:
    rng = np.random.default_rng(4)
    rows = 1_000_000
    columns = {
        "normal": pa.array(rng.normal(size=rows)),
        "integers": pa.array(rng.integers(0, 1_000_000, rows)),
        "few_labels": pa.array(rng.choice(np.array(["a", "b", "c"]), rows)),
        "unique_labels": pc.cast(pa.array(rng.permutation(rows)), pa.string()),
        "long_labels": pa.array([f"{'category-' * 12}{i % 999}" for i in range(rows)]),
    }
    sketch = TableSketch.of_table(pa.table(columns))
    for name, column in sketch.columns.items():
        assert column.count == rows
        assert len(column.to_bytes()) <= MAX_SKETCH_BYTES, name


def test_merging_different_kinds_is_refused() -> None:
    with pytest.raises(ValueError):
        ColumnSketch("numeric").merge(ColumnSketch("categorical"))
    with pytest.raises(ValueError):
        ColumnSketch("text")  # type: ignore[arg-type]
