"""The ledger's database: the event log, the views and the side tables, on one connection.

Views and side tables live in the same SQLite file or PostgreSQL schema as the events. SQL is
written once with ``?`` placeholders; the two dialects differ only in how a
write transaction is taken, how events are read and how followers wait. On
PostgreSQL statements borrow connections from the process's pool (see
``ledger.storage.connections``), so one LedgerDatabase serves many threads.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

from ledger.logging import get_logger
from ledger.settings import Settings
from ledger.storage.connections import (
    CONNECTION_ERRORS,
    ConnectionSource,
    DedicatedConnection,
    Listener,
    PgConnection,
    shared_pool,
)
from ledger.storage.rows import Row, RowWrites
from ledger.storage.side_tables import VIEW_POSITIONS

T = TypeVar("T")
log = get_logger(__name__)

# Events tables as eventsourcing creates them for the application named "Ledger".
_SQLITE_EVENTS = "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events"
_POSTGRES_EVENTS = (
    "SELECT notification_id, originator_id::text, originator_version, topic, state "
    "FROM ledger_events"
)
_CREATED = re.compile(r"CREATE (?:UNIQUE )?(?:TABLE|INDEX) IF NOT EXISTS (\w+)", re.IGNORECASE)


class LedgerDatabase(RowWrites):
    """Reads the event log, reads and writes views and side tables in transactions.

    On PostgreSQL each statement (or transaction) borrows a connection from the
    process's pool; ``dedicated`` keeps one connection for every statement instead,
    for users of session state such as an advisory lock.
    """

    kind: Literal["sqlite", "postgres"]

    def __init__(self, settings: Settings, *, dedicated: bool = False) -> None:
        location = settings.store_location
        self.kind = location.kind
        self._settings = settings
        self._events_table_seen = False
        self._closed = False
        if location.kind == "postgres":
            self._source: ConnectionSource = (
                DedicatedConnection(settings) if dedicated else shared_pool(settings)
            )
            self._held = threading.local()  # .conn: this thread's transaction connection
        else:
            location.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            self._lite = sqlite3.connect(
                location.sqlite_path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._lite.execute("PRAGMA journal_mode=WAL")
            self._lite.execute("PRAGMA synchronous=NORMAL")
            self._lite.execute("PRAGMA cache_size=-65536")  # 64 MiB: bulk loads and indexing
            self._lite.execute("PRAGMA temp_store=MEMORY")
            # Checkpoint (copy the WAL into the database, with an fsync) every 40 MiB, not 4.
            self._lite.execute("PRAGMA wal_autocheckpoint=10000")

    def close(self) -> None:
        """Give the connection back; closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        if self.kind == "postgres":
            self._source.release()
        else:
            self._lite.close()

    def _on_pg(self, work: Callable[[PgConnection], T], *, retry: bool = False) -> T:
        """Run ``work`` on this thread's transaction connection, else on a borrowed one;
        ``retry``: once more on a fresh connection when the borrowed one was lost (a
        database restart), for statements that change nothing."""
        held: PgConnection | None = getattr(self._held, "conn", None)
        if held is not None:
            return work(held)
        for attempt in range(2):
            conn = self._source.borrow()
            lost = False
            try:
                return work(conn)
            except CONNECTION_ERRORS:
                lost = self._source.lost(conn)
                if not (lost and retry and attempt == 0):
                    raise
            finally:
                self._source.give_back(conn)
                if lost:
                    self._source.check_idle()
        raise AssertionError("unreachable")

    @contextmanager
    def _pg_transaction(self, first: str = "") -> Iterator[None]:
        """A transaction on one borrowed connection, which this thread's statements use
        until it ends; nested ones are savepoints. ``first``: a statement to open it."""
        held: PgConnection | None = getattr(self._held, "conn", None)
        if held is not None:
            with held.transaction():
                yield
            return
        conn = self._source.borrow()
        self._held.conn = conn
        lost = False
        try:
            with conn.transaction():
                if first:
                    conn.execute(first)
                yield
        except CONNECTION_ERRORS:
            lost = self._source.lost(conn)
            raise
        finally:
            self._held.conn = None
            self._source.give_back(conn)
            if lost:
                self._source.check_idle()

    # -- statements ------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.kind == "postgres" else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; return its rows (if it has any)."""
        if self.kind == "postgres":
            text = self._sql(statement)

            def run(conn: PgConnection) -> list[Row]:
                cursor = conn.execute(text, params, prepare=True)
                return cursor.fetchall() if cursor.description else []

            return self._on_pg(run, retry=_changes_nothing(text))
        return self._lite.execute(statement, params).fetchall()

    def execute_script(self, statements: str) -> None:
        """Statements without parameters, separated by ``;``: one round trip on PostgreSQL."""
        if self.kind == "postgres":
            self._on_pg(lambda conn: conn.execute(statements, prepare=False))
        else:
            for statement in statements.split(";"):
                self._lite.execute(statement)

    def execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.kind == "postgres":
            text = self._sql(statement)

            def run(conn: PgConnection) -> None:
                with conn.cursor() as cursor:
                    cursor.executemany(text, rows)

            self._on_pg(run)
        else:
            self._lite.executemany(statement, rows)

    # -- transactions ----------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction; commits on success, rolls back on any error.

        SQLite takes its write lock at BEGIN, so two writers never interleave; on
        PostgreSQL the view updater locks its position rows for the same effect.
        """
        if self.kind == "postgres":
            with self._pg_transaction():
                yield
        else:
            self._lite.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._lite.execute("ROLLBACK")
                raise
            self._lite.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read-only transaction: every query inside sees the same committed state."""
        if self.kind == "postgres":
            with self._pg_transaction("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"):
                yield
        else:
            self._lite.execute("BEGIN")
            try:
                yield
            finally:
                self._lite.execute("ROLLBACK")

    def create_tables(self, *statements: str) -> None:
        """Run the ``CREATE TABLE/INDEX ... IF NOT EXISTS`` statements whose table or index
        is missing, in one schema change; when none is, nothing runs (nor locks)."""
        if not self.missing([created_name(s) for s in statements]):
            return
        with self.schema_change():
            absent = self.missing([created_name(s) for s in statements])
            for statement in statements:
                if created_name(statement) in absent:
                    self.execute(statement)

    @contextmanager
    def schema_change(self) -> Iterator[None]:
        """A transaction for DDL on the views and their side tables.

        On PostgreSQL, processes take turns (an advisory lock), and the view positions
        table is locked first, in EXCLUSIVE mode. Every view write transaction starts by
        locking its position rows, so a schema change waits for the writes under way and
        holds back new ones before it touches any table: ``CREATE INDEX IF NOT EXISTS``
        takes a SHARE lock even on an index that exists, and taken in the middle of
        writers' table locks it deadlocks with them.
        """
        with self.transaction():
            if self.kind == "postgres":
                self.execute("SELECT pg_advisory_xact_lock(hashtext('ledger-views'))")
                if self.table_exists(VIEW_POSITIONS):
                    self.execute(f"LOCK TABLE {VIEW_POSITIONS} IN EXCLUSIVE MODE")
            yield

    def missing(self, names: Sequence[str]) -> set[str]:
        """Which of these tables and indexes do not exist (a catalog read: no locks)."""
        if self.kind == "postgres":
            rows = self.execute(
                "SELECT n FROM unnest(?::text[]) AS n WHERE to_regclass(n) IS NULL", (list(names),)
            )
            return {row[0] for row in rows}
        marks = ", ".join("?" * len(names))
        rows = self.execute(f"SELECT name FROM sqlite_master WHERE name IN ({marks})", names)
        return set(names) - {row[0] for row in rows}

    def table_exists(self, table: str) -> bool:
        if self.kind == "postgres":
            rows = self.execute("SELECT to_regclass(?) IS NOT NULL", (table,))
            return bool(rows[0][0])
        rows = self.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,))
        return bool(rows)

    # -- the event log ---------------------------------------------------------------

    def read_events(self, after: int, limit: int) -> list[Row]:
        """Up to ``limit`` stored events after log position ``after``: (position,
        aggregate id as text, version, topic, state), in log order. The id's text is as
        the store keeps it (SQLite: 32 hex digits); ``uuid.UUID`` reads either form."""
        if not self._events_exist():
            return []
        if self.kind == "postgres":
            statement = f"{_POSTGRES_EVENTS} WHERE notification_id > %s ORDER BY notification_id "
            # Binary results: event states arrive as bytes rather than hex text.
            return self._on_pg(
                lambda conn: conn.execute(
                    f"{statement}LIMIT %s", (after, limit), binary=True
                ).fetchall(),
                retry=True,
            )
        return self.execute(
            f"{_SQLITE_EVENTS} WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, limit)
        )

    def _events_exist(self) -> bool:
        """Whether the event store's table exists (it does once the store is set up, by
        ``ensure_store`` or the ledger)."""
        if not self._events_table_seen:
            self._events_table_seen = self.table_exists(self.events_table[0])
        return self._events_table_seen

    @property
    def events_table(self) -> tuple[str, str]:
        """The event store's table, and its log position column."""
        if self.kind == "postgres":
            return "ledger_events", "notification_id"
        return "stored_events", "rowid"

    def head_position(self) -> int:
        """The position of the last event in the log (0 when empty)."""
        if not self._events_exist():
            return 0
        table, position = self.events_table
        return int(self.execute(f"SELECT max({position}) FROM {table}")[0][0] or 0)

    @contextmanager
    def listener(self) -> Iterator[Listener]:
        """Wakes a follower when events are appended (LISTEN on PostgreSQL, polling on SQLite)."""
        if self.kind == "postgres":
            listener = Listener(self._settings)
            try:
                yield listener
            finally:
                listener.close()
        else:
            yield Listener(None)


def created_name(statement: str) -> str:
    """The table or index a ``CREATE ... IF NOT EXISTS name`` statement creates."""
    found = _CREATED.match(statement.strip())
    if found is None:
        raise ValueError(f"not a CREATE ... IF NOT EXISTS statement: {statement[:60]!r}")
    return found.group(1).lower()


def _changes_nothing(statement: str) -> bool:
    """Whether ``statement`` only reads (so it may run again after a lost connection)."""
    return statement.lstrip()[:6].upper() == "SELECT"
