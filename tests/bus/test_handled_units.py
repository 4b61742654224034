"""Handled events, called directly: what a failure on the last attempt leaves behind.

Found by mutation testing (scripts/mutation.sh): the record of a failed event and the
listing of failures across consumers could change unnoticed.
"""

from __future__ import annotations

import time
from typing import Any

from ledger.bus import BusEvent, Delivery, Outcome, RetryLater
from ledger.bus.handled import HandledEvents, Pending, failed_events
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.decoding import EventDecoder
from ledger.storage.feed import read_feed
from ledger.storage.side_tables import HANDLED_EVENTS
from tests.bus_support import append_events, record
from tests.conftest import StoreFactory


def pending(settings: Settings, head: int) -> list[Pending]:
    db = LedgerDatabase(settings)
    try:
        envelopes: list[dict[str, Any]] = read_feed(db, EventDecoder(), 0, head)
    finally:
        db.close()
    return [Pending(BusEvent.from_envelope(e), 3, True) for e in envelopes]


def test_failures_on_the_last_attempt_are_listed_for_every_consumer(store: StoreFactory) -> None:
    settings = store.settings()
    head = append_events(settings, aggregates=1, per_aggregate=2)
    batch = pending(settings, head)

    def fail_loudly(delivery: Delivery) -> None:
        raise RuntimeError("x" * 5000)

    handled = HandledEvents(settings)
    try:
        assert handled.handle("a", fail_loudly, batch[:1]) == [Outcome.FAILED]
        assert handled.handle("b", fail_loudly, batch[1:]) == [Outcome.FAILED]
        assert handled.handle("c", record, batch) == [Outcome.HANDLED, Outcome.HANDLED]
        everyone = failed_events(handled.db)
        only_b = failed_events(handled.db, "b")
    finally:
        handled.close()
    assert [(f["consumer"], f["position"]) for f in everyone] == [("a", 1), ("b", 2)]
    assert [(f["consumer"], f["position"]) for f in only_b] == [("b", 2)]
    error = str(everyone[0]["error"])
    assert len(error) == 2000 and error.startswith("RuntimeError('xxx")


def test_a_handled_event_is_recorded_with_its_consumer_outcome_and_time(
    store: StoreFactory,
) -> None:
    settings = store.settings()
    batch = pending(settings, append_events(settings, aggregates=1, per_aggregate=1))
    consumers: list[str] = []
    handled = HandledEvents(settings)
    try:
        before = int(time.time() * 1e6)
        outcomes = handled.handle("c", lambda d: consumers.append(d.consumer), batch)
        after = int(time.time() * 1e6)
        rows = handled.db.execute(
            f"SELECT consumer, position, outcome, error, handled_at_us FROM {HANDLED_EVENTS}"
        )
    finally:
        handled.close()
    assert outcomes == [Outcome.HANDLED] and consumers == ["c"]
    [(consumer, position, outcome, error, at)] = rows
    assert (consumer, int(position), outcome, error) == ("c", 1, "handled", "")
    assert before <= int(at) <= after


def test_events_that_fail_one_after_another_are_all_left_to_their_retry(
    store: StoreFactory,
) -> None:
    """Each failure rolls back to the batch's savepoint: it must not undo the release of
    the event that failed just before (that event would be skipped as handled)."""
    settings = store.settings()
    head = append_events(settings, aggregates=1, per_aggregate=3)
    batch = [Pending(p.event, 1, False) for p in pending(settings, head)]

    def later(delivery: Delivery) -> None:
        raise RetryLater(0.25 * delivery.event.position)

    handled = HandledEvents(settings)
    try:
        assert handled.handle("c", later, batch) == [Outcome.RETRY] * 3
        assert handled.db.execute(f"SELECT COUNT(*) FROM {HANDLED_EVENTS}")[0][0] == 0
        assert [handled.retry_delay(p.event.id, 9.0) for p in batch] == [0.25, 0.5, 0.75]
        assert handled.handle("c", record, batch) == [Outcome.HANDLED] * 3
    finally:
        handled.close()
