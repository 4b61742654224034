"""The in-process bus, for the embedded default with no NATS: each durable consumer
follows the ledger's log itself, with a cursor stored beside the handled-events
record and moved in the same transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from ledger.bus.events import BusEvent, check_pattern, subject_matches
from ledger.bus.handled import HandledEvents, Outcome, Pending
from ledger.bus.log_reader import LogReader
from ledger.bus.running import keep_running, stopped
from ledger.bus.subscriptions import EventBus, Subscription
from ledger.storage.database import LedgerDatabase
from ledger.storage.side_tables import BUS_CURSORS, create_side_tables

BATCH = 500


class LocalBus(EventBus):
    """Delivers from the log directly: strictly in log order, retries block the consumer."""

    poll_interval = 0.01

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._consume(s, stop) for s in self.subscriptions))

    async def _consume(self, subscription: Subscription, stop: asyncio.Event) -> None:
        name = f"consumer {subscription.consumer}"
        await keep_running(name, lambda: self._consume_once(subscription, stop), stop)

    async def _consume_once(self, subscription: Subscription, stop: asyncio.Event) -> None:
        handled = HandledEvents(self.settings)
        reader = LogReader(self.settings, poll_interval=self.poll_interval)
        try:
            position = await asyncio.to_thread(self._cursor, handled.db, subscription)
            failed: Pending | None = None  # the event whose handler failed last
            while not stop.is_set():
                envelopes = await reader.read(position, BATCH)
                if not envelopes:
                    await reader.wait()
                    continue
                position, failed = await asyncio.to_thread(
                    self._handle, handled, subscription, envelopes, failed
                )
                if failed is not None:
                    default = subscription.delay_after(failed.attempt)
                    await stopped(stop, handled.retry_delay(failed.event.id, default))
        finally:
            reader.close()
            handled.close()

    def _handle(
        self,
        handled: HandledEvents,
        subscription: Subscription,
        envelopes: list[dict[str, Any]],
        failed_before: Pending | None,
    ) -> tuple[int, Pending | None]:
        """Handle the events the subscription wants, in one transaction, up to the first
        whose handler fails (it is retried next); the new cursor, and the failed event."""
        events = [BusEvent.from_envelope(envelope) for envelope in envelopes]
        batch = []
        for event in events:
            if subscription.wants(event.subject):
                again = failed_before is not None and failed_before.event.id == event.id
                attempt = failed_before.attempt + 1 if failed_before and again else 1
                batch.append(Pending(event, attempt, attempt >= subscription.max_deliver))
        reached = events[-1].position
        failed = None

        def finish(db: LedgerDatabase, outcomes: list[Outcome]) -> None:
            nonlocal reached, failed
            if outcomes and outcomes[-1] is Outcome.RETRY:
                failed = batch[len(outcomes) - 1]
                reached = failed.event.position - 1
            self._save_cursor(db, subscription, reached)

        handled.handle(
            subscription.consumer,
            subscription.handler,
            batch,
            stop_at_retry=True,
            finish=finish,
            prepare=subscription.prepare,
        )
        return reached, failed

    @staticmethod
    def _cursor(db: LedgerDatabase, subscription: Subscription) -> int:
        create_side_tables(db)
        with db.transaction():
            rows = db.execute(
                f"SELECT position FROM {BUS_CURSORS} WHERE consumer = ?",
                (subscription.consumer,),
            )
            if rows:
                return int(rows[0][0])
            start = subscription.start
            if not isinstance(start, int):
                start = db.head_position() if start == "new" else 0
            db.execute(
                f"INSERT INTO {BUS_CURSORS} (consumer, position) VALUES (?, ?) "
                "ON CONFLICT (consumer) DO NOTHING",
                (subscription.consumer, start),
            )
            return start

    @staticmethod
    def _save_cursor(db: LedgerDatabase, subscription: Subscription, position: int) -> None:
        db.execute(
            f"UPDATE {BUS_CURSORS} SET position = ? WHERE consumer = ? AND position < ?",
            (position, subscription.consumer, position),
        )

    async def tail(
        self, stop: asyncio.Event, subjects: Sequence[str] = (), after: int | None = None
    ) -> AsyncGenerator[BusEvent, None]:
        patterns = [check_pattern(s) for s in subjects]
        reader = LogReader(self.settings, poll_interval=self.poll_interval)
        try:
            position = await reader.head() if after is None else after
            while not stop.is_set():
                envelopes = await reader.read(position, BATCH)
                if not envelopes:
                    await reader.wait()
                    continue
                for envelope in envelopes:
                    position = envelope["position"]
                    if not patterns or any(
                        subject_matches(p, envelope["subject"]) for p in patterns
                    ):
                        yield BusEvent.from_envelope(envelope)
        finally:
            reader.close()
