"""A view updater killed with SIGKILL in the middle of 5,000 events loses nothing and applies
nothing twice: after a restart the views are exact and the position is the last event."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from ledger.ledger import Ledger
from projections.audit import AuditQuery
from projections.updater import ViewUpdater
from projections.views import Views
from tests.aggregate_state import registry_from_aggregates
from tests.conftest import PG_URL, StoreFactory

EVENTS = 5_000


def fill(ledger: Ledger, model_dir: Path) -> None:
    """Registrations, an endpoint with traffic shifts, and tag churn: 5,000 events."""
    for number in range(300):
        ledger.models.register_version(f"m{number % 30}", model_dir)
    ledger.endpoints.create("shop", "online")
    ledger.endpoints.deploy("shop", "blue", "m1:1")
    ledger.endpoints.deploy("shop", "green", "m2:1")
    for share in range(0, 101, 5):
        ledger.endpoints.set_traffic("shop", {"blue": share, "green": 100 - share})
    rng = random.Random(5)
    while (missing := EVENTS - ledger.event_count()) > 0:
        tags = {f"k{i}": str(rng.random()) for i in range(min(missing, 100))}
        ledger.models.set_tags(f"m{rng.randrange(30)}:{rng.randrange(1, 11)}", tags)
    assert ledger.event_count() == EVENTS


@contextmanager
def positions_locked_after(store: StoreFactory, position: int) -> Iterator[int]:
    """Once every view has passed ``position``, take the lock every view write takes first
    (PostgreSQL: the positions table; SQLite: the write lock) between two of the updater's
    batches, and yield where the views stand; the lock holds until the end.

    PostgreSQL queues lock requests in order, so the updater's next batch waits behind the
    test. SQLite has no queue: a writer that finds the lock taken sleeps 1, 2, 5 ... 100 ms
    and tries again (its busy handler), and sleeping like that the test kept missing the
    moments between batches until the updater had finished (1 run in 8). So the test asks
    without a busy handler, again and again, and has the lock the first time the updater
    is between batches (reading and applying the next one, which takes milliseconds).
    """
    query = "SELECT min(position) FROM ledger_view_positions"
    deadline = time.monotonic() + 120
    if store.kind == "postgres":
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {store.schema}")
            while (conn.execute(query).fetchone()[0] or 0) < position:  # type: ignore[index]
                assert time.monotonic() < deadline, "the view updater did not get far enough"
                time.sleep(0.002)
            with conn.transaction():
                conn.execute("LOCK TABLE ledger_view_positions IN EXCLUSIVE MODE")
                yield int(conn.execute(query).fetchone()[0])  # type: ignore[index]
        return
    db_path = store.tmp_path / ".ledger" / "ledger.db"
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=0)  # timeout=0: no busy handler
    try:
        while (conn.execute(query).fetchone()[0] or 0) < position or not write_lock_taken(conn):
            assert time.monotonic() < deadline, "the view updater did not get far enough"
            time.sleep(0.0002)
        yield int(conn.execute(query).fetchone()[0])
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def write_lock_taken(conn: sqlite3.Connection) -> bool:
    """Take SQLite's write lock unless another connection holds it; never waits."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if "locked" not in str(error):
            raise
        return False
    return True


def test_sigkill_in_the_middle_then_restart_gives_exact_views(
    ledger: Ledger, store: StoreFactory, model_dir: Path
) -> None:
    fill(ledger, model_dir)
    ViewUpdater(ledger.settings).close()  # creates the view tables, applies nothing
    ledger_bin = shutil.which("ledger", path=os.path.dirname(sys.executable))
    assert ledger_bin
    updater = subprocess.Popen(
        [ledger_bin, "projections", "run", "--batch-size", "50"],
        env={**os.environ, **store.env()},
        stderr=subprocess.DEVNULL,
    )
    try:
        with positions_locked_after(store, EVENTS // 3) as killed_at:
            # The updater cannot write its next batch: kill it before or while it waits.
            updater.send_signal(signal.SIGKILL)
            updater.wait()
    finally:
        updater.kill()
        updater.wait()
    assert EVENTS // 3 <= killed_at < EVENTS, "killed in the middle"
    assert store.sql("SELECT min(position) FROM ledger_view_positions")[0][0] == killed_at

    views = Views.open(ledger.settings)  # the restart: catches up from where it stopped
    try:
        assert set(views.updater.positions().values()) == {EVENTS}
        assert views.registry() == registry_from_aggregates(ledger)
        audit = views.audit(AuditQuery(limit=1000, after_position=killed_at - 500))
        assert [row["position"] for row in audit.items] == list(
            range(killed_at - 499, min(killed_at + 501, EVENTS + 1))
        )
        (count,) = store.sql("SELECT count(*) FROM ledger_view_audit")[0]
        assert count == EVENTS
        past = {p: views.registry(views.point_at(position=p)) for p in (killed_at, EVENTS // 2)}
        views.updater.rebuild()
        for position, registry in past.items():
            assert views.registry(views.point_at(position=position)) == registry
    finally:
        views.close()


def test_the_view_updater_stops_cleanly_on_sigterm(ledger: Ledger, store: StoreFactory) -> None:
    ledger_bin = shutil.which("ledger", path=os.path.dirname(sys.executable))
    assert ledger_bin
    updater = subprocess.Popen(
        [ledger_bin, "projections", "run"],
        env={**os.environ, **store.env()},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert updater.stderr is not None
    assert "following the log" in updater.stderr.readline()
    updater.send_signal(signal.SIGTERM)
    assert updater.wait(timeout=30) == 0
    assert "stopped" in updater.stderr.read()
