"""The audit view: one row per event, filterable by who, what, which entity and when.

A row holds what readers filter by; an event's details are read from the event
store itself (joined on the log position), so the view does not copy them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from ledger.domain import (
    ApiToken,
    BatchJob,
    DataAsset,
    Endpoint,
    Environment,
    GarbageCollector,
    Job,
    LedgerAggregate,
    Model,
    ModelVersion,
    Monitor,
    Pipeline,
    TrackedArtifact,
)
from ledger.errors import InvalidInputError
from ledger.storage.database import LedgerDatabase
from ledger.storage.envelope import public_details
from ledger.storage.feed import check_limit
from ledger.storage.rows import Row
from ledger.storage.timestamps import iso, to_microseconds
from projections.base import AppendOnlyReadModel, Change, Handler
from projections.paging import Page, decode_token, encode_token
from projections.tables import Table
from projections.writes import RowWriter

AUDIT = Table(
    "ledger_view_audit",
    key={"position": "BIGINT"},
    columns={
        "aggregate_id": "TEXT NOT NULL",
        "aggregate_version": "BIGINT NOT NULL",
        "kind": "TEXT NOT NULL",
        "name": "TEXT NOT NULL",
        "scope": "TEXT NOT NULL",
        "event_type": "TEXT NOT NULL",
        "actor": "TEXT NOT NULL",
        "reason": "TEXT NOT NULL",
        "correlation_id": "TEXT NOT NULL",
        "causation_id": "TEXT NOT NULL",
        "time_us": "BIGINT NOT NULL",
    },
    indexes=(
        ("actor", "position"),
        ("event_type", "position"),
        ("kind", "scope", "position"),
        ("correlation_id",),
        ("time_us", "position"),
    ),
)


def _stored_state_transcoder() -> JSONTranscoder:
    """Reads event states as eventsourcing's default mapper wrote them."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


_TRANSCODER = _stored_state_transcoder()
# What an audit entity filter (``kind`` or ``kind:name``) may name.
ENTITY_KINDS = (
    "model", "model_version", "endpoint", "environment", "data", "pipeline", "job", "token",
    "artifact", "monitor", "gc",
    "experiment", "run", "logged_model",
)  # fmt: skip


def event_details(state: bytes) -> dict[str, Any]:
    """An event's own fields (without actor, time...) from its stored state."""
    fields: dict[str, Any] = _TRANSCODER.decode(state)
    return {k: v for k, v in public_details(fields).items() if k != "class_version"}


class AuditProjection(AppendOnlyReadModel):
    """Who did what, to which entity, when and why: every event, in log order."""

    name = "audit"
    description = "one row per event: entity, type, actor, reason, time, correlation"
    tables = (AUDIT,)

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        return {}

    def apply(self, change: Change, history: Any) -> None:
        data = change.data
        entity = change.entity
        self.add(
            AUDIT.name,
            (change.position, change.aggregate_id, change.aggregate_version, entity.kind,
             entity.name, entity.scope, change.event_type, data["actor"], data["reason"],
             data["correlation_id"], data["causation_id"], change.time_us),
        )  # fmt: skip

    def flush(self, out: RowWriter, *, deferred: bool = False, into_empty: bool = False) -> None:
        # Positions are unique and applied exactly once: a plain bulk append.
        out.copy_rows(AUDIT.name, AUDIT.column_names, self._pending[AUDIT.name])
        self._pending[AUDIT.name] = []


@dataclass(frozen=True)
class AuditQuery:
    """Which events to list; every given filter must hold. Results are in log order."""

    actor: str = ""
    event_type: str = ""  # "ModelVersion.Registered", or "Registered" for every aggregate
    kind: str = ""  # one of ENTITY_KINDS
    name: str = ""  # needs kind; with kind "model": the model and all its versions
    correlation_id: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    after_position: int = 0
    limit: int = 100
    page_token: str = ""


def check_entity_kind(kind: str) -> str:
    """``kind``, when it is one an entity filter may name."""
    if kind not in ENTITY_KINDS:
        raise InvalidInputError(
            f"unknown entity kind {kind!r}; expected one of {', '.join(ENTITY_KINDS)}"
        )
    return kind


