"""Streaming a model version's files: one file as stored, or all of them as a zip."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from typing import Any

from ledger.artifacts import ArtifactStore
from ledger.errors import IntegrityViolationError

CHUNK = 1 << 20


def stream_blob(store: ArtifactStore, digest: str) -> Iterator[bytes]:
    """The blob's bytes; if they do not hash to ``digest`` the stream is cut off."""
    hasher = hashlib.sha256()
    with store.open_blob(digest) as stream:
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
            yield chunk
    if hasher.hexdigest() != digest:
        raise IntegrityViolationError(f"blob {digest} is corrupted; run `ledger verify`")


class _Buffer:
    """A write-only file for zipfile whose contents are taken as they are written."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def stream_zip(store: ArtifactStore, files: list[dict[str, Any]]) -> Iterator[bytes]:
    """A zip of ``files`` (stored, not compressed: model weights rarely shrink), streamed."""
    buffer = _Buffer()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[call-overload]
        for entry in files:
            info = zipfile.ZipInfo(entry["path"])
            info.file_size = entry["size"]
            with archive.open(info, "w", force_zip64=entry["size"] > 2**31) as member:
                for chunk in stream_blob(store, entry["sha256"]):
                    member.write(chunk)
                    yield buffer.take()
            yield buffer.take()
    yield buffer.take()
