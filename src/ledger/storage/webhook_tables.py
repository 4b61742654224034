"""Webhooks' tables beside the log: signing secrets, and the delivery log.

Secrets are kept by (webhook, fingerprint): the create/update command writes the new
one before its event is saved, so a command that then fails leaves only an unused row,
never a secret that the events do not name. Events carry the fingerprint alone.

The delivery log has a row per attempt. A final row (delivered, dead, gone) is written in
the transaction that records the event as handled (exactly once); a failed attempt that
will be retried is written on its own before the retry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ledger.errors import NotFoundError
from ledger.storage.database import LedgerDatabase
from ledger.storage.timestamps import iso

WEBHOOK_SECRETS = "ledger_webhook_secrets"
WEBHOOK_DELIVERIES = "ledger_webhook_deliveries"
MAX_LIST = 1000


def create_webhook_tables(db: LedgerDatabase) -> None:
    """Create the webhook tables that are missing (one catalog read when none is)."""
    db.create_tables(
        f"CREATE TABLE IF NOT EXISTS {WEBHOOK_SECRETS} (webhook TEXT NOT NULL, "
        "fingerprint TEXT NOT NULL, secret TEXT NOT NULL, created_at_us BIGINT NOT NULL, "
        "PRIMARY KEY (webhook, fingerprint))",
        f"CREATE TABLE IF NOT EXISTS {WEBHOOK_DELIVERIES} (webhook TEXT NOT NULL, "
        "event_id TEXT NOT NULL, attempt BIGINT NOT NULL, status_code BIGINT NOT NULL, "
        "latency_ms DOUBLE PRECISION NOT NULL, response_head TEXT NOT NULL, "
        "error TEXT NOT NULL, outcome TEXT NOT NULL, at_us BIGINT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS ledger_webhook_deliveries_by_event "
        f"ON {WEBHOOK_DELIVERIES} (webhook, event_id)",
        f"CREATE INDEX IF NOT EXISTS ledger_webhook_deliveries_by_time "
        f"ON {WEBHOOK_DELIVERIES} (webhook, at_us)",
    )


def save_secret(db: LedgerDatabase, webhook: str, fingerprint: str, secret: str) -> None:
    create_webhook_tables(db)
    db.execute(
        f"INSERT INTO {WEBHOOK_SECRETS} (webhook, fingerprint, secret, created_at_us) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (webhook, fingerprint) DO NOTHING",
        (webhook, fingerprint, secret, int(time.time() * 1e6)),
    )


def read_secret(db: LedgerDatabase, webhook: str, fingerprint: str) -> str:
    """The secret with this fingerprint; NotFoundError when it is not kept."""
    rows = (
        db.execute(
            f"SELECT secret FROM {WEBHOOK_SECRETS} WHERE webhook = ? AND fingerprint = ?",
            (webhook, fingerprint),
        )
        if db.table_exists(WEBHOOK_SECRETS)
        else []
    )
    if not rows:
        raise NotFoundError(f"webhook {webhook!r}: its signing secret {fingerprint} is not kept")
    return str(rows[0][0])


@dataclass(frozen=True)
class Attempt:
    """One POST of an event to a webhook, and what came of it."""

    webhook: str
    event_id: str
    attempt: int
    status_code: int  # 0: no answer (timeout, refused, guard)
    latency_ms: float
    response_head: str
    error: str
    outcome: str  # delivered | retrying | dead | gone
    at_us: int

    def row(self) -> tuple[Any, ...]:
        return (self.webhook, self.event_id, self.attempt, self.status_code,
                round(self.latency_ms, 3), _text(self.response_head), _text(self.error)[:2000],
                self.outcome, self.at_us)  # fmt: skip


def _text(value: str) -> str:
    """What both stores can hold: no NUL, no lone surrogates."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


_COLUMNS = ("webhook, event_id, attempt, status_code, latency_ms, response_head, error, "
            "outcome, at_us")  # fmt: skip


def record_attempts(db: LedgerDatabase, attempts: list[Attempt]) -> None:
    """Add attempts to the delivery log (in the caller's transaction, if any)."""
    db.execute_many(
        f"INSERT INTO {WEBHOOK_DELIVERIES} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [attempt.row() for attempt in attempts],
    )


def list_deliveries(
    db: LedgerDatabase,
    webhook: str,
    *,
    dead: bool = False,
    limit: int = 50,
    event_id: str = "",
) -> list[dict[str, Any]]:
    """The webhook's attempts, the latest first; ``dead``: only dead letters not delivered
    since (by a redelivery), pings left out; ``event_id``: only that event's."""
    if not db.table_exists(WEBHOOK_DELIVERIES):
        return []
    where, params = ["d.webhook = ?"], [webhook]
    if event_id:
        where.append("d.event_id = ?")
        params.append(event_id)
    if dead:
        where.append(
            "d.outcome = 'dead' AND substr(d.event_id, 1, 5) <> 'ping-' "
            f"AND NOT EXISTS (SELECT 1 FROM {WEBHOOK_DELIVERIES} later "
            "WHERE later.webhook = d.webhook AND later.event_id = d.event_id "
            "AND later.outcome = 'delivered' AND later.at_us >= d.at_us)"
        )
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM {WEBHOOK_DELIVERIES} d WHERE {' AND '.join(where)} "
        "ORDER BY d.at_us DESC, d.attempt DESC LIMIT ?",
        (*params, max(1, min(limit, MAX_LIST))),
    )
    names = [name.strip() for name in _COLUMNS.split(",")]
    items = []
    for row in rows:
        item = dict(zip(names, row, strict=True))
        item["at"] = iso(item.pop("at_us"))
        items.append(item)
    return items


def next_attempt(db: LedgerDatabase, webhook: str, event_id: str) -> int:
    """One more than the highest attempt the log holds for this event (1 when none)."""
    if not db.table_exists(WEBHOOK_DELIVERIES):
        return 1
    rows = db.execute(
        f"SELECT MAX(attempt) FROM {WEBHOOK_DELIVERIES} WHERE webhook = ? AND event_id = ?",
        (webhook, event_id),
    )
    return int(rows[0][0] or 0) + 1
