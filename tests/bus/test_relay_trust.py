"""The relay trusts a stream only if it continues this store's log: a database restored
from an older backup, or another store on the same stream, is refused until
`ledger relay --reset`; message ids carry the store's id. The relay rides out
PostgreSQL and NATS restarts. Every store-facing test runs on both stores."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from ledger.bus import open_bus
from ledger.bus.relay import Relay
from ledger.bus.stream_trust import RelayRefusedError, check_continues, store_id
from ledger.domain import EventMeta, acting
from ledger.domain.model import model_id
from ledger.ledger import Ledger
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.decoding import EventDecoder
from ledger.storage.feed import read_feed
from ledger.storage.side_tables import HANDLED_EVENTS
from tests.bus.test_bus import relayed
from tests.bus_support import (
    HANDLED,
    PrivateNats,
    append_events,
    delete_stream,
    handled_rows,
    in_background,
    record,
    stream_messages,
    wait_for,
    with_jetstream,
)
from tests.conftest import Cli, StoreFactory, assert_user_error, running_api
from tests.pg_instance import PgInstance

BACKUP_AT = 60  # the log position a restored backup ends at


def restore_backup(store: StoreFactory, position: int) -> None:
    """Leave the store as restoring a backup taken at log ``position`` would: the log, its
    chain and the side tables as they were then."""
    store.sql(f"DELETE FROM {store.events_table} WHERE {store.position_column} > ?", (position,))
    store.sql("DELETE FROM ledger_chain WHERE position > ?", (position,))
    snapshots = "ledger_snapshots" if store.kind == "postgres" else "stored_snapshots"
    store.sql(f"DELETE FROM {snapshots}")  # a cache of the aggregates: rebuilt when needed
    for table in (HANDLED_EVENTS, HANDLED):
        if _has_table(store, table):
            store.sql(f"DELETE FROM {table} WHERE position > ?", (position,))
    store.sql("UPDATE ledger_relay_positions SET position = ? WHERE position > ?", (position,) * 2)
    if store.kind == "postgres":
        store.sql(
            "SELECT setval(pg_get_serial_sequence('ledger_events', 'notification_id'), ?)",
            (position,),
        )


def _has_table(store: StoreFactory, table: str) -> bool:
    if store.kind == "postgres":
        return store.sql("SELECT to_regclass(?) IS NOT NULL", (table,))[0][0] is True
    return bool(store.sql("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)))


def tag_again(settings: Settings, name: str, count: int) -> int:
    """Set ``count`` tags on model ``name``: after a restore these events take the aggregate
    id and versions of discarded ones. The head of the log."""
    with Ledger(settings) as ledger, acting(EventMeta("tester", "after the restore", "t")):
        model = ledger.repository.get(model_id(name))
        for i in range(count):
            model.set_tag("after", str(i))
        ledger.save(model)
        return ledger.event_count()


def stream_contents(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """(Nats-Msg-Id, envelope) of each message in the stream, in stream order."""

    async def read(js: Any) -> list[tuple[str, dict[str, Any]]]:
        state = (await js.stream_info(settings.nats_stream)).state
        contents = []
        for sequence in range(state.first_seq, state.last_seq + 1):
            message = await js.get_msg(settings.nats_stream, sequence)
            contents.append((message.headers["Nats-Msg-Id"], orjson.loads(message.data)))
        return contents

    return list(with_jetstream(settings.nats_url, read))


def run_relay(settings: Settings, **options: Any) -> Relay:
    """A relay run until it has published the whole log."""
    relay = Relay(settings, **options)
    with in_background(relay.run):
        wait_for(lambda: relay.status.active and relay.status.position == _head(settings), 30,
                 "the relay")  # fmt: skip
    return relay


def _head(settings: Settings) -> int:
    with Ledger(settings) as ledger:
        return int(ledger.event_count())


def refusal(settings: Settings) -> str:
    """The error a relay started on ``settings`` stops with."""
    with pytest.raises(RelayRefusedError) as refused:
        asyncio.run(Relay(settings).run(asyncio.Event()))
    return str(refused.value)


# -- a restored database -------------------------------------------------------------------


def test_a_restored_database_is_refused_and_reset_publishes_its_log_to_consumers(
    nats_store: StoreFactory, cli: Cli
) -> None:
    """100 events published and handled; under the running relay the database goes back to
    a backup taken at 60, and 30 new events reuse the ids of discarded ones. The relay
    refuses; `ledger relay --reset` publishes the new log, and a consumer that ran
    throughout handles each event once."""
    settings = nats_store.settings()
    head = append_events(settings, aggregates=2, per_aggregate=50)
    bus = open_bus(settings)
    bus.subscribe("auditor", record)
    relay = Relay(settings, keep_trying=True)  # as `ledger serve` runs it
    with in_background(bus.run):
        with in_background(relay.run):
            wait_for(lambda: len(handled_rows(settings)) == head, 30, "the events")
            restore_backup(nats_store, BACKUP_AT)
            head = tag_again(settings, "model-0001", 30)
            assert head == BACKUP_AT + 30
            wait_for(lambda: relay.status.refused != "", 30, "the refusal")
        message = relay.status.refused
        assert message == (
            f"the relay refuses to publish to JetStream stream {settings.nats_stream}: it holds "
            "events up to log position 100 but this log ends at 90: the database was restored "
            "from an older backup; run `ledger relay --reset` to publish this log into a fresh "
            f"stream {settings.nats_stream} (it deletes the stream and its consumers)"
        )
        refused = cli("relay")
        assert refused.code == 1 and refused.err.splitlines()[-1] == f"error: {message}", refused
        unconfirmed = cli("relay", "--reset")
        assert unconfirmed.code == 1 and "add --yes to confirm" in unconfirmed.err
        assert_user_error(cli("relay", "--reset", "--yes", "--from", "2"), "takes no --from")
        assert stream_messages(settings) == 100  # nothing was touched

        reset = _ledger_relay(nats_store, "--reset", "--yes")
        try:
            wait_for(lambda: relayed(settings) == head, 30, "the reset relay")
            wait_for(lambda: len(handled_rows(settings)) >= head, 30, "the new events")
            time.sleep(0.5)  # anything doubled would arrive now
        finally:
            reset.send_signal(signal.SIGTERM)
            assert reset.wait(30) == 0
    positions = sorted(row[1] for row in handled_rows(settings))
    assert positions == list(range(1, head + 1))
    contents = stream_contents(settings)
    assert [envelope["position"] for _, envelope in contents] == list(range(1, head + 1))
    chain = dict(nats_store.sql("SELECT position, hash FROM ledger_chain"))
    assert all(envelope["chain"] == bytes(chain[envelope["position"]]).hex()
               for _, envelope in contents)  # fmt: skip


def _ledger_relay(store: StoreFactory, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **store.env(), "LEDGER_LOG_LEVEL": "ERROR"}
    ledger_bin = Path(sys.executable).parent / "ledger"
    return subprocess.Popen([ledger_bin, "relay", *args], env=env, stdin=subprocess.DEVNULL)


def test_serve_reports_a_refusal_in_health_and_goes_on_after_a_reset(
    nats_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay of `ledger serve` does not crash the server: /health says why it refuses,
    and once `ledger relay --reset` has run, it takes over by itself."""
    monkeypatch.setattr("ledger.bus.relay.RECHECK_S", 0.5)
    settings = nats_store.settings()
    append_events(settings, aggregates=2, per_aggregate=50)
    run_relay(settings)
    restore_backup(nats_store, BACKUP_AT)
    tag_again(settings, "model-0001", 50)  # beyond the stream's end: position 100 differs

    def bus() -> dict[str, Any]:
        return dict(api.client.get("/health").json()["bus"])

    with running_api(settings, relay=True) as api:
        wait_for(lambda: bus()["state"] == "refused", 30, "the refusal")
        health = api.client.get("/health").json()
        assert health["status"] == "degraded"
        assert health["bus"]["relay"]["refused"].startswith(
            f"the relay refuses to publish to JetStream stream {settings.nats_stream}: its "
            "event at log position 100 differs from this log's: the database was restored"
        )
        models = api.client.get("/models", headers=api.auth("reader"))
        assert models.status_code == 200  # the server serves on
        metrics = api.client.get("/metrics", headers=api.auth("admin")).text
        assert "ledger_relay_refused 1.0" in metrics
        head = api.head()
        reset = Relay(settings, reset=True)
        with in_background(reset.run):
            wait_for(lambda: reset.status.position == head, 30, "the reset")
        wait_for(lambda: bus()["state"] == "ok", 30, "the server's relay to take over")
        assert bus()["relay"]["refused"] == ""
        head = append_events(settings, aggregates=1, per_aggregate=5, tag="later")
        wait_for(lambda: bus()["relay"]["position"] == head, 30, "the server's relay")
    contents = stream_contents(settings)
    assert [envelope["position"] for _, envelope in contents] == list(range(1, head + 1))


