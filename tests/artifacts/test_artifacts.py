"""Content-addressed artifact store: round trips, dedup and every refusal path.

Tests of what the store keeps run on every kind of store (a local directory, a bucket on
moto's S3 server, a container on Azurite: the ``store`` fixture). Tests of the local
directory itself (temporary files, fsync calls) and of the folders files come from or go
to (symlinks, unsafe paths: the store is not read for those) use ``local_store`` only.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import pytest

from ledger.artifacts.files import hash_file
from ledger.artifacts.paths import FileEntry, safe_relative_path
from ledger.artifacts.store import ArtifactStore
from ledger.errors import IntegrityViolationError, InvalidInputError, NotFoundError
from tests.artifacts.damage import overwrite

BINARY = bytes(range(256)) * 4 + b"\x00\r\n\xff"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` by relative POSIX path (empty if root is missing)."""
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


def stored_objects(store: ArtifactStore) -> dict[str, bytes]:
    """Every object the store holds, by key, whatever kind of store it is."""
    found = {}
    for item in store.blobs.listing(""):
        with store.blobs.reader(item.key) as stream:
            found[item.key] = stream.read()
    return found


@pytest.fixture
def store(artifact_location: str, tmp_path: Path) -> ArtifactStore:
    """A fresh store: a local directory, an S3 bucket or an Azure container."""
    return ArtifactStore(artifact_location or tmp_path / "store")


