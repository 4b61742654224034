"""What an artifact's files are called: file entries, sha256 digests, safe relative paths
and the ``file://`` URIs data assets are recorded by."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from ledger.errors import InvalidInputError

# What common filesystems hold: a name of up to 255 bytes, and a path well under
# PATH_MAX (4096) once the folder it is written into is prepended.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 2048

_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
_WINDOWS_DRIVE_RE = re.compile(r"[A-Za-z]:")


@dataclass(frozen=True)
class FileEntry:
    """One file of an artifact: where it goes (relative POSIX path) and what it holds."""

    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready form, the inverse of :meth:`from_dict`."""
        return {"path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FileEntry:
        """Build an entry from :meth:`to_dict` output, checking field types."""
        path, digest, size = data.get("path"), data.get("sha256"), data.get("size")
        if not isinstance(path, str) or not isinstance(digest, str):
            raise InvalidInputError(f"file entry needs string 'path' and 'sha256': {data!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInputError(f"file entry needs a non-negative integer 'size': {data!r}")
        return cls(path=path, sha256=check_digest(digest), size=size)


def check_digest(digest: str) -> str:
    """Return ``digest`` as lowercase hex, or raise InvalidInputError if it is no sha256."""
    normalised = digest.strip().lower()
    if not _DIGEST_RE.fullmatch(normalised):
        raise InvalidInputError(f"not a sha256 hex digest: {digest!r}")
    return normalised


def safe_relative_path(path: str) -> str:
    """Normalise a relative POSIX path, refusing anything that could escape its folder.

    Empty paths, absolute paths (``/x``, ``C:\\x``, ``\\\\server\\x``), backslashes and
    ``..`` components are refused with InvalidInputError; ``.`` components and repeated
    slashes are dropped (``"./a//b"`` becomes ``"a/b"``).
    """
    if not path or not path.strip():
        raise InvalidInputError("empty file path")
    if "\0" in path:
        raise InvalidInputError(f"file path contains a NUL character: {path!r}")
    if "\\" in path:
        raise InvalidInputError(f"file path must use '/' separators, not '\\': {path!r}")
    if path.startswith("/") or _WINDOWS_DRIVE_RE.match(path):
        raise InvalidInputError(f"file path must be relative, not absolute: {path!r}")
    parts = [part for part in PurePosixPath(path).parts if part != "."]
    if ".." in parts:
        raise InvalidInputError(f"file path must not contain '..': {path!r}")
    if not parts:
        raise InvalidInputError(f"file path names no file: {path!r}")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise InvalidInputError(
                f"file name is longer than {MAX_NAME_BYTES} bytes: {part[:40]!r}..."
            )
    relative = "/".join(parts)
    if len(relative.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise InvalidInputError(
            f"file path is longer than {MAX_PATH_BYTES} bytes: {path[:40]!r}..."
        )
    return relative


def check_no_clashes(paths: list[str]) -> None:
    """Refuse duplicate paths and a path used both as a file and as a folder."""
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise InvalidInputError(f"file path listed twice: {path!r}")
        seen.add(path)
    for path in paths:
        parent = PurePosixPath(path).parent
        while parent != PurePosixPath("."):
            if parent.as_posix() in seen:
                raise InvalidInputError(
                    f"{parent.as_posix()!r} is both a file and the folder of {path!r}"
                )
            parent = parent.parent


def local_path(uri: str) -> Path:
    """The path a ``file://`` URI names (data assets are recorded by URI)."""
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise InvalidInputError(f"not a local file URI: {uri!r}")
    return Path(unquote(parts.path))