# -- message ids ------------------------------------------------------------------------------


def test_a_relay_started_on_an_empty_log_stamps_the_store_of_its_first_event(
    nats_store: StoreFactory,
) -> None:
    """The store id comes from the log's first event: a relay that starts before there is
    one learns it from the first batch it publishes."""
    settings = nats_store.settings()
    relay = Relay(settings)
    with in_background(relay.run):
        wait_for(lambda: relay.status.active, 30, "the relay to start")
        head = append_events(settings, aggregates=2, per_aggregate=3)
        wait_for(lambda: relay.status.position == head, 30, "the relay")
    db = LedgerDatabase(settings)
    try:
        store = store_id(db)
    finally:
        db.close()
    assert store
    contents = stream_contents(settings)
    assert [envelope["store"] for _, envelope in contents] == [store] * head
    assert all(msg_id.startswith(f"{store}/") for msg_id, _ in contents)


def test_two_stores_with_the_same_names_never_share_message_ids(
    nats_store: StoreFactory, tmp_path: Path
) -> None:
    """Aggregate ids come from names: the same models in two stores have the same event
    ids, but their message ids differ; a re-publish from one store keeps its ids (the
    duplicate window drops it); one store on another's stream is refused."""
    first = nats_store.settings()
    second = nats_store.settings(
        home=tmp_path / "second",
        pg_schema=f"{nats_store.schema}_second",
        nats_stream=f"{first.nats_stream}_SECOND",
        nats_subject_prefix=f"{first.nats_subject_prefix}_second",
    )
    try:
        for settings in (first, second):
            append_events(settings, aggregates=2, per_aggregate=10)
            run_relay(settings)
        ours, theirs = stream_contents(first), stream_contents(second)
        assert [e["id"] for _, e in ours] == [e["id"] for _, e in theirs]
        assert not {msg_id for msg_id, _ in ours} & {msg_id for msg_id, _ in theirs}
        assert len({e["store"] for _, e in ours} | {e["store"] for _, e in theirs}) == 2

        run_relay(first, start_after=0)  # `ledger relay --from 1` into the same stream
        assert stream_contents(first) == ours  # every re-publish was a duplicate

        on_first = nats_store.settings(home=second.home, pg_schema=second.pg_schema)
        store, other = ours[0][1]["store"], theirs[0][1]["store"]
        assert refusal(on_first).startswith(
            f"the relay refuses to publish to JetStream stream {first.nats_stream}: it holds "
            f"events of another store (id {store}; this store is {other}); run `ledger relay "
            "--reset`"
        )
    finally:
        delete_stream(second)
        if nats_store.kind == "postgres":
            nats_store.sql(f"DROP SCHEMA IF EXISTS {second.pg_schema} CASCADE")


