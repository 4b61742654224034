"""The views' own tables as Arrow tables, all read at one log position.

Every read model's tables are exported but two things: the audit view (one row per event,
which the events dataset already carries) and secrets (API tokens' hashes).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ledger.storage.database import LedgerDatabase
from ledger.storage.side_tables import VIEW_POSITIONS
from projections.analytics.derived import analytics_tables
from projections.audit import AUDIT
from projections.catalog import all_read_models
from projections.entities import ENTITIES
from projections.tables import Table
from projections.tokens import TOKENS

PREFIX = "ledger_view_"
SKIPPED_TABLES = frozenset({AUDIT.name})
SECRET_COLUMNS = {TOKENS.name: frozenset({"token_hash"})}
_ARROW_TYPES = {"TEXT": pa.string(), "BIGINT": pa.int64(), "INTEGER": pa.int64(),
                "FLOAT8": pa.float64()}  # fmt: skip


@dataclass(frozen=True)
class ViewsSnapshot:
    """The views' tables and the analytics datasets, as they were at ``position``."""

    position: int
    views: dict[str, pa.Table]
    analytics: dict[str, pa.Table]


def exported_tables() -> list[Table]:
    tables = [ENTITIES, *(table for model in all_read_models() for table in model.tables)]
    return [table for table in tables if table.name not in SKIPPED_TABLES]


def short_name(table: Table) -> str:
    """``ledger_view_versions`` -> ``versions``."""
    return table.name.removeprefix(PREFIX)


def arrow_schema(table: Table) -> pa.Schema:
    hidden = SECRET_COLUMNS.get(table.name, frozenset())
    return pa.schema(
        [
            (name, _ARROW_TYPES[sql_type.split()[0].upper()])
            for name, sql_type in table.column_types.items()
            if name not in hidden
        ]
    )


def read_table(db: LedgerDatabase, table: Table) -> pa.Table:
    """The table's rows (in key order), without its secret columns."""
    schema = arrow_schema(table)
    rows = db.execute(
        f"SELECT {', '.join(schema.names)} FROM {table.name} ORDER BY {', '.join(table.key)}"
    )
    columns = list(zip(*rows, strict=True)) or [()] * len(schema)
    arrays = [pa.array(values, type=f.type) for f, values in zip(schema, columns, strict=True)]
    return pa.table(arrays, schema=schema)


def views_position(db: LedgerDatabase) -> int:
    """The log position every view has applied."""
    return int(db.execute(f"SELECT min(position) FROM {VIEW_POSITIONS}")[0][0] or 0)


def read_views(db: LedgerDatabase) -> ViewsSnapshot:
    """Every exported view table and analytics dataset, read in one snapshot."""
    with db.snapshot():
        return ViewsSnapshot(
            views_position(db),
            {short_name(table): read_table(db, table) for table in exported_tables()},
            analytics_tables(db),
        )
