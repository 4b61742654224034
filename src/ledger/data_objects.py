"""Data assets kept in object stores, named by URL (``s3://bucket/key.parquet``,
``az://container/key.csv``, ``gs://...``): opened with obstore on the URL's folder, then
digested, profiled and sketched as they stream past, never whole on disk or in memory
(Parquet through ranged reads of its footer and row groups, CSV front to back).

An executor that needs the data as a local file (a pipeline step, a batch job, an ONNX
conversion's sample rows) gets it with ``fetch_data``: streamed into a file of its own
and checked against the digest recorded at registration. Credentials, regions and
endpoints come from the usual environment variables, as for the artifact store.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from ledger.artifacts.files import hash_stream, write_checked
from ledger.artifacts.locations import OBJECT_STORE_SCHEMES, local_directory, open_blobs
from ledger.artifacts.paths import local_path
from ledger.data_formats import format_of
from ledger.errors import IntegrityViolationError, InvalidInputError
from ledger.outages import first_line

if TYPE_CHECKING:
    from ledger.artifacts.object_blobs import ObjectBlobs

RANGE_BUFFER_BYTES = 1 << 20  # what a random-access reader fetches at least per request


def is_data_url(source: object) -> bool:
    """Whether ``source`` names data by URL (``scheme://...``) rather than by path."""
    return isinstance(source, str) and "://" in source


def local_source(source: Path | str) -> Path | str:
    """A local path for a path or ``file://`` URL; an object store URL as it is."""
    if not is_data_url(source):
        return Path(source)
    assert isinstance(source, str)
    if urlsplit(source).scheme.lower() == "file":
        return local_directory(source)
    return source


class DataObject:
    """One object by URL: a DataFile (``ledger.data_profile``) read over the network."""

    def __init__(self, url: str, blobs: ObjectBlobs, key: str, meta: dict[str, Any]) -> None:
        self.url = self.label = url
        self.blobs = blobs
        self.key = self.name = key
        self.size = int(meta["size"])
        self._version = _version(meta)

    def sequential(self) -> BinaryIO:
        try:
            return self.blobs.reader(self.key)
        except FileNotFoundError:
            raise InvalidInputError(f"no such object: {self.url}") from None

    def random_access(self) -> BinaryIO:
        import obstore

        try:
            reader = obstore.open_reader(self.blobs.store, self.key, buffer_size=RANGE_BUFFER_BYTES)
        except FileNotFoundError:
            raise InvalidInputError(f"no such object: {self.url}") from None
        return io.BufferedReader(_Seekable(reader), buffer_size=RANGE_BUFFER_BYTES)

    def digest(self) -> str:
        """The sha256 of the object's bytes, streamed."""
        with self.sequential() as stream:
            return hash_stream(stream)[0]

    def check_unchanged(self) -> None:
        """Refuse an object that was replaced since it was opened (its ETag or size)."""
        if _version(_head(self.blobs, self.key, self.url)) != self._version:
            raise InvalidInputError(f"{self.url} changed while it was being read; try again")

    def fetch(self, folder: Path, expected_sha256: str) -> Path:
        """Stream the object into ``folder/<its name>``, checked against ``expected_sha256``
        (IntegrityViolationError, and no file left, when it no longer has it)."""
        target = folder / self.name

        def changed(_: str) -> Exception:
            return IntegrityViolationError(
                f"{self.url} changed since it was recorded: it no longer has sha256 "
                f"{expected_sha256}"
            )

        with self.sequential() as stream:
            write_checked(stream, target, expected_sha256, changed)
        return target


def open_data_object(url: str) -> DataObject:
    """The object ``url`` names, checked to exist. InvalidInputError for an unknown
    scheme, a URL that names no object, an unsupported format, or a missing object."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in OBJECT_STORE_SCHEMES:
        known = ", ".join(["file", *OBJECT_STORE_SCHEMES])
        raise InvalidInputError(f"unknown data URL scheme {scheme!r} in {url!r} (known: {known})")
    folder, _, name = url.rpartition("/")
    if not parts.netloc or not parts.path.strip("/") or not name:
        raise InvalidInputError(f"{url!r} names no object: give the URL of one CSV/Parquet file")
    format_of(url, name)  # refused before the store is asked anything
    blobs = open_blobs(folder)
    if blobs.local_root is not None:  # not an object store after all
        raise InvalidInputError(f"unknown data URL {url!r}")
    store: ObjectBlobs = blobs  # type: ignore[assignment]
    return DataObject(url, store, name, _head(store, name, url))


def data_source(source: Path | str) -> DataObject | Path:
    """What ``source`` names: an object by URL, opened (checked to exist), or a local
    path (a path, or a ``file://`` URL)."""
    source = local_source(source)
    return open_data_object(source) if isinstance(source, str) else source


def fetch_data(uri: str, expected_sha256: str, folder: Path) -> Path:
    """A data asset version's data as a local path: a ``file://`` URI's path as it is, an
    object streamed into ``folder`` and checked against ``expected_sha256``."""
    if urlsplit(uri).scheme.lower() == "file":
        return local_path(uri)
    return open_data_object(uri).fetch(folder, expected_sha256)


def _head(blobs: ObjectBlobs, key: str, url: str) -> dict[str, Any]:
    import obstore

    try:
        return dict(obstore.head(blobs.store, key))
    except FileNotFoundError:
        raise InvalidInputError(f"no such object: {url}") from None
    except Exception as error:  # obstore's errors: no access, no such bucket, no network
        raise InvalidInputError(f"cannot read {url}: {first_line(error)}") from None


def _version(meta: dict[str, Any]) -> tuple[Any, ...]:
    return meta.get("e_tag"), meta.get("version"), int(meta["size"])


class _Seekable(io.RawIOBase):
    """obstore's random-access reader as the seekable file pyarrow reads Parquet through."""

    def __init__(self, reader: Any) -> None:
        super().__init__()
        self._reader = reader

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._reader.seek(offset, whence))

    def tell(self) -> int:
        return int(self._reader.tell())

    def readinto(self, buffer: Any) -> int:
        data = memoryview(self._reader.read(len(buffer)))
        view = memoryview(buffer).cast("B")
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return bytes(self._reader.readall())
        return bytes(self._reader.read(size))

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()
