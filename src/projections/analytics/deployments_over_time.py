"""Which model version each endpoint deployment served, at which shares, from when to when.

Read from the history of the deployments view (every state a deployment's row had, with
the log positions it held between; see ``projections.tables``): consecutive states that
differ only in what does not matter here (health, sampling) are merged into one stretch,
and positions become times through the audit view.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ledger.storage.database import LedgerDatabase
from ledger.storage.rows import Row
from projections.audit import AUDIT
from projections.endpoints import DEPLOYMENTS
from projections.tables import HISTORY_TABLE, OPEN

# Positions in a history row (the key, then the other columns) of what a stretch keeps.
DEPLOYMENT_FIELDS = {
    name: DEPLOYMENTS.column_names.index(name)
    for name in ("endpoint", "deployment", "model", "version", "traffic", "mirror")
}
_KEPT = tuple(DEPLOYMENT_FIELDS.values())
_LOOKUP_CHUNK = 500  # positions per query (SQLite allows a few thousand parameters)


def stretches(history: Iterable[tuple[str, int, int]]) -> list[list[Any]]:
    """History rows (JSON row, valid_from, valid_to) as merged stretches:
    [endpoint, deployment, model, version, traffic, mirror, from_position, to_position]."""
    states = []
    for row, valid_from, valid_to in history:
        values = orjson.loads(row)
        states.append([*(values[i] for i in _KEPT), valid_from, valid_to])
    states.sort(key=lambda state: (state[0], state[1], state[6]))
    merged: list[list[Any]] = []
    for state in states:
        last = merged[-1] if merged else None
        if last is not None and last[:6] == state[:6] and last[7] == state[6]:
            last[7] = state[7]
        else:
            merged.append(state)
    return merged


def times_of(db: LedgerDatabase, positions: set[int]) -> dict[int, int]:
    """The time (microseconds) of the event at each position, from the audit view."""
    ordered = sorted(positions)
    times: dict[int, int] = {}
    for start in range(0, len(ordered), _LOOKUP_CHUNK):
        chunk = ordered[start : start + _LOOKUP_CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT position, time_us FROM {AUDIT.name} WHERE position IN ({marks})", chunk
        )
        times.update((int(position), int(time_us)) for position, time_us in rows)
    return times


def deployments_over_time(db: LedgerDatabase) -> list[Row]:
    """Rows in ``catalog.DEPLOYMENTS_OVER_TIME``'s column order (times in microseconds)."""
    history = db.execute(
        f"SELECT row, valid_from, valid_to FROM {HISTORY_TABLE} WHERE tbl = ?",
        (DEPLOYMENTS.name,),
    )
    merged = stretches(history)
    ends = {s[7] for s in merged if s[7] != OPEN}
    times = times_of(db, {s[6] for s in merged} | ends)
    rows: list[Row] = []
    for *kept, start, end in merged:
        if end == OPEN:  # it still holds
            rows.append((*kept, times.get(start), None, start, None))
        else:
            rows.append((*kept, times.get(start), times.get(end), start, end))
    return rows
