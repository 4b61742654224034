"""MLflow's artifact proxy on the ledger (``/api/2.0/mlflow-artifacts``), in-process on
both stores: uploads as events and blobs, downloads checked against their digest, listings
shaped like MLflow's server's, refused paths and roles, and registered versions' files
under ``ledger/models/<name>/<version>``."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from ledger.artifacts.store import ArtifactStore
from ledger.domain.tracked_artifact import TrackedArtifact, tracked_artifact_id
from ledger.ledger import Ledger
from tests.conftest import Api, StoreFactory, running_api
from tests.mlflow.support import (
    ARTIFACTS,
    app_views,
    chunks,
    download,
    error,
    listing,
    upload,
    upload_ok,
    write_tree,
)

RUN = "0/4f1c2a/artifacts"
BIG = os.urandom(3 * 1024 * 1024 + 17)


def _events(api: Api, path: str) -> list[str]:
    with Ledger(api.settings) as ledger:
        return [type(e).__qualname__ for e in ledger.events_of(tracked_artifact_id(path))]


def test_upload_and_download_round_trip_byte_for_byte(api: Api) -> None:
    files = {
        f"{RUN}/model/weights.bin": BIG,
        f"{RUN}/model/empty.bin": b"",
        f"{RUN}/model/sub/deeper/vocab.txt": "a\nb\nç\n".encode(),
    }
    answer = upload(api, f"{RUN}/model/weights.bin", chunks(BIG))  # streamed, chunked
    assert answer.status_code == 200, answer.text
    upload_ok(api, {path: data for path, data in files.items() if data is not BIG})
    for path, data in files.items():
        got = download(api, path)
        assert got.status_code == 200, got.text
        assert got.content == data
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert got.headers["repr-digest"] == f"sha-256=:{digest}:"
        assert got.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    # one blob per content, held by the content-addressed store
    store = ArtifactStore(api.settings.artifacts_dir)
    assert store.blob_path(hashlib.sha256(BIG).hexdigest()).read_bytes() == BIG
    assert _events(api, f"{RUN}/model/weights.bin") == [
        "TrackedArtifact.Created",
        "TrackedArtifact.Uploaded",
    ]
    with app_views(api) as views:
        entry = views.tracked_artifact(f"{RUN}/model/weights.bin")
    assert entry["size"] == len(BIG) and entry["uploaded_by"] == "contributor-bot"


def test_a_re_upload_is_another_uploaded_event_on_the_same_aggregate(api: Api) -> None:
    path = f"{RUN}/metrics.json"
    upload_ok(api, {path: b'{"acc": 0.5}'})
    upload_ok(api, {path: b'{"acc": 0.9}'})
    assert download(api, path).content == b'{"acc": 0.9}'
    assert _events(api, path) == [
        "TrackedArtifact.Created",
        "TrackedArtifact.Uploaded",
        "TrackedArtifact.Uploaded",
    ]
    with Ledger(api.settings) as ledger:
        artifact = ledger.load(TrackedArtifact, tracked_artifact_id(path), path)
    assert artifact.sha256 == hashlib.sha256(b'{"acc": 0.9}').hexdigest()


def test_uploads_and_deletes_are_audited_events_of_the_artifact(api: Api) -> None:
    path = f"{RUN}/model/MLmodel"
    upload_ok(api, {path: b"flavors: {}\n"})
    deleted = api.client.delete(f"{ARTIFACTS}/{path}", headers=api.auth("deployer"))
    assert deleted.status_code == 200
    trail = api.client.get(
        "/audit", params={"entity": f"artifact:{path}"}, headers=api.auth("reader")
    ).json()["items"]
    assert [(e["event_type"], e["actor"]) for e in trail] == [
        ("TrackedArtifact.Created", "contributor-bot"),
        ("TrackedArtifact.Uploaded", "contributor-bot"),
        ("TrackedArtifact.Deleted", "deployer-bot"),
    ]
    assert trail[1]["details"] == {
        "path": path,
        "sha256": hashlib.sha256(b"flavors: {}\n").hexdigest(),
        "size": 12,
    }
    uploads = api.client.get(
        "/audit", params={"event_type": "Uploaded"}, headers=api.auth("reader")
    ).json()["items"]
    assert [e["name"] for e in uploads] == [path]


def test_listings_are_shaped_like_mlflows(api: Api) -> None:
    upload_ok(
        api,
        {
            f"{RUN}/model/MLmodel": b"flavors: {}\n",
            f"{RUN}/model/empty.bin": b"",
            f"{RUN}/model/sub/vocab.txt": b"abc",
            f"{RUN}/notes.txt": b"12345",
            "1/other/artifacts/x": b"x",
        },
    )
    assert listing(api) == {"files": [{"path": "0", "is_dir": True}, {"path": "1", "is_dir": True}]}
    assert listing(api, "") == listing(api)
    assert listing(api, RUN) == {
        "files": [
            {"path": "model", "is_dir": True},
            {"path": "notes.txt", "is_dir": False, "file_size": 5},
        ]
    }
    assert listing(api, f"{RUN}/model/") == {
        "files": [
            {"path": "MLmodel", "is_dir": False, "file_size": 12},
            {"path": "empty.bin", "is_dir": False, "file_size": 0},
            {"path": "sub", "is_dir": True},
        ]
    }
    assert listing(api, "0/4f1c") == {}  # a prefix of a name is not a folder
    assert listing(api, "0/missing/artifacts") == {}
    assert listing(api, f"{RUN}/notes.txt") == {}  # a file, as MLflow answers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "%2e%2e/escape.txt"),
        ("PUT", "0/run/%2e%2e/%2e%2e/%2e%2e/escape.txt"),
        ("PUT", "/etc/passwd"),
        ("PUT", "0/run/a%5Cb.txt"),
        ("PUT", "0/run/a%00b.txt"),
        ("PUT", "0/" + "n" * 300),
        ("PUT", "0/" + "/".join(["d" * 200] * 12)),
        ("PUT", ""),
        ("PUT", "ledger/models/iris/1/model.onnx"),
        ("DELETE", "ledger/models/iris/1"),
        ("DELETE", "%2e%2e/x"),
        ("GET", "%2e%2e/%2e%2e/etc/passwd"),
    ],
)
def test_bad_paths_are_invalid_parameter_values(api: Api, method: str, path: str) -> None:
    head = api.head()
    answer = api.client.request(
        method, f"{ARTIFACTS}/{path}", content=b"data", headers=api.auth("contributor")
    )
    message = error(answer, 400, "INVALID_PARAMETER_VALUE")
    assert message and "Traceback" not in message
    assert api.head() == head


@pytest.mark.parametrize("path", ["../x", "/abs", "a\\b", "0/../../x"])
def test_a_bad_listing_path_is_refused(api: Api, path: str) -> None:
    answer = api.client.get(ARTIFACTS, params={"path": path}, headers=api.auth("reader"))
    error(answer, 400, "INVALID_PARAMETER_VALUE")


def test_only_contributors_upload_and_delete(api: Api) -> None:
    head = api.head()
    refused = upload(api, f"{RUN}/x.txt", b"x", role="reader")
    assert "reader" in error(refused, 403, "PERMISSION_DENIED")
    anonymous = api.client.put(f"{ARTIFACTS}/{RUN}/x.txt", content=b"x")
    error(anonymous, 401, "UNAUTHENTICATED")
    assert api.head() == head
    upload_ok(api, {f"{RUN}/x.txt": b"x"})
    gone = api.client.delete(f"{ARTIFACTS}/{RUN}/x.txt", headers=api.auth("reader"))
    error(gone, 403, "PERMISSION_DENIED")
    assert download(api, f"{RUN}/x.txt").content == b"x"
    error(api.client.get(f"{ARTIFACTS}/{RUN}/x.txt"), 401, "UNAUTHENTICATED")


def test_delete_a_file_or_a_folder(api: Api) -> None:
    upload_ok(
        api,
        {f"{RUN}/a.txt": b"a", f"{RUN}/model/b.txt": b"b", f"{RUN}/model/sub/c.txt": b"c"},
    )
    contributor = api.auth("contributor")
    assert api.client.delete(f"{ARTIFACTS}/{RUN}/a.txt", headers=contributor).json() == {}
    error(download(api, f"{RUN}/a.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert api.client.delete(f"{ARTIFACTS}/{RUN}/model", headers=contributor).status_code == 200
    assert listing(api, RUN) == {}
    assert _events(api, f"{RUN}/model/sub/c.txt")[-1] == "TrackedArtifact.Deleted"
    head = api.head()
    again = api.client.delete(f"{ARTIFACTS}/{RUN}/model", headers=contributor)
    assert again.status_code == 200 and api.head() == head  # nothing there: nothing written
    upload_ok(api, {f"{RUN}/a.txt": b"back"})  # a deleted path can be uploaded again
    assert download(api, f"{RUN}/a.txt").content == b"back"


def test_missing_files_and_folders_are_not_downloads(api: Api) -> None:
    upload_ok(api, {f"{RUN}/model/MLmodel": b"flavors: {}\n"})
    message = error(download(api, f"{RUN}/nothing.bin"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "nothing.bin" in message
    assert "folder" in error(download(api, f"{RUN}/model"), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("damage", ["flipped", "deleted", "truncated"])
def test_a_damaged_blob_is_refused_never_sent(api: Api, damage: str) -> None:
    data = os.urandom(200_000)
    upload_ok(api, {f"{RUN}/model/weights.bin": data})
    blob = ArtifactStore(api.settings.artifacts_dir).blob_path(hashlib.sha256(data).hexdigest())
    blob.chmod(0o644)
    if damage == "flipped":
        flipped = bytearray(data)
        flipped[-10] ^= 1
        blob.write_bytes(bytes(flipped))
    elif damage == "deleted":
        blob.unlink()
    else:
        blob.write_bytes(data[:1000])
    message = error(download(api, f"{RUN}/model/weights.bin"), 500, "DATA_LOSS")
    assert "weights.bin" in message and "ledger verify --artifacts" in message


def test_registered_versions_are_served_read_only_under_ledger_models(
    api: Api, tmp_path: Path
) -> None:
    files = {"MLmodel": b"flavors: {}\n", "model.pkl": os.urandom(5000), "sub/x.json": b"{}"}
    with Ledger(api.settings) as ledger:
        ledger.models.register_version("iris", write_tree(tmp_path / "v1", files))
        ledger.models.register_version("iris", write_tree(tmp_path / "v2", {"only.txt": b"2"}))
    api.client.app.state.services.sync_views()
    assert listing(api, "ledger/models/iris/1") == {
        "files": [
            {"path": "MLmodel", "is_dir": False, "file_size": 12},
            {"path": "model.pkl", "is_dir": False, "file_size": 5000},
            {"path": "sub", "is_dir": True},
        ]
    }
    assert listing(api, "ledger/models/iris/1/sub") == {
        "files": [{"path": "x.json", "is_dir": False, "file_size": 2}]
    }
    for path, data in files.items():
        got = download(api, f"ledger/models/iris/1/{path}")
        assert got.status_code == 200 and got.content == data
    assert download(api, "ledger/models/iris/2/only.txt").content == b"2"
    error(download(api, "ledger/models/iris/1/nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(download(api, "ledger/models/iris/9/MLmodel"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(download(api, "ledger/models/iris/x/MLmodel"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(download(api, "ledger/models/nope/1/MLmodel"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert listing(api, "ledger/models/iris/9") == {}
    assert listing(api, "ledger/models/iris/x") == {}
    error(download(api, "ledger/models/iris/1"), 400, "INVALID_PARAMETER_VALUE")

    with Ledger(api.settings) as ledger:
        ledger.models.delete_version("iris:1")
    api.client.app.state.services.sync_views()  # written by another process
    message = error(download(api, "ledger/models/iris/1/MLmodel"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "deleted" in message
    assert listing(api, "ledger/models/iris/1") == {}


def test_multipart_and_presigned_transfers_say_not_implemented(api: Api) -> None:
    created = api.client.post(
        "/api/2.0/mlflow-artifacts/mpu/create/0/run/artifacts",
        json={"path": "model.bin", "num_parts": 2},
        headers=api.auth("contributor"),
    )
    message = error(created, 501, "NOT_IMPLEMENTED")
    # the client falls back to one PUT when the message starts with this text
    from mlflow.exceptions import _UnsupportedMultipartUploadException

    assert message.startswith(_UnsupportedMultipartUploadException.MESSAGE)
    presigned = api.client.get("/api/2.0/mlflow-artifacts/presigned/0/run/artifacts/model.bin")
    error(presigned, 501, "NOT_IMPLEMENTED")
    unknown = api.client.get("/api/2.0/mlflow-artifacts/nothing-here")
    error(unknown, 404, "ENDPOINT_NOT_FOUND")


def test_an_upload_over_the_size_limit_leaves_nothing(store: StoreFactory) -> None:
    with running_api(store.settings(api_max_upload_mb=1)) as api:
        head = api.head()
        answer = upload(api, f"{RUN}/big.bin", chunks(os.urandom(2 * 1024 * 1024)))
        assert "over the limit" in error(answer, 413, "INVALID_PARAMETER_VALUE")
        assert api.head() == head
        assert listing(api, RUN) == {}
        leftovers = list((api.settings.artifacts_dir / "tmp").glob("*"))
        assert leftovers == [] and not (api.settings.artifacts_dir / "sha256").exists()
