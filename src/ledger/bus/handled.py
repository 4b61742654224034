"""Exactly-once handling: a handled-events record written in the handler's own transaction.

Both buses deliver at least once (a consumer that dies before acknowledging gets
the event again). Each delivery runs the handler inside a transaction on the
ledger's database that first records (consumer, event id): a second delivery
finds the record and is skipped, and a handler that fails or dies rolls the
record back with everything else it wrote. Handlers that write their results
through ``Delivery.db`` therefore take effect exactly once; anything else they do
(calling a service, appending to the ledger) happens at least once and must
tolerate a repeat. Events that arrive together are handled in one transaction
(one commit), each in a savepoint of its own. Handlers must not commit. The commit is as
durable as the event store's (LEDGER_SQLITE_SYNCHRONOUS; the server's synchronous_commit),
not relaxed like the views': it is acknowledged right after.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.bus.events import BusEvent
from ledger.bus.log_reader import open_store
from ledger.logging import get_logger
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.side_tables import HANDLED_EVENTS, create_side_tables

_COLUMN_ARRAYS = "?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::bigint[]"
log = get_logger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One delivery of an event to a handler."""

    event: BusEvent
    consumer: str
    attempt: int  # 1 on the first delivery
    db: LedgerDatabase  # in the transaction that records the event as handled


Handler = Callable[[Delivery], None]


class RetryLater(Exception):
    """Raised by a handler: deliver the event again after ``delay_s`` seconds, instead of
    after the subscription's backoff (its writes are rolled back like any failure's). On the
    last attempt it counts as a failure."""

    def __init__(self, delay_s: float, why: str = "") -> None:
        super().__init__(f"retry in {delay_s:.3f} s" + (f": {why}" if why else ""))
        self.delay_s = max(0.0, delay_s)


