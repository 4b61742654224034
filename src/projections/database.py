"""The views' side of the store: one connection to the event store's own database.

Views live in the same SQLite file or PostgreSQL schema as the events. SQL is
written once with ``?`` placeholders; the two dialects differ only in how a
write transaction is taken, how events are read and how followers wait.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Protocol

import psycopg
from psycopg import sql

from ledger.settings import Settings

Row = tuple[Any, ...]

# Events tables as eventsourcing creates them for the application named "Ledger".
_SQLITE_EVENTS = "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events"
_POSTGRES_EVENTS = (
    "SELECT notification_id, originator_id::text, originator_version, topic, state "
    "FROM ledger_events"
)
POSTGRES_CHANNEL = "ledger_events"  # what the append function NOTIFYs


class RowWriter(Protocol):
    """Where projections write their changed rows: the database, or a batch of writes."""

    def write_rows(
        self,
        table: str,
        columns: dict[str, str],
        key: Sequence[str],
        rows: Sequence[Row],
        *,
        replace: bool,
    ) -> None: ...

    def delete_rows(self, table: str, key: dict[str, str], keys: Sequence[Row]) -> None: ...

    def update_rows(self, table: str, columns: dict[str, str], rows: Sequence[Row]) -> None: ...

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None: ...


class PendingWrites:
    """Writes recorded while a batch is applied, made later (in order) in its transaction."""

    def __init__(self) -> None:
        self._calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _record(self, method: str, *args: Any, **kwargs: Any) -> None:
        if args[-1]:  # the rows: nothing to write without them
            self._calls.append((method, args, kwargs))

    def write_rows(
        self,
        table: str,
        columns: dict[str, str],
        key: Sequence[str],
        rows: Sequence[Row],
        *,
        replace: bool,
    ) -> None:
        self._record("write_rows", table, columns, key, rows, replace=replace)

    def delete_rows(self, table: str, key: dict[str, str], keys: Sequence[Row]) -> None:
        self._record("delete_rows", table, key, keys)

    def update_rows(self, table: str, columns: dict[str, str], rows: Sequence[Row]) -> None:
        self._record("update_rows", table, columns, rows)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        self._record("copy_rows", table, columns, rows)

    def write_to(self, db: ViewDatabase) -> None:
        for method, args, kwargs in self._calls:
            getattr(db, method)(*args, **kwargs)


class ViewDatabase:
    """A connection for reading events and writing views in one transaction."""

    kind: Literal["sqlite", "postgres"]

    def __init__(self, settings: Settings) -> None:
        location = settings.store_location
        self.kind = location.kind
        self._settings = settings
        self._events_table_seen = False
        if location.kind == "postgres":
            self._pg = self._connect_postgres()
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

    def _connect_postgres(self) -> psycopg.Connection[Any]:
        location = self._settings.store_location
        conn = psycopg.connect(
            host=location.pg_host,
            port=location.pg_port,
            user=location.pg_user,
            password=location.pg_password or None,
            dbname=location.pg_dbname,
            connect_timeout=5,
            autocommit=True,  # transactions are explicit: see transaction() and snapshot()
        )
        # The ledger created the schema when it opened the event store.
        schema = sql.Identifier(self._settings.pg_schema)
        conn.execute(sql.SQL("SET search_path TO {}").format(schema))
        # Views are derived data tracked in the same transactions: a server crash can lose
        # the last commits only together with their positions, which are then re-applied.
        conn.execute("SET synchronous_commit TO off")
        conn.execute("SET maintenance_work_mem TO '256MB'")  # index builds after a rebuild
        return conn

    def close(self) -> None:
        if self.kind == "postgres":
            self._pg.close()
        else:
            self._lite.close()

    # -- statements ------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.kind == "postgres" else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; return its rows (if it has any)."""
        if self.kind == "postgres":
            cursor = self._pg.execute(self._sql(statement), params, prepare=True)
            return cursor.fetchall() if cursor.description else []
        return self._lite.execute(statement, params).fetchall()

    def execute_script(self, statements: str) -> None:
        """Statements without parameters, separated by ``;``: one round trip on PostgreSQL."""
        if self.kind == "postgres":
            self._pg.execute(statements, prepare=False)
        else:
            for statement in statements.split(";"):
                self._lite.execute(statement)

    def execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.kind == "postgres":
            with self._pg.cursor() as cursor:
                cursor.executemany(self._sql(statement), rows)
        else:
            self._lite.executemany(statement, rows)

    # -- bulk writes: executemany on SQLite, one statement over arrays on PostgreSQL -----

    def write_rows(
        self,
        table: str,
        columns: dict[str, str],
        key: Sequence[str],
        rows: Sequence[Row],
        *,
        replace: bool,
    ) -> None:
        """Insert ``rows`` (values for ``columns``, name -> SQL type); a row whose key is
        taken replaces the old one (``replace``) or is skipped."""
        if not rows:
            return
        names = list(columns)
        others = [c for c in names if c not in key]
        conflict = f"ON CONFLICT ({', '.join(key)}) " + (
            f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in others)}"
            if replace and others
            else "DO NOTHING"
        )
        if self.kind == "postgres":
            self.execute(
                f"INSERT INTO {table} ({', '.join(names)}) "
                f"SELECT * FROM {_unnest(columns)} {conflict}",
                _as_columns(rows, len(names)),
            )
        else:
            marks = ", ".join("?" * len(names))
            self._lite.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks}) {conflict}", rows
            )

    def delete_rows(self, table: str, key: dict[str, str], keys: Sequence[Row]) -> None:
        """Delete the rows with the given keys (``key``: column name -> SQL type)."""
        if not keys:
            return
        if self.kind == "postgres":
            match = " AND ".join(f"{table}.{c} = gone.{c}" for c in key)
            self.execute(
                f"DELETE FROM {table} USING {_unnest(key)} AS gone({', '.join(key)}) WHERE {match}",
                _as_columns(keys, len(key)),
            )
        else:
            match = " AND ".join(f"{c} = ?" for c in key)
            self._lite.executemany(f"DELETE FROM {table} WHERE {match}", keys)

    def update_rows(self, table: str, columns: dict[str, str], rows: Sequence[Row]) -> None:
        """Set the other columns of the rows whose first column (the key) matches."""
        if not rows:
            return
        key, *others = columns
        if self.kind == "postgres":
            assignments = ", ".join(f"{c} = new.{c}" for c in others)
            self.execute(
                f"UPDATE {table} SET {assignments} FROM {_unnest(columns)} "
                f"AS new({', '.join(columns)}) WHERE {table}.{key} = new.{key}",
                _as_columns(rows, len(columns)),
            )
        else:
            assignments = ", ".join(f"{c} = ?" for c in others)
            self._lite.executemany(
                f"UPDATE {table} SET {assignments} WHERE {key} = ?",
                [(*row[1:], row[0]) for row in rows],
            )

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Append many rows: COPY on PostgreSQL, executemany on SQLite."""
        if not rows:
            return
        if self.kind == "postgres":
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with self._pg.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            self._lite.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )

    # -- transactions ----------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction; commits on success, rolls back on any error.

        SQLite takes its write lock at BEGIN, so two runners never interleave;
        on PostgreSQL the runner locks its tracking rows for the same effect.
        """
        if self.kind == "postgres":
            with self._pg.transaction():
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
            with self._pg.transaction():
                self._pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield
        else:
            self._lite.execute("BEGIN")
            try:
                yield
            finally:
                self._lite.execute("ROLLBACK")

    def create_tables(self, *statements: str) -> None:
        """Run ``CREATE ... IF NOT EXISTS`` statements in one transaction. On PostgreSQL,
        processes doing so at the same moment take turns: two concurrent creations of one
        table fail even with IF NOT EXISTS."""
        with self.transaction():
            if self.kind == "postgres":
                self.execute("SELECT pg_advisory_xact_lock(hashtext('ledger-views'))")
            for statement in statements:
                self.execute(statement)

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
            cursor = self._pg.execute(f"{statement}LIMIT %s", (after, limit), binary=True)
            return cursor.fetchall()
        return self.execute(
            f"{_SQLITE_EVENTS} WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, limit)
        )

    def _events_exist(self) -> bool:
        """Whether the event store's table exists (it does once the ledger has opened it)."""
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
            conn = self._connect_postgres()
            try:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(POSTGRES_CHANNEL)))
                yield Listener(conn)
            finally:
                conn.close()
        else:
            yield Listener(None)


def _unnest(columns: dict[str, str]) -> str:
    """``unnest(%s::text[], %s::bigint[], ...)`` for the columns' SQL types."""
    arrays = ", ".join(f"%s::{sql_type.split()[0].lower()}[]" for sql_type in columns.values())
    return f"unnest({arrays})"


def _as_columns(rows: Sequence[Row], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)] if rows else [[] for _ in range(width)]


class Listener:
    """Waits for the next append, or for ``timeout`` seconds at most."""

    def __init__(self, conn: psycopg.Connection[Any] | None) -> None:
        self._conn = conn

    def wait(self, timeout: float) -> None:
        if self._conn is None:
            time.sleep(timeout)
            return
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            break
