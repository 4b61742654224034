"""ensure_store: a new store gets the event store's tables and every side table, without
the application; the views' tables are left to the view updater."""

from __future__ import annotations

from ledger.chain import CHAIN_TABLE
from ledger.storage import ensure_store
from ledger.storage.commands import COMMANDS_TABLE
from ledger.storage.database import LedgerDatabase, created_name
from ledger.storage.side_tables import VIEW_POSITIONS, side_table_statements
from tests.conftest import StoreFactory


def test_ensure_store_creates_the_event_store_and_every_side_table(store: StoreFactory) -> None:
    settings = store.settings()
    ensure_store(settings)
    ensure_store(settings)  # a store that exists: nothing to do
    db = LedgerDatabase(settings)
    try:
        side_tables = [created_name(s) for s in side_table_statements(db.kind)]
        assert VIEW_POSITIONS in side_tables
        assert not db.missing([db.events_table[0], CHAIN_TABLE, COMMANDS_TABLE, *side_tables])
        assert db.head_position() == 0
        assert db.missing(["ledger_view_audit"])  # the views are the updater's to create
    finally:
        db.close()
