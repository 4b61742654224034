"""Reading files in chunks: hashing them (while copying) and listing a directory's files
safely."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ledger.artifacts.local_blobs import create_temp, sync
from ledger.artifacts.paths import safe_relative_path
from ledger.errors import InvalidInputError

CHUNK_SIZE = 1024 * 1024
"""Bytes read at a time when hashing or copying; files are never read whole."""


ProgressCallback = Callable[[int], None]
"""Called with the number of bytes just processed."""


def hash_file(path: Path, on_bytes: ProgressCallback | None = None) -> tuple[str, int]:
    """Return ``(sha256 hex digest, size in bytes)`` of a file, read in chunks."""
    with path.open("rb") as stream:
        return hash_stream(stream, on_bytes)


def hash_stream(stream: BinaryIO, on_bytes: ProgressCallback | None = None) -> tuple[str, int]:
    """Return ``(sha256 hex digest, size in bytes)`` of what ``stream`` holds, read in chunks."""
    hashed = HashedChunks(read_chunks(stream), on_bytes)
    for _ in hashed:
        pass
    return hashed.hexdigest(), hashed.size


def copy_hashing(reader: BinaryIO, stream: BinaryIO) -> tuple[str, int]:
    """Copy what ``reader`` holds into ``stream``, hashing it; return digest, size."""
    hashed = HashedChunks(read_chunks(reader))
    for chunk in hashed:
        stream.write(chunk)
    return hashed.hexdigest(), hashed.size


def write_checked(
    reader: BinaryIO,
    target: Path,
    expected: str,
    mismatch: Callable[[str], Exception],
    *,
    durable: bool = True,
) -> None:
    """Copy what ``reader`` holds into the file ``target`` (its folder made if need be),
    hashing it: written beside it, synced (unless not ``durable``: a copy that can be made
    again), and moved into place only when it hashes to ``expected``; else
    ``mismatch(actual digest)`` is raised and no file is left."""
    stream, temp = create_temp(target.parent, "ledger-copy")
    try:
        with stream:
            digest, _ = copy_hashing(reader, stream)
            if durable:
                sync(stream)
        if digest != expected:
            raise mismatch(digest)
        temp.replace(target)
    finally:
        temp.unlink(missing_ok=True)


class HashedChunks:
    """Chunks, hashed (and counted to ``on_bytes``) as they are handed out: once iterated,
    ``hexdigest()`` and ``size`` describe what was read."""

    def __init__(
        self, chunks: Iterable[bytes | bytearray], on_bytes: ProgressCallback | None = None
    ) -> None:
        self._chunks = chunks
        self._on_bytes = on_bytes
        self._hasher = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes | bytearray]:
        for chunk in self._chunks:
            self._hasher.update(chunk)
            self.size += len(chunk)
            if self._on_bytes is not None:
                self._on_bytes(len(chunk))
            yield chunk

    def hexdigest(self) -> str:
        """The sha256 (hex) of the bytes handed out so far."""
        return self._hasher.hexdigest()


def scan_tree(source: Path) -> list[tuple[str, Path]]:
    """List the regular files under directory ``source`` as sorted ``(relative path, path)``.

    Symlinks are followed when their target stays inside ``source``; a symlink pointing
    outside it (or a directory loop) is refused with InvalidInputError naming the link.
    Other special files (sockets, FIFOs, devices) are skipped.
    """
    found: list[tuple[str, Path]] = []
    _scan_directory(source, source, "", (source,), found)
    found.sort(key=lambda item: item[0])
    return found


def _scan_directory(
    directory: Path,
    source: Path,
    prefix: str,
    ancestors: tuple[Path, ...],
    found: list[tuple[str, Path]],
) -> None:
    with os.scandir(directory) as listing:
        children = sorted(listing, key=lambda child: child.name)
    for child in children:
        relative = safe_relative_path(prefix + child.name)
        path = Path(child.path)
        if child.is_symlink():
            is_dir, is_file = _follow_symlink(path, source, ancestors)
        else:
            # Not a link: the directory listing already knows the type (no stat call).
            is_dir = child.is_dir(follow_symlinks=False)
            is_file = not is_dir and child.is_file(follow_symlinks=False)
        if is_dir:
            _scan_directory(path, source, relative + "/", (*ancestors, path), found)
        elif is_file:
            found.append((relative, path))


def _follow_symlink(link: Path, source: Path, ancestors: tuple[Path, ...]) -> tuple[bool, bool]:
    """Check a symlink stays inside ``source`` and makes no loop; return (is_dir, is_file).

    Only links need real paths resolved, so plain trees are scanned without it.
    """
    real = link.resolve()
    if not real.exists():
        raise InvalidInputError(f"broken symlink: {link}")
    if not real.is_relative_to(source.resolve()):
        raise InvalidInputError(f"symlink points outside the artifact directory: {link} -> {real}")
    is_dir = real.is_dir()
    if is_dir and real in {ancestor.resolve() for ancestor in ancestors}:
        raise InvalidInputError(f"symlink makes a directory loop: {link}")
    return is_dir, not is_dir and real.is_file()


def read_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """The stream's bytes, CHUNK_SIZE at a time."""
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


def read_up_to(stream: BinaryIO, limit: int) -> bytearray:
    """The stream's next ``limit`` bytes, or all it holds when that is less (in one buffer,
    not a list of chunks joined: the bytes are held once)."""
    buffer = bytearray()
    while len(buffer) < limit and (chunk := stream.read(min(CHUNK_SIZE, limit - len(buffer)))):
        buffer += chunk
    return buffer
