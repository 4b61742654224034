"""A request's body as a blocking file, read in a worker thread while it arrives.

The artifact store reads files (``read(n)``) in a thread; the body arrives on the event
loop. Each read here pulls the next chunks from the loop (``anyio.from_thread``), so an
upload is written to the store as it comes in and is never whole in memory.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import BinaryIO

import anyio.from_thread
from fastapi import Request

from ledger.artifacts.files import CHUNK_SIZE


class _BodyChunks(io.RawIOBase):
    """The raw body: ``readinto`` hands out what the next received chunk holds."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._ended = False

    def readable(self) -> bool:
        return True

    async def _next_chunk(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        # Starlette may pass on empty chunks before the body ends: only the end of the
        # iteration ends it.
        while not self._pending:
            if self._ended:
                return 0
            chunk = anyio.from_thread.run(self._next_chunk)
            if chunk is None:
                self._ended = True
            else:
                self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def body_reader(request: Request) -> BinaryIO:
    """The body of ``request`` as a file to read from a worker thread (not the loop)."""
    return io.BufferedReader(_BodyChunks(request.stream()), buffer_size=CHUNK_SIZE)
