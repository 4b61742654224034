"""Data asset sketches: built batch by batch at registration, added to older versions by
``ledger data profile`` (CLI and API), loaded for monitors, and the training data of a
model version found through lineage. Both stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ledger.data_sketch as data_sketch
from executors.worker import Worker
from ledger.data_profile import digest_path, profile_dataset
from ledger.data_sketch import sketch_dataset, version_sketch
from ledger.drift.sketches import TableSketch
from ledger.errors import NotFoundError
from ledger.ledger import Ledger
from projections.training_data import training_data
from projections.views import Views
from tests.conftest import Api, Cli, StoreFactory, assert_user_error
from tests.executor_support import register, step, write_code

SCHEMA = pa.schema([("x", pa.float64()), ("label", pa.string())])
CSV = "x,label,score\n1,a,0.5\n,b,\n3,,1.5\n4,a,NaN\n"


def _table(rows: int, offset: int = 0) -> pa.Table:
    numbers = [None if i % 7 == 0 else float(i) for i in range(offset, offset + rows)]
    labels = [None if i % 5 == 0 else f"c{i % 3}" for i in range(offset, offset + rows)]
    return pa.table({"x": numbers, "label": labels}, schema=SCHEMA)


def reference_sketch(ledger: Ledger, ref: str) -> TableSketch:
    return version_sketch(ledger.artifacts, ledger.assets.data_version(ref), ref.partition(":")[0])


def _assert_counts_match(sketch: TableSketch, profile: dict[str, Any]) -> None:
    """Rows, and each column's nulls and values, as the profile counted them."""
    summary = sketch.summary()
    assert summary["rows"] == profile["rows"]
    assert set(summary["columns"]) == set(profile["columns"])
    for name, column in profile["columns"].items():
        sketched = summary["columns"][name]
        assert sketched["nulls"] == column["nulls"], name
        assert sketched["type_errors"] == 0, name
        assert sketched["count"] == profile["rows"] - column["nulls"], name
        assert sketched["kind"] == ("numeric" if "mean" in column else "categorical"), name


def _data_files(tmp_path: Path) -> dict[str, Path]:
    csv = tmp_path / "rows.csv"
    csv.write_text(CSV)
    parquet = tmp_path / "rows.parquet"
    pq.write_table(_table(1_000), parquet, row_group_size=100)
    folder = tmp_path / "parts"
    folder.mkdir()
    for part in range(3):
        pq.write_table(_table(300, offset=300 * part), folder / f"part-{part}.parquet")
    (folder / "_SUCCESS").write_text("")
    return {"csv": csv, "parquet": parquet, "folder": folder}


def _register_without_sketch(ledger: Ledger, name: str, path: Path) -> str:
    """A version as registered before sketches were kept: its profile has none."""
    profile = profile_dataset(path)
    result = ledger.assets._record_data(
        name, path.resolve().as_uri(), digest_path(path), profile, "", ""
    )
    return result.ref


# -- registration ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "parquet", "folder"])
def test_registration_stores_a_sketch_whose_counts_are_the_profiles(
    ledger: Ledger, tmp_path: Path, kind: str
) -> None:
    path = _data_files(tmp_path)[kind]
    result = ledger.assets.register_data("rows", path)
    profile = ledger.assets.data_version(result.ref)["content"]["profile"]
    stored = profile["sketch"]
    blob = ledger.artifacts.blob_path(stored["digest"])
    assert blob.stat().st_size == stored["bytes"]
    sketch = reference_sketch(ledger, result.ref)
    _assert_counts_match(sketch, profile)
    assert sketch.summary() == TableSketch.from_bytes(blob.read_bytes()).summary()


def test_an_uploaded_file_gets_its_sketch_too(ledger: Ledger) -> None:
    import io

    result = ledger.assets.register_data_upload("up", io.BytesIO(CSV.encode()), "rows.csv")
    profile = ledger.assets.data_version(result.ref)["content"]["profile"]
    _assert_counts_match(reference_sketch(ledger, "up"), profile)


def test_a_large_parquet_file_is_sketched_batch_by_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "large.parquet"
    writer = pq.ParquetWriter(path, SCHEMA)
    for group in range(40):
        writer.write_table(_table(5_000, offset=5_000 * group))
    writer.close()
    monkeypatch.setattr(data_sketch, "BATCH_ROWS", 4_096)
    monkeypatch.setattr(pq, "read_table", _never_read_whole)
    seen: list[int] = []
    update = TableSketch.update

    def counting_update(self: TableSketch, table: pa.Table, *args: Any) -> None:
        seen.append(table.num_rows)
        update(self, table, *args)

    monkeypatch.setattr(TableSketch, "update", counting_update)
    sketch = sketch_dataset(path)
    assert sum(seen) == sketch.rows == 200_000
    assert max(seen) <= 4_096 and len(seen) >= 200_000 // 4_096
    assert sketch.columns["x"].nulls == len(range(0, 200_000, 7))


