"""``ledger export --format parquet``: the events and views as Parquet datasets at any
artifact store URL (layout: ``projections.analytics.manifest``).

Incremental: a run exports the events after the manifest's position (or ``since``) and a
fresh snapshot of the views. Resumable: part files are written first, the manifest last;
a rerun after a stopped run keeps the part files it finds after the manifest's position
(each one was written whole) and writes only the rest. Snapshots that a new manifest
superseded are removed after it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.errors import InvalidInputError
from ledger.logging import get_logger
from ledger.storage.database import LedgerDatabase
from projections.analytics import manifest as layout
from projections.analytics.event_rows import event_chunks
from projections.analytics.manifest import MANIFEST, EventFile, Manifest
from projections.analytics.summary import ExportSummary, Progress, check_since
from projections.analytics.target import ExportTarget, ExportTargetError
from projections.analytics.view_tables import ViewsSnapshot, read_views

log = get_logger(__name__)


def export_parquet(
    db: LedgerDatabase,
    location: str,
    *,
    since: int | None = None,
    on_progress: Progress | None = None,
) -> ExportSummary:
    """Export to ``location`` what it lacks; ``db``'s views should be caught up first."""
    target = ExportTarget(location)
    target.probe()
    check_since(since, db.head_position())
    data = target.read_json(MANIFEST)
    previous = None if data is None else Manifest.from_dict(data, location)
    start = since if since is not None else _resume_from(previous, db, location)
    snapshot = read_views(db)
    adopted, cursor = _adopt_stopped_run(db, target, start)
    until = max(snapshot.position, cursor)
    files = {found.key: found.last - found.first + 1 for found in adopted}
    written: list[str] = []
    done, total = 0, max(until - cursor, 0)
    for chunk in event_chunks(db, cursor, until):
        key = layout.event_key(chunk.date, chunk.first, chunk.last)
        target.write_parquet(key, chunk.table)
        files[key] = chunk.table.num_rows
        written.append(key)
        done += chunk.table.num_rows
        if on_progress:
            on_progress(chunk.last - cursor, total)
    files.update(_write_snapshot(target, snapshot, written))
    exported_at = datetime.now(UTC).isoformat()
    position = max(until, start)
    manifest = Manifest(position, snapshot.position, exported_at, start, db.kind, files)
    target.write_json(MANIFEST, manifest.to_dict())
    _remove_superseded(target, snapshot.position)
    return ExportSummary(
        target=target.url,
        format="parquet",
        since=start,
        position=position,
        views_position=snapshot.position,
        events=done,
        exported_at=exported_at,
        written=written,
        adopted=[found.key for found in adopted],
        views=len(snapshot.views) + len(snapshot.analytics),
    )


def _resume_from(previous: Manifest | None, db: LedgerDatabase, location: str) -> int:
    """Where the last export ended; refused when that is beyond this log's end (another
    ledger's export, or a ledger restored from an older backup)."""
    if previous is None:
        return 0
    head = db.head_position()
    if previous.position > head:
        raise InvalidInputError(
            f"the export at {location} reached log position {previous.position}, beyond "
            f"this ledger's last ({head}): it is another ledger's, or this one was restored "
            "from an older backup; export to another location, or give --since"
        )
    return previous.position


def _adopt_stopped_run(
    db: LedgerDatabase, target: ExportTarget, start: int
) -> tuple[list[EventFile], int]:
    """The part files after ``start`` that a stopped run wrote, in log order, and the
    position the export goes on from. They must follow ``start`` without a gap; any other
    file holding events after ``start`` would be exported twice, and is refused."""
    found = [f for key in target.keys(layout.EVENTS) if (f := layout.parse_event_key(key))]
    after = sorted((f for f in found if f.last > start), key=lambda f: f.first)
    adopted: list[EventFile] = []
    cursor = start
    for part in after:
        following = db.read_events(cursor, 1)
        if not following or part.first != following[0][0]:
            raise InvalidInputError(
                f"{target.location} already holds events after position {start} "
                f"({part.key}), which this export would write again: export to another "
                f"location, or remove the part files after position {start} first"
            )
        adopted.append(part)
        cursor = part.last
    if adopted:
        log.info("a stopped export's part files are kept", files=len(adopted), until=cursor)
    return adopted, cursor


def _write_snapshot(
    target: ExportTarget, snapshot: ViewsSnapshot, written: list[str]
) -> dict[str, int]:
    """Each view table and analytics dataset, unless a stopped run wrote it at the same
    position already; the files' keys and rows."""
    files = {}
    for folder, tables in (("views", snapshot.views), ("analytics", snapshot.analytics)):
        for name, table in tables.items():
            key = layout.snapshot_key(folder, name, snapshot.position)
            if not target.exists(key):
                target.write_parquet(key, table)
                written.append(key)
            files[key] = table.num_rows
    return files


def _remove_superseded(target: ExportTarget, position: int) -> None:
    """Remove the snapshots of earlier exports (the manifest names the new ones now). A
    failure leaves them for the next export to remove."""
    try:
        for folder in layout.SNAPSHOT_FOLDERS:
            for key in target.keys(folder):
                found = layout.snapshot_position(key)
                if found is not None and found != position:
                    target.delete(key)
    except ExportTargetError as error:
        log.warning("superseded snapshots were not removed", error=str(error))