def parse_entity_filter(text: str) -> tuple[str, str]:
    """An entity filter, ``KIND`` or ``KIND:NAME`` ("": every entity), as (kind, name)."""
    kind, _, name = text.partition(":")
    return (check_entity_kind(kind) if kind else kind), name


def event_types() -> dict[str, list[str]]:
    """Short event name -> the qualified names of every aggregate that has it."""
    types: dict[str, list[str]] = {}
    for aggregate in (Model, ModelVersion, Endpoint, Environment, DataAsset, Pipeline, Job,
                      BatchJob, ApiToken, TrackedArtifact, Monitor, GarbageCollector):  # fmt: skip
        for value in vars(aggregate).values():
            is_event = isinstance(value, type) and issubclass(value, LedgerAggregate.Event)
            if is_event and value.__name__ != "Event":
                types.setdefault(value.__name__, []).append(value.__qualname__)
    return types


def query_audit(db: LedgerDatabase, query: AuditQuery) -> Page:
    check_limit(query.limit)
    where, params = _audit_conditions(query)
    columns = ", ".join(f"a.{c}" for c in AUDIT.column_names)
    events, position = db.events_table
    rows = db.execute(
        f"SELECT {columns}, e.state FROM {AUDIT.name} a "
        f"JOIN {events} e ON e.{position} = a.position "
        f"WHERE {' AND '.join(where)} ORDER BY a.position LIMIT ?",
        (*params, query.limit + 1),
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = [audit_row(row) for row in rows]
    return Page(items, encode_token(rows[-1][0]) if more else "")


def audit_row(row: Row) -> dict[str, Any]:
    (position, aggregate_id, aggregate_version, kind, name, scope, event_type, actor, reason,
     correlation_id, causation_id, time_us, state) = row  # fmt: skip
    return {
        "position": position,
        "time": iso(time_us),
        "kind": kind,
        "name": name,
        "scope": scope,
        "event_type": event_type,
        "actor": actor,
        "reason": reason,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "aggregate_id": str(UUID(aggregate_id)),
        "aggregate_version": aggregate_version,
        "details": event_details(bytes(state)),
    }


def _audit_conditions(query: AuditQuery) -> tuple[list[str], list[Any]]:
    after = decode_token(query.page_token) if query.page_token else query.after_position
    where: list[str] = ["a.position > ?"]
    params: list[Any] = [after]
    if query.actor:
        where.append("a.actor = ?")
        params.append(query.actor)
    if query.event_type:
        qualified = _qualified_types(query.event_type)
        where.append(f"a.event_type IN ({', '.join('?' * len(qualified))})")
        params += qualified
    if query.name and not query.kind:
        raise InvalidInputError("an entity name needs its kind (e.g. model:iris, endpoint:shop)")
    if query.kind == "model" and query.name:
        where.append("a.kind IN ('model', 'model_version') AND a.scope = ?")
        params.append(query.name)
    elif query.kind:
        where.append("a.kind = ?")
        params.append(query.kind)
        if query.name:
            # every entity is in its own scope but model versions, in their model's
            scope = query.name.rpartition(":")[0] if query.kind == "model_version" else query.name
            where.append("a.scope = ? AND a.name = ?")
            params += [scope, query.name]
    if query.correlation_id:
        where.append("a.correlation_id = ?")
        params.append(query.correlation_id)
    if query.since is not None:
        where.append("a.time_us >= ?")
        params.append(to_microseconds(query.since))
    if query.until is not None:
        where.append("a.time_us < ?")
        params.append(to_microseconds(query.until))
    return where, params


def _qualified_types(event_type: str) -> list[str]:
    known = event_types()
    if "." in event_type:
        if not any(event_type in names for names in known.values()):
            raise InvalidInputError(f"unknown event type {event_type!r}")
        return [event_type]
    if event_type not in known:
        raise InvalidInputError(
            f"unknown event type {event_type!r}; known: {', '.join(sorted(known))}"
        )
    return known[event_type]
