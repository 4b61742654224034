"""The in-process bus, for the embedded default with no NATS: each durable consumer
follows the ledger's log itself, with a cursor stored beside the handled-events
record and moved in the same transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from ledger.bus.events import BusEvent, check_pattern, subject_matches
from ledger.bus.handled import HandledEvents, Outcome
from ledger.bus.jetstream import stopped
from ledger.bus.log_reader import LogReader
from ledger.bus.subscriptions import EventBus, Subscription
from projections.database import ViewDatabase

CURSORS_TABLE = "ledger_bus_cursors"
BATCH = 500


class LocalBus(EventBus):
    """Delivers from the log directly: strictly in log order, retries block the consumer."""

    poll_interval = 0.01

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._consume(s, stop) for s in self.subscriptions))

    async def _consume(self, subscription: Subscription, stop: asyncio.Event) -> None:
        handled = HandledEvents(self.settings)
        reader = LogReader(self.settings, poll_interval=self.poll_interval)
        try:
            position = await asyncio.to_thread(self._cursor, handled.db, subscription)
            while not stop.is_set():
                envelopes = await reader.read(position, BATCH)
                if not envelopes:
                    await reader.wait()
                    continue
                for envelope in envelopes:
                    event = BusEvent.from_envelope(envelope)
                    wanted = subscription.wants(event.subject)
                    if wanted and not await self._deliver(handled, subscription, event, stop):
                        return  # stopped while waiting to retry
                    position = event.position
                await asyncio.to_thread(self._save_cursor, handled.db, subscription, position)
        finally:
            reader.close()
            handled.close()

    async def _deliver(
        self,
        handled: HandledEvents,
        subscription: Subscription,
        event: BusEvent,
        stop: asyncio.Event,
    ) -> bool:
        """Handle ``event``, retrying with backoff; False if stopped before it was done."""

        def save_cursor(db: ViewDatabase) -> None:
            self._save_cursor(db, subscription, event.position)

        attempt = 1
        while True:
            outcome = await asyncio.to_thread(
                handled.handle,
                subscription.consumer,
                event,
                subscription.handler,
                attempt=attempt,
                last_attempt=attempt >= subscription.max_deliver,
                also=save_cursor,
            )
            if outcome is not Outcome.RETRY:
                return True
            if await stopped(stop, subscription.delay_after(attempt)):
                return False
            attempt += 1

    @staticmethod
    def _cursor(db: ViewDatabase, subscription: Subscription) -> int:
        with db.transaction():
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {CURSORS_TABLE} "
                "(consumer TEXT PRIMARY KEY, position BIGINT NOT NULL)"
            )
            rows = db.execute(
                f"SELECT position FROM {CURSORS_TABLE} WHERE consumer = ?",
                (subscription.consumer,),
            )
            if rows:
                return int(rows[0][0])
            start = db.head_position() if subscription.start == "new" else 0
            db.execute(
                f"INSERT INTO {CURSORS_TABLE} (consumer, position) VALUES (?, ?)",
                (subscription.consumer, start),
            )
            return start

    @staticmethod
    def _save_cursor(db: ViewDatabase, subscription: Subscription, position: int) -> None:
        db.execute(
            f"UPDATE {CURSORS_TABLE} SET position = ? WHERE consumer = ? AND position < ?",
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
