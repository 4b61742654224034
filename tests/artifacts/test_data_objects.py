"""Data assets by object URL (moto's S3 and Azurite): profiled and sketched as they
stream, exactly as the same bytes in a local file are; registered by URL from the
commands, the CLI and the API (under LEDGER_DATA_ROOTS); fetched for executors only
when they still have the digest they were registered with; bad URLs refused clearly."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import obstore
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from executors.worker import Worker
from ledger.artifacts.locations import open_blobs
from ledger.data_objects import fetch_data, open_data_object
from ledger.data_profile import PARQUET_BUFFER_BYTES, count_rows, profile_dataset
from ledger.data_sketch import sketch_dataset
from ledger.errors import (
    IntegrityViolationError,
    InvalidInputError,
    NotFoundError,
    RuleViolationError,
)
from ledger.ledger import Ledger
from tests.conftest import Cli, StoreFactory, assert_user_error, running_api
from tests.executor_support import register, step, write_code
from tests.object_stores import ObjectStoreServer

CSV_TEXT = (
    "id,score,label,flag,day\n"
    "1,0.5,cat,true,2024-01-03\n"
    "2,,dog,false,2024-01-01\n"
    "3,2.5,cat,true,\n"
    "4,1.0,,true,2024-01-02\n"
)


@pytest.fixture(params=["s3", "az"])
def lake(request: pytest.FixtureRequest) -> str:
    """A fresh bucket (S3) or container (Azurite): the URL of a folder in it."""
    fixture = "azure_server" if request.param == "az" else "s3_server"
    server: ObjectStoreServer = request.getfixturevalue(fixture)
    return server.new_location("lake")


def _put(folder: str, name: str, data: bytes) -> str:
    """Upload ``data`` as ``folder/name`` (with obstore, as any client would); its URL."""
    open_blobs(folder).write(name, [data])
    return f"{folder}/{name}"


def _parquet_bytes(rows: int, row_group: int) -> bytes:
    rng = np.random.default_rng(3)
    seconds = rng.integers(0, 9_000_000, rows).astype("timedelta64[s]")
    table = pa.table(
        {
            "x": rng.standard_normal(rows),  # floats whose sums round: a real mean check
            "n": pa.array(rng.integers(-1_000, 1_000, rows)),
            "label": pa.array(rng.choice(["a", "b", "c", ""], rows)).dictionary_encode(),
            "at": pa.array(np.datetime64("2026-01-01") + seconds).cast(pa.timestamp("s", tz="UTC")),
            "tags": pa.ListArray.from_arrays(np.arange(rows + 1), rng.integers(0, 3, rows)),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group)
    return buffer.getvalue()


def _files() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    floats = "\n".join(f"{v!r},{i % 7}" for i, v in enumerate(rng.standard_normal(150_000)))
    return {
        "small.csv": CSV_TEXT.encode(),
        "small.tsv": CSV_TEXT.replace(",", "\t").encode(),
        "floats.csv": ("v,k\n" + floats + "\n").encode(),  # ~3 MB: several blocks
        "late.csv": ("code\n" + "1\n" * 700_000 + "A7\n").encode(),  # text after 1 MiB
        "rows.parquet": _parquet_bytes(60_000, 7_000),
    }


def test_objects_are_profiled_and_sketched_as_the_same_local_files_are(
    lake: str, tmp_path: Path
) -> None:
    for name, data in _files().items():
        local = tmp_path / name
        local.write_bytes(data)
        url = _put(lake, name, data)
        profile = profile_dataset(url)
        assert profile == profile_dataset(local), name
        assert count_rows(open_data_object(url)) == profile["rows"], name
        remote_sketch = _exact_part(sketch_dataset(url, profile).summary())
        assert remote_sketch == _exact_part(sketch_dataset(local, profile).summary()), name
        assert remote_sketch["rows"] == profile["rows"]
    assert profile_dataset(f"{lake}/late.csv")["columns"]["code"]["type"] == "string"


def _exact_part(summary: dict[str, Any]) -> dict[str, Any]:
    """A sketch's summary less its quantiles (KLL sketches compact at random)."""
    columns = summary["columns"]
    exact = {n: {k: v for k, v in c.items() if k != "quantiles"} for n, c in columns.items()}
    return {**summary, "columns": exact}


