"""The API's other doors to the artifact store, on every kind of store (see conftest.py):
MLflow's artifact proxy (upload, listing, download, delete, a damaged blob), data uploads
kept in the store (an object store's URL becomes the version's URI) and /health naming
where artifacts are kept. Model file and zip downloads: test_verified_downloads.py.

SQLite only: these routes on PostgreSQL (with the local store) are tested in
tests/mlflow/test_artifacts.py and tests/api/test_api_hardening.py.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from ledger.artifacts.locations import is_object_store_url
from ledger.artifacts.store import ArtifactStore
from tests.artifacts.damage import flip_byte, stored_bytes
from tests.conftest import Api
from tests.mlflow.support import chunks, download, error, listing, upload, upload_ok

pytestmark = pytest.mark.parametrize("store", ["sqlite", "sqlite-s3", "sqlite-az"], indirect=True)
RUN = "0/7e2b9c/artifacts"
BIG = os.urandom(3 * 1024 * 1024 + 17)  # several chunks on the way in and out
CSV = b"x,y\n1,a\n2,b\n3,a\n"


def _store(api: Api) -> ArtifactStore:
    return ArtifactStore(api.settings.artifacts_location)


def test_mlflow_artifacts_go_through_the_store(api: Api) -> None:
    assert upload(api, f"{RUN}/model/weights.bin", chunks(BIG)).status_code == 200
    upload_ok(api, {f"{RUN}/model/sub/vocab.txt": b"a\nb\n", f"{RUN}/notes.txt": b""})
    for path, data in {f"{RUN}/model/weights.bin": BIG, f"{RUN}/notes.txt": b""}.items():
        got = download(api, path)
        assert got.status_code == 200 and got.content == data, got.text[:200]
    assert listing(api, f"{RUN}/model") == {"files": [
        {"path": "sub", "is_dir": True},
        {"path": "weights.bin", "is_dir": False, "file_size": len(BIG)},
    ]}  # fmt: skip
    store = _store(api)
    assert stored_bytes(store, hashlib.sha256(BIG).hexdigest()) == BIG
    assert not list(store.blobs.listing("tmp/")), "an upload left a temporary object"

    flip_byte(store, hashlib.sha256(BIG).hexdigest())
    message = error(download(api, f"{RUN}/model/weights.bin"), 500, "DATA_LOSS")
    assert "weights.bin" in message and "ledger verify --artifacts" in message

    deleted = api.client.delete(
        f"/api/2.0/mlflow-artifacts/artifacts/{RUN}/model", headers=api.auth("contributor")
    )
    assert deleted.status_code == 200, deleted.text
    error(download(api, f"{RUN}/model/sub/vocab.txt"), 404, "RESOURCE_DOES_NOT_EXIST")


def _upload_data(api: Api, filename: str, content: bytes) -> httpx.Response:
    return api.client.post(
        "/data/train/versions",
        files={"file": (filename, content, "application/octet-stream")},
        headers=api.auth("contributor"),
    )


def test_uploaded_data_is_kept_in_the_store_at_its_uri_named_by_health(api: Api) -> None:
    created = _upload_data(api, "train.csv", CSV)
    assert created.status_code == 201, created.text
    got = api.client.get("/data/train/versions/1", headers=api.auth("reader"))
    version: dict[str, Any] = got.json()
    assert version["content"]["profile"]["rows"] == 3
    uri = version["content"]["uri"]
    digest = hashlib.sha256(CSV).hexdigest()
    store = _store(api)
    key = f"data/{digest}/train.csv"
    if is_object_store_url(api.settings.artifacts_location):
        assert uri == f"{api.settings.artifacts_location}/{key}"
    else:
        assert unquote(urlsplit(uri).path).endswith(f"/artifacts/{key}")
    with store.blobs.reader(key) as kept:
        assert kept.read() == CSV
    assert not list(store.blobs.listing("tmp/")), "an upload left its file"
    again = _upload_data(api, "train.csv", CSV)
    assert again.status_code == 201 and again.json()["created"] is False

    refused = _upload_data(api, "broken.parquet", b"not parquet")
    assert refused.status_code == 400, refused.text
    assert [item.key for item in store.blobs.listing("data/")] == [key]

    health = api.client.get("/health").json()
    location = api.settings.artifacts_location
    if is_object_store_url(location):
        assert health["artifacts"] == {"location": location}
    else:
        assert health["artifacts"] == {"location": Path(location).resolve().as_uri()}
