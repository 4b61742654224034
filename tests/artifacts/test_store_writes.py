"""How the artifact store writes, on every kind of store (a local directory, S3 on moto,
Azure on Azurite): a small stream goes straight to its blob, a larger one through a
temporary key; a local put_file reads its file once; nothing temporary stays behind;
materialize checks every blob first and writes verified copies, not synced."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from ledger.artifacts import store as store_module
from ledger.artifacts.paths import FileEntry
from ledger.artifacts.store import ArtifactStore
from ledger.errors import IntegrityViolationError, InvalidInputError, NotFoundError

SMALL = 64 * 1024  # the small-stream limit in these tests (8 MiB in the store)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def artifacts(
    artifact_location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ArtifactStore:
    monkeypatch.setattr(store_module, "SMALL_STREAM_BYTES", SMALL)
    return ArtifactStore(artifact_location or tmp_path / "store")


def moves(artifacts: ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The store's moves from now on, as (source, target) keys."""
    seen: list[tuple[str, str]] = []
    real = artifacts.blobs.move

    def move(source: str, target: str) -> None:
        seen.append((source, target))
        real(source, target)

    monkeypatch.setattr(artifacts.blobs, "move", move)
    return seen


def leftovers(artifacts: ArtifactStore) -> list[str]:
    return [stored.key for stored in artifacts.blobs.listing("tmp/")]


class ShortReads(io.RawIOBase):
    """A stream that hands out at most 1,000 bytes a read, as a socket may."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), 1000, len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


@pytest.mark.parametrize("size", [0, 1, SMALL])
def test_a_small_stream_goes_straight_to_its_blob(
    artifacts: ArtifactStore, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    data = os.urandom(size)
    moved = moves(artifacts, monkeypatch)
    assert artifacts.put_stream(io.BytesIO(data)) == (sha(data), size)
    assert artifacts.put_stream(io.BytesIO(data)) == (sha(data), size)  # stored once
    with artifacts.open_blob(sha(data)) as stream:
        assert stream.read() == data
    assert moved == [] and leftovers(artifacts) == []


def test_a_larger_stream_is_moved_to_its_blob_once(
    artifacts: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(SMALL + 1)
    moved = moves(artifacts, monkeypatch)
    assert artifacts.put_stream(io.BytesIO(data)) == (sha(data), SMALL + 1)
    assert artifacts.put_stream(io.BytesIO(data)) == (sha(data), SMALL + 1)  # dropped
    assert [target for _, target in moved] == [f"sha256/{sha(data)[:2]}/{sha(data)}"]
    assert moved[0][0].startswith("tmp/")
    assert artifacts.verify(sha(data)) == SMALL + 1
    assert leftovers(artifacts) == []


@pytest.mark.parametrize("size", [SMALL - 1, 3 * SMALL + 5])
def test_a_stream_of_short_reads_is_stored_whole(artifacts: ArtifactStore, size: int) -> None:
    data = os.urandom(size)
    assert artifacts.put_stream(io.BufferedReader(ShortReads(data))) == (sha(data), size)
    assert artifacts.verify(sha(data)) == size


def test_put_file_reports_each_byte_once_and_stores_it_once(
    artifacts: ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    progress: list[tuple[int, int]] = []
    entries = artifacts.put_tree(source, on_progress=lambda *counts: progress.append(counts))
    assert [(entry.sha256, entry.size) for entry in entries] == [(sha(data), len(data))]
    assert progress[-1] == (len(data), len(data))
    assert [done for done, _ in progress] == sorted({done for done, _ in progress})
    assert artifacts.put_file(source) == (sha(data), len(data))  # again: nothing new
    assert [stored.key for stored in artifacts.blobs.listing("sha256/")] == [
        f"sha256/{sha(data)[:2]}/{sha(data)}"
    ]
    assert leftovers(artifacts) == []


def test_put_file_refuses_a_wrong_digest_even_for_stored_content(
    artifacts: ArtifactStore, tmp_path: Path
) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"content")
    wrong = sha(b"other")
    with pytest.raises(IntegrityViolationError, match=f"{source}.*{wrong}"):
        artifacts.put_file(source, expected_sha256=wrong)
    assert not artifacts.has(sha(b"content")) and leftovers(artifacts) == []
    artifacts.put_file(source)
    with pytest.raises(IntegrityViolationError, match=wrong):
        artifacts.put_file(source, expected_sha256=wrong)


def test_a_local_put_file_reads_its_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locally a staged write costs what hashing first would: the file is not hashed
    before it is written."""
    artifacts = ArtifactStore(tmp_path / "store")
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(100_000))
    opened: list[Path] = []
    real_open = Path.open

    def counting_open(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path == source:
            opened.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_open)
    digest, _ = artifacts.put_file(source)
    assert len(opened) == 1
    assert artifacts.blob_path(digest).read_bytes() == source.read_bytes()


def test_materialized_copies_are_verified_but_not_synced(
    artifacts: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A materialized file is a copy of a blob the store keeps: verified, not synced (for
    small files the sync took as long as the download)."""
    data = os.urandom(SMALL * 3)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    entries = artifacts.put_tree(source)
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    dest = tmp_path / "out"
    assert artifacts.materialize(entries, dest) == [dest / "weights.bin"]
    assert (dest / "weights.bin").read_bytes() == data and synced == []


def test_materialize_finds_a_missing_blob_among_many_before_writing(
    artifacts: ArtifactStore, tmp_path: Path
) -> None:
    """The blobs' presence is checked (on an object store several at a time) before any
    file is written; an unsafe path is refused before any blob is asked for."""
    sources = tmp_path / "model"
    sources.mkdir()
    for i in range(12):
        (sources / f"part-{i:02d}.bin").write_bytes(os.urandom(100 + i))
    entries = artifacts.put_tree(sources)
    missing = FileEntry("part-99.bin", sha(b"never stored"), 12)
    dest = tmp_path / "out"
    with pytest.raises(NotFoundError, match=r"part-99\.bin"):
        artifacts.materialize([*entries[:6], missing, *entries[6:]], dest)
    assert not dest.exists() or not any(dest.rglob("*"))
    with pytest.raises(InvalidInputError, match="must not contain"):
        artifacts.materialize([missing, FileEntry("../x", entries[0].sha256, 100)], dest)
    assert len(artifacts.materialize(entries, dest)) == 12
    assert sorted(path.name for path in dest.iterdir()) == [entry.path for entry in entries]