def test_a_stream_published_before_store_ids_is_continued(nats_store: StoreFactory) -> None:
    """Events published by an older relay carry neither store id nor chain hash: the relay
    goes on from them when the event id at that position matches."""
    settings = nats_store.settings()
    head = append_events(settings, aggregates=1, per_aggregate=10)
    db = LedgerDatabase(settings)
    try:
        (envelope,) = read_feed(db, EventDecoder(), head - 1, 1)
        check_continues(db, settings.nats_stream, store_id(db), envelope)
        with pytest.raises(RelayRefusedError, match="differs from this log's"):
            check_continues(db, settings.nats_stream, store_id(db), envelope | {"id": "x/1"})
    finally:
        db.close()


# -- outages ---------------------------------------------------------------------------------


def test_the_relay_rides_out_a_postgresql_restart_and_a_nats_outage(
    private_pg: PgInstance,
    tmp_path: Path,
) -> None:
    """`pg_ctl stop -m fast` and a start under a running relay, then NATS stopped and
    started: the same relay publishes what was written after each, nothing twice."""
    server = PrivateNats(tmp_path / "nats")
    server.start()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    settings = Settings(
        store=private_pg.url, pg_schema=schema, home=tmp_path / ".ledger", actor="tester",
        nats_url=server.url, nats_stream="RESTARTS", nats_subject_prefix="restarts",
    )  # fmt: skip
    relay = Relay(settings)
    try:
        with in_background(relay.run):
            head = append_events(settings, aggregates=2, per_aggregate=25)
            wait_for(lambda: relay.status.position == head, 30, "the relay")
            private_pg.stop("fast")
            time.sleep(1.5)  # the relay finds the database gone
            private_pg.start()
            head = append_events(settings, aggregates=2, per_aggregate=25, tag="after-pg")
            wait_for(lambda: relay.status.position == head, 60, "events after the restart")
            server.stop()
            head = append_events(settings, aggregates=2, per_aggregate=25, tag="no-nats")
            time.sleep(1)
            server.start()
            wait_for(lambda: relay.status.position == head, 30, "events after the outage")
        contents = stream_contents(settings)
        assert [envelope["position"] for _, envelope in contents] == list(range(1, head + 1))
        assert len({msg_id for msg_id, _ in contents}) == head
    finally:
        server.stop()
        with psycopg.connect(private_pg.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
