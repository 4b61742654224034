"""Whether a durable consumer exists yet: a JetStream consumer on NATS, a cursor in the
store for the in-process bus (both are created when the consumer first runs)."""

from __future__ import annotations

import asyncio

from nats.js.errors import NotFoundError

from ledger.bus.jetstream import Connection
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
    connection = Connection(settings, name="ledger-consumer-check")  # every server listed
    js = await connection.open()
    assert js is not None
    try:
        await js.consumer_info(settings.nats_stream, consumer)
        return True
    except NotFoundError:
        return False
    finally:
        await connection.close()
