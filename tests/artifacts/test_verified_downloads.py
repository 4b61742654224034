"""Damaged blobs are never handed out as the registered content (issue 16, item 5).

Over HTTP: a problem response before any body for small files, missing or wrong-sized
blobs; for files too large to check first, `Repr-Digest` and a transfer cut off before its
end (observed on a real uvicorn server). `ledger verify --artifacts` names the damaged
versions; a CLI download of a damaged version leaves nothing behind. On the local
artifact store and on S3 and Azure (see conftest.py): there the damage is done to the
object in the bucket (rewritten with other bytes, or deleted).
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ledger.api import downloads
from ledger.artifacts.store import ArtifactStore
from ledger.ledger import Ledger
from ledger.settings import Settings
from tests.artifacts.damage import DAMAGES, Damage, flip_byte, flip_byte_in, truncate
from tests.artifacts.damage import delete as delete_blob
from tests.conftest import Api, Cli, StoreFactory, free_port


def _damage(settings: Settings, sha256: str, how: Damage) -> None:
    """Damage the blob in the settings' artifact store (a folder, a bucket, a container)."""
    how(ArtifactStore(settings.artifacts_location), sha256)


def _register(settings: Settings, name: str, files: dict[str, bytes], tmp: Path) -> dict[str, str]:
    """Register ``files`` as the next version of ``name``; return path -> sha256."""
    source = tmp / f"src-{name}-{time.monotonic_ns()}"
    for path, content in files.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_bytes(content)
    with Ledger(settings) as ledger:
        version = ledger.models.register_version(name, source)
    return {f["path"]: f["sha256"] for f in version.spec["files"]}


def _upload(api: Api, name: str, files: dict[str, bytes]) -> dict[str, str]:
    """Register ``files`` through the API; return path -> sha256."""
    created = api.client.post(
        f"/models/{name}/versions",
        files=[("files", (path, content)) for path, content in files.items()],
        headers=api.auth("contributor"),
    )
    assert created.status_code == 201, created.text
    return {f["path"]: f["sha256"] for f in created.json()["files"]}


