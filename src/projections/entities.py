"""Which entity each aggregate is: names for events that do not carry one.

Only an aggregate's first event names it (``Model.Registered`` has the name,
``Model.Tagged`` does not), so the runner keeps a directory from aggregate id
to entity, in a table next to the views and in memory for the ids it has seen.
"""

from __future__ import annotations

from uuid import UUID

from ledger.domain import (
    DataAsset,
    Endpoint,
    Environment,
    Job,
    LedgerAggregate,
    Model,
    ModelVersion,
    Pipeline,
)
from projections.base import Entity
from projections.database import RowWriter, ViewDatabase
from projections.tables import Table

ENTITIES = Table(
    "ledger_view_entities",
    key={"aggregate_id": "TEXT"},
    columns={"kind": "TEXT NOT NULL", "name": "TEXT NOT NULL", "scope": "TEXT NOT NULL"},
    indexes=(("kind", "name"),),
)

_ASSET_KINDS = {Environment: "environment", DataAsset: "data", Pipeline: "pipeline"}
_MAX_CACHED = 100_000


def entity_created_by(event: LedgerAggregate.Event) -> Entity | None:
    """The entity an aggregate's first event creates (None for any other event)."""
    if isinstance(event, Model.Registered):
        return Entity("model", event.name, event.name)
    if isinstance(event, ModelVersion.Registered):
        return Entity("model_version", f"{event.model_name}:{event.version}", event.model_name)
    if isinstance(event, Endpoint.Created):
        return Entity("endpoint", event.name, event.name)
    if isinstance(event, Job.Submitted):
        job = str(event.originator_id)
        return Entity("job", job, job)
    for cls, kind in _ASSET_KINDS.items():
        if isinstance(event, cls.Created):
            name: str = event.name
            return Entity(kind, name, name)
    return None


class EntityDirectory:
    """Aggregate id -> entity, read from the table on demand and cached."""

    def __init__(self) -> None:
        self._known: dict[UUID, Entity] = {}
        self._new: dict[UUID, Entity] = {}

    def resolve(self, db: ViewDatabase, events: list[LedgerAggregate.Event]) -> list[Entity]:
        """The entity of each event (ids unknown here are looked up in one query)."""
        for event in events:
            if event.originator_version == 1 and event.originator_id not in self._known:
                created = entity_created_by(event)
                if created is not None:
                    self._known[event.originator_id] = created
                    self._new[event.originator_id] = created
        missing = {e.originator_id for e in events} - self._known.keys()
        if missing:
            self._fetch(db, missing)
        return [
            self._known.get(e.originator_id)
            or Entity(type(e).__qualname__.split(".")[0].lower(), str(e.originator_id), "")
            for e in events
        ]

    def _fetch(self, db: ViewDatabase, ids: set[UUID]) -> None:
        wanted = [str(i) for i in ids]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for aggregate_id, kind, name, scope in db.execute(
                f"SELECT aggregate_id, kind, name, scope FROM {ENTITIES.name} "
                f"WHERE aggregate_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            ):
                self._known[UUID(aggregate_id)] = Entity(kind, name, scope)

    def flush(self, out: RowWriter) -> None:
        rows = [(str(i), e.kind, e.name, e.scope) for i, e in self._new.items()]
        out.write_rows(ENTITIES.name, ENTITIES.column_types, ("aggregate_id",), rows, replace=False)
        self._new.clear()

    def trim(self) -> None:
        """Bound the memory held; call only when every entity seen has been written."""
        if len(self._known) > _MAX_CACHED:
            self._known.clear()

    def forget(self) -> None:
        self._known.clear()
        self._new.clear()
