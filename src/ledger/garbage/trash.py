"""The collector's trash: where an unreferenced blob waits a grace period before it goes.

A blob taken out of service is at ``trash/<its key>/<UTC time>.<token>``, the time being
when it left its key. It gets there in two moves: first to ``trash/<key>/pending.<token>``
(from then on the key is empty: whoever looks for the blob stores it again), then to its
stamped name, the stamp read after the first move ended. A run stopped between the two
leaves a pending entry, which the next run stamps with its own (later) time.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.artifacts.blobs import Blobs, StoredObject

TRASH = "trash/"
PENDING = "pending"
STAMP = "%Y%m%dT%H%M%S.%fZ"

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class TrashEntry:
    """One object in the trash: where it is, the key it came from, when it left it
    (None while pending) and its size."""

    key: str
    original: str
    trashed_at: datetime | None
    size: int


def trash_entry(stored: StoredObject) -> TrashEntry | None:
    """The entry a trash object is (None for an object that is not one of ours)."""
    original, _, name = stored.key.removeprefix(TRASH).rpartition("/")
    stamp, _, token = name.partition(".") if name.startswith(PENDING) else name.rpartition(".")
    if not original or not token:
        return None
    if stamp == PENDING:
        return TrashEntry(stored.key, original, None, stored.size)
    try:
        trashed_at = datetime.strptime(stamp, STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
    return TrashEntry(stored.key, original, trashed_at, stored.size)


def take_out(blobs: Blobs, key: str, clock: Clock) -> bool:
    """Move the object ``key`` into the trash; False when it was not there (any more)."""
    pending = f"{TRASH}{key}/{PENDING}.{secrets.token_hex(8)}"
    try:
        blobs.move(key, pending)
    except FileNotFoundError:
        return False
    stamp(blobs, pending, key, clock)
    return True


def stamp(blobs: Blobs, pending: str, original: str, clock: Clock) -> None:
    """Give a pending entry its time (now, which is after it left ``original``)."""
    stamped = f"{TRASH}{original}/{clock().strftime(STAMP)}.{secrets.token_hex(8)}"
    with contextlib.suppress(FileNotFoundError):  # another run stamped it meanwhile
        blobs.move(pending, stamped)


def put_back(blobs: Blobs, entry: TrashEntry) -> bool:
    """Move an entry back to its key; False when it was gone."""
    try:
        blobs.move(entry.key, entry.original)
    except FileNotFoundError:
        return False
    return True
