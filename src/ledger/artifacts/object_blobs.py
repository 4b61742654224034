"""Objects in an object store (S3, Azure Blob, Google Cloud Storage) through ``obstore``,
the Python bindings of the Rust ``object_store`` crate.

Small objects are one PUT; larger ones a multipart upload whose parts are sent as they
are read (a few parts in flight, never the whole object in memory).
Reads are one streamed GET. Credentials, regions and endpoints come from the usual
environment variables (``AWS_*``, ``AZURE_*``/``AZURITE_*``, ``GOOGLE_*``).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import obstore
from obstore.exceptions import NotFoundError

from ledger.artifacts.blobs import StoredObject

if TYPE_CHECKING:
    from obstore.store import ObjectStore

PART_BYTES = 8 * 1024 * 1024  # a multipart upload's part; smaller objects are one PUT
PARTS_IN_FLIGHT = 4
READ_CHUNK_BYTES = 1024 * 1024


class ObjectBlobs:
    """The objects under a bucket's (container's) prefix; a key is a path below it."""

    def __init__(self, store: ObjectStore, url: str) -> None:
        self.store = store
        self.url = url
        self.local_root: Path | None = None

    def size(self, key: str) -> int | None:
        try:
            return int(obstore.head(self.store, key)["size"])
        except (NotFoundError, FileNotFoundError):
            return None

    def reader(self, key: str) -> BinaryIO:
        try:
            result = obstore.get(self.store, key)
        except (NotFoundError, FileNotFoundError):
            raise FileNotFoundError(key) from None
        chunks = iter(result.stream(min_chunk_size=READ_CHUNK_BYTES))
        return io.BufferedReader(_ChunkReader(chunks), buffer_size=READ_CHUNK_BYTES)

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        # The writer buffers one part: a smaller object is one PUT on close, a larger one
        # a multipart upload. An exception leaving the block aborts it (nothing written).
        with obstore.open_writer(
            self.store, key, buffer_size=PART_BYTES, max_concurrency=PARTS_IN_FLIGHT
        ) as writer:
            for chunk in chunks:
                writer.write(chunk)

    def move(self, source: str, target: str) -> None:
        try:
            obstore.copy(self.store, source, target)
        except NotFoundError:
            raise FileNotFoundError(source) from None  # as a local store says it
        self.delete(source)

    def delete(self, key: str) -> None:
        with contextlib.suppress(NotFoundError, FileNotFoundError):
            obstore.delete(self.store, key)

    def listing(self, prefix: str) -> Iterator[StoredObject]:
        for batch in obstore.list(self.store, prefix=prefix.rstrip("/") or None):
            for meta in batch:
                key = str(meta["path"])
                if key.startswith(prefix):
                    yield StoredObject(key, int(meta["size"]), meta["last_modified"])


class _ChunkReader(io.RawIOBase):
    """A stream of chunks as a raw file: ``readinto`` hands out what the next chunk holds."""

    def __init__(self, chunks: Iterator[Any]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(bytes(chunk))
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count
