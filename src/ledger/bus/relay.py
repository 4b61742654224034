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
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from nats.js import JetStreamContext

from ledger.bus.jetstream import Connection, ensure_stream, nats_subject, stream_end
from ledger.bus.log_reader import LogReader
from ledger.bus.running import RETRY_WAIT_S, keep_running, stopped
from ledger.logging import get_logger
from ledger.settings import Settings
from projections.database import ViewDatabase

RELAY_POSITIONS = "ledger_relay_positions"
ACK_TIMEOUT_S = 5.0
log = get_logger(__name__)


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


def create_positions_table(db: ViewDatabase) -> None:
    db.create_tables(
        f"CREATE TABLE IF NOT EXISTS {RELAY_POSITIONS} (stream TEXT PRIMARY KEY, "
        "position BIGINT NOT NULL, updated_at_us BIGINT NOT NULL)"
    )


def relayed_position(db: ViewDatabase, stream: str) -> tuple[int, float] | None:
    """How far the relay of ``stream`` has published, and when it last moved (Unix time);
    None if it never ran."""
    if not db.table_exists(RELAY_POSITIONS):
        return None
    rows = db.execute(
        f"SELECT position, updated_at_us FROM {RELAY_POSITIONS} WHERE stream = ?", (stream,)
    )
    return (int(rows[0][0]), rows[0][1] / 1e6) if rows else None