class Outcome(enum.Enum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"  # handled before: skipped
    RETRY = "retry"  # the handler failed; deliver again later
    FAILED = "failed"  # the handler failed on its last attempt: recorded, not retried


@dataclass(frozen=True)
class Pending:
    """An event to hand to a consumer's handler, and which attempt this is."""

    event: BusEvent
    attempt: int
    last_attempt: bool


# Runs before a batch's transaction with the events not handled yet: work that must not
# hold the transaction open (calls to other services, done together), whose results the
# handler then records.
Preparer = Callable[[Sequence[Pending]], None]


class HandledEvents:
    """Runs handlers exactly once per (consumer, event), on a connection of its own."""

    def __init__(self, settings: Settings) -> None:
        self.db = open_store(settings)
        create_side_tables(self.db)
        if self.db.kind == "sqlite":  # a connection of its own: the pragma stays with it
            self.db.execute(f"PRAGMA synchronous={settings.sqlite_synchronous.upper()}")
        # event id -> seconds: the delays handlers asked for (RetryLater); the bus takes them
        self.retry_delays: dict[str, float] = {}

    def retry_delay(self, event_id: str, default: float) -> float:
        """How long to wait before delivering ``event_id`` again: what its handler asked
        for (RetryLater), else ``default``."""
        return self.retry_delays.pop(event_id, default)

    def close(self) -> None:
        self.db.close()

    def handle(
        self,
        consumer: str,
        handler: Handler,
        batch: Sequence[Pending],
        *,
        stop_at_retry: bool = False,
        finish: Callable[[LedgerDatabase, list[Outcome]], None] | None = None,
        prepare: Preparer | None = None,
    ) -> list[Outcome]:
        """Run ``handler`` on each event ``consumer`` has not handled yet, in one transaction
        (one commit for the batch); each handler runs in a savepoint, so a failing one
        undoes only its own writes. ``stop_at_retry`` leaves the events after one to be
        retried unhandled; ``finish`` runs last in the transaction (the in-process bus
        moves its cursor there). ``prepare`` runs first, outside the transaction, with the
        events not handled yet."""
        outcomes: list[Outcome] = []
        if prepare is not None and batch:
            prepare(self._unhandled(consumer, batch))
        with self.db.transaction():
            if self.db.kind == "postgres":
                # Views' connections commit asynchronously; this commit is acknowledged to
                # JetStream (or moves the cursor) next, so it is as durable as the events'.
                self.db.execute("SET LOCAL synchronous_commit TO DEFAULT")
            claimed = self._claim(consumer, batch)
            self.db.execute("SAVEPOINT handling")
            for pending in batch:
                if pending.event.id not in claimed:
                    outcomes.append(Outcome.DUPLICATE)
                    continue
                claimed.discard(pending.event.id)  # the same event twice in a batch: run once
                outcomes.append(self._run(consumer, handler, pending))
                if stop_at_retry and outcomes[-1] is Outcome.RETRY:
                    self._unclaim(consumer, sorted(claimed))  # left for the retry to reach
                    break
            self.db.execute("RELEASE SAVEPOINT handling")
            if finish is not None:
                finish(self.db, outcomes)
        return outcomes

    def _run(self, consumer: str, handler: Handler, pending: Pending) -> Outcome:
        """One handler, in the savepoint ``handling``; on success, the next one starts."""
        event = pending.event
        try:
            handler(Delivery(event, consumer, pending.attempt, self.db))
        except Exception as error:
            self.db.execute("ROLLBACK TO SAVEPOINT handling")
            later = isinstance(error, RetryLater)
            (log.info if later else log.warning)(
                "a handler asked for a retry" if later else "a handler failed",
                consumer=consumer,
                event_id=event.id,
                subject=event.subject,
                attempt=pending.attempt,
                error=str(error) if later else repr(error),
                exc_info=not later,
            )
            if not pending.last_attempt:
                self._unclaim(consumer, [event.id])
                # A new savepoint: the next handler's failure must not undo this unclaim.
                self.db.execute_script("RELEASE SAVEPOINT handling; SAVEPOINT handling")
                if isinstance(error, RetryLater):
                    self.retry_delays[event.id] = error.delay_s
                return Outcome.RETRY
            self.db.execute(
                f"UPDATE {HANDLED_EVENTS} SET outcome = 'failed', error = ? "
                "WHERE consumer = ? AND event_id = ?",
                (repr(error)[:2000], consumer, event.id),
            )
            self.db.execute_script("RELEASE SAVEPOINT handling; SAVEPOINT handling")
            log.error(
                "giving up on an event: recorded as failed",
                consumer=consumer,
                event_id=event.id,
                table=HANDLED_EVENTS,
            )
            return Outcome.FAILED
        self.db.execute_script("RELEASE SAVEPOINT handling; SAVEPOINT handling")
        return Outcome.HANDLED

    def _claim(self, consumer: str, batch: Sequence[Pending]) -> set[str]:
        """Record the batch's events as handled; the ids that were not recorded before."""
        if not batch:
            return set()
        now = int(time.time() * 1e6)
        rows = [(consumer, p.event.id, p.event.position, "handled", "", now) for p in batch]
        columns = "(consumer, event_id, position, outcome, error, handled_at_us)"
        conflict = "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id"
        if self.db.kind == "postgres":
            source = f"SELECT * FROM unnest({_COLUMN_ARRAYS})"
            values: list[Any] = [list(column) for column in zip(*rows, strict=True)]
        else:
            source = "VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(rows))
            values = [value for row in rows for value in row]
        inserted = self.db.execute(
            f"INSERT INTO {HANDLED_EVENTS} {columns} {source} {conflict}", values
        )
        return {event_id for (event_id,) in inserted}

    def _unhandled(self, consumer: str, batch: Sequence[Pending]) -> list[Pending]:
        """The batch's events ``consumer`` has not handled yet (read outside a transaction:
        a few may be handled meanwhile; the claim in the transaction decides)."""
        ids = list({pending.event.id for pending in batch})
        done: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self.db.execute(
                f"SELECT event_id FROM {HANDLED_EVENTS} WHERE consumer = ? "
                f"AND event_id IN ({', '.join('?' * len(chunk))})",
                (consumer, *chunk),
            )
            done.update(event_id for (event_id,) in rows)
        return [pending for pending in batch if pending.event.id not in done]

    def _unclaim(self, consumer: str, event_ids: list[str]) -> None:
        self.db.execute_many(
            f"DELETE FROM {HANDLED_EVENTS} WHERE consumer = ? AND event_id = ?",
            [(consumer, event_id) for event_id in event_ids],
        )


def failed_events(db: LedgerDatabase, consumer: str = "") -> list[dict[str, object]]:
    """Events a consumer gave up on (its handler failed on every attempt)."""
    if not db.table_exists(HANDLED_EVENTS):
        return []
    where = "outcome = 'failed'" + (" AND consumer = ?" if consumer else "")
    rows = db.execute(
        f"SELECT consumer, event_id, position, error FROM {HANDLED_EVENTS} WHERE {where} "
        "ORDER BY position",
        (consumer,) if consumer else (),
    )
    return [
        {"consumer": c, "event_id": e, "position": int(p), "error": err} for c, e, p, err in rows
    ]
