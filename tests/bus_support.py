"""Helpers of the bus tests: events to publish, a recording handler, a private NATS and a
private NATS cluster."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
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
    """``action(jetstream)`` on a connection of its own to the NATS at ``url`` (servers
    separated by commas; ``options``: more ``nats.connect`` arguments, such as credentials)."""

    async def run() -> Any:
        client = await nats.connect(url.split(","), error_cb=_quiet, **options)
        try:
            return await action(client.jetstream())
        finally:
            await client.close()

    return asyncio.run(run())


async def _quiet(error: Exception) -> None:
    """Connection errors are the tests' business (a server of a cluster may be down): no
    traceback on stderr."""


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


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert process.poll() is None, f"{what} exited"
            assert time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.05)


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
        _wait_until_listening(self._process, self.port, "nats-server")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None


class ClusterNode:
    """One nats-server of a NatsCluster: its ports, store and config stay the same across
    a kill and a start, so a restarted node rejoins as itself."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.port, self.cluster_port, self.monitor_port = free_port(), free_port(), free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.store_dir = directory / "store"
        self.config = directory / "nats.conf"
        self.log = directory / "nats.log"
        self._process: subprocess.Popen[bytes] | None = None

    def write_config(self, cluster: str, routes: list[str]) -> None:
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f'server_name: "{self.name}"\n'
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor_port}\n"
            f'jetstream {{ store_dir: "{self.store_dir}" }}\n'
            f'cluster {{\n  name: "{cluster}"\n  listen: 127.0.0.1:{self.cluster_port}\n'
            f"  routes: [{', '.join(routes)}]\n}}\n"
        )

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self) -> None:
        with self.log.open("ab") as log_file:
            self._process = subprocess.Popen(
                [NATS_SERVER, "-c", str(self.config)], stdout=log_file, stderr=log_file
            )
        _wait_until_listening(self._process, self.port, f"nats-server {self.name}")

    def kill(self) -> None:
        """SIGKILL: no lame duck mode, no goodbye to the cluster."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
            self._process = None

    def jetstream_state(self) -> dict[str, Any]:
        """This server's own view of JetStream (its monitoring endpoint ``/jsz``): a
        replica's stream state as stored on this node, not as its leader reports it."""
        url = f"http://127.0.0.1:{self.monitor_port}/jsz?streams=true"
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.load(response))

    def local_stream_state(self, stream: str) -> dict[str, Any] | None:
        """The state of ``stream``'s replica on this node (None: it holds none)."""
        for account in self.jetstream_state().get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail["name"] == stream:
                    return dict(detail["state"])
        return None


class NatsCluster:
    """Three (or ``size``) nats-servers with JetStream forming one cluster, on free local
    ports, each with a store of its own; a node can be killed and started again."""

    def __init__(self, directory: Path, size: int = 3, name: str = "ledger-test") -> None:
        self.nodes = [ClusterNode(f"n{i + 1}", directory / f"n{i + 1}") for i in range(size)]
        for node in self.nodes:
            node.write_config(
                name,
                [f"nats://127.0.0.1:{o.cluster_port}" for o in self.nodes if o is not node],
            )
        self.url = ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 60) -> None:
        """Start every node; return once JetStream has a meta leader and all peers."""
        for node in self.nodes:
            node.start()
        wait_for(self.ready, timeout, "the JetStream cluster to elect a meta leader")

    def ready(self) -> bool:
        """Every node runs and names the same meta leader, which sees all the others
        current (only the leader's ``/jsz`` lists the replicas)."""
        try:
            metas = {n.name: n.jetstream_state().get("meta_cluster") or {} for n in self.nodes}
        except OSError:  # a node not running, or not answering yet
            return False
        leaders = {meta.get("leader") for meta in metas.values()}
        if len(leaders) != 1 or (leader := leaders.pop()) not in metas:
            return False
        replicas = metas[leader].get("replicas") or []
        return len(replicas) == len(self.nodes) - 1 and all(r.get("current") for r in replicas)

    def meta_leader(self) -> str:
        """The name of the node leading the JetStream meta group (empty: none now)."""
        for node in self.nodes:
            with suppress(OSError):
                if leader := (node.jetstream_state().get("meta_cluster") or {}).get("leader"):
                    return str(leader)
        return ""

    def node(self, name: str) -> ClusterNode:
        return next(node for node in self.nodes if node.name == name)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