class Relay:
    """Publishes the log to the stream ``settings.nats_stream`` until stopped."""

    def __init__(
        self,
        settings: Settings,
        *,
        batch_size: int = 1_000,
        poll_interval: float = 0.01,
        start_after: int | None = None,
    ) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.start_after = start_after  # publish again from here (default: where it stopped)
        self.status = RelayStatus(settings.nats_stream)
        self._head_seen_at = 0.0
        self._last_sequence = 0  # the stream's sequence after the last acknowledged publish
        self._connection = Connection(settings, name="ledger-relay")

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; NATS or the store going away is waited out."""
        js = await self._connection.open(stop)
        if js is None:
            return
        try:
            await keep_running("the relay", lambda: self._publish_while_active(js, stop), stop)
        finally:
            self.status.active = False
            await self._connection.close()

    async def _publish_while_active(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        await ensure_stream(js, self.settings)
        reader = LogReader(self.settings, poll_interval=self.poll_interval)
        lock = RelayLock(self.settings, reader.db)
        try:
            while not lock.acquire():
                self.status.connected = self._connection.connected
                log.info("another relay is publishing this stream; standing by")
                if await stopped(stop, RETRY_WAIT_S):
                    return
            self.status.active = True
            position = await self._starting_position(js, reader.db)
            log.info("relay publishing", stream=self.settings.nats_stream, after=position)
            while not stop.is_set():
                self.status.connected = self._connection.connected
                if not self._connection.connected:
                    await stopped(stop, 0.1)
                    continue
                envelopes = await reader.read(position, self.batch_size)
                await self._look_at_head(reader, envelopes)
                if not envelopes:
                    await reader.wait()
                    continue
                acknowledged = await self._publish(js, envelopes)
                if acknowledged < envelopes[-1]["position"]:
                    await stopped(stop, RETRY_WAIT_S)
                    acknowledged = await self._resynchronise(js, acknowledged)
                else:
                    self.status.last_error = ""
                if acknowledged > position:
                    position = acknowledged
                    await asyncio.to_thread(self._record, reader.db, position)
        finally:
            self.status.active = False
            lock.release()
            reader.close()

    async def _look_at_head(self, reader: LogReader, envelopes: list[dict[str, Any]]) -> None:
        """Keep ``status.head`` current: from what was read, or from the log once a second
        while a backlog is being published."""
        if len(envelopes) < self.batch_size:  # this read reached the head
            self.status.head = envelopes[-1]["position"] if envelopes else self.status.position
        elif time.monotonic() - self._head_seen_at > 1.0:
            self.status.head = await reader.head()
            self._head_seen_at = time.monotonic()

    async def _starting_position(self, js: JetStreamContext, db: ViewDatabase) -> int:
        """Where the relay stopped, or past the newest event in the stream if that is
        further (a relay killed after JetStream stored events, before it recorded them)."""
        await asyncio.to_thread(create_positions_table, db)
        self._last_sequence, in_stream = await stream_end(js, self.settings)
        if self.start_after is not None:  # asked to publish again from a position
            position, self.start_after = self.start_after, None
            await asyncio.to_thread(self._record, db, position)
        else:
            relayed = await asyncio.to_thread(relayed_position, db, self.settings.nats_stream)
            tracked = relayed[0] if relayed else 0
            if self._last_sequence == 0 and tracked > 0:
                log.warning(
                    "the stream is empty but the relay had published events; "
                    "run `ledger relay --from 1` to publish the whole log again",
                    stream=self.settings.nats_stream,
                    relayed_up_to=tracked,
                )
            position = max(tracked, in_stream)
            if position > tracked:  # stored by a relay that died before recording them
                await asyncio.to_thread(self._record, db, position)
        self.status.position = position
        return position

    async def _resynchronise(self, js: JetStreamContext, acknowledged: int) -> int:
        """After a failed publish: read where the stream ends (events may have been stored
        whose acknowledgement was lost); the position to go on from."""
        try:
            await ensure_stream(js, self.settings)  # it may have been deleted
            self._last_sequence, in_stream = await stream_end(js, self.settings)
        except Exception as error:
            self._note_error("cannot read the stream", error)
            return acknowledged
        self.status.position = max(acknowledged, in_stream)
        return self.status.position

    async def _publish(self, js: JetStreamContext, envelopes: list[dict[str, Any]]) -> int:
        """Publish ``envelopes`` pipelined; the position up to which all were acknowledged."""
        futures: list[asyncio.Future[Any]] = []
        try:
            previous = ""
            for envelope in envelopes:
                headers = {"Nats-Msg-Id": envelope["id"]}
                if previous:
                    headers["Nats-Expected-Last-Msg-Id"] = previous
                else:
                    headers["Nats-Expected-Last-Sequence"] = str(self._last_sequence)
                previous = envelope["id"]
                futures.append(
                    await js.publish_async(
                        nats_subject(self.settings, envelope["subject"]),
                        orjson.dumps(envelope),
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

    def _record(self, db: ViewDatabase, position: int) -> None:
        db.execute(
            f"INSERT INTO {RELAY_POSITIONS} (stream, position, updated_at_us) VALUES (?, ?, ?) "
            "ON CONFLICT (stream) DO UPDATE SET position = excluded.position, "
            "updated_at_us = excluded.updated_at_us",
            (self.settings.nats_stream, position, int(time.time() * 1e6)),
        )

    def _note_error(self, message: str, error: BaseException | None) -> None:
        text = (str(error) or type(error).__name__) if error else "no acknowledgement in time"
        self.status.last_error = text
        log.warning(message, error=text, position=self.status.position)


class RelayLock:
    """Lets one relay per stream publish: a session advisory lock on PostgreSQL, an
    exclusive file lock beside the database on SQLite. Both go with their process."""

    def __init__(self, settings: Settings, db: ViewDatabase) -> None:
        self._db = db
        self._key = f"ledger-relay:{settings.pg_schema}:{settings.nats_stream}"
        self._file: IO[bytes] | None = None
        self._path = Path(f"{settings.store_location.sqlite_path}.relay-{settings.nats_stream}")
        self._held = False

    def acquire(self) -> bool:
        if self._held:
            return True
        if self._db.kind == "postgres":
            rows = self._db.execute("SELECT pg_try_advisory_lock(hashtext(?))", (self._key,))
            self._held = bool(rows[0][0])
            return self._held
        self._file = self._path.open("ab")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            self._file = None
            return False
        self._held = True
        return True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        if self._file is not None:
            self._file.close()  # closing the file drops the lock
            self._file = None
        else:
            # If the connection is gone, the lock went with it.
            with contextlib.suppress(Exception):
                self._db.execute("SELECT pg_advisory_unlock(hashtext(?))", (self._key,))


class RelayThread:
    """A relay on a thread of its own, with its own event loop (``ledger serve``)."""

    def __init__(self, settings: Settings) -> None:
        self.relay = Relay(settings)
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
