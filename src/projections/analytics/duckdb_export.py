"""``ledger export --format duckdb``: the events and views in a DuckDB file.

Tables: ``events`` (appended to), ``views.<table>`` and ``analytics.<dataset>`` (replaced
by each export), and ``_export`` (one row: how far the last export went). One export is
one DuckDB transaction: a stopped run leaves the file as the last complete export left it,
and a rerun does the whole of its work again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from ledger.artifacts.locations import is_object_store_url, local_directory
from ledger.errors import InvalidInputError
from ledger.storage.database import LedgerDatabase
from projections.analytics.event_rows import EVENT_SCHEMA, event_chunks
from projections.analytics.summary import ExportSummary, Progress, check_since
from projections.analytics.target import target_error
from projections.analytics.view_tables import ViewsSnapshot, read_views

_EXPORT_TABLE = (
    "CREATE TABLE IF NOT EXISTS _export (position BIGINT NOT NULL, views_position BIGINT "
    "NOT NULL, exported_at TIMESTAMPTZ NOT NULL, since BIGINT NOT NULL, store TEXT NOT NULL)"
)


def duckdb_file(location: str) -> Path:
    """The local file a DuckDB export writes (a path or ``file://`` URL)."""
    if is_object_store_url(location):
        raise InvalidInputError(
            f"a DuckDB export writes a local file, not {location!r}: give a path, or use "
            "--format parquet for an object store"
        )
    return local_directory(location)


@contextmanager
def _connected(file: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(file)) as connection:
            yield connection
    except (OSError, duckdb.Error) as error:
        raise target_error(f"write the DuckDB file {file}", error) from None


def export_duckdb(
    db: LedgerDatabase,
    location: str,
    *,
    since: int | None = None,
    on_progress: Progress | None = None,
) -> ExportSummary:
    """Bring the DuckDB file at ``location`` up to the views (caught up by the caller)."""
    file = duckdb_file(location)
    head = db.head_position()
    check_since(since, head)
    with _connected(file) as con:
        con.execute("BEGIN TRANSACTION")
        con.register("empty_events", EVENT_SCHEMA.empty_table())
        con.execute("CREATE TABLE IF NOT EXISTS events AS SELECT * FROM empty_events")
        con.execute(_EXPORT_TABLE)
        found = con.execute("SELECT max(position) FROM _export").fetchone()
        previous = None if found is None else found[0]
        if since is None and previous is not None and previous > head:
            raise InvalidInputError(
                f"{file} holds events up to position {previous}, beyond this ledger's last "
                f"({head}): another ledger's, or this one was restored from an older backup"
            )
        start = since if since is not None else (previous or 0)
        con.execute("DELETE FROM events WHERE position > ?", [start])  # a --since going back
        snapshot = read_views(db)
        until = max(snapshot.position, start)
        count = 0
        for chunk in event_chunks(db, start, until):
            _insert(con, "events", chunk.table)
            count += chunk.table.num_rows
            if on_progress:
                on_progress(chunk.last - start, until - start)
        _replace_snapshot(con, snapshot)
        exported_at = datetime.now(UTC)
        con.execute("DELETE FROM _export")
        con.execute(
            "INSERT INTO _export VALUES (?, ?, ?, ?, ?)",
            [until, snapshot.position, exported_at, start, db.kind],
        )
        con.execute("COMMIT")
    tables = [*(f"views.{n}" for n in snapshot.views),
              *(f"analytics.{n}" for n in snapshot.analytics)]  # fmt: skip
    return ExportSummary(
        target=str(file),
        format="duckdb",
        since=start,
        position=until,
        views_position=snapshot.position,
        events=count,
        exported_at=exported_at.isoformat(),
        written=["events", *tables, "_export"],
        views=len(tables),
    )


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    con.register("incoming", rows)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM incoming")
    finally:
        con.unregister("incoming")


def _replace_snapshot(con: duckdb.DuckDBPyConnection, snapshot: ViewsSnapshot) -> None:
    for schema, tables in (("views", snapshot.views), ("analytics", snapshot.analytics)):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for name, table in tables.items():
            con.register("incoming", table)
            try:
                con.execute(f'CREATE OR REPLACE TABLE {schema}."{name}" AS SELECT * FROM incoming')
            finally:
                con.unregister("incoming")