def _never_read_whole(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the sketch read the whole file at once")


def test_a_csv_whose_type_changes_after_the_first_block_is_read_as_profiled(
    tmp_path: Path,
) -> None:
    path = tmp_path / "late.csv"
    path.write_text("code\n" + "1\n" * 700_000 + "A7\n")  # ~1.4 MB: several 1 MiB blocks
    profile = profile_dataset(path)
    assert profile["columns"]["code"]["type"] == "string"
    _assert_counts_match(sketch_dataset(path, profile), dict(profile))


# -- ledger data profile -----------------------------------------------------------------


def test_profile_adds_a_sketch_to_an_older_version_once(
    ledger: Ledger, cli: Cli, store: StoreFactory, tmp_path: Path
) -> None:
    path = _data_files(tmp_path)["csv"]
    ref = _register_without_sketch(ledger, "rows", path)
    with pytest.raises(NotFoundError, match=r"`ledger data profile rows:1`"):
        reference_sketch(ledger, ref)
    done = cli("data", "profile", ref, "--reason", "backfill", "--json")
    assert done.code == 0, done
    answer: Any = done.json()
    assert answer["created"] is True
    shown: Any = cli("data", "show", "rows", "--json").json()
    profile = shown["versions"][0]["content"]["profile"]
    assert profile["sketch"] == answer["sketch"]
    _assert_counts_match(reference_sketch(ledger, ref), profile)
    events = _event_count(store)
    again = cli("data", "profile", ref)
    assert again.code == 0 and "already has a sketch" in again.out
    assert _event_count(store) == events


def _event_count(store: StoreFactory) -> int:
    return int(store.sql(f"SELECT count(*) FROM {store.events_table}")[0][0])


def test_profile_refuses_data_that_changed_or_is_gone(
    ledger: Ledger, cli: Cli, tmp_path: Path
) -> None:
    path = _data_files(tmp_path)["csv"]
    ref = _register_without_sketch(ledger, "rows", path)
    path.write_text(CSV + "5,b,2.5\n")
    assert_user_error(cli("data", "profile", ref), "changed since it was registered")
    path.unlink()
    assert_user_error(cli("data", "profile", ref), "is gone")
    assert_user_error(cli("data", "profile", "rows:9"), "rows:9 does not exist")
    assert "sketch" not in ledger.assets.data_version(ref)["content"]["profile"]


def test_profile_over_http(api: Api, tmp_path: Path) -> None:
    files = _data_files(tmp_path)
    with Ledger(api.settings) as ledger:
        _register_without_sketch(ledger, "rows", files["parquet"])
        _register_without_sketch(ledger, "gone", files["csv"])
    url = "/data/rows/versions/1/profile"
    head = api.head()
    refused = api.client.post(url, headers=api.auth("reader"))
    assert refused.status_code == 403 and api.head() == head
    done = api.client.post(url, json={"reason": "backfill"}, headers=api.auth("contributor"))
    assert done.status_code == 200, done.text
    assert done.json()["created"] is True and done.json()["ref"] == "rows:1"
    assert api.head() == head + 1
    version = api.client.get("/data/rows/versions/1", headers=api.auth("reader")).json()
    assert version["content"]["profile"]["sketch"] == done.json()["sketch"]
    again = api.client.post(url, headers=api.auth("contributor"))
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["sketch"] == done.json()["sketch"] and api.head() == head + 1
    files["csv"].write_text("changed\n")
    changed = api.client.post("/data/gone/versions/1/profile", headers=api.auth("contributor"))
    assert changed.status_code == 409, changed.text
    assert "changed since it was registered" in changed.json()["detail"]
    missing = api.client.post("/data/rows/versions/7/profile", headers=api.auth("contributor"))
    assert missing.status_code == 404 and api.head() == head + 1


# -- training data -----------------------------------------------------------------------


def test_training_data_is_the_data_a_jobs_model_was_trained_on(
    ledger: Ledger, store: StoreFactory, tmp_path: Path, model_dir: Path
) -> None:
    ledger.assets.register_data("rows", _data_files(tmp_path)["csv"])
    steps = [step("train", "register", inputs={"source": "data:rows"})]
    register(ledger, "fit", write_code(tmp_path / "code"), steps)
    worker = Worker(store.settings())
    try:
        job_id = str(ledger.jobs.submit("fit").id)
        assert worker.run_job(job_id) == "succeeded", ledger.jobs.get(job_id).error
    finally:
        worker.close()
    ledger.models.register_version("bare", model_dir, flavor="custom")
    views = Views.open(ledger.settings)
    try:
        views.updater.catch_up()
        assert training_data(views, "toy:1") == "rows:1"
        assert training_data(views, "toy") == "rows:1"
        assert training_data(views, "bare:1") is None
        with pytest.raises(NotFoundError):
            training_data(views, "ghost:1")
    finally:
        views.close()