def _problem(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 500, (response.status_code, response.content[:200])
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == downloads.ARTIFACT_DAMAGED
    assert fragment in body["detail"], body


SMALL = {"config.json": b'{"layers": 3}', "weights.bin": bytes(range(256)) * 64}


# -- small files: checked before the headers go out -------------------------------------


@pytest.mark.parametrize("kind", DAMAGES)
def test_damaged_small_file_is_a_problem_never_a_200(api: Api, kind: str) -> None:
    digests = _upload(api, "iris", SMALL)
    reader = api.auth("reader")
    intact = api.client.get("/models/iris/versions/1/files/weights.bin", headers=reader)
    assert intact.status_code == 200 and intact.content == SMALL["weights.bin"]
    expected = base64.b64encode(hashlib.sha256(SMALL["weights.bin"]).digest()).decode()
    assert intact.headers["repr-digest"] == f"sha-256=:{expected}:"

    _damage(api.settings, digests["weights.bin"], DAMAGES[kind])
    damaged = api.client.get("/models/iris/versions/1/files/weights.bin", headers=reader)
    _problem(damaged, "iris:1")
    assert "weights.bin" in damaged.json()["detail"]
    archive = api.client.get("/models/iris/versions/1/download", headers=reader)
    _problem(archive, "weights.bin")
    # the intact file of the same version is still served
    config = api.client.get("/models/iris/versions/1/files/config.json", headers=reader)
    assert config.status_code == 200 and config.content == SMALL["config.json"]


# -- large files: Repr-Digest, and an aborted transfer on a mismatch ----------------------


@contextmanager
def _uvicorn(settings: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    """The real app on a real uvicorn server (in a thread); yield its URL and reader auth."""
    import uvicorn

    from ledger.api import create_app

    with Ledger(settings) as ledger:
        token = ledger.tokens.create("reader-bot", "reader").secret
    port = free_port()
    config = uvicorn.Config(create_app(settings), port=port, log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ~100 KiB file counts as large; chunks are small so some bytes go out first."""
    monkeypatch.setattr(downloads, "VERIFY_BEFORE_SENDING", 32 * 1024)
    monkeypatch.setattr(downloads, "CHUNK", 16 * 1024)


LARGE = {"config.json": b"{}", "weights.bin": bytes(range(256)) * 400}  # 100 KiB


def _read_all(client: httpx.Client, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Status and body of a GET; raises httpx.TransportError when the body is cut off."""
    with client.stream("GET", url, headers=headers) as response:
        return response.status_code, response.read()


@pytest.mark.usefixtures("small_threshold")
def test_large_file_with_a_flipped_byte_is_cut_off(store: StoreFactory, tmp_path: Path) -> None:
    settings = store.settings()
    digests = _register(settings, "big", LARGE, tmp_path)
    url_of = "{}/models/big/versions/1/files/weights.bin".format
    with _uvicorn(settings) as (base, reader), httpx.Client(timeout=10) as client:
        with client.stream("GET", url_of(base), headers=reader) as response:
            assert response.status_code == 200
            expected = base64.b64encode(hashlib.sha256(LARGE["weights.bin"]).digest()).decode()
            assert response.headers["repr-digest"] == f"sha-256=:{expected}:"
            assert response.read() == LARGE["weights.bin"]

        _damage(settings, digests["weights.bin"], flip_byte)
        with client.stream("GET", url_of(base), headers=reader) as response:
            assert response.status_code == 200
            assert response.headers["repr-digest"] == f"sha-256=:{expected}:"
            received = bytearray()
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in response.iter_raw():
                    received += chunk
        # bytes before the damage went out, the damaged end never did
        assert 0 < len(received) < len(LARGE["weights.bin"])
        assert bytes(received) == LARGE["weights.bin"][: len(received)]


@pytest.mark.usefixtures("small_threshold")
@pytest.mark.parametrize("kind", ["truncated", "deleted"])
def test_large_missing_or_short_blob_is_a_problem_before_any_body(
    store: StoreFactory, tmp_path: Path, kind: str
) -> None:
    settings = store.settings()
    digests = _register(settings, "big", LARGE, tmp_path)
    _damage(settings, digests["weights.bin"], DAMAGES[kind])
    with _uvicorn(settings) as (base, reader), httpx.Client(timeout=10) as client:
        got = client.get(f"{base}/models/big/versions/1/files/weights.bin", headers=reader)
        _problem(got, "weights.bin")
        archive = client.get(f"{base}/models/big/versions/1/download", headers=reader)
        _problem(archive, "weights.bin")


@pytest.mark.usefixtures("small_threshold")
def test_zip_with_a_damaged_large_member_is_never_complete(
    store: StoreFactory, tmp_path: Path
) -> None:
    settings = store.settings()
    files = {**LARGE, "z-after.txt": b"last member"}
    digests = _register(settings, "big", files, tmp_path)
    url = "{}/models/big/versions/1/download".format
    with _uvicorn(settings) as (base, reader), httpx.Client(timeout=10) as client:
        status, intact = _read_all(client, url(base), reader)
        assert status == 200
        with zipfile.ZipFile(io.BytesIO(intact)) as archive:
            assert archive.testzip() is None and archive.read("weights.bin") == files["weights.bin"]

        _damage(settings, digests["weights.bin"], flip_byte)
        received = bytearray()
        with client.stream("GET", url(base), headers=reader) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in response.iter_raw():
                    received += chunk
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(bytes(received)))
    # the damaged bytes themselves never went out (the member's last chunk was held back)
    damaged = bytearray(files["weights.bin"])
    flip_byte_in(damaged)
    assert bytes(damaged[-14:-6]) not in received
    assert bytes(files["weights.bin"][:1024]) in received  # earlier chunks did


# -- ledger verify --artifacts ------------------------------------------------------------


def test_verify_artifacts_names_the_damaged_versions(
    cli: Cli, store: StoreFactory, tmp_path: Path
) -> None:
    settings = store.settings()
    first = _register(settings, "iris", SMALL, tmp_path)
    _register(settings, "iris", {"weights.bin": b"second version"}, tmp_path)
    third = _register(settings, "iris", {"weights.bin": b"third version"}, tmp_path)
    shared = _register(settings, "bert", SMALL, tmp_path)  # the same blobs as iris:1
    assert shared == first
    fine = cli("verify", "--artifacts")
    assert fine.code == 0, fine
    assert "OK" in fine.out and "match their digests" in fine.out

    _damage(settings, first["weights.bin"], flip_byte)
    _damage(settings, third["weights.bin"], delete_blob)
    with Ledger(settings) as ledger:
        ledger.models.archive_version("iris:1")
        ledger.models.delete_version("iris:3")  # deleted: no longer handed out, not reported
    damaged = cli("verify", "--artifacts")
    assert damaged.code == 1, damaged
    assert "model iris:1, file 'weights.bin'" in damaged.err
    assert "model bert:1, file 'weights.bin'" in damaged.err
    assert first["weights.bin"] in damaged.err and "iris:2" not in damaged.err
    assert "iris:3" not in damaged.err and "config.json" not in damaged.err

    report = cli("verify", "--artifacts", "--json")
    assert report.code == 1
    summary = report.json()
    assert isinstance(summary, dict) and summary["ok"] is True  # the chain itself is intact
    assert summary["artifacts"]["damaged_owners"] == ["model bert:1", "model iris:1"]
    assert {d["problem"] for d in summary["artifacts"]["damaged"]} == {"digest mismatch"}


def test_verify_artifacts_covers_pipeline_code(
    cli: Cli, store: StoreFactory, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("print('train')\n")
    settings = store.settings()
    with Ledger(settings) as ledger:
        spec = {"steps": [{"name": "train", "command": "python train.py"}]}
        ledger.assets.register_pipeline("training", spec, code_dir=code)
        digest = ledger.assets.pipeline_version("training")["content"]["code"]["files"][0]["sha256"]
    assert cli("verify", "--artifacts").code == 0
    _damage(settings, digest, truncate)
    damaged = cli("verify", "--artifacts")
    assert damaged.code == 1 and "pipeline training:1, file 'train.py'" in damaged.err


# -- the CLI download: all files or none ---------------------------------------------------


@pytest.mark.parametrize("kind", ["flipped", "truncated"])  # a missing blob was refused first
def test_cli_download_writes_all_files_or_none(
    cli: Cli, store: StoreFactory, tmp_path: Path, kind: str
) -> None:
    files = {"a.txt": b"first file, intact", "sub/b.txt": b"b\n", "weights.bin": b"w" * 9000}
    digests = _register(store.settings(), "iris", files, tmp_path)
    fresh, empty, existing = tmp_path / "fresh", tmp_path / "empty", tmp_path / "existing"
    empty.mkdir()
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    for dest in (fresh, empty, existing):  # new, empty and non-empty folders all work
        assert cli("model", "download", "iris:1", str(dest)).code == 0
        assert {p: (dest / p).read_bytes() for p in files} == files
    assert (existing / "notes.txt").read_text() == "mine"

    _damage(store.settings(), digests["weights.bin"], DAMAGES[kind])
    out = tmp_path / "downloads" / "iris"
    result = cli("model", "download", "iris:1", str(out))
    assert result.code == 1 and result.err.startswith("error: "), result
    assert "Traceback" not in result.err
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no partial folder left beside it either
    again = tmp_path / "again"
    again.mkdir()
    (again / "notes.txt").write_text("mine")
    assert cli("model", "download", "iris:1", str(again)).code == 1
    assert sorted(p.name for p in again.iterdir()) == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_download_into_a_folder_that_cannot_take_the_files_moves_nothing(tmp_path: Path) -> None:
    from ledger.artifact_integrity import materialize_all_or_nothing
    from ledger.errors import InvalidInputError

    artifacts = ArtifactStore(tmp_path / "artifacts")
    source = tmp_path / "model"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("a")
    (source / "sub" / "b.txt").write_text("b")
    entries = artifacts.put_tree(source)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").write_text("a file where the folder goes")
    with pytest.raises(InvalidInputError, match="in the way"):
        materialize_all_or_nothing(artifacts, entries, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["sub"]  # a.txt was not moved in
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "sub").unlink()
    (dest / "sub").symlink_to(outside)
    with pytest.raises(InvalidInputError, match="outside"):
        materialize_all_or_nothing(artifacts, entries, dest)
    assert list(outside.iterdir()) == [] and not (dest / "a.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
