"""The event bus: the relay to a real NATS JetStream, durable consumers with exactly-once
handling, and the in-process bus of the embedded default. Every test runs on both stores."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from ledger.bus import BusEvent, Delivery, Outcome, open_bus, subject_matches
from ledger.bus.events import check_pattern
from ledger.bus.handled import HandledEvents, Pending, failed_events
from ledger.bus.relay import Relay, relayed_position
from ledger.bus.relay_state import RelayLock
from ledger.errors import InvalidInputError
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.decoding import EventDecoder
from ledger.storage.feed import read_feed
from tests.bus_support import (
    NATS_URL,
    PrivateNats,
    append_events,
    assert_exactly_once,
    assert_exactly_once_in_order,
    consumer_settled,
    delete_stream,
    handled_rows,
    in_background,
    record,
    stream_messages,
    wait_for,
    with_jetstream,
)
from tests.conftest import Cli, StoreFactory, assert_user_error, running_api
from tests.paths import REPO


def relayed(settings: Settings) -> int:
    db = LedgerDatabase(settings)
    try:
        found = relayed_position(db, settings.nats_stream)
        return found[0] if found else 0
    finally:
        db.close()


# -- subjects ------------------------------------------------------------------------------


def test_subject_patterns_match_like_nats() -> None:
    subject = "ledger.model_version.registered"
    for pattern in ("ledger.>", "ledger.model_version.*", "ledger.*.registered", subject):
        assert subject_matches(pattern, subject), pattern
    for pattern in ("ledger.model.>", "ledger.*", "ledger.model_version.registered.x"):
        assert not subject_matches(pattern, subject), pattern
    for bad in ("model.registered", "ledger", "ledger.>.x", "ledger.mo*", "ledger..x"):
        with pytest.raises(InvalidInputError, match="bad subject pattern"):
            check_pattern(bad)


def test_an_envelope_from_a_newer_relay_is_read_and_garbage_is_refused() -> None:
    envelope = {
        "position": 7, "id": "a/1", "subject": "ledger.model.registered",
        "type": "Model.Registered", "aggregate_id": "a", "aggregate_version": 1,
        "time": "2026-11-26T00:00:00+00:00", "actor": "ci", "reason": "", "correlation_id": "",
        "causation_id": "", "data": {"name": "iris"}, "added_later": True,
    }  # fmt: skip
    assert BusEvent.from_json(orjson.dumps(envelope)).data == {"name": "iris"}
    for garbage in (b"[1]", b'{"position": 1}'):
        with pytest.raises(TypeError):
            BusEvent.from_json(garbage)
    with pytest.raises(ValueError):
        BusEvent.from_json(b"not json")


# -- the in-process bus ----------------------------------------------------------------------


def test_in_process_bus_delivers_each_event_once_in_log_order(store: StoreFactory) -> None:
    settings = store.settings()
    head = append_events(settings, aggregates=5, per_aggregate=60)
    bus = open_bus(settings)
    bus.subscribe("auditor", record)
    with in_background(bus.run):
        wait_for(lambda: len(handled_rows(settings)) == head, 30, "the first events")
    assert_exactly_once_in_order(settings, head)
    assert [row[1] for row in handled_rows(settings)] == list(range(1, head + 1))

    # A durable consumer resumes where it stopped: only the new events are delivered.
    head = append_events(settings, aggregates=2, per_aggregate=10, tag="later")
    bus = open_bus(settings)
    bus.subscribe("auditor", record)
    with in_background(bus.run):
        wait_for(lambda: len(handled_rows(settings)) == head, 30, "the later events")
    assert_exactly_once_in_order(settings, head)


def test_failing_handlers_are_retried_then_recorded_as_failed(
    store: StoreFactory, cli: Cli
) -> None:
    settings = store.settings()
    head = append_events(settings, aggregates=1, per_aggregate=6)
    attempts: dict[int, int] = {}

    def flaky(delivery: Delivery) -> None:
        position = delivery.event.position
        attempts[position] = attempts.get(position, 0) + 1
        if position == 2 and delivery.attempt < 3:
            raise RuntimeError("transient")
        if position == 4:
            raise RuntimeError("always broken")
        record(delivery)

    bus = open_bus(settings)
    bus.subscribe("flaky", flaky, subjects=["ledger.model.>"], max_deliver=3, backoff=[0.01])
    with in_background(bus.run):
        wait_for(lambda: len(handled_rows(settings)) == head - 1, 30, "the good events")
    assert attempts[2] == 3 and attempts[4] == 3 and attempts[5] == 1
    assert [row[1] for row in handled_rows(settings)] == [1, 2, 3, 5, 6]

    result = cli("events", "failed", "--json")
    assert result.code == 0, result
    failed = result.json()
    assert failed == [
        {
            "consumer": "flaky",
            "event_id": failed[0]["event_id"],
            "position": 4,
            "error": "RuntimeError('always broken')",
        }
    ]


@pytest.mark.parametrize("on_nats", [False, True], ids=["in-process", "nats"])
def test_a_failing_handlers_own_writes_are_rolled_back(
    nats_store: StoreFactory, on_nats: bool
) -> None:
    """Handlers write through ``delivery.db``, then raise: nothing of a failed attempt stays,
    whether the event is handled on a retry or recorded as failed."""
    settings = nats_store.settings() if on_nats else nats_store.settings(nats_url="")
    head = append_events(settings, aggregates=2, per_aggregate=5)

    def write_then_fail(delivery: Delivery) -> None:
        record(delivery)
        position = delivery.event.position
        if position == 4:
            raise RuntimeError("always broken")
        if position in (2, 7) and delivery.attempt == 1:
            raise RuntimeError("transient")

    bus = open_bus(settings)
    bus.subscribe("writer", write_then_fail, max_deliver=3, backoff=[0.01])
    mains = [Relay(settings).run, bus.run] if on_nats else [bus.run]
    with in_background(*mains):
        wait_for(
            lambda: _failed_positions(settings) == [4] and len(handled_rows(settings)) >= head - 1,
            30,
            "the good events and the failed one",
        )
    rows = handled_rows(settings)
    assert sorted(row[1] for row in rows) == [p for p in range(1, head + 1) if p != 4]
    attempts = {row[1]: row[4] for row in rows}
    assert attempts[2] == attempts[7] == 2  # the first attempt's row was rolled back


def _failed_positions(settings: Settings) -> list[object]:
    db = LedgerDatabase(settings)
    try:
        return [event["position"] for event in failed_events(db, "writer")]
    finally:
        db.close()


def test_handled_records_are_committed_as_durably_as_the_events(store: StoreFactory) -> None:
    """The views' connections skip the sync at commit; a handler's transaction, acknowledged
    right after, does not (SQLite: synchronous=FULL; PostgreSQL: synchronous_commit on)."""
    settings = store.settings()
    head = append_events(settings, aggregates=1, per_aggregate=2)
    seen: list[object] = []

    def durability(delivery: Delivery) -> None:
        sqlite = delivery.db.kind == "sqlite"
        query = "PRAGMA synchronous" if sqlite else "SHOW synchronous_commit"
        seen.append(delivery.db.execute(query)[0][0])

    bus = open_bus(settings)
    bus.subscribe("durable", durability)
    with in_background(bus.run):
        wait_for(lambda: len(seen) >= head, 30, "the events")
    assert set(seen) == ({2} if store.kind == "sqlite" else {"on"})


def test_a_batch_stopped_at_a_retry_keeps_the_records_of_events_handled_before(
    store: StoreFactory,
) -> None:
    settings = store.settings()
    head = append_events(settings, aggregates=1, per_aggregate=3)
    events = [BusEvent.from_envelope(e) for e in _envelopes(settings, head)]
    batch = [Pending(event, 1, False) for event in events]
    handled = HandledEvents(settings)
    try:
        assert handled.handle("c", record, batch[2:]) == [Outcome.HANDLED]

        def fail_on_second(delivery: Delivery) -> None:
            if delivery.event.position == 2:
                raise RuntimeError("not yet")
            record(delivery)

        outcomes = handled.handle("c", fail_on_second, batch, stop_at_retry=True)
        assert outcomes == [Outcome.HANDLED, Outcome.RETRY]
        assert handled.handle("c", record, batch) == [
            Outcome.DUPLICATE,
            Outcome.HANDLED,
            Outcome.DUPLICATE,  # handled in the first batch: its record survived the retry
        ]
    finally:
        handled.close()
    assert sorted(row[1] for row in handled_rows(settings)) == [1, 2, 3]


def _envelopes(settings: Settings, head: int) -> list[dict[str, Any]]:
    db = LedgerDatabase(settings)
    try:
        return read_feed(db, EventDecoder(), 0, head)
    finally:
        db.close()


def test_subscriptions_refuse_bad_arguments(store: StoreFactory) -> None:
    bus = open_bus(store.settings())
    with pytest.raises(InvalidInputError, match="bad consumer name"):
        bus.subscribe("no spaces", record)
    with pytest.raises(InvalidInputError, match="bad subject pattern"):
        bus.subscribe("ok", record, subjects=["model.>"])
    with pytest.raises(InvalidInputError, match="max_deliver"):
        bus.subscribe("ok", record, max_deliver=0)
    bus.subscribe("ok", record)
    with pytest.raises(InvalidInputError, match="subscribed already"):
        bus.subscribe("ok", record)


# -- NATS JetStream ----------------------------------------------------------------------------


def test_ten_thousand_events_reach_a_durable_consumer_exactly_once(
    nats_store: StoreFactory,
) -> None:
    settings = nats_store.settings()
    head = append_events(settings, aggregates=50, per_aggregate=200)
    assert head == 10_000
    bus = open_bus(settings)
    bus.subscribe("indexer", record)
    with in_background(Relay(settings).run, bus.run):
        wait_for(lambda: len(handled_rows(settings)) >= head, 120, "10,000 events")
        wait_for(lambda: consumer_settled(settings, "indexer"), 30, "every event acknowledged")
    assert_exactly_once_in_order(settings, head)
    assert stream_messages(settings) == head
    assert relayed(settings) == head


def test_consumers_get_the_subjects_they_ask_for_and_skip_foreign_messages(
    nats_store: StoreFactory,
) -> None:
    settings = nats_store.settings()
    empty = Relay(settings)
    with in_background(empty.run):  # creates the stream
        wait_for(lambda: empty.status.active, 30, "the stream")
    junk = f"{settings.nats_subject_prefix}.model.junk"
    with_jetstream(settings.nats_url, lambda js: js.publish(junk, b"not an envelope"))
    head = append_events(settings, aggregates=3, per_aggregate=5)
    with in_background(Relay(settings).run):  # it starts after a message it cannot read
        wait_for(lambda: relayed(settings) == head, 30, "the relay")
    got: dict[str, list[str]] = {"registered": [], "both": []}
    bus = open_bus(settings)
    bus.subscribe("registered", lambda d: got["registered"].append(d.event.subject),
                  subjects=["ledger.model.registered"])  # fmt: skip
    bus.subscribe("both", lambda d: got["both"].append(d.event.subject),
                  subjects=["ledger.model.registered", "ledger.model.tagged"])  # fmt: skip
    with in_background(bus.run):
        wait_for(lambda: len(got["both"]) == head and got["registered"], 30, "the events")
        for consumer in ("registered", "both"):  # acknowledged: nothing more will come
            wait_for(lambda: consumer_settled(settings, consumer), 30, consumer)  # noqa: B023
    assert got["registered"] == ["ledger.model.registered"] * 3
    assert sorted(set(got["both"])) == ["ledger.model.registered", "ledger.model.tagged"]


def test_the_stream_holds_the_log_in_order_when_others_publish_into_it(
    nats_store: StoreFactory,
) -> None:
    """Foreign messages break the relay's chain of expected sequences mid-way; it reads
    where the stream ends and goes on, with no event lost, doubled or out of order."""
    settings = nats_store.settings()
    head = append_events(settings, aggregates=50, per_aggregate=200)
    relay = Relay(settings)
    with in_background(relay.run, _foreign_publisher(settings, relay)):
        wait_for(lambda: relayed(settings) == head, 60, "the relay")
    stored = asyncio.run(_stream_contents(settings))
    positions = [position for position in stored if position]
    assert positions == list(range(1, head + 1))
    first, last = stored.index(1), stored.index(head)
    assert 0 in stored[first:last], "no foreign message landed while the relay published"


def _foreign_publisher(settings: Settings, relay: Relay) -> Any:
    async def publish(stop: asyncio.Event) -> None:
        client = await nats.connect(settings.nats_url)
        try:
            while relay.status.position < 1_000:  # while the relay publishes the rest
                await asyncio.sleep(0.001)
            for _ in range(20):
                await client.publish(f"{settings.nats_subject_prefix}.model.junk", b"junk")
                await asyncio.sleep(0.01)
        finally:
            await client.close()

    return publish


async def _stream_contents(settings: Settings) -> list[int]:
    """The position of each message in the stream, in stream order (0: a foreign one)."""
    client = await nats.connect(settings.nats_url)
    try:
        js = client.jetstream()
        subscription = await js.pull_subscribe(
            f"{settings.nats_subject_prefix}.>",
            stream=settings.nats_stream,
            config=ConsumerConfig(ack_policy=AckPolicy.NONE),
        )
        total = (await js.stream_info(settings.nats_stream)).state.messages
        stored: list[int] = []
        while len(stored) < total:
            for message in await subscription.fetch(1000, timeout=5):
                is_event = message.data.startswith(b"{")
                stored.append(orjson.loads(message.data)["position"] if is_event else 0)
        return stored
    finally:
        await client.close()


RELAY_SCRIPT = """
import os, signal, sys
from ledger.bus.relay import Relay
from ledger.cli import main

