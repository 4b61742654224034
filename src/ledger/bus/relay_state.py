"""What a relay keeps beside the log: how far it published each stream, and the lock that
lets one relay per stream publish."""

from __future__ import annotations

import contextlib
import fcntl
import time
from pathlib import Path
from typing import IO

from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.side_tables import RELAY_POSITIONS


def relayed_position(db: LedgerDatabase, stream: str) -> tuple[int, float] | None:
    """How far the relay of ``stream`` has published, and when it last moved (Unix time);
    None if it never ran."""
    if not db.table_exists(RELAY_POSITIONS):
        return None
    rows = db.execute(
        f"SELECT position, updated_at_us FROM {RELAY_POSITIONS} WHERE stream = ?", (stream,)
    )
    return (int(rows[0][0]), rows[0][1] / 1e6) if rows else None


def record_position(db: LedgerDatabase, stream: str, position: int) -> None:
    """Note that the relay of ``stream`` has published up to ``position``."""
    db.execute(
        f"INSERT INTO {RELAY_POSITIONS} (stream, position, updated_at_us) VALUES (?, ?, ?) "
        "ON CONFLICT (stream) DO UPDATE SET position = excluded.position, "
        "updated_at_us = excluded.updated_at_us",
        (stream, position, int(time.time() * 1e6)),
    )


class RelayLock:
    """Lets one relay per stream publish: a session advisory lock on PostgreSQL, an
    exclusive file lock beside the database on SQLite. Both go with their process."""

    def __init__(self, settings: Settings, db: LedgerDatabase) -> None:
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
