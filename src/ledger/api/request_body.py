"""A request's body as a blocking file, read in a worker thread while it arrives.

The artifact store reads files (``read(n)``) in a thread; the body arrives on the event
loop. Each read here pulls the next chunks from the loop (``anyio.from_thread``), so an
upload is written to the store as it comes in and is never whole in memory.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import AsyncIterator
from typing import BinaryIO

import anyio.from_thread
from fastapi import Request

from ledger.artifacts.chunk_reader import ChunkReader
from ledger.artifacts.files import CHUNK_SIZE
from ledger.errors import InvalidInputError

DIGEST_HEADERS = ("content-digest", "repr-digest")


class _BodyChunks(ChunkReader):
    """The raw body, chunk by chunk as received. (Starlette may pass on empty chunks before
    the body ends: only the end of the iteration ends it.)"""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks

    async def _receive(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    def next_chunk(self) -> bytes | None:
        return anyio.from_thread.run(self._receive)


def body_reader(request: Request) -> BinaryIO:
    """The body of ``request`` as a file to read from a worker thread (not the loop)."""
    return io.BufferedReader(_BodyChunks(request.stream()), buffer_size=CHUNK_SIZE)


def given_sha256(request: Request) -> str | None:
    """The sha256 (hex) the client gave for the body, in an RFC 9530 ``Content-Digest`` or
    ``Repr-Digest`` header (``sha-256=:<base64>:``); None when it gave none.
    InvalidInputError for a sha-256 value that is not one."""
    for header in DIGEST_HEADERS:
        for member in request.headers.get(header, "").split(","):
            algorithm, _, value = member.strip().partition("=")
            if algorithm.strip().lower() != "sha-256":
                continue
            try:
                digest = base64.b64decode(value.strip().strip(":"), validate=True)
            except (binascii.Error, ValueError):
                digest = b""
            if len(digest) != 32:
                raise InvalidInputError(f"{header}: sha-256 must be 32 bytes in base64")
            return digest.hex()
    return None
