"""Events a view cannot store: telling them from outages, and recording them.

An event committed before the ledger refused such values (a NUL in PostgreSQL text, an
integer beyond 64 bits, a NaN in the stored JSON) fails the same way every time a view
applies it. Rather than block every later event, the updater records it here as that
view's error, skips it for that view, and goes on; ``projections status`` and
``/health`` report what was recorded. An outage is not such an event: it propagates,
and the caller tries again later.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from ledger.storage.database import LedgerDatabase
from ledger.storage.side_tables import VIEW_ERRORS
from ledger.storage.timestamps import from_microseconds, to_microseconds

MAX_ERROR_TEXT = 1_000
# Errors of the data itself: the same event fails the same way on every attempt.
_DATA_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.DataError,
    psycopg.IntegrityError,
    sqlite3.DataError,
    sqlite3.IntegrityError,
    ValueError,  # also orjson's decode errors and UnicodeEncodeError
    TypeError,  # also orjson's encode errors (an integer beyond 64 bits)
    KeyError,
    ArithmeticError,  # OverflowError: sqlite3 and an integer beyond 64 bits
)
# Lost connections, locks, timeouts: never the event's fault.
_OUTAGES: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
)


class PoisonedBulkLoad(Exception):
    """A bulk rebuild met an event a view cannot store (it rebuilds batch by batch instead)."""


def is_data_error(error: BaseException) -> bool:
    """Whether ``error`` comes from the event's data (not from an outage or a lock)."""
    return isinstance(error, _DATA_ERRORS) and not isinstance(error, _OUTAGES)


@dataclass(frozen=True)
class ViewError:
    """An event one view could not store, and why."""

    projection: str
    position: int
    event_type: str
    error: str
    recorded_at: datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "projection": self.projection,
            "position": self.position,
            "event_type": self.event_type,
            "error": self.error,
            "recorded_at": self.recorded_at.isoformat(),
        }


def describe(error: BaseException) -> str:
    """The error's type and first line, short enough for a status table."""
    first_line = (str(error).splitlines() or [""])[0]
    text = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
    return text[:MAX_ERROR_TEXT]


def record(
    db: LedgerDatabase, projections: list[str], position: int, event_type: str, error: str
) -> None:
    """Record that ``projections`` cannot store the event at ``position`` (in the caller's
    transaction, beside the positions that pass it)."""
    now = to_microseconds(datetime.now(UTC))
    db.execute_many(
        f"INSERT INTO {VIEW_ERRORS} (projection, position, event_type, error, recorded_at_us) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (projection, position) DO UPDATE SET "
        "event_type = excluded.event_type, error = excluded.error, "
        "recorded_at_us = excluded.recorded_at_us",
        [(name, position, event_type, error, now) for name in projections],
    )


def forget(db: LedgerDatabase, projections: list[str]) -> None:
    """Drop the errors of projections rebuilt from scratch (they meet the events again)."""
    if projections and db.table_exists(VIEW_ERRORS):
        marks = ", ".join("?" * len(projections))
        db.execute(f"DELETE FROM {VIEW_ERRORS} WHERE projection IN ({marks})", projections)


def summary(db: LedgerDatabase) -> dict[str, tuple[int, ViewError | None]]:
    """Per projection: how many events it could not store, and the last of them."""
    if not db.table_exists(VIEW_ERRORS):
        return {}
    counts = db.execute(f"SELECT projection, count(*) FROM {VIEW_ERRORS} GROUP BY projection")
    found: dict[str, tuple[int, ViewError | None]] = {}
    for name, count in counts:
        rows = db.execute(
            f"SELECT position, event_type, error, recorded_at_us FROM {VIEW_ERRORS} "
            "WHERE projection = ? ORDER BY position DESC LIMIT 1",
            (name,),
        )
        last = None
        if rows:
            position, event_type, error, at_us = rows[0]
            last = ViewError(name, int(position), event_type, error, from_microseconds(at_us))
        found[name] = (int(count), last)
    return found
