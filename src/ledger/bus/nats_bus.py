"""The bus on NATS JetStream: durable pull consumers with explicit acks over the
stream the relay fills."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Sequence
from functools import partial

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError, NotFoundError

from ledger.bus.events import EVERYTHING, BusEvent, check_pattern, subject_matches
from ledger.bus.handled import HandledEvents, Outcome, Pending
from ledger.bus.jetstream import Connection, ensure_stream, nats_subject, position_at
from ledger.bus.running import keep_running, stopped
from ledger.bus.subscriptions import EventBus, Subscription
from ledger.errors import BusUnavailableError
from ledger.logging import get_logger

FETCH_BATCH = 100
FETCH_WAIT_S = 0.5
CONSUMER_CHECK_S = 2.0  # how often an idle consumer checks that it still exists
log = get_logger(__name__)


class NatsBus(EventBus):
    """Each subscription is a durable JetStream pull consumer named after it."""

    async def run(self, stop: asyncio.Event) -> None:
        connection = Connection(self.settings, name="ledger-consumers")
        js = await connection.open(stop)
        if js is None:
            return
        try:
            await asyncio.gather(*(self._consume(js, s, stop) for s in self.subscriptions))
        finally:
            await connection.close()

    def _filter(self, subjects: Sequence[str]) -> str:
        """The server-side filter: the one pattern, or everything (then filtered here)."""
        return nats_subject(self.settings, subjects[0] if len(subjects) == 1 else EVERYTHING)

    async def _consume(
        self, js: JetStreamContext, subscription: Subscription, stop: asyncio.Event
    ) -> None:
        attempt = partial(self._consume_once, js, subscription, stop)
        await keep_running(f"consumer {subscription.consumer}", attempt, stop)

    async def _consume_once(
        self, js: JetStreamContext, subscription: Subscription, stop: asyncio.Event
    ) -> None:
        stream = self.settings.nats_stream
        await ensure_stream(js, self.settings)
        policy, start_seq = await self._start(js, subscription)
        config = ConsumerConfig(
            durable_name=subscription.consumer,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.settings.nats_ack_wait_s,
            max_deliver=subscription.max_deliver,
            deliver_policy=policy,
            opt_start_seq=start_seq,
            filter_subject=self._filter(subscription.subjects),
            max_ack_pending=1_000,
        )
        try:
            await js.add_consumer(stream, config)
        except APIError as error:
            raise BusUnavailableError(
                f"cannot create or update consumer {subscription.consumer!r} on stream "
                f"{stream}: {error}"
            ) from error
        pull = await js.pull_subscribe_bind(durable=subscription.consumer, stream=stream)
        handled = await asyncio.to_thread(HandledEvents, self.settings)
        checked_at = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    messages = await pull.fetch(FETCH_BATCH, timeout=FETCH_WAIT_S)
                except NatsTimeoutError:
                    if time.monotonic() - checked_at > CONSUMER_CHECK_S:
                        checked_at = time.monotonic()
                        if not await self._consumer_exists(js, subscription.consumer):
                            return  # started again: the consumer is created anew
                    continue
                except Exception as error:  # disconnected: nats-py reconnects meanwhile
                    log.warning("fetching events failed", error=str(error) or repr(error))
                    await stopped(stop, 0.5)
                    continue
                await self._deliver(handled, subscription, messages)
        finally:
            with contextlib.suppress(Exception):
                await pull.unsubscribe()
            handled.close()

    async def _start(
        self, js: JetStreamContext, subscription: Subscription
    ) -> tuple[DeliverPolicy, int | None]:
        """Where the consumer starts: for a log position, the stream sequence of the first
        event after it (ALL while the stream holds none); an existing consumer keeps its
        start, which JetStream does not let change."""
        start = subscription.start
        if not isinstance(start, int):
            return (DeliverPolicy.ALL if start == "all" else DeliverPolicy.NEW), None
        try:
            info = await js.consumer_info(self.settings.nats_stream, subscription.consumer)
        except NotFoundError:
            sequence = await self._first_sequence_after(js, start)
            if sequence:
                return DeliverPolicy.BY_START_SEQUENCE, sequence
            return DeliverPolicy.ALL, None
        return info.config.deliver_policy or DeliverPolicy.ALL, info.config.opt_start_seq

    async def _consumer_exists(self, js: JetStreamContext, consumer: str) -> bool:
        """False once the consumer is gone (`ledger relay --reset` deletes the stream with
        its consumers); True too when NATS cannot say (e.g. disconnected)."""
        try:
            await js.consumer_info(self.settings.nats_stream, consumer)
        except NotFoundError:
            log.warning("the consumer or its stream was deleted; creating it again",
                        consumer=consumer, stream=self.settings.nats_stream)  # fmt: skip
            return False
        except Exception:  # fetching reports a lost connection
            pass
        return True

    async def _deliver(
        self, handled: HandledEvents, subscription: Subscription, messages: list[Msg]
    ) -> None:
        """Handle a fetched batch in one transaction, then acknowledge each message."""
        batch: list[tuple[Msg, Pending]] = []
        for message in messages:
            try:
                event = BusEvent.from_json(message.data)
            except (ValueError, TypeError) as error:  # not published by the relay
                log.error("not a ledger event; dropped", subject=message.subject, error=str(error))
                await message.term()
                continue
            if not subscription.wants(event.subject, event.position):
                await message.ack()
                continue
            attempt = message.metadata.num_delivered or 1
            batch.append((message, Pending(event, attempt, attempt >= subscription.max_deliver)))
        if not batch:
            return
        handling = asyncio.get_running_loop().run_in_executor(
            None,
            partial(
                handled.handle,
                subscription.consumer,
                subscription.handler,
                [pending for _, pending in batch],
                prepare=subscription.prepare,
            ),
        )
        while True:
            try:
                outcomes = await asyncio.wait_for(
                    asyncio.shield(handling), self.settings.nats_ack_wait_s / 3
                )
                break
            except TimeoutError:  # long handlers: tell JetStream not to redeliver yet
                for message, _ in batch:
                    with contextlib.suppress(Exception):
                        await message.in_progress()
        for (message, pending), outcome in zip(batch, outcomes, strict=True):
            if outcome is Outcome.RETRY:
                default = subscription.delay_after(pending.attempt)
                await message.nak(delay=handled.retry_delay(pending.event.id, default))
            elif outcome is Outcome.FAILED:
                await message.term()
            else:
                await message.ack()

    async def tail(
        self, stop: asyncio.Event, subjects: Sequence[str] = (), after: int | None = None
    ) -> AsyncGenerator[BusEvent, None]:
        patterns = [check_pattern(s) for s in subjects] or [EVERYTHING]
        connection = Connection(self.settings, name="ledger-tail")
        js = await connection.open()
        assert js is not None
        try:
            await ensure_stream(js, self.settings)
            start = 0 if after is None else await self._first_sequence_after(js, after)
            config = (
                ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
                if start
                else ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
            )
            subscription = await js.subscribe(
                self._filter(patterns),
                stream=self.settings.nats_stream,
                ordered_consumer=True,
                config=config,
            )
            try:
                while not stop.is_set():
                    try:
                        message = await subscription.next_msg(timeout=FETCH_WAIT_S)
                    except NatsTimeoutError:
                        continue
                    event = BusEvent.from_json(message.data)
                    if event.position > (after or 0) and any(
                        subject_matches(p, event.subject) for p in patterns
                    ):
                        yield event
            finally:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
        finally:
            await connection.close()

    async def _first_sequence_after(self, js: JetStreamContext, after: int) -> int:
        """The stream sequence of the first event after log position ``after`` (0: none
        yet). The relay publishes in log order, so positions grow with sequences."""
        state = (await js.stream_info(self.settings.nats_stream)).state
        low, high = state.first_seq, state.last_seq + 1
        if not state.messages:
            return 0
        while low < high:
            middle = (low + high) // 2
            try:
                position = await position_at(js, self.settings, middle)
            except NotFoundError:  # a deleted message: look at the next one
                low = middle + 1
                continue
            if position > after:
                high = middle
            else:
                low = middle + 1
        return low if low <= state.last_seq else 0
