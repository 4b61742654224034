"""Objects as files in a local directory: written to a temporary file beside them, synced,
then renamed into place, so a reader never sees a half-written object."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from ledger.artifacts.blobs import StoredObject

TMP = "tmp"  # temporary files, on the same filesystem as the objects


class LocalBlobs:
    """A directory of objects; a key is a path below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.local_root: Path | None = self.root
        self.url = self.root.resolve().as_uri()

    def path(self, key: str) -> Path:
        return self.root / key

    def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def reader(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise FileNotFoundError(key) from None

    def write(self, key: str, chunks: Iterable[bytes | bytearray]) -> None:
        stream, temp = create_temp(self.root / TMP, "upload")
        try:
            with stream:
                for chunk in chunks:
                    stream.write(chunk)
                sync(stream)
            target = self.path(key)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def move(self, source: str, target: str) -> None:
        destination = self.path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(source), destination)

    def adopt(self, path: Path, key: str) -> None:
        """Move the file ``path`` (on the same filesystem) in as the object ``key``."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def listing(self, prefix: str) -> Iterator[StoredObject]:
        below = not prefix or prefix.endswith("/")  # "": every object
        base = self.path(prefix) if below else self.path(prefix).parent
        if not base.is_dir():
            return
        for folder, _, names in os.walk(base):
            for name in sorted(names):
                path = Path(folder) / name
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    status = path.stat()
                except FileNotFoundError:  # removed meanwhile
                    continue
                modified = datetime.fromtimestamp(status.st_mtime, UTC)
                yield StoredObject(key, status.st_size, modified)


def create_temp(directory: Path, stem: str) -> tuple[BinaryIO, Path]:
    """Open a new, exclusively created temporary file in ``directory`` (umask applies)."""
    directory.mkdir(parents=True, exist_ok=True)
    while True:
        candidate = directory / f".{stem}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        return os.fdopen(fd, "wb"), candidate


def sync(stream: BinaryIO) -> None:
    """Flush ``stream`` and ask the disk to keep what it holds."""
    stream.flush()
    os.fsync(stream.fileno())
