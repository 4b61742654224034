"""A data file uploaded to the ledger, kept in the artifact store once it is accepted."""

from __future__ import annotations

from pathlib import Path

from ledger.artifacts.blobs import Blobs
from ledger.artifacts.files import read_chunks
from ledger.artifacts.local_blobs import LocalBlobs

DATA = "data"


class ReceivedData:
    """An uploaded data file in a private temporary folder, with its sha256 ``digest``."""

    def __init__(self, path: Path, digest: str, blobs: Blobs) -> None:
        self.path = path
        self.digest = digest
        self._blobs = blobs
        self._key = f"{DATA}/{digest}/{path.name}"

    def keep(self) -> str:
        """Keep the file as ``data/<digest>/<its name>`` in the store (the same content under
        the same name is kept once); return the URI it is kept at."""
        if self._blobs.size(self._key) is None:
            if isinstance(self._blobs, LocalBlobs):
                self._blobs.adopt(self.path, self._key)
            else:
                with self.path.open("rb") as stream:
                    self._blobs.write(self._key, read_chunks(stream))
        if isinstance(self._blobs, LocalBlobs):
            return self._blobs.path(self._key).resolve().as_uri()
        return f"{self._blobs.url}/{self._key}"
