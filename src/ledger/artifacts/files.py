"""Reading files in chunks: hashing them and listing a directory's files safely."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

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
    hasher = hashlib.sha256()
    size = 0
    for chunk in read_chunks(stream):
        hasher.update(chunk)
        size += len(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))
    return hasher.hexdigest(), size


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


def read_up_to(stream: BinaryIO, limit: int) -> bytes:
    """The stream's next ``limit`` bytes, or all it holds when that is less."""
    parts: list[bytes] = []
    size = 0
    while size < limit and (chunk := stream.read(min(CHUNK_SIZE, limit - size))):
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)
