"""Artifact stores by URL: what only object stores do (multipart uploads, a GCS store built
from its URL) and how a store that cannot be used is reported: unreachable, refusing the
credentials, or without its bucket. Each is ArtifactStoreUnavailableError, never a
missing blob (that would read as damage) and never obstore's own error."""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from obstore.store import GCSStore

from ledger.artifacts.locations import open_blobs
from ledger.artifacts.object_blobs import PART_BYTES, ObjectBlobs
from ledger.artifacts.paths import FileEntry
from ledger.artifacts.store import ArtifactStore, blob_key
from ledger.errors import ArtifactStoreUnavailableError, IntegrityViolationError
from tests.conftest import free_port
from tests.object_stores import ObjectStoreServer


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_gs_url_opens_a_gcs_store_without_reaching_it() -> None:
    """gs:// is not tested against a server (there is no GCS emulator here): this checks
    only that the URL makes a GCS store of that bucket and prefix (no request is sent)."""
    for url in ("gs://models-bucket/team/artifacts", "gcs://models-bucket/team/artifacts"):
        blobs = open_blobs(url)
        assert isinstance(blobs, ObjectBlobs) and blobs.url == url
        assert isinstance(blobs.store, GCSStore)
        assert blobs.store.config["bucket"] == "models-bucket"
        assert blobs.store.prefix == "team/artifacts"
        assert blobs.local_root is None


def test_a_large_stream_is_one_multipart_upload_or_nothing(
    artifact_location: str, tmp_path: Path
) -> None:
    """Over one part: parts are sent while the stream is read; a digest mismatch found at
    the end aborts the upload, so nothing is stored under any key."""
    store = ArtifactStore(artifact_location or tmp_path / "store")
    data = (bytes(range(256)) * (PART_BYTES // 256 + 1))[: 2 * PART_BYTES + 1234]
    with pytest.raises(IntegrityViolationError):
        store.put_stream(io.BytesIO(data), expected_sha256=sha(b"other"))
    assert list(store.blobs.listing("")) == []
    assert store.put_stream(io.BytesIO(data), expected_sha256=sha(data)) == (sha(data), len(data))
    assert [item.key for item in store.blobs.listing("")] == [blob_key(sha(data))]
    assert store.verify(sha(data)) == len(data)


def test_an_error_of_the_chunks_themselves_is_raised_as_it_is(
    artifact_location: str, tmp_path: Path
) -> None:
    """Not taken for the store's own failure: nothing is written, the error is the same."""
    blobs = ArtifactStore(artifact_location or tmp_path / "store").blobs

    def failing() -> Iterator[bytes]:
        yield b"some bytes"
        raise OSError("the source disk failed")

    with pytest.raises(OSError, match="the source disk failed") as caught:
        blobs.write("sha256/00/x", failing())
    assert not isinstance(caught.value, ArtifactStoreUnavailableError)
    assert [item.key for item in blobs.listing("")] == []


# -- a store that cannot be used ----------------------------------------------------------

MISSING_BUCKET = r"unavailable: its bucket \(container\) does not exist"


@pytest.fixture
def unreachable_s3(monkeypatch: pytest.MonkeyPatch) -> str:
    """An S3 location whose endpoint is a closed port (as a stopped server is)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return "s3://ledger-gone/artifacts"


def test_an_unreachable_store_is_unavailable_after_its_retries(
    unreachable_s3: str, tmp_path: Path
) -> None:
    store = ArtifactStore(unreachable_s3, retry_s=0.3)
    source = tmp_path / "f.bin"
    source.write_bytes(b"payload")
    entry = FileEntry("f.bin", sha(b"payload"), 7)
    calls = {
        "has": lambda: store.has(sha(b"payload")),
        "open_blob": lambda: store.open_blob(sha(b"payload")),
        "put_file": lambda: store.put_file(source),
        "put_stream": lambda: store.put_stream(io.BytesIO(b"payload")),
        "materialize": lambda: store.materialize([entry], tmp_path / "out"),
        "listing": lambda: list(store.blobs.listing("")),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(ArtifactStoreUnavailableError) as caught:
            call()
        assert time.monotonic() - started < 10, f"{name} kept retrying"
        message = str(caught.value)
        assert message.startswith(f"the artifact store {unreachable_s3} is unavailable"), name
        assert "it cannot be reached" in message and "\n" not in message, name
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["s3", "az"])
def test_a_missing_bucket_is_unavailable_not_an_empty_store(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> None:
    server: ObjectStoreServer = request.getfixturevalue(
        "s3_server" if kind == "s3" else "azure_server"
    )
    existing = server.new_location()
    bucket = existing.split("/")[2]
    location = existing.replace(bucket, f"ledger-never-made-{uuid.uuid4().hex[:8]}")
    store = ArtifactStore(location)
    for call in (
        lambda: store.has(sha(b"x")),
        lambda: store.open_blob(sha(b"x")),
        lambda: store.put_stream(io.BytesIO(b"x")),
        lambda: store.put_stream(io.BytesIO(b"x"), expected_sha256=sha(b"x")),
        lambda: list(store.blobs.listing("")),
    ):
        with pytest.raises(ArtifactStoreUnavailableError, match=MISSING_BUCKET):
            call()


def test_refused_credentials_are_unavailable(
    azure_server: ObjectStoreServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = azure_server.new_location()
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "bm90IHRoZSBrZXk=")  # not Azurite's key
    store = ArtifactStore(location)
    for call in (lambda: store.has(sha(b"x")), lambda: store.put_stream(io.BytesIO(b"x"))):
        with pytest.raises(ArtifactStoreUnavailableError, match="refuses the credentials"):
            call()
