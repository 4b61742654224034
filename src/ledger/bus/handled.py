"""Exactly-once handling: a handled-events record written in the handler's own transaction.

Both buses deliver at least once (a consumer that dies before acknowledging gets
the event again). Each delivery runs the handler inside a transaction on the
ledger's database that first records (consumer, event id): a second delivery
finds the record and is skipped, and a handler that fails or dies rolls the
record back with everything else it wrote. Handlers that write their results
through ``Delivery.db`` therefore take effect exactly once.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from ledger.bus.events import BusEvent
from ledger.logging import get_logger
from ledger.settings import Settings
from projections.database import ViewDatabase

HANDLED_TABLE = "ledger_handled_events"
log = get_logger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One delivery of an event to a handler."""

    event: BusEvent
    consumer: str
    attempt: int  # 1 on the first delivery
    db: ViewDatabase  # in the transaction that records the event as handled


Handler = Callable[[Delivery], None]


class Outcome(enum.Enum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"  # handled before: skipped
    RETRY = "retry"  # the handler failed; deliver again later
    FAILED = "failed"  # the handler failed on its last attempt: recorded, not retried


class HandledEvents:
    """Runs handlers exactly once per (consumer, event), on a connection of its own."""

    def __init__(self, settings: Settings) -> None:
        self.db = ViewDatabase(settings)
        with self.db.transaction():
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {HANDLED_TABLE} ("
                "consumer TEXT NOT NULL, event_id TEXT NOT NULL, position BIGINT NOT NULL, "
                "outcome TEXT NOT NULL, error TEXT NOT NULL, handled_at_us BIGINT NOT NULL, "
                "PRIMARY KEY (consumer, event_id))"
            )

    def close(self) -> None:
        self.db.close()

    def handle(
        self,
        consumer: str,
        event: BusEvent,
        handler: Handler,
        *,
        attempt: int,
        last_attempt: bool,
        also: Callable[[ViewDatabase], None] | None = None,
    ) -> Outcome:
        """Run ``handler`` unless ``consumer`` handled ``event`` before. ``also`` runs in the
        same transaction (the in-process bus moves its cursor there)."""
        try:
            with self.db.transaction():
                if not self._claim(consumer, event, "handled", ""):
                    if also is not None:
                        also(self.db)
                    return Outcome.DUPLICATE
                handler(Delivery(event, consumer, attempt, self.db))
                if also is not None:
                    also(self.db)
            return Outcome.HANDLED
        except Exception as error:
            log.warning(
                "a handler failed",
                consumer=consumer,
                event_id=event.id,
                subject=event.subject,
                attempt=attempt,
                error=repr(error),
                exc_info=True,
            )
            if not last_attempt:
                return Outcome.RETRY
            with self.db.transaction():
                self._claim(consumer, event, "failed", repr(error)[:2000])
                if also is not None:
                    also(self.db)
            log.error(
                "giving up on an event: recorded as failed",
                consumer=consumer,
                event_id=event.id,
                table=HANDLED_TABLE,
            )
            return Outcome.FAILED

    def _claim(self, consumer: str, event: BusEvent, outcome: str, error: str) -> bool:
        rows = self.db.execute(
            f"INSERT INTO {HANDLED_TABLE} "
            "(consumer, event_id, position, outcome, error, handled_at_us) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (consumer, event_id) DO NOTHING RETURNING 1",
            (consumer, event.id, event.position, outcome, error, int(time.time() * 1e6)),
        )
        return bool(rows)


def failed_events(db: ViewDatabase, consumer: str = "") -> list[dict[str, object]]:
    """Events a consumer gave up on (its handler failed on every attempt)."""
    if not db.table_exists(HANDLED_TABLE):
        return []
    where = "outcome = 'failed'" + (" AND consumer = ?" if consumer else "")
    rows = db.execute(
        f"SELECT consumer, event_id, position, error FROM {HANDLED_TABLE} WHERE {where} "
        "ORDER BY position",
        (consumer,) if consumer else (),
    )
    return [
        {"consumer": c, "event_id": e, "position": int(p), "error": err} for c, e, p, err in rows
    ]