def test_a_parquet_object_is_read_in_ranges_never_whole(
    s3_server: ObjectStoreServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _parquet_bytes(250_000, 20_000)
    url = _put(s3_server.new_location("lake"), "big.parquet", data)
    reads: list[int] = []
    opened = obstore.open_reader

    class Counting:
        def __init__(self, reader: Any) -> None:
            self._reader = reader

        def read(self, size: int = -1) -> Any:
            chunk = self._reader.read(size)
            reads.append(len(chunk))
            return chunk

        def __getattr__(self, name: str) -> Any:
            return getattr(self._reader, name)

    monkeypatch.setattr(obstore, "open_reader", lambda *a, **k: Counting(opened(*a, **k)))
    monkeypatch.setattr(pq, "read_table", _never)
    profile = profile_dataset(url)
    assert profile["rows"] == 250_000
    assert sum(reads) >= len(data) // 2  # the columns' pages were read...
    assert len(data) > 4 * PARQUET_BUFFER_BYTES
    assert max(reads) <= PARQUET_BUFFER_BYTES  # ...a part at a time, never the whole object


def _never(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("read whole")


def test_registering_an_object_records_its_url_digest_profile_and_sketch(
    ledger: Ledger, lake: str, tmp_path: Path, cli: Cli
) -> None:
    files = _files()
    for name in ("small.csv", "rows.parquet"):
        url = _put(lake, name, files[name])
        (tmp_path / name).write_bytes(files[name])
        result = ledger.assets.register_data("rows", url, description="from the lake")
        version = ledger.assets.data_version(result.ref)
        assert version["content"]["uri"] == url
        assert version["digest"] == hashlib.sha256(files[name]).hexdigest()
        profile = dict(version["content"]["profile"])
        sketch = profile.pop("sketch")
        assert profile == profile_dataset(tmp_path / name)
        assert ledger.artifacts.size(sketch["digest"]) == sketch["bytes"]
        assert ledger.assets.register_data("rows", url).ref == result.ref  # same data, place
    shown: Any = cli("data", "register", "lake", f"{lake}/small.csv", "--json").json()
    assert shown["ref"] == "lake:1"
    assert ledger.assets.data_version("lake:1")["content"]["uri"] == f"{lake}/small.csv"


def test_bad_urls_and_unreadable_objects_are_refused_clearly(
    ledger: Ledger, lake: str, cli: Cli
) -> None:
    bucket = lake.rsplit("/", 1)[0]
    _put(lake, "garbage.parquet", b"definitely not parquet")
    _put(lake, "broken.csv", b"a,b\n1,2,3\n")
    _put(lake, "empty.csv", b"")
    refusals = {
        f"{lake}/missing.csv": f"no such object: {lake}/missing.csv",
        "ftp://example.com/data.csv": "unknown data URL scheme 'ftp'",
        f"{bucket}/": "names no object",
        f"{lake}/notes.json": "unsupported dataset file",
        f"{lake}/garbage.parquet": f"cannot read {lake}/garbage.parquet as Parquet",
        f"{lake}/broken.csv": f"cannot read {lake}/broken.csv as CSV",
        f"{lake}/empty.csv": f"cannot read {lake}/empty.csv as CSV",
        f"{lake.split('://')[0]}://ledger-no-such-bucket/x.csv": "ledger-no-such-bucket",
    }
    for url, message in refusals.items():
        with pytest.raises(InvalidInputError) as caught:
            ledger.assets.register_data("bad", url)
        assert message in str(caught.value), (url, str(caught.value))
        assert "\n" not in str(caught.value)
        assert_user_error(cli("data", "register", "bad", url), message)
    with pytest.raises(NotFoundError):
        ledger.assets.data_version("bad")  # nothing recorded


def test_fetched_data_must_still_have_its_digest(ledger: Ledger, lake: str, tmp_path: Path) -> None:
    url = _put(lake, "small.csv", CSV_TEXT.encode())
    ref = ledger.assets.register_data("rows", url).ref
    digest = ledger.assets.data_version(ref)["digest"]
    fetched = fetch_data(url, digest, tmp_path / "in")
    assert fetched == tmp_path / "in" / "small.csv"
    assert fetched.read_bytes() == CSV_TEXT.encode()
    _put(lake, "small.csv", CSV_TEXT.replace("cat", "cow").encode())  # changed in place
    with pytest.raises(IntegrityViolationError, match=f"{url} changed since it was recorded"):
        fetch_data(url, digest, tmp_path / "again")
    assert not (tmp_path / "again" / "small.csv").exists()  # nothing half-checked is left
    # A version registered without a sketch cannot get one from data that changed.
    profile = profile_dataset(url)
    older = ledger.assets._record_data("old", url, digest, profile, "", "").ref
    with pytest.raises(RuleViolationError, match="changed since it was registered"):
        ledger.assets.profile_data(older)
    open_blobs(lake).delete("small.csv")
    with pytest.raises(RuleViolationError, match=f"is gone: no such object: {url}"):
        ledger.assets.profile_data(older)


def test_a_pipeline_step_reads_a_data_asset_from_an_object_store(
    ledger: Ledger, store: StoreFactory, s3_server: ObjectStoreServer, tmp_path: Path
) -> None:
    lake = s3_server.new_location("lake")
    url = _put(lake, "weights.csv", CSV_TEXT.encode())
    ledger.assets.register_data("rows", url)
    code = write_code(tmp_path / "code")
    register(ledger, "copy", code, [step("only", "register", inputs={"source": "data:rows"})])
    worker = Worker(store.settings(executor="local"))
    try:
        job_id = str(ledger.jobs.submit("copy").id)
        assert worker.run_job(job_id) == "succeeded", ledger.jobs.get(job_id).error
        (model,) = ledger.jobs.get(job_id).steps["only"]["models"]
        ledger.models.download_version(model, tmp_path / "model")
        assert (tmp_path / "model" / "weights.bin").read_bytes() == CSV_TEXT.encode()

        _put(lake, "weights.csv", b"id\n1\n")  # the object changes after registration
        changed = str(ledger.jobs.submit("copy").id)
        assert worker.run_job(changed) == "failed"
        error = ledger.jobs.get(changed).error
        assert (
            "input 'source': data asset rows" in error and "changed since it was recorded" in error
        )
    finally:
        worker.close()


def test_the_api_registers_objects_under_its_data_roots_only(
    store: StoreFactory, lake: str
) -> None:
    url = _put(lake, "small.csv", CSV_TEXT.encode())
    bucket = lake.rsplit("/", 1)[0]
    outside = _put(f"{bucket}/private", "secret.csv", CSV_TEXT.encode())
    with running_api(store.settings(data_roots=[lake + "/"])) as api:
        assert api.settings.data_roots == [lake]

        def post(path: str) -> Any:
            return api.client.post("/data/lake/versions", json={"path": path},
                                   headers=api.auth("contributor"))  # fmt: skip

        created = post(url)
        assert created.status_code == 201, created.text
        assert created.json()["digest"] == hashlib.sha256(CSV_TEXT.encode()).hexdigest()
        with Ledger(store.settings()) as ledger:
            assert ledger.assets.data_version("lake:1")["content"]["uri"] == url
        missing = post(f"{lake}/missing.csv")
        assert missing.status_code == 400 and "no such object" in missing.json()["detail"]
        answers = set()
        for attempt in (outside, f"{lake}/../private/secret.csv", f"{lake}x/a.csv",
                        f"{url}?versionId=1", "ftp://host/a.csv"):  # fmt: skip
            refused = post(attempt)
            assert refused.status_code == 400, (attempt, refused.text)
            answers.add(refused.json()["detail"].replace(repr(attempt), "PATH"))
        assert len(answers) == 1 and "LEDGER_DATA_ROOTS" in answers.pop()
