"""Windows of collected data: which windows a monitor is due, and a window's sketch.

Windows are whole hours of event time aligned on the epoch (a PT6H monitor's windows
start at 00:00, 06:00...), so a window is exactly the collected hours inside it, and a
late row lands in the window of its own event time. The schedule judges a window a few
replica flushes after it ends; a row written later still counts when the window is
judged again on demand (``ledger monitor run --window-end``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from executors.monitoring.collector import (
    META_COLUMNS,
    Location,
    blobs_of,
    collected_files,
    read_collected,
    read_sketch,
)
from ledger.drift.sketches import TableSketch

MAX_BACKLOG = 24  # windows evaluated per monitor and pass, the latest ones
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_of(moment: datetime, every_s: int) -> tuple[datetime, datetime]:
    """The window holding ``moment``."""
    elapsed = int((moment - EPOCH).total_seconds()) // every_s * every_s
    start = EPOCH + timedelta(seconds=elapsed)
    return start, start + timedelta(seconds=every_s)


def last_ended_window(every_s: int, now: datetime) -> tuple[datetime, datetime]:
    """The latest window that has ended by ``now``."""
    return window_of(now - timedelta(seconds=every_s), every_s)


def due_windows(
    every_s: int, created: datetime, last_end: datetime | None, now: datetime, grace_s: float
) -> list[tuple[datetime, datetime]]:
    """The windows ended at least ``grace_s`` ago (the replicas have flushed their rows)
    and not evaluated yet, from the one the monitor was created in; the latest
    ``MAX_BACKLOG`` of them."""
    start, _ = window_of(created, every_s)
    if last_end is not None:
        start = max(start, last_end)
    step = timedelta(seconds=every_s)
    windows = []
    while start + step + timedelta(seconds=grace_s) <= now:
        windows.append((start, start + step))
        start += step
    return windows[-MAX_BACKLOG:]


def window_sketch(
    location: Location, endpoint: str, deployments: Iterable[str], start: datetime, end: datetime
) -> TableSketch:
    """The merged sketch of every object collected in ``[start, end)``: the objects' own
    sketches, or the object itself where its sketch is missing (a replica stopped between
    writing the two)."""
    blobs = blobs_of(location)
    merged = TableSketch()
    for deployment in deployments:
        for collected in collected_files(blobs, endpoint, deployment, start, end):
            sketch = read_sketch(blobs, collected)
            if sketch is None:
                table = read_collected(blobs, collected)
                sketch = TableSketch.of_table(table.drop_columns(list(META_COLUMNS)))
            merged.merge(sketch)
    return merged
