"""Whether a stream continues this store's log, and how published events name their store.

Aggregate ids come from names, so two databases (or one restored from an older backup)
hold events with the same ids. Each published event therefore carries its store's id
(the first 16 hex digits of the log's first chain hash) and its own chain hash, which
commits to the whole log up to it. The relay goes on from a stream only if the stream's
newest ledger event is the log's event at that position with the same chain hash;
otherwise it refuses (``RelayRefusedError``) and ``ledger relay --reset`` publishes the
log into a fresh stream.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.chain import CHAIN_TABLE
from ledger.errors import BusUnavailableError
from ledger.storage.database import LedgerDatabase

STORE_ID_DIGITS = 16


class RelayRefusedError(BusUnavailableError):
    """The stream does not continue this log: a restored database, or another store."""


def store_id(db: LedgerDatabase) -> str:
    """This store's id: the start of its first chain hash ("" while the log is empty)."""
    if not db.table_exists(CHAIN_TABLE):
        return ""
    rows = db.execute(f"SELECT hash FROM {CHAIN_TABLE} ORDER BY position LIMIT 1")
    return bytes(rows[0][0]).hex()[:STORE_ID_DIGITS] if rows else ""


def chain_hashes(db: LedgerDatabase, first: int, last: int) -> dict[int, str]:
    """The chain hash (hex) of each log position from ``first`` to ``last``."""
    rows = db.execute(
        f"SELECT position, hash FROM {CHAIN_TABLE} WHERE position >= ? AND position <= ?",
        (first, last),
    )
    return {int(position): bytes(digest).hex() for position, digest in rows}


def stamp(db: LedgerDatabase, store: str, envelopes: list[dict[str, Any]]) -> None:
    """Add the store's id and each event's chain hash to envelopes about to be published."""
    if not envelopes:
        return
    hashes = chain_hashes(db, envelopes[0]["position"], envelopes[-1]["position"])
    for envelope in envelopes:
        envelope["store"] = store
        envelope["chain"] = hashes.get(envelope["position"], "")


def message_id(envelope: dict[str, Any]) -> str:
    """``Nats-Msg-Id``: the event's id within its store, stable across re-publishes."""
    return f"{envelope['store']}/{envelope['id']}"


def check_continues(
    db: LedgerDatabase, stream: str, store: str, last: dict[str, Any] | None
) -> None:
    """Refuse to go on from ``stream`` unless its newest ledger event ``last`` is this
    log's event at that position (same id and chain hash)."""
    if last is None:  # an empty stream (or nothing of the ledger left in it)
        return
    position = int(last["position"])
    theirs = str(last.get("store", ""))
    ours = _event_at(db, position)
    if theirs and theirs != store:
        cause = f"it holds events of another store (id {theirs}; this store is {store or '-'})"
    elif ours is None:
        head = db.head_position()
        cause = (
            f"it holds events up to log position {position} but this log ends at {head}: "
            "the database was restored from an older backup"
        )
    elif ours[0] != last.get("id") or (last.get("chain") and last["chain"] != ours[1]):
        cause = (
            f"its event at log position {position} differs from this log's: the database was "
            "restored from an older backup, or its history was rewritten"
        )
    else:
        return
    raise RelayRefusedError(
        f"the relay refuses to publish to JetStream stream {stream}: {cause}; "
        f"run `ledger relay --reset` to publish this log into a fresh stream {stream} "
        "(it deletes the stream and its consumers)"
    )


def _event_at(db: LedgerDatabase, position: int) -> tuple[str, str] | None:
    """The id and chain hash of the log's event at ``position`` (None: there is none)."""
    rows = db.read_events(position - 1, 1)
    if not rows or int(rows[0][0]) != position:
        return None
    _, aggregate_id, version, _, _ = rows[0]
    return f"{UUID(str(aggregate_id))}/{version}", chain_hashes(db, position, position).get(
        position, ""
    )
