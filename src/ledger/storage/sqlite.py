"""The embedded store: eventsourcing's SQLite recorder plus the hash chain.

Saves are group-committed (``ledger.storage.group_commit``): the saves of a process's
threads that queue while a commit is in flight share the next write transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
)

from ledger.chain import CHAIN_TABLE, GENESIS, event_digest, link
from ledger.storage.commands import (
    COMMANDS_TABLE,
    CommandStamp,
    CommittedCommand,
    create_commands_table_statement,
)
from ledger.storage.group_commit import (
    GroupCommitter,
    Outcome,
    PendingSave,
    configure_group_commit,
)

try:
    import fcntl
except ImportError:  # not POSIX: writers fall back on SQLite's own busy wait
    fcntl = None  # type: ignore[assignment]


class WriterQueue:
    """Queues the processes that append to one SQLite file, in the kernel.

    A writer that finds SQLite's write lock taken sleeps and retries (1, 2, 5, 10 … 100 ms),
    so with several processes appending, most of the time went to sleeping while the lock
    was free: eight clients made fewer registrations per second than one. An exclusive
    ``flock`` on a file beside the database wakes the next writer as soon as the last one
    commits. Threads of one process queue on a lock of their own first, since a ``flock``
    belongs to the open file, which they share.
    """

    def __init__(self, db_path: str) -> None:
        self.path = f"{db_path}.write-lock"
        self._threads = threading.Lock()
        self._fd = -1
        self._pid = 0  # the process that opened _fd: a forked child opens its own

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._threads:
            if fcntl is None:
                yield
                return
            fd = self._file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _file(self) -> int:
        if self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd


class ChainedSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """Seals every inserted event in the hash chain, in the same transaction."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        pool = datastore.pool
        # An in-memory database lives in one process: there is nobody to queue with.
        self._writers = None if pool.is_sqlite_memory_mode else WriterQueue(pool.db_name)
        self.writer = GroupCommitter(self._write_batch)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Commit ``stored_events`` (with the ``command`` stamp's id, when given), in a
        transaction shared with the saves of other threads that arrive meanwhile."""
        if not stored_events:
            return []
        return self.writer.save(stored_events, kwargs.get("command"))

    def _write_batch(self, batch: Sequence[PendingSave]) -> list[Outcome]:
        """One write transaction for the batch, each save in a savepoint of its own."""
        queue = self._writers.turn() if self._writers else nullcontext()
        with queue, self.datastore.transaction(commit=True) as c:
            return [self._write_save(c, pending) for pending in batch]

    def _write_save(self, c: SQLiteCursor, pending: PendingSave) -> Outcome:
        c.execute("SAVEPOINT save")
        try:
            positions = self._insert_events(c, pending.events, command=pending.command)
        except sqlite3.IntegrityError as error:
            c.execute("ROLLBACK TO save")
            c.execute("RELEASE save")
            return IntegrityError(error)
        c.execute("RELEASE save")
        assert positions is not None
        return positions

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} "
            "(position INTEGER PRIMARY KEY, hash BLOB NOT NULL)",
            create_commands_table_statement(),
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        assert positions is not None
        # The insert above holds SQLite's write lock, so the chain head cannot move.
        c.execute(f"SELECT hash FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1")
        row = c.fetchone()
        previous = bytes(row[0]) if row else GENESIS
        links = []
        for position, event in zip(positions, stored_events, strict=True):
            digest = event_digest(
                event.originator_id, event.originator_version, event.topic, event.state
            )
            previous = link(previous, position, digest)
            links.append((position, previous))
        c.executemany(f"INSERT INTO {CHAIN_TABLE} (position, hash) VALUES (?, ?)", links)
        command: CommandStamp | None = kwargs.get("command")
        if command is not None and positions:
            c.execute(
                f"INSERT INTO {COMMANDS_TABLE} (command_id, attempt, first_position, event_count) "
                "VALUES (?, ?, ?, ?)",
                (command.command_id, command.attempt, positions[0], len(positions)),
            )
        return positions

    def committed_command(self, command_id: str) -> CommittedCommand | None:
        """The save that committed ``command_id``, if one did."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT attempt, first_position, event_count FROM {COMMANDS_TABLE} "
                "WHERE command_id = ?",
                (command_id,),
            )
            row = c.fetchone()
        return CommittedCommand(command_id, row[0], row[1], row[2]) if row else None

    def select_chain(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT position, hash FROM {CHAIN_TABLE} WHERE position > ? "
                "ORDER BY position LIMIT ?",
                (after, limit),
            )
            return [(row[0], bytes(row[1])) for row in c.fetchall()]


class SynchronousPool(SQLiteConnectionPool):
    """WAL with ``PRAGMA synchronous`` as set (LEDGER_SQLITE_SYNCHRONOUS). FULL, the
    default, syncs the WAL to disk at every commit: a commit that returned survives a power
    loss. NORMAL skips that fsync: commits survive a crash of the process, but a power loss
    may drop the last ones (it never corrupts the database)."""

    def __init__(self, *, synchronous: str, **kwargs: Any) -> None:
        self.synchronous = synchronous
        super().__init__(**kwargs)

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        connection.cursor().execute(f"PRAGMA synchronous={self.synchronous}")
        return connection


SYNCHRONOUS_MODES = ("FULL", "NORMAL")


class ChainedSQLiteFactory(SQLiteFactory):
    """eventsourcing's SQLite factory with the chained recorder."""

    application_recorder_class = ChainedSQLiteApplicationRecorder
    SQLITE_SYNCHRONOUS = "SQLITE_SYNCHRONOUS"

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        synchronous = (self.env.get(self.SQLITE_SYNCHRONOUS) or "FULL").upper()
        if synchronous not in SYNCHRONOUS_MODES:
            raise OSError(f"SQLITE_SYNCHRONOUS must be FULL or NORMAL, got {synchronous!r}")
        datastore: SQLiteDatastore = self.datastore
        if not datastore.pool.is_sqlite_memory_mode:
            datastore.pool.close()
            datastore.pool = SynchronousPool(
                db_name=datastore.pool.db_name,
                lock_timeout=datastore.pool.lock_timeout,
                synchronous=synchronous,
            )

    def application_recorder(self) -> ApplicationRecorder:
        recorder = super().application_recorder()
        assert isinstance(recorder, ChainedSQLiteApplicationRecorder)
        configure_group_commit(recorder.writer, self.env)
        return recorder