kill_after, at_batch = sys.argv[1], int(sys.argv[2])
published = 0
original_publish, original_record = Relay._publish, Relay._record

async def publish(self, js, envelopes):
    global published
    acknowledged = await original_publish(self, js, envelopes)
    published += 1
    if kill_after == "storing" and published == at_batch:
        os.kill(os.getpid(), signal.SIGKILL)  # stored in JetStream, not recorded
    return acknowledged

def record(self, db, position):
    original_record(self, db, position)
    if kill_after == "recording" and published == at_batch:
        os.kill(os.getpid(), signal.SIGKILL)  # recorded, the rest not yet published

Relay._publish, Relay._record = publish, record
sys.argv = ["ledger", "relay"]
main()
"""


def test_relay_killed_repeatedly_while_publishing_loses_and_doubles_nothing(
    nats_store: StoreFactory,
) -> None:
    """3,000 more events before each start of `ledger relay` (batches of 1,000), which is
    SIGKILLed mid-way: after JetStream stored a batch and before the relay recorded it, or
    right after it recorded one; then one relay publishes the rest."""
    settings = nats_store.settings()
    env = {**os.environ, **nats_store.env(), "LEDGER_LOG_LEVEL": "ERROR"}
    for run, (kill_after, at_batch) in enumerate(
        [("storing", 2), ("recording", 2), ("storing", 1), ("recording", 1)]
    ):
        append_events(settings, aggregates=15, per_aggregate=200, tag=f"run{run}-")
        relay = subprocess.Popen(
            [sys.executable, "-c", RELAY_SCRIPT, kill_after, str(at_batch)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        assert relay.wait(60) == -signal.SIGKILL
        after, stored = relayed(settings), stream_messages(settings)
        assert after < _head(settings), "killed mid-way"
        if kill_after == "storing":  # the next relay must not publish these again
            assert stored > after, (stored, after)
        else:
            assert stored == after, (stored, after)
    head = _head(settings)
    # The last relay may have nothing to publish: it records what it found in the stream.
    with in_background(Relay(settings).run):
        wait_for(lambda: relayed(settings) == head, 30, "the last relay")
    assert stream_messages(settings) == head  # no event was published twice

    bus = open_bus(settings)
    bus.subscribe("auditor", record)
    with in_background(bus.run):
        wait_for(lambda: len(handled_rows(settings)) >= head, 60, "every event")
        wait_for(lambda: consumer_settled(settings, "auditor"), 30, "every event acknowledged")
    assert_exactly_once_in_order(settings, head)


def test_a_relay_records_what_it_finds_already_in_the_stream(nats_store: StoreFactory) -> None:
    """Its predecessor was killed after JetStream stored the events, before recording them:
    the new relay publishes nothing and records the position at once (else health shows lag)."""
    settings = nats_store.settings()
    append_events(settings, aggregates=2, per_aggregate=50)
    with in_background(Relay(settings).run):
        wait_for(lambda: relayed(settings) == 100, 30, "the first relay")
    nats_store.sql("UPDATE ledger_relay_positions SET position = 40")
    relay = Relay(settings)
    with in_background(relay.run):
        wait_for(lambda: relay.status.active, 30, "the second relay")
        wait_for(lambda: relayed(settings) == 100, 30, "the position to be recorded")
    assert relay.status.published == 0 and stream_messages(settings) == 100


def _head(settings: Settings) -> int:
    db = LedgerDatabase(settings)
    try:
        return db.head_position()
    finally:
        db.close()


def test_commands_succeed_while_nats_is_down_and_everything_arrives_after(
    store: StoreFactory, tmp_path: Path
) -> None:
    server = PrivateNats(tmp_path / "nats")
    server.start()
    settings = store.settings(
        nats_url=server.url, nats_stream="OUTAGE", nats_subject_prefix="outage"
    )
    relay = Relay(settings)
    bus = open_bus(settings)
    bus.subscribe("auditor", record)
    try:
        with in_background(relay.run, bus.run):
            head = append_events(settings, aggregates=2, per_aggregate=50)
            wait_for(lambda: len(handled_rows(settings)) == head, 30, "events before the outage")
            server.stop()
            wait_for(lambda: not relay.status.connected, 30, "the relay to notice")
            head = append_events(settings, aggregates=3, per_aggregate=50, tag="outage")
            assert head == 250  # the commands succeeded with NATS down
            server.start()
            wait_for(lambda: len(handled_rows(settings)) >= head, 60, "events after the outage")
            wait_for(lambda: consumer_settled(settings, "auditor"), 30, "every event acknowledged")
        assert_exactly_once(settings, head)
    finally:
        server.stop()


CONSUMER_SCRIPT = """
import asyncio, os, signal, sys
from nats.aio.msg import Msg
from tests.bus_support import record
from ledger.bus import nats_bus, open_bus
from ledger.settings import Settings

