"""Dataset profiles: CSV and Parquet agree, directories read as one table, bad input refused."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ledger.column_profiles as column_profiles
from ledger.column_profiles import profile_column
from ledger.data_profile import digest_path, profile_dataset
from ledger.errors import InvalidInputError

CSV_TEXT = (
    "id,score,label,flag,day\n"
    "1,0.5,cat,true,2024-01-03\n"
    "2,,dog,false,2024-01-01\n"
    "3,2.5,cat,true,\n"
    "4,1.0,,true,2024-01-02\n"
    "5,4.0,bird,false,2024-01-05\n"
    "6,,dog,true,2024-01-04\n"
)

EXPECTED_COLUMNS: dict[str, Any] = {
    "id": {"type": "int64", "nulls": 0, "min": 1, "max": 6, "mean": 3.5},
    "score": {"type": "double", "nulls": 2, "min": 0.5, "max": 4.0, "mean": 2.0},
    "label": {
        "type": "string",
        "nulls": 1,
        "distinct": 3,
        "top": [["cat", 2], ["dog", 2], ["bird", 1]],
    },
    "flag": {"type": "bool", "nulls": 0, "distinct": 2, "top": [["true", 4], ["false", 2]]},
    "day": {"type": "date32[day]", "nulls": 1, "min": "2024-01-01", "max": "2024-01-05"},
}


def strict_json_round_trip(profile: object) -> object:
    """Serialise as strict JSON (no NaN/inf) and parse back."""
    return json.loads(json.dumps(profile, allow_nan=False))


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(CSV_TEXT)
    return path


def test_csv_profile_has_expected_statistics(csv_file: Path) -> None:
    profile = profile_dataset(csv_file)
    assert profile == {"format": "csv", "rows": 6, "columns": EXPECTED_COLUMNS}
    assert strict_json_round_trip(profile) == profile


def test_parquet_profile_agrees_with_csv(csv_file: Path, tmp_path: Path) -> None:
    same_data = pa.table(
        {
            "id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
            "score": [0.5, None, 2.5, 1.0, 4.0, None],
            "label": ["cat", "dog", "cat", None, "bird", "dog"],
            "flag": [True, False, True, True, False, True],
            "day": [date(2024, 1, d) if d else None for d in (3, 1, 0, 2, 5, 4)],
        }
    )
    parquet_file = tmp_path / "data.parquet"
    pq.write_table(same_data, parquet_file, row_group_size=4)
    csv_profile = profile_dataset(csv_file)
    parquet_profile = profile_dataset(parquet_file)
    assert parquet_profile["format"] == "parquet"
    assert parquet_profile["rows"] == csv_profile["rows"] == 6
    assert parquet_profile["columns"] == csv_profile["columns"]
    assert strict_json_round_trip(parquet_profile) == parquet_profile


def test_tsv_uses_tab_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    path.write_text(CSV_TEXT.replace(",", "\t"))
    profile = profile_dataset(path)
    assert profile == {"format": "csv", "rows": 6, "columns": EXPECTED_COLUMNS}


def test_directory_of_csv_files_is_one_table(tmp_path: Path) -> None:
    lines = CSV_TEXT.splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    folder = tmp_path / "dataset"
    (folder / "part=2").mkdir(parents=True)
    (folder / "a.csv").write_text(header + "".join(rows[:2]))
    (folder / "b.csv").write_text(header + "".join(rows[2:4]))
    (folder / "part=2" / "c.csv").write_text(header + "".join(rows[4:]))
    (folder / "_SUCCESS").write_text("")
    profile = profile_dataset(folder)
    assert profile == {"format": "csv", "rows": 6, "columns": EXPECTED_COLUMNS}


def test_directory_promotes_int_and_float_parts(tmp_path: Path) -> None:
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n2\n")
    (folder / "b.csv").write_text("x\n3.5\n")
    profile = profile_dataset(folder)
    assert profile["rows"] == 3
    assert profile["columns"]["x"] == {
        "type": "double",
        "nulls": 0,
        "min": 1.0,
        "max": 3.5,
        "mean": pytest.approx(6.5 / 3),
    }


def test_directory_of_parquet_files(tmp_path: Path) -> None:
    folder = tmp_path / "dataset"
    folder.mkdir()
    pq.write_table(pa.table({"v": [1, 2]}), folder / "p0.parquet")
    pq.write_table(pa.table({"v": [3, None]}), folder / "p1.pq")
    profile = profile_dataset(folder)
    assert profile == {
        "format": "parquet",
        "rows": 4,
        "columns": {"v": {"type": "int64", "nulls": 1, "min": 1, "max": 3, "mean": 2.0}},
    }


def test_nan_and_infinity_never_reach_the_output(tmp_path: Path) -> None:
    path = tmp_path / "odd.parquet"
    table = pa.table(
        {
            "nan_inf": pa.array([1.0, math.nan, math.inf, None]),
            "some_nan": pa.array([2.0, math.nan, 4.0, None]),
            "all_nan": pa.array([math.nan, math.nan]).take([0, 1, 0, 1]),
            "empty": pa.array([None, None, None, None], pa.string()),
            "ts": pa.array([0, 86_400_000_000, None, 1], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, path)
    profile = profile_dataset(path)
    no_stats = {"min": None, "max": None, "mean": None}
    assert profile["columns"] == {
        "nan_inf": {"type": "double", "nulls": 2, "min": 1.0, "max": None, "mean": None},
        "some_nan": {"type": "double", "nulls": 2, "min": 2.0, "max": 4.0, "mean": 3.0},
        "all_nan": {"type": "double", "nulls": 4, **no_stats},
        "empty": {"type": "string", "nulls": 4, "distinct": 0, "top": []},
        "ts": {
            "type": "timestamp[us, tz=UTC]",
            "nulls": 1,
            "min": "1970-01-01T00:00:00+00:00",
            "max": "1970-01-02T00:00:00+00:00",
        },
    }
    assert strict_json_round_trip(profile) == profile


def test_top_lists_at_most_five_values_ties_broken_by_value(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    values = ["g"] * 3 + ["f", "e", "d", "c", "b", "a"] + ["z"] * 2
    path.write_text("v\n" + "\n".join(values) + "\n")
    column = profile_dataset(path)["columns"]["v"]
    assert column == {
        "type": "string",
        "nulls": 0,
        "distinct": 8,
        "top": [["g", 3], ["z", 2], ["a", 1], ["b", 1], ["c", 1]],
    }


def test_nested_column_falls_back_to_text_values(tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"tags": [[1, 2], [1, 2], [3], None]}), path)
    column = profile_dataset(path)["columns"]["tags"]
    assert column == {
        "type": "list<element: int64>",
        "nulls": 1,
        "distinct": 2,
        "top": [["[1, 2]", 2], ["[3]", 1]],
    }


def test_a_profile_streamed_in_batches_is_the_profile_of_the_whole_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    rows = 50_000
    table = pa.table(
        {
            "word": pa.array([f"w{int(v)}" for v in rng.zipf(1.3, rows) % 5_000]),
            "n": pa.array(rng.integers(-50, 50, rows)),
            "x": pa.array(np.where(rng.random(rows) < 0.1, np.nan, rng.standard_normal(rows))),
            "day": pa.array(np.datetime64("2026-01-01") + rng.integers(0, 900, rows)),
        }
    )
    path = tmp_path / "many.parquet"
    pq.write_table(table, path, row_group_size=3_000)
    whole = {name: profile_column(table.column(name)) for name in table.column_names}
    monkeypatch.setattr(column_profiles, "MERGE_ROWS", 2)  # merge counts at every batch
    streamed = profile_dataset(path)
    assert streamed["rows"] == rows
    for name in ("word", "n", "day"):
        assert streamed["columns"][name] == whole[name], name
    assert streamed["columns"]["x"] == {**whole["x"], "mean": pytest.approx(whole["x"]["mean"])}


# -- refusals ----------------------------------------------------------------------------


def test_csv_that_does_not_parse_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("a,b\n1,2,3\n")
    with pytest.raises(InvalidInputError, match=r"broken\.csv") as caught:
        profile_dataset(path)
    assert "\n" not in str(caught.value)


def test_garbage_parquet_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"definitely not parquet")
    with pytest.raises(InvalidInputError, match=r"broken\.parquet") as caught:
        profile_dataset(path)
    assert "\n" not in str(caught.value)


def test_empty_csv_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InvalidInputError, match=r"empty\.csv"):
        profile_dataset(path)


@pytest.mark.parametrize("name", ["data.json", "data.xlsx", "noext"])
def test_unsupported_extension_is_invalid_input(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("a\n1\n")
    with pytest.raises(InvalidInputError, match="unsupported"):
        profile_dataset(path)


def test_missing_path_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such file"):
        profile_dataset(tmp_path / "nope.csv")
    with pytest.raises(InvalidInputError, match="no such file"):
        digest_path(tmp_path / "nope")


def test_directory_refusals(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="no CSV or Parquet"):
        profile_dataset(empty)

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.csv").write_text("v\n1\n")
    pq.write_table(pa.table({"v": [2]}), mixed / "b.parquet")
    with pytest.raises(InvalidInputError, match="mixes"):
        profile_dataset(mixed)

    columns = tmp_path / "columns"
    columns.mkdir()
    (columns / "a.csv").write_text("v\n1\n")
    (columns / "b.csv").write_text("w\n1\n")
    with pytest.raises(InvalidInputError, match="columns"):
        profile_dataset(columns)

    types = tmp_path / "types"
    types.mkdir()
    (types / "a.csv").write_text("v\n1\n")
    (types / "b.csv").write_text("v\nhello\n")
    with pytest.raises(InvalidInputError, match="schema"):
        profile_dataset(types)


def test_duplicate_column_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("a,a\n1,2\n")
    with pytest.raises(InvalidInputError, match="duplicate"):
        profile_dataset(path)


# -- digest_path -------------------------------------------------------------------------


def test_digest_of_a_file_is_its_sha256(csv_file: Path) -> None:
    assert digest_path(csv_file) == hashlib.sha256(CSV_TEXT.encode()).hexdigest()


def test_digest_of_a_directory_covers_names_and_contents(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_bytes(b"1")
    (folder / "sub" / "b.csv").write_bytes(b"2")
    expected = hashlib.sha256(
        b"a.csv\0" + hashlib.sha256(b"1").hexdigest().encode() + b"\n"
        b"sub/b.csv\0" + hashlib.sha256(b"2").hexdigest().encode() + b"\n"
    ).hexdigest()
    first = digest_path(folder)
    assert first == expected

    (folder / "sub" / "b.csv").write_bytes(b"3")
    changed_content = digest_path(folder)
    (folder / "sub" / "b.csv").rename(folder / "sub" / "c.csv")
    changed_name = digest_path(folder)
    assert len({first, changed_content, changed_name}) == 3
