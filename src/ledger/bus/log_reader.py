"""Reading the ledger's log from asyncio code: envelopes in log order, and waiting for
the next append (LISTEN/NOTIFY on PostgreSQL, polling on SQLite)."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from typing import Any

from ledger.ledger import Ledger
from ledger.settings import Settings
from projections.database import Listener, ViewDatabase
from projections.decoding import EventDecoder
from projections.feed import read_feed

# How long one wait for an append may block a thread (a stop is noticed at the latest then).
MAX_WAIT_S = 0.5


def open_store(settings: Settings) -> ViewDatabase:
    """A connection of its own to the ledger's database (session state such as the relay's
    advisory lock stays on it; it reconnects on the next use after being lost); the store
    is created if it is new (a relay or a consumer may start before anything was written)."""
    Ledger(settings).close()
    return ViewDatabase(settings, dedicated=True)


class LogReader:
    """Follows the event log on a connection of its own (one user at a time)."""

    def __init__(self, settings: Settings, *, poll_interval: float = 0.01) -> None:
        self.db = open_store(settings)
        self._decoder = EventDecoder()
        self._poll_interval = poll_interval
        self._exit = ExitStack()
        self._listener: Listener = self._exit.enter_context(self.db.listener())

    async def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` envelopes after log position ``after``."""
        return await asyncio.to_thread(read_feed, self.db, self._decoder, after, limit)

    async def head(self) -> int:
        return await asyncio.to_thread(self.db.head_position)

    async def wait(self) -> None:
        """Until something may have been appended (at most ``MAX_WAIT_S``)."""
        if self.db.kind == "sqlite":
            await asyncio.sleep(self._poll_interval)
        else:
            await asyncio.to_thread(self._listener.wait, MAX_WAIT_S)

    def close(self) -> None:
        self._exit.close()
        self.db.close()
