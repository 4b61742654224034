"""The event log as Arrow tables: one chunk per UTC date, at most ``FILE_ROWS`` rows each.

Each event keeps its envelope (position, aggregate id and version, type, time, actor,
reason, correlation and causation ids), the entity it is about (from the audit view), and
its own fields as JSON text (as the event feed shows them: no secrets).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

import orjson
import pyarrow as pa

from ledger.storage.database import LedgerDatabase
from ledger.storage.decoding import EventDecoder
from ledger.storage.envelope import public_details
from ledger.storage.feed import subject_of
from ledger.storage.timestamps import from_microseconds
from projections.audit import AUDIT

FILE_ROWS = 100_000  # events per Parquet file at most
READ_BATCH = 5_000  # events per read of the log
EVENT_SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("originator_id", pa.string()),
        ("version", pa.int64()),
        ("type", pa.string()),
        ("subject", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("actor", pa.string()),
        ("reason", pa.string()),
        ("correlation_id", pa.string()),
        ("causation_id", pa.string()),
        ("entity_kind", pa.string()),
        ("entity_name", pa.string()),
        ("payload", pa.string()),
    ]
)


@dataclass(frozen=True)
class EventChunk:
    """Events of one UTC date, positions ``first`` to ``last`` (inclusive)."""

    date: str  # YYYY-MM-DD
    first: int
    last: int
    table: pa.Table


class _Collecting:
    """The rows of the chunk being filled, column by column."""

    def __init__(self) -> None:
        self.date = ""
        self.columns: list[list[object]] = [[] for _ in EVENT_SCHEMA]

    def __len__(self) -> int:
        return len(self.columns[0])

    def chunk(self) -> EventChunk:
        pairs = zip(EVENT_SCHEMA, self.columns, strict=True)
        arrays = [pa.array(values, type=field.type) for field, values in pairs]
        table = pa.table(arrays, schema=EVENT_SCHEMA)
        positions = self.columns[0]
        first, last = int(positions[0]), int(positions[-1])  # type: ignore[call-overload]
        return EventChunk(self.date, first, last, table)


def event_chunks(
    db: LedgerDatabase, after: int, until: int, *, file_rows: int | None = None
) -> Iterator[EventChunk]:
    """The events after position ``after`` up to ``until`` (inclusive), in log order, in
    chunks of at most ``file_rows`` (default ``FILE_ROWS``)."""
    file_rows = file_rows or FILE_ROWS
    decoder = EventDecoder()
    collecting = _Collecting()
    cursor = after
    while cursor < until:
        batch = [row for row in db.read_events(cursor, READ_BATCH) if row[0] <= until]
        if not batch:
            break
        entities = {
            int(position): (kind, name)
            for position, kind, name in db.execute(
                f"SELECT position, kind, name FROM {AUDIT.name} "
                "WHERE position > ? AND position <= ?",
                (cursor, batch[-1][0]),
            )
        }
        for position, aggregate_id, version, topic, state in batch:
            kind, fields, time_us = decoder.decode(topic, bytes(state))
            date = from_microseconds(time_us).date().isoformat()
            if collecting.columns[0] and (date != collecting.date or len(collecting) >= file_rows):
                yield collecting.chunk()
                collecting = _Collecting()
            collecting.date = date
            entity_kind, entity_name = entities.get(position, (None, None))
            row = (position, str(UUID(str(aggregate_id))), version, kind, subject_of(kind),
                   time_us, fields["actor"], fields["reason"], fields["correlation_id"],
                   fields["causation_id"], entity_kind, entity_name,
                   orjson.dumps(public_details(fields)).decode())  # fmt: skip
            for column, value in zip(collecting.columns, row, strict=True):
                column.append(value)
        cursor = int(batch[-1][0])
    if collecting.columns[0]:
        yield collecting.chunk()
