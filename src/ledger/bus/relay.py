"""The relay: publishes every event of the ledger's log to JetStream, in log order.

Events are read after the relay's recorded position and published pipelined, each
with a stable ``Nats-Msg-Id`` and the condition that it comes right after the event
before it (``Nats-Expected-Last-Msg-Id``; the first of a batch names the stream's
last sequence): when one publish fails, every later one in flight fails too, even if
something else was published into the stream meanwhile, so the stream never holds
the log with a gap or out of order. The
position is recorded once JetStream acknowledged the events. After a failure or a
restart the relay reads where the stream ends and goes on after the newest event it
holds, so nothing is published twice, however long the relay was away (the
duplicate window covers a stray late publish). Only one relay per stream publishes
at a time: others wait as hot standbys (PostgreSQL advisory lock; a file lock on
SQLite).

Before going on from a stream, the relay checks that the stream's newest ledger event
is the log's event at that position, chain hash included (``stream_trust``): a database
restored from an older backup, or another store publishing to the stream, is refused
until ``ledger relay --reset`` publishes the log into a fresh stream. Message ids carry
the store's id, so two stores' events never meet in JetStream's duplicate window. An
outage of the database or of NATS is waited out: the relay goes on by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

from ledger.bus.cloudevents import to_cloudevent
from ledger.bus.jetstream import (
    Connection,
    delete_stream,
    ensure_stream,
    nats_subject,
    stream_end,
)
from ledger.bus.log_reader import LogReader
from ledger.bus.relay_state import RelayLock, record_position, relayed_position
from ledger.bus.running import RETRY_WAIT_S, stopped
from ledger.bus.stream_trust import (
    RelayRefusedError,
    chain_hashes,
    check_continues,
    message_id,
    stamp,
    store_id,
)
from ledger.errors import BusUnavailableError
from ledger.logging import get_logger
from ledger.outages import first_line, is_store_unavailable
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.side_tables import create_side_tables

ACK_TIMEOUT_S = 5.0
# How often a relay that keeps trying (``ledger serve``'s) looks again after a refusal.
RECHECK_S = 5.0
# How long `ledger relay --reset` waits for a relay publishing the stream to let go.
RESET_LOCK_WAIT_S = 2 * RECHECK_S
log = get_logger(__name__)
__all__ = ["Relay", "RelayStatus", "RelayThread", "relayed_position"]


class LogReplacedError(Exception):
    """The log under a running relay is no longer the one it published."""


@dataclass
class RelayStatus:
    """What a running relay reports (``ledger serve``'s health shows it)."""

    stream: str
    active: bool = False  # holds the lock: this relay is the one publishing
    connected: bool = False
    position: int = 0  # the last log position JetStream acknowledged
    head: int = 0  # the log's head, as last seen (at most a second ago while publishing)
    published: int = 0  # events published since the relay started
    last_error: str = ""
    refused: str = ""  # why the stream does not continue this log (empty: it does)


class Relay:
    """Publishes the log to the stream ``settings.nats_stream`` until stopped."""

    def __init__(
        self,
        settings: Settings,
        *,
        batch_size: int = 1_000,
        poll_interval: float = 0.01,
        start_after: int | None = None,
        reset: bool = False,
        keep_trying: bool = False,
    ) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.start_after = start_after  # publish again from here (default: where it stopped)
        self.reset = reset  # delete the stream, then publish the whole log into it afresh
        # On a refusal or a stream that does not fit: report it, look again (else raise).
        self.keep_trying = keep_trying
        self.status = RelayStatus(settings.nats_stream)
        self._head_seen_at = 0.0
        self._last_sequence = 0  # the stream's sequence after the last acknowledged publish
        self._store = ""  # this store's id, once its log has an event
        self._published = (0, "")  # the last position in the stream, and its chain hash
        self._checked_at = 0.0
        self._connection = Connection(settings, name="ledger-relay")

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; NATS or the store going away is waited out. A
        stream that does not continue the log raises RelayRefusedError (with
        ``keep_trying``: reported in ``status.refused`` and looked at again)."""
        js = await self._connection.open(stop)
        if js is None:
            return
        try:
            while not stop.is_set():
                wait = RETRY_WAIT_S
                try:
                    await self._publish_while_active(js, stop)
                except BusUnavailableError as error:
                    if not self.keep_trying:
                        raise
                    log.error("the relay cannot publish", error=str(error), retry_in_s=RECHECK_S)
                    self.status.last_error = str(error)
                    wait = RECHECK_S
                except Exception as error:
                    self._note_failure(error)
                await stopped(stop, wait)
        finally:
            self.status.active = False
            await self._connection.close()

    def _note_failure(self, error: Exception) -> None:
        """A failed attempt: the store away is expected now and then, anything else is not."""
        text = first_line(error)
        self.status.last_error = text
        if is_store_unavailable(error) or isinstance(error, sqlite3.OperationalError):
            log.warning("the event store is unreachable; retrying", error=text)
        elif isinstance(error, NatsTimeoutError | NoRespondersError):
            # e.g. a clustered stream electing a leader after a node was lost
            log.warning("JetStream did not answer; retrying", error=text)
        elif isinstance(error, LogReplacedError):
            log.warning("the log changed under the relay; checking the stream", error=text)
        else:
            log.exception("the relay failed; starting it again", retry_in_s=RETRY_WAIT_S)

    async def _publish_while_active(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        reader = LogReader(self.settings, poll_interval=self.poll_interval)
        lock = RelayLock(self.settings, reader.db)
        try:
            if not await self._acquire(lock, stop):
                return
            self.status.active = True
            position = await self._starting_position(js, reader.db)
            await asyncio.to_thread(self._remember, reader.db, position, [])
            log.info("relay publishing", stream=self.settings.nats_stream, after=position)
            while not stop.is_set():
                self.status.connected = self._connection.connected
                if not self._connection.connected:
                    await stopped(stop, 0.1)
                    continue
                envelopes = await reader.read(position, self.batch_size)
                await self._look_at_head(reader, envelopes)
                await self._check_unchanged(reader.db, position, idle=not envelopes)
                if not envelopes:
                    await reader.wait()
                    continue
                await asyncio.to_thread(self._stamp, reader.db, envelopes)
                acknowledged = await self._publish(js, envelopes)
                if acknowledged < envelopes[-1]["position"]:
                    await stopped(stop, RETRY_WAIT_S)
                    acknowledged = await self._resynchronise(js, reader.db, acknowledged)
                else:
                    self.status.last_error = ""
                if acknowledged > position:
                    position = acknowledged
                    await asyncio.to_thread(self._record, reader.db, position)
                    await asyncio.to_thread(self._remember, reader.db, position, envelopes)
        finally:
            self.status.active = False
            lock.release()
            with contextlib.suppress(Exception):  # a connection the store dropped
                reader.close()

    async def _acquire(self, lock: RelayLock, stop: asyncio.Event) -> bool:
        """Stand by while another relay publishes (False: stopped meanwhile). A reset waits
        only briefly: it must not delete the stream under a relay that is publishing."""
        give_up_at = time.monotonic() + RESET_LOCK_WAIT_S
        while not await asyncio.to_thread(lock.acquire):
            self.status.connected = self._connection.connected
            if self.reset and time.monotonic() > give_up_at:
                raise BusUnavailableError(
                    f"another relay is publishing stream {self.settings.nats_stream}: stop it "
                    "(`ledger relay`, or `ledger serve` with its relay) before `--reset`"
                )
            log.info("another relay is publishing this stream; standing by")
            if await stopped(stop, 0.2 if self.reset else RETRY_WAIT_S):
                return False
        return True

    def _remember(self, db: LedgerDatabase, position: int, envelopes: list[dict[str, Any]]) -> None:
        """Note the chain hash of the last event in the stream (at ``position``)."""
        chain = next((e["chain"] for e in envelopes if e["position"] == position), None)
        if chain is None:
            chain = chain_hashes(db, position, position).get(position, "")
        self._published = (position, chain)

    async def _check_unchanged(self, db: LedgerDatabase, position: int, *, idle: bool) -> None:
        """Raise LogReplacedError if the log at ``position`` is no longer what was published
        (a backup restored under a running relay): the next attempt checks the stream.
        While idle, looked at once a second."""
        if position == 0 or self._published[0] != position:
            return
        if idle and time.monotonic() - self._checked_at < 1.0:
            return
        self._checked_at = time.monotonic()
        chain = await asyncio.to_thread(chain_hashes, db, position, position)
        if chain.get(position) != self._published[1]:
            raise LogReplacedError(
                f"the log at position {position} is not the one published: it was replaced"
            )

    def _stamp(self, db: LedgerDatabase, envelopes: list[dict[str, Any]]) -> None:
        if not self._store:
            self._store = store_id(db)
        stamp(db, self._store, envelopes)

    async def _look_at_head(self, reader: LogReader, envelopes: list[dict[str, Any]]) -> None:
        """Keep ``status.head`` current: from what was read, or from the log once a second
        while a backlog is being published."""
        if len(envelopes) < self.batch_size:  # this read reached the head
            self.status.head = envelopes[-1]["position"] if envelopes else self.status.position
        elif time.monotonic() - self._head_seen_at > 1.0:
            self.status.head = await reader.head()
            self._head_seen_at = time.monotonic()

    async def _starting_position(self, js: JetStreamContext, db: LedgerDatabase) -> int:
        """Where the relay stopped, or past the newest event in the stream if that is
        further (a relay killed after JetStream stored events, before it recorded them),
        once the stream is known to continue this log."""
        await asyncio.to_thread(create_side_tables, db)
        if self.reset:  # the stream goes, with its consumers: the log is published afresh
            await delete_stream(js, self.settings)
            self.start_after, self.reset = 0, False
        await ensure_stream(js, self.settings)
        self._last_sequence, last = await stream_end(js, self.settings)
        await self._check(db, last)
        in_stream = int(last["position"]) if last else 0
        if self.start_after is not None:  # asked to publish again from a position
            position, self.start_after = self.start_after, None
            await asyncio.to_thread(self._record, db, position)
        else:
            relayed = await asyncio.to_thread(relayed_position, db, self.settings.nats_stream)
            tracked = relayed[0] if relayed else 0
            if self._last_sequence == 0 and tracked > 0:
                log.warning(
                    "the stream is empty but the relay had published events; "
                    "run `ledger relay --reset` to publish the whole log again",
                    stream=self.settings.nats_stream,
                    relayed_up_to=tracked,
                )
            position = max(tracked, in_stream)
            if position > tracked:  # stored by a relay that died before recording them
                await asyncio.to_thread(self._record, db, position)
        self.status.position = position
        return position

    async def _check(self, db: LedgerDatabase, last: dict[str, Any] | None) -> None:
        """Refuse (RelayRefusedError) unless the stream's newest event is the log's."""
        stream = self.settings.nats_stream
        try:
            self._store = await asyncio.to_thread(store_id, db)
            await asyncio.to_thread(check_continues, db, stream, self._store, last)
        except RelayRefusedError as error:
            self.status.refused = str(error)
            raise
        self.status.refused = ""

    async def _resynchronise(
        self, js: JetStreamContext, db: LedgerDatabase, acknowledged: int
    ) -> int:
        """After a failed publish: read where the stream ends (events may have been stored
        whose acknowledgement was lost, or another store may publish into it); the position
        to go on from."""
        try:
            await ensure_stream(js, self.settings)  # it may have been deleted
            self._last_sequence, last = await stream_end(js, self.settings)
        except BusUnavailableError:
            raise
        except Exception as error:
            self._note_error("cannot read the stream", error)
            return acknowledged
        await self._check(db, last)
        in_stream = int(last["position"]) if last else 0
        self.status.position = max(acknowledged, in_stream)
        return self.status.position

    def _payload(self, envelope: dict[str, Any]) -> bytes:
        if self.settings.nats_event_format == "cloudevents":
            return orjson.dumps(to_cloudevent(envelope, self.settings.event_source))
        return orjson.dumps(envelope)

    async def _publish(self, js: JetStreamContext, envelopes: list[dict[str, Any]]) -> int:
        """Publish ``envelopes`` pipelined; the position up to which all were acknowledged."""
        futures: list[asyncio.Future[Any]] = []
        try:
            previous = ""
            for envelope in envelopes:
                headers = {"Nats-Msg-Id": message_id(envelope)}
                if previous:
                    headers["Nats-Expected-Last-Msg-Id"] = previous
                else:
                    headers["Nats-Expected-Last-Sequence"] = str(self._last_sequence)
                previous = headers["Nats-Msg-Id"]
                futures.append(
                    await js.publish_async(
                        nats_subject(self.settings, envelope["subject"]),
                        self._payload(envelope),
                        headers=headers,
                        stream=self.settings.nats_stream,
                    )
                )
        except Exception as error:  # e.g. the connection dropped: wait for those sent
            self._note_error("publishing failed", error)
        acknowledged = self.status.position
        if futures:
            done, pending = await asyncio.wait(futures, timeout=ACK_TIMEOUT_S)
            for future in pending:
                future.cancel()
            for future in done:  # else asyncio logs each failure after the first ("never
                if not future.cancelled():  # retrieved"): hundreds on a leader election
                    future.exception()
            for envelope, future in zip(envelopes, futures, strict=False):
                failure = future.exception() if future in done else None
                if future not in done or failure is not None:
                    self._note_error("JetStream did not acknowledge an event", failure)
                    break
                acknowledged = envelope["position"]
                self._last_sequence = future.result().seq
        self.status.published += acknowledged - self.status.position
        self.status.position = acknowledged
        return acknowledged

    def _record(self, db: LedgerDatabase, position: int) -> None:
        record_position(db, self.settings.nats_stream, position)

    def _note_error(self, message: str, error: BaseException | None) -> None:
        text = (str(error) or type(error).__name__) if error else "no acknowledgement in time"
        self.status.last_error = text
        log.warning(message, error=text, position=self.status.position)


class RelayThread:
    """A relay on a thread of its own, with its own event loop (``ledger serve``)."""

    def __init__(self, settings: Settings) -> None:
        self.relay = Relay(settings, keep_trying=True)
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        self._loop.run_until_complete(self.relay.run(self._stop))
        self._loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
