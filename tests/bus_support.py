"""Helpers of the bus tests: events to publish, a recording handler, a private NATS."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import nats

from ledger.bus import Delivery
from ledger.bus.nats_auth import connect_options
from ledger.domain import EventMeta, Model, acting
from ledger.ledger import Ledger
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from tests.conftest import free_port
from tests.conftest import wait_for as wait_for  # re-exported: the bus tests import it here

NATS_URL = os.environ.get("LEDGER_TEST_NATS_URL", "nats://127.0.0.1:4222")
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
HANDLED = "test_handled"


def append_events(settings: Settings, aggregates: int, per_aggregate: int, tag: str = "") -> int:
    """Append ``aggregates * per_aggregate`` events (a model registered, then tags set);
    return the head of the log."""
    with Ledger(settings) as ledger, acting(EventMeta("tester", "bus test", "bus")):
        for a in range(aggregates):
            model = Model.register(f"model-{tag}{a:04d}")
            for i in range(per_aggregate - 1):
                model.set_tag("step", str(i))
            ledger.save(model)
        return ledger.event_count()


def record(delivery: Delivery) -> None:
    """A handler whose effect is a row in ``test_handled``, written in its transaction,
    numbered in the order of the commits."""
    db = delivery.db
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {HANDLED} (seq BIGINT PRIMARY KEY, event_id TEXT, "
        "position BIGINT, aggregate_id TEXT, aggregate_version BIGINT, attempt BIGINT)"
    )
    event = delivery.event
    db.execute(
        f"INSERT INTO {HANDLED} SELECT COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ? FROM {HANDLED}",
        (event.id, event.position, event.aggregate_id, event.aggregate_version, delivery.attempt),
    )


def handled_rows(settings: Settings) -> list[tuple[Any, ...]]:
    """(event id, position, aggregate id, aggregate version, attempt) in commit order."""
    db = LedgerDatabase(settings)
    try:
        if not db.table_exists(HANDLED):
            return []
        return db.execute(
            f"SELECT event_id, position, aggregate_id, aggregate_version, attempt "
            f"FROM {HANDLED} ORDER BY seq"
        )
    finally:
        db.close()


def assert_exactly_once(settings: Settings, head: int) -> None:
    """Every event up to ``head`` handled, none twice (in whatever order: after a consumer
    died or lost its connection, JetStream redelivers its events after later ones)."""
    positions = [row[1] for row in handled_rows(settings)]
    assert sorted(positions) == list(range(1, head + 1)), "an event is missing or doubled"


def assert_exactly_once_in_order(settings: Settings, head: int) -> None:
    assert_exactly_once(settings, head)
    rows = handled_rows(settings)
    versions: dict[str, int] = {}
    for _, _, aggregate, version, _ in rows:
        assert version == versions.get(aggregate, 0) + 1, "out of order within an aggregate"
        versions[aggregate] = version


@contextmanager
def in_background(*mains: Callable[[asyncio.Event], Awaitable[None]]) -> Iterator[None]:
    """Run ``main(stop)`` coroutines on an event loop in a thread until the block ends."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failures: list[BaseException] = []

    async def run_all() -> None:
        try:
            await asyncio.gather(*(main(stop) for main in mains))
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=loop.run_until_complete, args=(run_all(),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        loop.close()
    assert not thread.is_alive(), "the bus did not stop"
    if failures:
        raise failures[0]


def with_jetstream(url: str, action: Callable[[Any], Awaitable[Any]], **options: Any) -> Any:
    """``action(jetstream)`` on a connection of its own to the NATS at ``url`` (``options``:
    more ``nats.connect`` arguments, such as credentials)."""

    async def run() -> Any:
        client = await nats.connect(url.split(","), **options)
        try:
            return await action(client.jetstream())
        finally:
            await client.close()

    return asyncio.run(run())


def stream_messages(settings: Settings) -> int:
    async def count(js: Any) -> int:
        return int((await js.stream_info(settings.nats_stream)).state.messages)

    return int(with_jetstream(settings.nats_url, count, **connect_options(settings)))


def consumer_settled(settings: Settings, consumer: str) -> bool:
    """Every message of the stream delivered to the durable ``consumer`` and acknowledged
    (or terminated): nothing more will reach it, doubled or not, until more is published."""

    async def settled(js: Any) -> bool:
        try:
            info = await js.consumer_info(settings.nats_stream, consumer)
        except nats.js.errors.NotFoundError:  # not created yet
            return False
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)

    return bool(with_jetstream(settings.nats_url, settled, **connect_options(settings)))


def delete_stream(settings: Settings) -> None:
    async def delete(js: Any) -> None:
        with suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(settings.nats_stream)

    with_jetstream(settings.nats_url, delete, **connect_options(settings))


class PrivateNats:
    """A nats-server with JetStream of the test's own, which it may stop and start;
    optionally with a configuration file (``config``) and its environment (``env``), logging
    to ``log`` (in the store directory)."""

    def __init__(
        self, store_dir: Path, config: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.store_dir = store_dir
        self.url = f"nats://127.0.0.1:{self.port}"
        self.config = config
        self.env = env or {}
        self.log = store_dir / "nats-server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        configured = ["-c", str(self.config)] if self.config else []
        self._process = subprocess.Popen(
            [NATS_SERVER, *configured, "-a", "127.0.0.1", "-p", str(self.port), "-js",
             "-sd", str(self.store_dir), "-l", str(self.log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **self.env},
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "nats-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None