die_in_handler, die_before_ack, fetch_batch = (int(n) for n in sys.argv[1:4])
nats_bus.FETCH_BATCH = fetch_batch  # several batches: the kill lands mid-stream
original_ack = Msg.ack

def handler(delivery):
    record(delivery)
    if delivery.event.position == die_in_handler:
        os.kill(os.getpid(), signal.SIGKILL)  # before the transaction commits

async def ack(message):
    if b'"position":%d,' % die_before_ack in message.data:
        os.kill(os.getpid(), signal.SIGKILL)  # committed, not acknowledged
    await original_ack(message)

Msg.ack = ack
bus = open_bus(Settings())
bus.subscribe("worker", handler)
stop = asyncio.Event()
asyncio.run(bus.run(stop))
"""
CONSUMER_BATCH = 10


def test_a_consumer_that_dies_before_acking_gets_the_event_again_and_handles_it_once(
    nats_store: StoreFactory,
) -> None:
    settings = nats_store.settings()
    head = append_events(settings, aggregates=4, per_aggregate=25)
    with in_background(Relay(settings).run):
        wait_for(lambda: relayed(settings) == head, 30, "the relay")
    root = REPO  # the tests, and this tree's sources before any install
    env = {**os.environ, **nats_store.env(), "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}

    def consumer(die_in_handler: int, die_before_ack: int) -> subprocess.Popen[bytes]:
        arguments = [str(die_in_handler), str(die_before_ack), str(CONSUMER_BATCH)]
        return subprocess.Popen([sys.executable, "-c", CONSUMER_SCRIPT, *arguments], env=env)

    first = consumer(die_in_handler=35, die_before_ack=0)
    assert first.wait(60) == -signal.SIGKILL
    # The batch holding event 35 was rolled back with it; the batches before were committed.
    positions = [row[1] for row in handled_rows(settings)]
    assert positions == list(range(1, len(positions) + 1))
    assert CONSUMER_BATCH <= len(positions) < 35, positions
    second = consumer(die_in_handler=0, die_before_ack=60)
    assert second.wait(60) == -signal.SIGKILL
    assert 60 in [row[1] for row in handled_rows(settings)]  # committed, never acknowledged
    last = consumer(die_in_handler=0, die_before_ack=0)
    try:
        # Only this consumer can acknowledge event 60, and only after handling its
        # redelivery: once everything is acknowledged, a doubled handling would be recorded.
        wait_for(lambda: consumer_settled(settings, "worker"), 60, "the redeliveries")
    finally:
        last.terminate()
        last.wait(30)
    assert_exactly_once(settings, head)
    # The event being handled when the first consumer died was handled on a redelivery; the
    # one handled but never acknowledged came again and was recognised as handled.
    assert {row[1]: row[4] for row in handled_rows(settings)}[35] >= 2


def test_a_second_relay_stands_by_until_the_first_stops(
    nats_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = nats_store.settings()
    head = append_events(settings, aggregates=2, per_aggregate=50)
    refused: list[bool] = []
    acquire = RelayLock.acquire

    def acquire_and_tell(lock: RelayLock) -> bool:
        got = acquire(lock)
        if not got:
            refused.append(True)
        return got

    monkeypatch.setattr(RelayLock, "acquire", acquire_and_tell)
    first, second = Relay(settings), Relay(settings)
    first_running = in_background(first.run)
    first_running.__enter__()
    wait_for(lambda: relayed(settings) == head, 30, "the first relay")
    with in_background(second.run):
        wait_for(lambda: len(refused) >= 2, 30, "the second relay to be refused the lock twice")
        assert first.status.active and not second.status.active
        first_running.__exit__(None, None, None)
        wait_for(lambda: second.status.active, 30, "the standby to take over")
        head = append_events(settings, aggregates=1, per_aggregate=10, tag="later")
        wait_for(lambda: relayed(settings) == head, 30, "the second relay")
    assert second.status.published == 10
    assert stream_messages(settings) == head


def test_relay_from_a_position_publishes_the_log_into_a_new_stream(
    nats_store: StoreFactory,
) -> None:
    settings = nats_store.settings()
    head = append_events(settings, aggregates=2, per_aggregate=30)
    with in_background(Relay(settings).run):
        wait_for(lambda: relayed(settings) == head, 30, "the relay")
    delete_stream(settings)
    resumed = Relay(settings)
    with in_background(resumed.run):  # resuming publishes nothing: it had published it all
        # Started at the head (not at 0) and read the log after it: found nothing to publish.
        caught_up = (head, head)
        wait_for(lambda: (resumed.status.position, resumed.status.head) == caught_up, 30, "it")
    assert stream_messages(settings) == 0 and resumed.status.published == 0
    with in_background(Relay(settings, start_after=0).run):  # `ledger relay --from 1`
        wait_for(lambda: stream_messages(settings) == head, 30, "the log published again")


def test_a_stream_that_does_not_fit_the_settings_is_refused(
    nats_store: StoreFactory, cli: Cli
) -> None:
    settings = nats_store.settings()
    with_jetstream(
        settings.nats_url,
        # Subjects of this test's own: two streams on one server may not share a subject.
        lambda js: js.add_stream(
            name=settings.nats_stream, subjects=[f"{settings.nats_subject_prefix}_elsewhere.>"]
        ),
    )
    result = cli("relay")
    assert result.code == 1
    assert f"error: JetStream stream {settings.nats_stream} exists with subjects" in result.err


# -- the command line and the API --------------------------------------------------------------


@pytest.mark.parametrize("on_nats", [False, True], ids=["in-process", "nats"])
def test_events_tail_prints_events_from_a_position(
    nats_store: StoreFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch, on_nats: bool
) -> None:
    settings = nats_store.settings()
    if not on_nats:
        monkeypatch.setenv("LEDGER_NATS_URL", "")
    append_events(settings, aggregates=3, per_aggregate=4)
    if on_nats:
        with in_background(Relay(settings).run):
            wait_for(lambda: relayed(settings) == 12, 30, "the relay")
    result = cli("events", "tail", "--from", "3", "-n", "5", "--json")
    assert result.code == 0, result
    lines = [__import__("json").loads(line) for line in result.out.splitlines()]
    assert [event["position"] for event in lines] == [3, 4, 5, 6, 7]
    assert lines[0]["subject"] == "ledger.model.tagged"
    result = cli("events", "tail", "--from", "3", "-n", "1", "--cloudevents")
    assert result.code == 0, result
    cloudevent = __import__("json").loads(result.out)
    assert (cloudevent["specversion"], cloudevent["type"]) == ("1.0", "ledger.model.tagged")
    assert cloudevent["data"]["position"] == 3

    result = cli("events", "tail", "--from", "1", "-n", "3", "-s", "ledger.model.registered")
    assert result.code == 0, result
    assert result.out.count("ledger.model.registered") == 3
    assert "tagged" not in result.out


def test_cli_and_serve_refuse_a_relay_without_nats(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_user_error(cli("relay"), "LEDGER_NATS_URL is not set")
    monkeypatch.setenv("LEDGER_NATS_URL", "nats://someone:secret@127.0.0.1:1")
    monkeypatch.setattr("ledger.bus.jetstream.CONNECT_TIMEOUT_S", 1.0)
    result = cli("events", "tail")
    assert_user_error(result, "cannot reach NATS at nats://127.0.0.1:1")
    assert "secret" not in result.err
    monkeypatch.delenv("LEDGER_NATS_URL")
    assert_user_error(cli("serve", "--relay"), "--relay needs LEDGER_NATS_URL")
    assert_user_error(cli("events", "tail", "-s", "model.>"), "bad subject pattern")


def test_serve_runs_the_relay_and_reports_it_in_health(nats_store: StoreFactory) -> None:
    settings = nats_store.settings()
    with running_api(settings, relay=True) as api:
        head = api.head()
        wait_for(
            lambda: api.client.get("/health").json()["bus"]["relay"]["position"] == head,
            30,
            "the relay",
        )
        health = api.client.get("/health").json()
        assert health["status"] == "ok"
        assert health["bus"] == {
            "kind": "nats",
            "url": NATS_URL,
            "stream": settings.nats_stream,
            "state": "ok",
            "relay": {
                "running_here": True,
                "position": head,
                "lag_events": 0,
                "active": True,
                "connected": True,
                "last_error": "",
                "refused": "",
            },
        }
        metrics = api.client.get("/metrics", headers=api.auth("reader")).text
        assert "ledger_relay_lag_events 0.0" in metrics
        assert "ledger_relay_connected 1.0" in metrics
    assert stream_messages(settings) == head


def test_health_shows_a_stalled_relay(nats_store: StoreFactory) -> None:
    """No relay running anywhere while events wait: the bus is "stalled"."""
    settings = nats_store.settings()
    with running_api(settings) as api:
        bus = api.client.get("/health").json()["bus"]
        assert bus["state"] == "stalled" and bus["relay"]["lag_events"] == api.head() > 0
        assert api.client.get("/health").json()["status"] == "degraded"


def test_in_process_bus_health(store: StoreFactory) -> None:
    with running_api(store.settings()) as api:
        assert api.client.get("/health").json()["bus"] == {"kind": "in-process", "state": "ok"}


def test_invalid_bus_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="LEDGER_NATS_STREAM"):
        Settings(nats_stream="a.b")
    with pytest.raises(ValueError, match="LEDGER_NATS_SUBJECT_PREFIX"):
        Settings(nats_subject_prefix="a.b")
