"""The event feed: stored events as self-describing JSON envelopes, in log order.

The same envelope is what the HTTP feed serves and what is published on the bus.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from ledger.errors import InvalidInputError, NotFoundError
from ledger.storage.database import LedgerDatabase
from ledger.storage.decoding import EventDecoder
from ledger.storage.envelope import public_details
from ledger.storage.timestamps import iso

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
MAX_LIMIT = 1000  # the most items one read of the feed, or one page of a view, returns


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")


def snake_case(name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def subject_of(event_type: str) -> str:
    """``ModelVersion.Registered`` -> ``ledger.model_version.registered``."""
    aggregate, _, event = event_type.rpartition(".")
    return f"ledger.{snake_case(aggregate)}.{snake_case(event)}"


def event_envelope(
    position: int,
    aggregate_id: str,
    aggregate_version: int,
    event_type: str,
    fields: dict[str, Any],
    time_us: int,
) -> dict[str, Any]:
    """An event as consumers see it; ``id`` (aggregate id/version) never changes."""
    uid = str(UUID(aggregate_id))
    return {
        "position": position,
        "id": f"{uid}/{aggregate_version}",
        "subject": subject_of(event_type),
        "type": event_type,
        "aggregate_id": uid,
        "aggregate_version": aggregate_version,
        "time": iso(time_us),
        "actor": fields["actor"],
        "reason": fields["reason"],
        "correlation_id": fields["correlation_id"],
        "causation_id": fields["causation_id"],
        "data": public_details(fields),  # a token's hash stays out of every envelope
    }


def read_feed(
    db: LedgerDatabase, decoder: EventDecoder, after: int, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` events after log position ``after``, read from the event store."""
    check_limit(limit)
    if after < 0:
        after = 0
    envelopes = []
    for position, aggregate_id, version, topic, state in db.read_events(after, limit):
        event_type, fields, time_us = decoder.decode(topic, bytes(state))
        envelopes.append(
            event_envelope(position, aggregate_id, version, event_type, fields, time_us)
        )
    return envelopes


def read_event(db: LedgerDatabase, decoder: EventDecoder, event_id: str) -> dict[str, Any]:
    """The envelope of the event ``<aggregate id>/<version>``; NotFoundError when the log
    holds no such event."""
    aggregate, _, version = event_id.partition("/")
    try:
        uid, number = UUID(aggregate), int(version)
        if not 0 <= number < 2**63:  # a BIGINT column: larger ones overflow the driver
            raise ValueError(version)
    except ValueError:
        raise InvalidInputError(
            f"bad event id {event_id!r}: an event id is <aggregate id>/<version>"
        ) from None
    table, position = db.events_table
    key = str(uid) if db.kind == "postgres" else uid.hex
    rows = (
        db.execute(
            f"SELECT {position}, originator_id, originator_version, topic, state FROM {table} "
            "WHERE originator_id = ? AND originator_version = ?",
            (key, number),
        )
        if db.table_exists(table)
        else []
    )
    if not rows:
        raise NotFoundError(f"no event {event_id!r} in the ledger")
    found, originator, number, topic, state = rows[0]
    event_type, fields, time_us = decoder.decode(topic, bytes(state))
    return event_envelope(found, str(originator), number, event_type, fields, time_us)
