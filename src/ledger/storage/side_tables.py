"""Every table the ledger keeps beside the event log and the views' own tables.

Positions of followers, handled events, bus cursors, relay positions, worker leases,
idempotency keys, checkpoints. They are created together, in one schema change (one
lock), by ``create_side_tables``: when a store is set up (``ensure_store``) and by each
user before its first use, which costs one catalog read once they exist. The event
store's tables (events, snapshots, chain, commands) are the recorders'; the views'
tables are created by the view updater.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ledger.storage.database import LedgerDatabase

# Each view's position in the log: every view write transaction locks its rows first.
VIEW_POSITIONS = "ledger_view_positions"
# A counter bumped whenever views are reset, so that every view updater reloads its
# in-memory state even if the positions it sees look the same.
VIEW_GENERATION = "ledger_view_generation"
# The table definitions each view was built with: a view whose tables changed is rebuilt.
VIEW_SCHEMAS = "ledger_view_schemas"
VIEW_ERRORS = "ledger_view_errors"  # events a view could not store, and passed
HANDLED_EVENTS = "ledger_handled_events"  # (consumer, event) pairs handled exactly once
BUS_CURSORS = "ledger_bus_cursors"  # how far each in-process bus consumer has read
RELAY_POSITIONS = "ledger_relay_positions"  # how far each relay has published its stream
WORKER_LEASES = "ledger_worker_leases"  # which workers are alive
API_IDEMPOTENCY = "ledger_api_idempotency"  # the answers to requests with an Idempotency-Key
CHECKPOINTS = "ledger_checkpoints"  # signed checkpoints of the log
MERKLE_BLOCKS = "ledger_merkle_blocks"  # hashes of complete blocks of the log's Merkle tree


def side_table_statements(kind: Literal["sqlite", "postgres"]) -> list[str]:
    """``CREATE TABLE IF NOT EXISTS`` for every side table, in the given SQL dialect."""
    blob = "BYTEA" if kind == "postgres" else "BLOB"
    return [
        f"CREATE TABLE IF NOT EXISTS {VIEW_POSITIONS} (name TEXT PRIMARY KEY, "
        "position BIGINT NOT NULL, updated_at_us BIGINT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {VIEW_GENERATION} (generation BIGINT NOT NULL, "
        "rebuild_heartbeat_us BIGINT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {VIEW_SCHEMAS} "
        "(name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {VIEW_ERRORS} (projection TEXT NOT NULL, "
        "position BIGINT NOT NULL, event_type TEXT NOT NULL, error TEXT NOT NULL, "
        "recorded_at_us BIGINT NOT NULL, PRIMARY KEY (projection, position))",
        f"CREATE TABLE IF NOT EXISTS {HANDLED_EVENTS} ("
        "consumer TEXT NOT NULL, event_id TEXT NOT NULL, position BIGINT NOT NULL, "
        "outcome TEXT NOT NULL, error TEXT NOT NULL, handled_at_us BIGINT NOT NULL, "
        "PRIMARY KEY (consumer, event_id))",
        f"CREATE TABLE IF NOT EXISTS {BUS_CURSORS} "
        "(consumer TEXT PRIMARY KEY, position BIGINT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {RELAY_POSITIONS} (stream TEXT PRIMARY KEY, "
        "position BIGINT NOT NULL, updated_at_us BIGINT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {WORKER_LEASES} ("
        "worker TEXT PRIMARY KEY, renewed_at DOUBLE PRECISION NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {API_IDEMPOTENCY} (key TEXT PRIMARY KEY, "
        "fingerprint TEXT NOT NULL, status BIGINT NOT NULL, content_type TEXT NOT NULL, "
        f"body {blob} NOT NULL, created_us BIGINT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (tree_size BIGINT NOT NULL, "
        "created_us BIGINT NOT NULL, last_position BIGINT NOT NULL, document TEXT NOT NULL, "
        "PRIMARY KEY (tree_size, created_us))",
        f"CREATE TABLE IF NOT EXISTS {MERKLE_BLOCKS} (block BIGINT PRIMARY KEY, "
        "first_position BIGINT NOT NULL, last_position BIGINT NOT NULL, hash TEXT NOT NULL)",
    ]


def create_side_tables(db: LedgerDatabase) -> None:
    """Create the side tables that are missing, in one schema change (outside any
    transaction); when none is, this is one catalog read and locks nothing."""
    db.create_tables(*side_table_statements(db.kind))
