"""The ledger on a 3-node NATS JetStream cluster (LEDGER_NATS_REPLICAS=3): the stream's
leader is SIGKILLed while the relay publishes and a durable consumer handles, with events
appended all along. The relay and the consumer go on against the two nodes left, nothing
is lost or doubled, and the killed node catches up once it is back. Runs on both stores."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest

from ledger.bus import Delivery, open_bus
from ledger.bus.relay import Relay
from ledger.domain import EventMeta, Model, acting
from ledger.ledger import Ledger
from ledger.settings import Settings
from tests.bus_support import (
    ClusterNode,
    NatsCluster,
    append_events,
    assert_exactly_once,
    consumer_settled,
    handled_rows,
    in_background,
    record,
    wait_for,
    with_jetstream,
)
from tests.conftest import StoreFactory

pytestmark = pytest.mark.slow

EVENTS_PER_SAVE = 5  # a model registered, then four tags: one save
PACE_S = 0.02  # between saves: a steady stream, not a flood the 2-core machine chokes on
AFTER_KILL = 150  # events appended after the kill that must be published and handled


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nodes = NatsCluster(tmp_path / "nats")
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


class Appender(threading.Thread):
    """Appends events in small saves until stopped; ``head`` is the log's head so far."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.head = 0
        self.error: BaseException | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            with Ledger(self.settings) as ledger, acting(EventMeta("tester", "cluster", "c")):
                while not self._stopping.is_set():
                    model = Model.register(f"model-{self.head // EVENTS_PER_SAVE:05d}")
                    for i in range(EVENTS_PER_SAVE - 1):
                        model.set_tag("step", str(i))
                    ledger.save(model)
                    self.head += EVENTS_PER_SAVE
                    self._stopping.wait(PACE_S)
                assert ledger.event_count() == self.head
        except BaseException as error:
            self.error = error

    def finish(self) -> int:
        self._stopping.set()
        self.join(60)
        assert not self.is_alive() and self.error is None, self.error
        return self.head


class Progress:
    """When the relay's acknowledged position moved, and when the handler ran."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.published: list[float] = []
        self.handled: list[float] = []

    def handler(self, delivery: Delivery) -> None:
        record(delivery)
        self.handled.append(time.monotonic())

    async def watch(self, stop: asyncio.Event) -> None:
        position = 0
        while not stop.is_set():
            if self.relay.status.position != position:
                position = self.relay.status.position
                self.published.append(time.monotonic())
            await asyncio.sleep(0.005)


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch without progress between ``start`` and ``end``."""
    inside = [start, *(t for t in times if start < t < end), end]
    return max(b - a for a, b in itertools.pairwise(inside))


def leaders(settings: Settings, consumer: str) -> tuple[str, str]:
    """The nodes leading the stream and the durable ``consumer``."""

    async def ask(js: Any) -> tuple[str, str]:
        stream = await js.stream_info(settings.nats_stream)
        durable = await js.consumer_info(settings.nats_stream, consumer)
        return str(stream.cluster.leader), str(durable.cluster.leader)

    return tuple(with_jetstream(settings.nats_url, ask))  # type: ignore[return-value]


def stream_positions(settings: Settings) -> list[int]:
    """The log position of each message in the stream, in stream order from sequence 1
    (read one by one: no consumer to create while the cluster is short of a node)."""

    async def read(js: Any) -> list[int]:
        last = (await js.stream_info(settings.nats_stream)).state.last_seq
        positions: list[int] = []
        for first in range(1, last + 1, 100):
            batch = range(first, min(first + 100, last + 1))
            messages = await asyncio.gather(*(js.get_msg(settings.nats_stream, s) for s in batch))
            assert [m.seq for m in messages] == list(batch)
            positions += [orjson.loads(m.data)["position"] for m in messages]
        return positions

    return list(with_jetstream(settings.nats_url, read))


def settled(settings: Settings, consumer: str) -> bool:
    try:
        return consumer_settled(settings, consumer)
    except nats.errors.Error:  # no answer in time: the cluster still settling
        return False


def replicas_current(settings: Settings, node: str) -> bool:
    """The stream's leader reports ``node``'s replica current, with no lag."""

    async def current(js: Any) -> bool:
        cluster = (await js.stream_info(settings.nats_stream)).cluster
        peers = {peer.name: peer for peer in cluster.replicas or []}
        return node in peers and bool(peers[node].current) and not peers[node].lag

    try:
        return bool(with_jetstream(settings.nats_url, current))
    except nats.errors.Error:  # no answer in time: a leader being elected
        return False


