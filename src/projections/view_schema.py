"""Creating the views' tables, and telling whether the views' schema is complete.

A process starting (``ledger serve``, ``projections run``, a worker) checks the
catalog first and runs no DDL when everything exists: ``CREATE INDEX IF NOT EXISTS``
locks its table even when the index exists, and must not run beside view writers.
The views' bookkeeping tables (positions, generation, schemas) are side tables
(``ledger.storage.side_tables``), created here too under the same lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ledger.logging import get_logger
from ledger.storage.database import LedgerDatabase, created_name
from ledger.storage.side_tables import (
    VIEW_GENERATION,
    VIEW_POSITIONS,
    VIEW_SCHEMAS,
    side_table_statements,
)
from projections import view_errors
from projections.base import ReadModel
from projections.catalog import schema_fingerprint
from projections.tables import (
    HISTORY_TABLE,
    Table,
    create_history_table,
    history_index_statements,
)

log = get_logger(__name__)


def schema_ready(
    db: LedgerDatabase, relations: Sequence[str], fingerprints: Mapping[str, str]
) -> bool:
    """Whether the tables and indexes ``relations`` exist, the generation row too, and
    each read model (name -> schema fingerprint) has its position and current tables."""
    if db.missing([VIEW_POSITIONS, VIEW_GENERATION, VIEW_SCHEMAS, *relations]):
        return False
    tracked = {row[0] for row in db.execute(f"SELECT name FROM {VIEW_POSITIONS}")}
    built: dict[str, str] = dict(db.execute(f"SELECT name, fingerprint FROM {VIEW_SCHEMAS}"))
    has_generation = bool(db.execute(f"SELECT 1 FROM {VIEW_GENERATION}"))
    return (
        has_generation
        and set(fingerprints) <= tracked
        and all(built.get(name) == digest for name, digest in fingerprints.items())
    )


def create_view_tables(
    db: LedgerDatabase, read_models: Sequence[ReadModel], tables: Sequence[Table], *, indexed: bool
) -> bool:
    """Create what is missing of ``tables`` (the read models' and shared ones);
    ``indexed=False`` leaves out indexes (for a bulk load). Nothing is locked when nothing
    is missing (see ``LedgerDatabase.schema_change``). Whether anything was created."""
    statements = [
        statement
        for table in tables
        for statement in (table.create_table_statement(), *table.index_statements())
        if indexed or "INDEX" not in statement
    ] + (history_index_statements() if indexed else [])
    fingerprints = {m.name: schema_fingerprint(m) for m in read_models}
    relations = [HISTORY_TABLE, *(created_name(s) for s in statements)]
    if schema_ready(db, relations, fingerprints):
        return False
    with db.schema_change():
        for statement in side_table_statements(db.kind):
            db.execute(statement)
        if not db.execute(f"SELECT 1 FROM {VIEW_GENERATION}"):
            db.execute(f"INSERT INTO {VIEW_GENERATION} VALUES (0, 0)")
        create_history_table(db, indexed=indexed)
        _drop_changed_views(db, read_models)
        for table in tables:
            db.execute(table.create_table_statement())
            if indexed:
                for statement in table.index_statements():
                    db.execute(statement)
        db.execute_many(
            f"INSERT INTO {VIEW_POSITIONS} (name, position, updated_at_us) VALUES (?, 0, 0) "
            "ON CONFLICT (name) DO NOTHING",
            [(m.name,) for m in read_models],
        )
    return True


def _drop_changed_views(db: LedgerDatabase, read_models: Sequence[ReadModel]) -> None:
    """Drop the tables of read models whose table definitions changed since they were
    built (a new release), so that they are built again from the log."""
    stored: dict[str, str] = dict(db.execute(f"SELECT name, fingerprint FROM {VIEW_SCHEMAS}"))
    built: dict[str, int] = dict(db.execute(f"SELECT name, position FROM {VIEW_POSITIONS}"))
    changed = [
        model
        for model in read_models
        if stored.get(model.name, "") != schema_fingerprint(model)
        and (model.name in stored or built.get(model.name, 0) > 0)
    ]
    for model in changed:
        log.warning("a view changed its tables; rebuilding it", projection=model.name)
        for table in model.tables:
            db.execute(f"DELETE FROM {HISTORY_TABLE} WHERE tbl = ?", (table.name,))
            db.execute(f"DROP TABLE IF EXISTS {table.name}")
    if changed:
        reset_positions(db, [m.name for m in changed])
    db.execute_many(
        f"INSERT INTO {VIEW_SCHEMAS} (name, fingerprint) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint",
        [(m.name, schema_fingerprint(m)) for m in read_models],
    )


def reset_positions(db: LedgerDatabase, names: list[str]) -> None:
    """Move the named read models back to the start of the log (in the caller's
    transaction); every updater reloads its state (the generation changes)."""
    db.execute_many(
        f"UPDATE {VIEW_POSITIONS} SET position = 0 WHERE name = ?", [(name,) for name in names]
    )
    view_errors.forget(db, names)  # they meet those events again
    db.execute(f"UPDATE {VIEW_GENERATION} SET generation = generation + 1")


def empty(db: LedgerDatabase, read_model: ReadModel) -> None:
    """Delete every row of the read model's tables, and their history."""
    historized = [t.name for t in read_model.tables if t.historized]
    if historized:
        marks = ", ".join("?" * len(historized))
        db.execute(f"DELETE FROM {HISTORY_TABLE} WHERE tbl IN ({marks})", historized)
    for table in read_model.tables:
        db.execute(f"DELETE FROM {table.name}")
