"""Content-addressed artifact store: round trips, dedup and every refusal path."""

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


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
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
    blob = store.root / "sha256" / digest[:2] / digest
    assert blob.read_bytes() == BINARY
    assert store.has(digest)
    with store.open_blob(digest) as stream:
        assert stream.read() == BINARY
    assert store.verify(digest) == len(BINARY)
    assert not list((store.root / "tmp").iterdir()), "temporary file left behind"


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
    assert files_under(store.root) == {}, "nothing may be stored after a mismatch"


def test_put_file_dedups_identical_content(store: ArtifactStore, tmp_path: Path) -> None:
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(BINARY)
    second.write_bytes(BINARY)
    assert store.put_file(first) == store.put_file(second)
    blobs = files_under(store.root / "sha256")
    assert list(blobs.values()) == [BINARY]


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
    store.blob_path(digest).write_bytes(b"tampered")
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
    assert len(files_under(store.root / "sha256")) == 1


def test_put_tree_single_file_is_named_by_basename(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "deep" / "model.pkl"
    source.parent.mkdir()
    source.write_bytes(b"pickle")
    assert store.put_tree(source) == [FileEntry("model.pkl", sha(b"pickle"), 6)]


def test_put_tree_follows_symlink_inside_the_directory(
    store: ArtifactStore, tree: Path, tmp_path: Path
) -> None:
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
    store: ArtifactStore, tree: Path, tmp_path: Path, link_to: str
) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key.pem").write_bytes(b"private")
    link = tree / "sub" / "leak"
    link.symlink_to(outside / "key.pem" if link_to == "file" else outside)
    with pytest.raises(InvalidInputError, match="leak"):
        store.put_tree(tree)
    assert files_under(store.root) == {}, "a refused tree must store nothing"


def test_put_tree_refuses_symlink_loop(store: ArtifactStore, tree: Path) -> None:
    (tree / "sub" / "loop").symlink_to(tree)
    with pytest.raises(InvalidInputError, match="loop"):
        store.put_tree(tree)


def test_put_tree_refuses_missing_and_empty_sources(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such file or directory"):
        store.put_tree(tmp_path / "missing")
    empty = tmp_path / "empty"
    (empty / "nested").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match="no files"):
        store.put_tree(empty)


# -- materialize refusals ----------------------------------------------------------------


@pytest.fixture
def stored(store: ArtifactStore, tmp_path: Path) -> FileEntry:
    source = tmp_path / "payload.bin"
    source.write_bytes(BINARY)
    return store.put_tree(source)[0]


@pytest.mark.parametrize(
    "bad_path", ["../x", "a/../../x", "<absolute>", "C:\\evil", "C:/evil", "", "sub/.."]
)
def test_materialize_refuses_unsafe_paths_before_writing(
    store: ArtifactStore, stored: FileEntry, tmp_path: Path, bad_path: str
) -> None:
    dest = tmp_path / "work" / "out"
    absolute = tmp_path / "work" / "abs.bin"
    bad_path = bad_path.replace("<absolute>", str(absolute))
    good = FileEntry("good.bin", stored.sha256, stored.size)
    bad = FileEntry(bad_path, stored.sha256, stored.size)
    with pytest.raises(InvalidInputError):
        store.materialize([good, bad], dest)
    assert files_under(tmp_path / "work") == {}, "no file may be written when one path is bad"


def test_materialize_refuses_escape_through_existing_symlink(
    store: ArtifactStore, stored: FileEntry, tmp_path: Path
) -> None:
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
    store: ArtifactStore, stored: FileEntry, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "payload.bin").symlink_to(victim)
    with pytest.raises(InvalidInputError, match="outside"):
        store.materialize([stored], dest)
    assert victim.read_bytes() == b"keep me"


def test_materialize_refuses_duplicate_and_clashing_paths(
    store: ArtifactStore, stored: FileEntry, tmp_path: Path
) -> None:
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
    store.blob_path(weights.sha256).write_bytes(BINARY[:-1] + b"X")
    dest = tmp_path / "out"
    with pytest.raises(IntegrityViolationError) as caught:
        store.materialize(entries, dest)
    assert "sub/weights.bin" in str(caught.value)
    assert weights.sha256 in str(caught.value)
    assert not (dest / "sub" / "weights.bin").exists()
    assert [p.name for p in (dest / "sub").iterdir()] == [], "temporary file left behind"


def test_materialize_reports_missing_blob_before_writing(
    store: ArtifactStore, stored: FileEntry, tmp_path: Path
) -> None:
    missing = FileEntry("missing.bin", sha(b"never stored"), 12)
    dest = tmp_path / "out"
    with pytest.raises(NotFoundError, match=r"missing\.bin"):
        store.materialize([stored, missing], dest)
    assert files_under(dest) == {}


def test_a_stream_is_stored_once_and_synced_only_when_new(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload is read once into a blob; the same content again syncs nothing (its
    temporary file is dropped), and no temporary file stays behind either way."""
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
