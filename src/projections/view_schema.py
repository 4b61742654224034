"""The views' own bookkeeping tables, and whether the views' schema is complete.

A process starting (``ledger serve``, ``projections run``, a worker) checks the
catalog first and runs no DDL when everything exists: ``CREATE INDEX IF NOT EXISTS``
locks its table even when the index exists, and must not run beside view writers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from projections.database import VIEW_POSITIONS, ViewDatabase

TRACKING = VIEW_POSITIONS
# A counter bumped whenever views are reset, so that every runner reloads its
# in-memory state even if the positions it sees look the same.
GENERATION = "ledger_view_generation"
# The table definitions each projection was built with (see ``_drop_changed_views``).
SCHEMAS = "ledger_view_schemas"


def schema_ready(
    db: ViewDatabase, relations: Sequence[str], fingerprints: Mapping[str, str]
) -> bool:
    """Whether the tables and indexes ``relations`` exist, the generation row too, and
    each projection (name -> schema fingerprint) has its position and current tables."""
    if db.missing([TRACKING, GENERATION, SCHEMAS, *relations]):
        return False
    tracked = {row[0] for row in db.execute(f"SELECT name FROM {TRACKING}")}
    built: dict[str, str] = dict(db.execute(f"SELECT name, fingerprint FROM {SCHEMAS}"))
    has_generation = bool(db.execute(f"SELECT 1 FROM {GENERATION}"))
    return (
        has_generation
        and set(fingerprints) <= tracked
        and all(built.get(name) == digest for name, digest in fingerprints.items())
    )
