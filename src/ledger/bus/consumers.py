"""Whether a durable consumer exists yet: a JetStream consumer on NATS, a cursor in the
store for the in-process bus (both are created when the consumer first runs)."""

from __future__ import annotations

import asyncio

import nats
from nats.js.errors import NotFoundError

from ledger.bus.nats_auth import connect_options
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.side_tables import BUS_CURSORS


def consumer_exists(settings: Settings, consumer: str) -> bool:
    """True once ``consumer`` has been created on the bus the settings choose."""
    if settings.nats_url:
        return asyncio.run(_on_nats(settings, consumer))
    db = LedgerDatabase(settings)
    try:
        if not db.table_exists(BUS_CURSORS):
            return False
        return bool(db.execute(f"SELECT 1 FROM {BUS_CURSORS} WHERE consumer = ?", (consumer,)))
    finally:
        db.close()


async def _on_nats(settings: Settings, consumer: str) -> bool:
    client = await nats.connect(settings.nats_url.split(","), **connect_options(settings))
    try:
        await client.jetstream().consumer_info(settings.nats_stream, consumer)
        return True
    except NotFoundError:
        return False
    finally:
        await client.close()
