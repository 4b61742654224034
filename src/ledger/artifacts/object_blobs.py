"""Objects in an object store (S3, Azure Blob, Google Cloud Storage) through ``obstore``,
the Python bindings of the Rust ``object_store`` crate.

Small objects are one PUT; larger ones a multipart upload whose parts are sent as they
are read (a few parts in flight, never the whole object in memory).
Reads are one streamed GET. Credentials, regions and endpoints come from the usual
environment variables (``AWS_*``, ``AZURE_*``/``AZURITE_*``, ``GOOGLE_*``).

A store that cannot be used (unreachable once its retries are spent, credentials refused,
no such bucket) raises ArtifactStoreUnavailableError; a missing object is only ever
reported after the bucket itself was seen (a HEAD on a missing bucket is a plain 404).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import obstore
from obstore.exceptions import BaseError, NotFoundError, PermissionDeniedError, UnauthenticatedError

from ledger.artifacts.blobs import StoredObject
from ledger.artifacts.chunk_reader import ChunkReader
from ledger.errors import ArtifactStoreUnavailableError

if TYPE_CHECKING:
    from obstore.store import ObjectStore

PART_BYTES = 8 * 1024 * 1024  # a multipart upload's part; smaller objects are one PUT
PARTS_IN_FLIGHT = 4
READ_CHUNK_BYTES = 1024 * 1024
_MISSING = (NotFoundError, FileNotFoundError)
_STORE_ERRORS = (BaseError, OSError)  # obstore raises its own errors and built-in OSErrors


class ObjectBlobs:
    """The objects under a bucket's (container's) prefix; a key is a path below it."""

    def __init__(self, store: ObjectStore, url: str) -> None:
        self.store = store
        self.url = url
        self.local_root: Path | None = None
        self._bucket_seen = False

    def size(self, key: str) -> int | None:
        try:
            with self._guard():
                return int(obstore.head(self.store, key)["size"])
        except _MISSING:
            self._check_bucket()
            return None

    def reader(self, key: str) -> BinaryIO:
        try:
            with self._guard():
                result = obstore.get(self.store, key)
        except _MISSING:
            self._check_bucket()
            raise FileNotFoundError(key) from None
        chunks = iter(result.stream(min_chunk_size=READ_CHUNK_BYTES))
        raw = _ResponseReader(chunks, self._guard)
        return io.BufferedReader(raw, buffer_size=READ_CHUNK_BYTES)

    def write(self, key: str, chunks: Iterable[bytes | bytearray]) -> None:
        source = _Source(chunks)
        try:
            # The writer buffers one part: a smaller object is one PUT on close, a larger one
            # a multipart upload. An exception leaving the block aborts it (nothing written).
            with obstore.open_writer(
                self.store, key, buffer_size=PART_BYTES, max_concurrency=PARTS_IN_FLIGHT
            ) as writer:
                for chunk in source:
                    writer.write(chunk)
        except _STORE_ERRORS as error:
            if source.error is not None:  # the chunks' own (reading a file...), not the store's
                raise source.error from None  # (even when aborting the upload failed too)
            raise self._unavailable(error) from None

    def move(self, source: str, target: str) -> None:
        try:
            with self._guard():
                obstore.copy(self.store, source, target)
        except _MISSING:
            self._check_bucket()
            raise FileNotFoundError(source) from None
        self.delete(source)

    def delete(self, key: str) -> None:
        with contextlib.suppress(*_MISSING), self._guard():
            obstore.delete(self.store, key)

    def listing(self, prefix: str) -> Iterator[StoredObject]:
        with self._guard(missing_bucket=True):
            for batch in obstore.list(self.store, prefix=prefix.rstrip("/") or None):
                for meta in batch:
                    key = str(meta["path"])
                    if key.startswith(prefix):
                        yield StoredObject(key, int(meta["size"]), meta["last_modified"])

    # -- errors --------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self, *, missing_bucket: bool = False) -> Iterator[None]:
        """Turn the store's errors into ArtifactStoreUnavailableError; a missing object
        (FileNotFoundError) passes through unless ``missing_bucket`` says it means one."""
        try:
            yield
        except _MISSING as error:
            if missing_bucket:
                raise self._unavailable(error) from None
            raise
        except _STORE_ERRORS as error:
            raise self._unavailable(error) from None

    def _check_bucket(self) -> None:
        """Make sure the bucket exists before an object is said to be missing (once)."""
        if self._bucket_seen:
            return
        try:
            next(iter(obstore.list(self.store, chunk_size=1)), None)
        except _STORE_ERRORS as error:
            raise self._unavailable(error) from None
        self._bucket_seen = True

    def _unavailable(self, error: BaseException) -> ArtifactStoreUnavailableError:
        """The error for ``error``: a missing object where one cannot be (a write, a list,
        a read cut short) or a 404 of a listing means the bucket is missing."""
        cause = (str(error).splitlines() or [type(error).__name__])[0].strip()
        if isinstance(error, _MISSING) or "404 Not Found" in cause:
            problem = "its bucket (container) does not exist"
        elif isinstance(error, PermissionDeniedError | UnauthenticatedError) or any(
            status in cause for status in ("401 Unauthorized", "403 Forbidden")
        ):
            problem = "it refuses the credentials"
        else:
            problem = "it cannot be reached"
        return ArtifactStoreUnavailableError(
            f"the artifact store {self.url} is unavailable: {problem} ({cause})"
        )


class _Source:
    """A write's chunks, keeping the error their own iteration raised."""

    def __init__(self, chunks: Iterable[bytes | bytearray]) -> None:
        self._chunks = chunks
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes | bytearray]:
        try:
            yield from self._chunks
        except Exception as error:  # not GeneratorExit: dropped unfinished, it is closed
            self.error = error
            raise


class _ResponseReader(ChunkReader):
    """A GET's streamed response as a raw file; the store's errors go through ``guard``."""

    def __init__(self, chunks: Iterator[Any], guard: Any) -> None:
        super().__init__()
        self._chunks = chunks
        self._guard = guard

    def next_chunk(self) -> bytes | None:
        with self._guard(missing_bucket=True):  # gone mid-read: the store, not the key
            chunk = next(self._chunks, None)
        return None if chunk is None else bytes(chunk)
