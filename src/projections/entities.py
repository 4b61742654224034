"""Which entity each aggregate is: names for events that do not carry one.

Only an aggregate's first event names it (``Model.Registered`` has the name,
``Model.Tagged`` does not), so the updater keeps a directory from aggregate id
to entity, in a table next to the views and in memory for the ids it has seen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from ledger.domain import (
    ApiToken,
    Approval,
    BatchJob,
    DataAsset,
    Endpoint,
    Environment,
    Experiment,
    ExperimentDirectory,
    GarbageCollector,
    Job,
    LoggedModel,
    Model,
    ModelVersion,
    Monitor,
    Pipeline,
    Rule,
    Run,
    TrackedArtifact,
    Webhook,
)
from ledger.storage.database import LedgerDatabase
from projections.base import Change, Entity, event_type
from projections.tables import Table
from projections.writes import RowWriter

ENTITIES = Table(
    "ledger_view_entities",
    key={"aggregate_id": "TEXT"},
    columns={"kind": "TEXT NOT NULL", "name": "TEXT NOT NULL", "scope": "TEXT NOT NULL"},
)

_MAX_CACHED = 100_000
EntityOf = Callable[[str, dict[str, Any]], Entity]


def _named(kind: str) -> EntityOf:
    return lambda aggregate_id, data: Entity(kind, data["name"], data["name"])


def _model_version(aggregate_id: str, data: dict[str, Any]) -> Entity:
    model = data["model_name"]
    return Entity("model_version", f"{model}:{data['version']}", model)


def _job(aggregate_id: str, data: dict[str, Any]) -> Entity:
    job = str(UUID(aggregate_id))  # the id as users see it
    return Entity("job", job, job)


def _field(kind: str, field: str) -> EntityOf:
    """An entity named by one of its first event's fields (an MLflow id)."""
    return lambda aggregate_id, data: Entity(kind, data[field], data[field])


def _approval(aggregate_id: str, data: dict[str, Any]) -> Entity:
    return Entity("approval", UUID(aggregate_id).hex[:12], data["rule"])


def _artifact(aggregate_id: str, data: dict[str, Any]) -> Entity:
    return Entity("artifact", data["path"], data["path"])


# The first event of each kind of aggregate, and the entity it names.
_CREATED_BY: dict[str, EntityOf] = {
    event_type(Model.Registered): _named("model"),
    event_type(Model.RenamedFrom): _named("model"),
    event_type(ModelVersion.Registered): _model_version,
    event_type(ModelVersion.RenamedFrom): _model_version,
    event_type(Endpoint.Created): _named("endpoint"),
    event_type(Environment.Created): _named("environment"),
    event_type(DataAsset.Created): _named("data"),
    event_type(Pipeline.Created): _named("pipeline"),
    event_type(Job.Submitted): _job,
    event_type(BatchJob.Requested): _job,
    event_type(ApiToken.Issued): _named("token"),
    event_type(Monitor.Created): _named("monitor"),
    event_type(Webhook.Created): _named("webhook"),
    event_type(Rule.Created): _named("rule"),
    event_type(Approval.Requested): _approval,
    event_type(TrackedArtifact.Created): _artifact,
    event_type(Experiment.Created): _field("experiment", "experiment_id"),
    event_type(ExperimentDirectory.Created): lambda i, d: Entity(
        "experiment_directory", "mlflow", "mlflow"
    ),
    event_type(Run.Created): _field("run", "run_id"),
    event_type(LoggedModel.Created): _field("logged_model", "model_id"),
    event_type(GarbageCollector.Created): _named("gc"),
}


# A decoded event before the updater knows its entity: (position, aggregate id, aggregate
# version, event type, fields, time in microseconds). A plain tuple: one is made per event.
Stored = tuple[int, str, int, str, dict[str, Any], int]


class EntityDirectory:
    """Aggregate id -> entity, read from the table on demand and cached."""

    def __init__(self) -> None:
        self._known: dict[str, Entity] = {}
        self._new: dict[str, Entity] = {}

    def resolve(self, db: LedgerDatabase, events: list[Stored]) -> list[Change]:
        """Each event with its entity (ids unknown here are looked up in one query)."""
        known = self._known
        for _, aggregate_id, version, kind, data, _ in events:
            if version == 1 and aggregate_id not in known:
                created = _CREATED_BY.get(kind)
                if created is not None:
                    known[aggregate_id] = self._new[aggregate_id] = created(aggregate_id, data)
        missing = {event[1] for event in events} - known.keys()
        if missing:
            self._fetch(db, missing)
        return [
            Change(position, aggregate_id, version, kind, data,
                   known.get(aggregate_id) or _unknown(aggregate_id, kind), time_us)
            for position, aggregate_id, version, kind, data, time_us in events
        ]  # fmt: skip

    def _fetch(self, db: LedgerDatabase, ids: set[str]) -> None:
        wanted = sorted(ids)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for aggregate_id, kind, name, scope in db.execute(
                f"SELECT aggregate_id, kind, name, scope FROM {ENTITIES.name} "
                f"WHERE aggregate_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            ):
                self._known[aggregate_id] = Entity(kind, name, scope)

    def flush(self, out: RowWriter) -> None:
        rows = [(i, e.kind, e.name, e.scope) for i, e in self._new.items()]
        out.write_rows(ENTITIES.name, ENTITIES.column_types, ("aggregate_id",), rows, replace=False)
        self._new.clear()

    def trim(self) -> None:
        """Bound the memory held; call only when every entity seen has been written."""
        if len(self._known) > _MAX_CACHED:
            self._known.clear()

    def forget(self) -> None:
        self._known.clear()
        self._new.clear()


def _unknown(aggregate_id: str, event_type: str) -> Entity:
    """An aggregate of a kind the directory does not know (a newer release wrote it)."""
    return Entity(event_type.split(".")[0].lower(), aggregate_id, aggregate_id)
