"""Where an artifact store keeps its objects: the few operations both kinds of storage
(a local directory, an object store by URL) offer, by key (a relative ``/`` path)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class StoredObject:
    """One object of a listing: its key, size and when it was last written."""

    key: str
    size: int
    modified: datetime


class Blobs(Protocol):
    """Objects by key. Every write is atomic: a reader sees the whole object or none."""

    url: str
    """Where the objects are, as the URL that names the store (``file://``, ``s3://``...)."""

    local_root: Path | None
    """The directory the objects are files in, for a local store; None otherwise."""

    def size(self, key: str) -> int | None:
        """The object's size in bytes; None when there is no such object."""
        ...

    def reader(self, key: str) -> BinaryIO:
        """The object's bytes as a stream; FileNotFoundError when there is no such object."""
        ...

    def write(self, key: str, chunks: Iterable[bytes | bytearray]) -> None:
        """Write ``chunks`` as the object ``key`` (replacing one there). Should the chunks'
        iteration raise, the exception propagates and nothing is written."""
        ...

    def move(self, source: str, target: str) -> None:
        """Put the object ``source`` at ``target`` (replacing one there) and drop ``source``;
        FileNotFoundError when there is no object ``source``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; nothing happens when it is not there."""
        ...

    def listing(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix`` (a folder, ending in ``/``)."""
        ...