@pytest.fixture
def local_store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Three files, one of them binary, one empty, one in a subfolder."""
    source = tmp_path / "model"
    (source / "sub").mkdir(parents=True)
    (source / "config.json").write_text('{"layers": 3}\n')
    (source / "empty.txt").write_bytes(b"")
    (source / "sub" / "weights.bin").write_bytes(BINARY)
    return source


# -- safe_relative_path ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("a/b.txt", "a/b.txt"), ("./a//b.txt", "a/b.txt"), ("a/./b/", "a/b"), ("x", "x")],
)
def test_safe_relative_path_normalises(raw: str, normalised: str) -> None:
    assert safe_relative_path(raw) == normalised


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("/etc/passwd", "absolute"),
        ("C:/Windows/x", "absolute"),
        ("c:x", "absolute"),
        ("C:\\Windows\\x", "'\\'"),
        ("\\\\server\\share", "'\\'"),
        ("a\\..\\b", "'\\'"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a/..", "'..'"),
        (".", "names no file"),
        ("a\0b", "NUL"),
    ],
)
def test_safe_relative_path_refuses(raw: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        safe_relative_path(raw)


# -- FileEntry ---------------------------------------------------------------------------


def test_file_entry_dict_round_trip() -> None:
    entry = FileEntry(path="sub/w.bin", sha256=sha(b"x"), size=1)
    assert entry.to_dict() == {"path": "sub/w.bin", "sha256": sha(b"x"), "size": 1}
    assert FileEntry.from_dict(entry.to_dict()) == entry


@pytest.mark.parametrize(
    "data",
    [
        {"path": "a", "sha256": "zz", "size": 1},
        {"path": "a", "sha256": "0" * 64, "size": -1},
        {"path": "a", "sha256": "0" * 64, "size": True},
        {"path": 3, "sha256": "0" * 64, "size": 1},
        {"sha256": "0" * 64, "size": 1},
    ],
)
def test_file_entry_from_dict_refuses_bad_fields(data: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        FileEntry.from_dict(data)


# -- put_file ----------------------------------------------------------------------------


def test_put_file_stores_blob_under_its_digest(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(BINARY)
    digest, size = store.put_file(source)
    assert (digest, size) == (sha(BINARY), len(BINARY))
    # nothing else is kept (no temporary object left behind)
    assert stored_objects(store) == {f"sha256/{digest[:2]}/{digest}": BINARY}
    assert store.has(digest) and store.size(digest) == len(BINARY)
    with store.open_blob(digest) as stream:
        assert stream.read() == BINARY
    assert store.verify(digest) == len(BINARY)


def test_put_file_hashes_in_chunks_larger_than_one_chunk(
    store: ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    assert store.put_file(source) == (sha(data), len(data))
    assert hash_file(source) == (sha(data), len(data))


def test_put_file_accepts_matching_expected_digest(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_bytes(b"hello")
    assert store.put_file(source, expected_sha256=sha(b"hello").upper())[0] == sha(b"hello")


def test_put_file_refuses_expected_digest_mismatch(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_bytes(b"hello")
    wrong = sha(b"something else")
    with pytest.raises(IntegrityViolationError) as caught:
        store.put_file(source, expected_sha256=wrong)
    assert wrong in str(caught.value)
    assert sha(b"hello") in str(caught.value)
    assert not store.has(sha(b"hello"))
    assert stored_objects(store) == {}, "nothing may be stored after a mismatch"


def test_put_file_dedups_identical_content(store: ArtifactStore, tmp_path: Path) -> None:
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(BINARY)
    second.write_bytes(BINARY)
    assert store.put_file(first) == store.put_file(second)
    assert list(stored_objects(store).values()) == [BINARY]


def test_open_blob_and_verify_report_missing_blob(store: ArtifactStore) -> None:
    with pytest.raises(NotFoundError):
        store.open_blob(sha(b"never stored"))
    with pytest.raises(NotFoundError):
        store.verify(sha(b"never stored"))
    with pytest.raises(InvalidInputError):
        store.has("not-a-digest")


def test_verify_detects_corrupted_blob(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"original")
    digest, _ = store.put_file(source)
    overwrite(store, digest, b"tampered")
    with pytest.raises(IntegrityViolationError, match=digest):
        store.verify(digest)


# -- put_tree / materialize round trip --------------------------------------------------


def test_tree_round_trips_byte_identical(store: ArtifactStore, tree: Path, tmp_path: Path) -> None:
    entries = store.put_tree(tree)
    assert [entry.path for entry in entries] == ["config.json", "empty.txt", "sub/weights.bin"]
    original = files_under(tree)
    for entry in entries:
        assert entry.sha256 == sha(original[entry.path])
        assert entry.size == len(original[entry.path])

    dest = tmp_path / "out"
    written = store.materialize(entries, dest)
    assert written == [dest / "config.json", dest / "empty.txt", dest / "sub" / "weights.bin"]
    assert files_under(dest) == original
    assert (dest / "empty.txt").stat().st_size == 0


def test_materialize_overwrites_existing_file(
    store: ArtifactStore, tree: Path, tmp_path: Path
) -> None:
    entries = store.put_tree(tree)
    dest = tmp_path / "out"
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "weights.bin").write_bytes(b"stale")
    store.materialize(entries, dest)
    assert (dest / "sub" / "weights.bin").read_bytes() == BINARY


def test_put_tree_dedups_identical_files(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "dup"
    (source / "x").mkdir(parents=True)
    (source / "a.bin").write_bytes(BINARY)
    (source / "x" / "b.bin").write_bytes(BINARY)
    entries = store.put_tree(source)
    assert entries[0].sha256 == entries[1].sha256
    assert len(stored_objects(store)) == 1


def test_put_tree_single_file_is_named_by_basename(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "deep" / "model.pkl"
    source.parent.mkdir()
    source.write_bytes(b"pickle")
    assert store.put_tree(source) == [FileEntry("model.pkl", sha(b"pickle"), 6)]


def test_put_tree_follows_symlink_inside_the_directory(
    local_store: ArtifactStore, tree: Path, tmp_path: Path
) -> None:
    store = local_store
    (tree / "alias.bin").symlink_to(tree / "sub" / "weights.bin")
    entries = store.put_tree(tree)
    by_path = {entry.path: entry for entry in entries}
    assert by_path["alias.bin"].sha256 == sha(BINARY)
    dest = tmp_path / "out"
    store.materialize(entries, dest)
    assert not (dest / "alias.bin").is_symlink()
    assert (dest / "alias.bin").read_bytes() == BINARY


@pytest.mark.parametrize("link_to", ["file", "dir"])
def test_put_tree_refuses_symlink_out_of_the_directory(
    local_store: ArtifactStore, tree: Path, tmp_path: Path, link_to: str
) -> None:
    store = local_store
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key.pem").write_bytes(b"private")
    link = tree / "sub" / "leak"
    link.symlink_to(outside / "key.pem" if link_to == "file" else outside)
    with pytest.raises(InvalidInputError, match="leak"):
        store.put_tree(tree)
    assert stored_objects(store) == {}, "a refused tree must store nothing"


def test_put_tree_refuses_symlink_loop(local_store: ArtifactStore, tree: Path) -> None:
    store = local_store
    (tree / "sub" / "loop").symlink_to(tree)
    with pytest.raises(InvalidInputError, match="loop"):
        store.put_tree(tree)


def test_put_tree_refuses_missing_and_empty_sources(
    local_store: ArtifactStore, tmp_path: Path
) -> None:
    store = local_store
    with pytest.raises(InvalidInputError, match="no such file or directory"):
        store.put_tree(tmp_path / "missing")
    empty = tmp_path / "empty"
    (empty / "nested").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match="no files"):
        store.put_tree(empty)


# -- materialize refusals ----------------------------------------------------------------


@pytest.fixture
def stored(local_store: ArtifactStore, tmp_path: Path) -> FileEntry:
    """A file in the local store, for refusals about the destination folder."""
    source = tmp_path / "payload.bin"
    source.write_bytes(BINARY)
    return local_store.put_tree(source)[0]


@pytest.mark.parametrize(
    "bad_path", ["../x", "a/../../x", "<absolute>", "C:\\evil", "C:/evil", "", "sub/.."]
)
def test_materialize_refuses_unsafe_paths_before_writing(
    local_store: ArtifactStore, stored: FileEntry, tmp_path: Path, bad_path: str
) -> None:
    store = local_store
    dest = tmp_path / "work" / "out"
    absolute = tmp_path / "work" / "abs.bin"
    bad_path = bad_path.replace("<absolute>", str(absolute))
    good = FileEntry("good.bin", stored.sha256, stored.size)
    bad = FileEntry(bad_path, stored.sha256, stored.size)
    with pytest.raises(InvalidInputError):
        store.materialize([good, bad], dest)
    assert files_under(tmp_path / "work") == {}, "no file may be written when one path is bad"


def test_materialize_refuses_escape_through_existing_symlink(
    local_store: ArtifactStore, stored: FileEntry, tmp_path: Path
) -> None:
    store = local_store
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "link").symlink_to(outside)
    good = FileEntry("good.bin", stored.sha256, stored.size)
    escaping = FileEntry("link/payload.bin", stored.sha256, stored.size)
    with pytest.raises(InvalidInputError, match="outside"):
        store.materialize([good, escaping], dest)
    assert files_under(outside) == {}
    assert not (dest / "good.bin").exists()


def test_materialize_refuses_file_symlink_pointing_out(
    local_store: ArtifactStore, stored: FileEntry, tmp_path: Path
) -> None:
    store = local_store
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "payload.bin").symlink_to(victim)
    with pytest.raises(InvalidInputError, match="outside"):
        store.materialize([stored], dest)
    assert victim.read_bytes() == b"keep me"


def test_materialize_refuses_duplicate_and_clashing_paths(
    local_store: ArtifactStore, stored: FileEntry, tmp_path: Path
) -> None:
    store = local_store
    twice = [stored, FileEntry("./" + stored.path, stored.sha256, stored.size)]
    with pytest.raises(InvalidInputError, match="twice"):
        store.materialize(twice, tmp_path / "a")
    clash = [FileEntry("x", stored.sha256, 1), FileEntry("x/y", stored.sha256, 1)]
    with pytest.raises(InvalidInputError, match="folder"):
        store.materialize(clash, tmp_path / "b")
    assert files_under(tmp_path / "a") == files_under(tmp_path / "b") == {}


def test_materialize_detects_corrupted_blob_without_partial_file(
    store: ArtifactStore, tree: Path, tmp_path: Path
) -> None:
    entries = store.put_tree(tree)
    weights = next(entry for entry in entries if entry.path == "sub/weights.bin")
    overwrite(store, weights.sha256, BINARY[:-1] + b"X")
    dest = tmp_path / "out"
    with pytest.raises(IntegrityViolationError) as caught:
        store.materialize(entries, dest)
    assert "sub/weights.bin" in str(caught.value)
    assert weights.sha256 in str(caught.value)
    assert not (dest / "sub" / "weights.bin").exists()
    assert [p.name for p in (dest / "sub").iterdir()] == [], "temporary file left behind"


def test_materialize_reports_missing_blob_before_writing(
    store: ArtifactStore, tmp_path: Path
) -> None:
    (tmp_path / "payload.bin").write_bytes(BINARY)
    stored = store.put_tree(tmp_path / "payload.bin")[0]
    missing = FileEntry("missing.bin", sha(b"never stored"), 12)
    dest = tmp_path / "out"
    with pytest.raises(NotFoundError, match=r"missing\.bin"):
        store.materialize([stored, missing], dest)
    assert files_under(dest) == {}


def test_a_stream_is_stored_once_and_synced_only_when_new(
    local_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload is read once into a blob; the same content again syncs nothing (its
    temporary file is dropped), and no temporary file stays behind either way."""
    store = local_store
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    first = store.put_stream(io.BytesIO(BINARY))
    assert first == (sha(BINARY), len(BINARY)) and len(synced) == 1
    assert store.put_stream(io.BytesIO(BINARY)) == first and len(synced) == 1
    assert store.blob_path(sha(BINARY)).read_bytes() == BINARY
    assert files_under(store.root / "tmp") == {}
    other = b"other content"
    assert store.put_stream(io.BytesIO(other)) == (sha(other), len(other)) and len(synced) == 2
