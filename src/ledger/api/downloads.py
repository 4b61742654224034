"""Streaming a model version's files: one file as stored, or all of them as a zip.

A damaged blob is never sent as a clean, complete response. Blobs up to
``VERIFY_BEFORE_SENDING`` bytes are re-hashed before the headers go out (damage: a problem
response); larger ones are checked while they stream, the last chunk held back until the
digest matches, and on a mismatch the connection is closed before the body is complete.
"""

from __future__ import annotations

import base64
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Send

from ledger.api.problems import problem
from ledger.artifact_integrity import (
    ArtifactDamagedError,
    BlobDamage,
    check_present,
    inspect_blob,
    verified_chunks,
)
from ledger.artifacts.store import ArtifactStore
from ledger.domain.model import StoredFile
from ledger.errors import ArtifactStoreUnavailableError
from ledger.logging import get_logger

log = get_logger(__name__)

CHUNK = 1 << 20
VERIFY_BEFORE_SENDING = 64 * 1024 * 1024
"""Bytes: blobs up to this size (and a zip's files up to this much in all) are re-hashed
before the response starts; the rest are verified while they stream."""
ARTIFACT_DAMAGED = "tag:lifecycle-ledger,2026:problem:artifact-damaged"
"""The problem ``type`` of a download refused because the stored file is damaged."""


class VerifiedStream(StreamingResponse):
    """A streaming response that ends without completing when its content is damaged (or
    the artifact store goes away while it streams).

    The server then closes the connection: the client sees a short body (fewer bytes than
    Content-Length, or no final chunk), never a complete transfer of wrong bytes.
    """

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for chunk in self.body_iterator:
                data = chunk if isinstance(chunk, bytes | memoryview) else chunk.encode()
                await send({"type": "http.response.body", "body": data, "more_body": True})
        except ArtifactDamagedError as error:
            log.error("download aborted: stored artifact is damaged", error=str(error))
            return
        except ArtifactStoreUnavailableError as error:  # went away after the headers
            log.warning("download aborted: artifact store unavailable", error=str(error))
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def repr_digest(sha256: str) -> str:
    """The RFC 9530 ``Repr-Digest`` value of content with this sha256 hex digest."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:"


def damaged_problem(ref: str, path: str, damage: BlobDamage) -> JSONResponse:
    """The 500 problem answered instead of a damaged file (logged: the store needs repair)."""
    detail = f"model version {ref}, file {path!r}: {damage.describe()}"
    log.error(
        "download refused: stored artifact is damaged", ref=ref, path=path, **damage.to_dict()
    )
    return problem(500, detail, type=ARTIFACT_DAMAGED, title="Artifact damaged")


Refusal = Callable[[str, str, BlobDamage], Response]
"""The answer for a damaged file: (what it belongs to, its path, the damage) -> response."""


def file_response(
    store: ArtifactStore, ref: str, entry: StoredFile, refuse: Refusal = damaged_problem
) -> Any:
    """One file of ``ref``: checked first when small, streamed with its digest; a damaged
    one is answered by ``refuse`` (logged first), or cut off when found while streaming."""
    sha256, size = entry["sha256"], entry["size"]
    if size <= VERIFY_BEFORE_SENDING:
        damage = inspect_blob(store, sha256, size)
    else:
        damage = check_present(store, sha256, size)
    if damage is not None:
        return refuse(ref, entry["path"], damage)
    return VerifiedStream(
        verified_chunks(store, sha256, size, CHUNK),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(size),
            "ETag": f'"{sha256}"',
            "Repr-Digest": repr_digest(sha256),
        },
    )


def zip_response(
    store: ArtifactStore,
    ref: str,
    files: list[StoredFile],
    filename: str,
    refuse: Refusal = damaged_problem,
) -> Any:
    """Every file of ``ref`` as one zip; the files are checked as described above (a
    damaged one found before sending is answered by ``refuse``)."""
    for entry in files:
        damage = check_present(store, entry["sha256"], entry["size"])
        if damage is not None:
            return refuse(ref, entry["path"], damage)
    budget = VERIFY_BEFORE_SENDING
    for entry in sorted(files, key=lambda f: int(f["size"])):
        budget -= entry["size"]
        if budget < 0:
            break  # the rest are verified while they stream
        damage = inspect_blob(store, entry["sha256"], entry["size"])
        if damage is not None:
            return refuse(ref, entry["path"], damage)
    return VerifiedStream(
        stream_zip(store, files),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


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


def stream_zip(store: ArtifactStore, files: list[StoredFile]) -> Iterator[bytes]:
    """A zip of ``files`` (stored, not compressed: model weights rarely shrink), streamed.

    A damaged file raises ArtifactDamagedError before its last chunk: the archive never
    gets its central directory.
    """
    buffer = _Buffer()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[call-overload]
        for entry in files:
            info = zipfile.ZipInfo(entry["path"])
            info.file_size = entry["size"]
            with archive.open(info, "w", force_zip64=entry["size"] > 2**31) as member:
                for chunk in verified_chunks(store, entry["sha256"], entry["size"], CHUNK):
                    member.write(chunk)
                    yield buffer.take()
            yield buffer.take()
    yield buffer.take()
