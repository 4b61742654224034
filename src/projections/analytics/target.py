"""Where a Parquet export goes: any artifact store URL (a directory, ``file://``, ``s3://``,
``az://``, ``gs://``), written through ``ledger.artifacts`` one whole object at a time."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ledger.artifacts.blobs import Blobs
from ledger.artifacts.locations import open_blobs
from ledger.errors import ArtifactStoreUnavailableError, InvalidInputError, LedgerError

PROBE = "_export.probe"
COMPRESSION = "zstd"


class ExportTargetError(LedgerError):
    """The export's target cannot be read or written (no such bucket, no permission...)."""


def target_error(doing: str, error: BaseException) -> ExportTargetError:
    """``cannot <doing>: <error's type>: <its first line>``."""
    text = str(error).strip()
    message = text.splitlines()[0] if text else ""
    return ExportTargetError(f"cannot {doing}: {type(error).__name__}: {message}")


class ExportTarget:
    """The objects of an export, by key; every failure is an ``ExportTargetError``."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.blobs: Blobs = open_blobs(location)

    @property
    def url(self) -> str:
        return self.blobs.url

    @contextmanager
    def _io(self, doing: str) -> Iterator[None]:
        try:
            yield
        except ArtifactStoreUnavailableError as error:
            raise ExportTargetError(f"cannot {doing} {self.location}: {error}") from None
        except OSError as error:  # a local directory's
            raise target_error(f"{doing} {self.location}", error) from None

    def probe(self) -> None:
        """Fail now, before any work, when the target cannot be written."""
        with self._io("write to"):
            self.blobs.write(PROBE, [b"ledger export\n"])
            self.blobs.delete(PROBE)

    def exists(self, key: str) -> bool:
        with self._io("read"):
            return self.blobs.size(key) is not None

    def keys(self, prefix: str) -> list[str]:
        with self._io("list"):
            return [found.key for found in self.blobs.listing(prefix)]

    def read_json(self, key: str) -> Any | None:
        """The object's JSON, or None when there is no such object."""
        with self._io("read"):
            try:
                with self.blobs.reader(key) as stream:
                    data = stream.read()
            except FileNotFoundError:
                return None
        try:
            return json.loads(data)
        except ValueError:
            raise InvalidInputError(f"{self.location} holds a {key} that is not JSON") from None

    def write_json(self, key: str, data: Any) -> None:
        with self._io("write to"):
            self.blobs.write(key, [json.dumps(data, indent=2).encode() + b"\n"])

    def write_parquet(self, key: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression=COMPRESSION)
        with self._io("write to"):
            self.blobs.write(key, [buffer.getvalue()])

    def delete(self, key: str) -> None:
        with self._io("delete from"):
            self.blobs.delete(key)
