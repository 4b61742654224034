"""The rule engine's inbox: events received from the bus, waiting to be judged.

The bus runs a handler inside the transaction that records the event as handled; on
SQLite that transaction holds the store's write lock, so the handler cannot append to
the ledger itself. It only files the event here (exactly once, with the handled
record); the engine then judges filed events outside any transaction and removes each
once its outcome is recorded. Its actions and records carry command ids, so judging an
event again after a crash changes nothing twice.
"""

from __future__ import annotations

import time

from ledger.bus import BusEvent
from ledger.storage.database import LedgerDatabase

INBOX = "ledger_rule_inbox"
MAX_ATTEMPTS = 10  # then each rule concerned records a skip with the error, and it goes
CLAIM_S = 300  # an engine that took an event and died: another may take it after this


def create_inbox(db: LedgerDatabase) -> None:
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {INBOX} (event_id TEXT PRIMARY KEY, position BIGINT "
        "NOT NULL, envelope TEXT NOT NULL, attempts BIGINT NOT NULL, error TEXT NOT NULL, "
        "next_at_us BIGINT NOT NULL)"
    )


def file_event(db: LedgerDatabase, event: BusEvent, envelope: str) -> None:
    """File ``event`` (its JSON ``envelope``) for judging, in the caller's transaction."""
    db.execute(
        f"INSERT INTO {INBOX} (event_id, position, envelope, attempts, error, next_at_us) "
        "VALUES (?, ?, ?, 0, '', 0) ON CONFLICT (event_id) DO NOTHING",
        (event.id, event.position, envelope),
    )


def _now_us() -> int:
    return int(time.time() * 1e6)


def claim_due(db: LedgerDatabase, limit: int) -> list[tuple[str, str, int, str]]:
    """Take up to ``limit`` filed events due now, in log order: (event id, envelope, failed
    attempts so far, the last error). One failed ``MAX_ATTEMPTS`` times is to be given up."""
    now = _now_us()
    due = f"FROM {INBOX} WHERE next_at_us <= ?"
    if not db.execute(f"SELECT 1 {due} LIMIT 1", (now,)):
        return []  # idle: no write transaction (on SQLite it would take the store's lock)
    with db.transaction():
        rows = db.execute(
            f"SELECT event_id, envelope, attempts, error {due} ORDER BY position LIMIT ?",
            (now, limit),
        )
        db.execute_many(
            f"UPDATE {INBOX} SET next_at_us = ? WHERE event_id = ?",
            [(now + CLAIM_S * 1_000_000, row[0]) for row in rows],
        )
    return [(str(a), str(b), int(c), str(d)) for a, b, c, d in rows]


def remove(db: LedgerDatabase, event_id: str) -> None:
    with db.transaction():
        db.execute(f"DELETE FROM {INBOX} WHERE event_id = ?", (event_id,))


def retry_later(db: LedgerDatabase, event_id: str, error: str, *, counted: bool = True) -> int:
    """Note a failed attempt (``counted`` or not); judge the event again after a backoff,
    or give it up at once after the last attempt. The attempts so far."""
    with db.transaction():
        rows = db.execute(f"SELECT attempts FROM {INBOX} WHERE event_id = ?", (event_id,))
        attempts = (int(rows[0][0]) if rows else 0) + int(counted)
        last = counted and attempts == MAX_ATTEMPTS  # given up at once (not again if that fails)
        delay = 0.0 if last else min(60.0, 0.5 * 2 ** max(attempts, 1))
        db.execute(
            f"UPDATE {INBOX} SET attempts = ?, error = ?, next_at_us = ? WHERE event_id = ?",
            (attempts, error[:2000], _now_us() + int(delay * 1e6), event_id),
        )
    return attempts


def failing(db: LedgerDatabase) -> list[dict[str, object]]:
    """The filed events whose judging failed at least once: id, attempts, last error."""
    if not db.table_exists(INBOX):
        return []
    rows = db.execute(
        f"SELECT event_id, attempts, error FROM {INBOX} WHERE error <> '' ORDER BY position"
    )
    return [{"event_id": str(a), "attempts": int(b), "error": str(c)} for a, b, c in rows]