def caught_up(node: ClusterNode, settings: Settings, head: int) -> bool:
    """The stream's replica as stored on ``node`` holds the whole log."""
    state = node.local_stream_state(settings.nats_stream)
    return state is not None and state["messages"] == head and state["last_seq"] == head


def test_the_relay_and_a_consumer_ride_out_the_stream_leader_killed(
    store: StoreFactory,
    cluster: NatsCluster,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    suffix = uuid.uuid4().hex[:10]
    settings = store.settings(
        nats_url=cluster.url,
        nats_replicas=3,
        nats_stream=f"CLUSTER_{suffix}",
        nats_subject_prefix=f"cluster_{suffix}",
        nats_ack_wait_s=2.0,
    )
    relay = Relay(settings)
    progress = Progress(relay)
    bus = open_bus(settings)
    bus.subscribe("auditor", progress.handler)
    appender = Appender(settings)
    appender.start()
    try:
        with in_background(relay.run, bus.run, progress.watch):
            wait_for(lambda: len(progress.handled) >= 300, 60, "events handled before the kill")
            stream_leader, consumer_leader = leaders(settings, "auditor")
            meta_leader = cluster.meta_leader()
            killed = cluster.node(stream_leader)
            killed_at, head_at_kill = time.monotonic(), appender.head
            killed.kill()

            # The two nodes left elect a leader; the relay and the consumer go on with them.
            after = head_at_kill + AFTER_KILL
            wait_for(lambda: relay.status.position >= after, 90, "publishing after the kill")
            wait_for(lambda: len(progress.handled) >= after, 90, "handling after the kill")
            head = appender.finish()
            window = (killed_at - 0.5, time.monotonic())  # progress was steady until the kill
            steady = (progress.handled[100], killed_at)  # past the start
            wait_for(lambda: relay.status.position == head, 60, "every event published")
            wait_for(lambda: len(handled_rows(settings)) >= head, 60, "every event handled")
            wait_for(lambda: settled(settings, "auditor"), 60, "every ack taken")
            assert not killed.running  # all of that on two nodes
            in_stream = stream_positions(settings)
            rows = handled_rows(settings)

            killed.start()  # the same name, ports and store: it rejoins as itself
            wait_for(cluster.ready, 60, "the node to rejoin the meta group")
            wait_for(lambda: replicas_current(settings, killed.name), 60, "its replica current")
            wait_for(lambda: caught_up(killed, settings, head), 60, "its own copy complete")
            # and it takes its share of what comes next
            final = append_events(settings, aggregates=2, per_aggregate=10, tag="back")
            wait_for(lambda: len(handled_rows(settings)) >= final, 60, "events after the return")
            wait_for(lambda: caught_up(killed, settings, final), 60, "its copy of them")
    finally:
        appender.finish()

    positions = [row[1] for row in rows]
    figures = {
        "store": store.kind,
        "killed": f"{killed.name} at log position ~{head_at_kill}",
        "leaders (stream, consumer, meta)": (stream_leader, consumer_leader, meta_leader),
        "appended": head,
        "published": len(in_stream),
        "handled": len(set(positions)),
        "lost": len(set(range(1, head + 1)) - (set(in_stream) & set(positions))),
        "duplicated": len(in_stream) - len(set(in_stream)) + len(positions) - len(set(positions)),
        "redelivered": sum(1 for row in rows if row[4] > 1),
        "relay paused (s)": round(longest_gap(progress.published, *window), 2),
        "consumer paused (s)": round(longest_gap(progress.handled, *window), 2),
        "longest gaps before the kill (s)": (
            round(longest_gap(progress.published, *steady), 2),
            round(longest_gap(progress.handled, *steady), 2),
        ),
    }
    logged = capsys.readouterr().err.splitlines()
    with capsys.disabled():
        print(f"\ncluster failover: {figures}")
    assert in_stream == list(range(1, head + 1)), "an event lost, doubled or out of order"
    assert sorted(positions) == list(range(1, head + 1)), "an event missing or handled twice"
    assert_exactly_once(settings, final)
    # Losing a node is weathered with warnings: no error, no traceback.
    assert not [line for line in logged if '"level": "error"' in line], logged
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
