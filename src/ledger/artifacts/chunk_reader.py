"""Chunks of bytes, as they come from somewhere (a request, a multipart part, an object
store's response), read as a file."""

from __future__ import annotations

import io
from abc import abstractmethod
from typing import Any


class ChunkReader(io.RawIOBase):
    """A raw, readable file over chunks: ``readinto`` hands out what the last chunk holds,
    asking ``next_chunk`` for another once it is used up (an empty chunk is skipped; None
    ends the file)."""

    def __init__(self) -> None:
        super().__init__()
        self._pending = memoryview(b"")
        self._ended = False

    @abstractmethod
    def next_chunk(self) -> bytes | None:
        """The next chunk; None once there are no more."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._ended:
                return 0
            chunk = self.next_chunk()
            if chunk is None:
                self._ended = True
            else:
                self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count
