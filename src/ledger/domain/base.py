"""What every ledger aggregate and event shares: identity and command metadata.

Every event carries who acted (``actor``), why (``reason``) and how it relates to
other events (``correlation_id``, ``causation_id``). The application sets these
once per command with :func:`acting`; aggregates stamp them on each event they
trigger, so domain methods never pass them around.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Self

from eventsourcing.domain import Aggregate, CanInitAggregate, CanMutateAggregate

# Fixed namespace: aggregate ids derive from names, so "model:iris" is always the same id.
LEDGER_NAMESPACE = uuid.UUID("5b0c7a4e-1f53-4f1e-9d3c-2f8a6e4b7c10")


def aggregate_id(kind: str, *parts: object) -> uuid.UUID:
    """A stable id for a named entity, e.g. ``aggregate_id("model", "iris")``."""
    return uuid.uuid5(LEDGER_NAMESPACE, ":".join([kind, *map(str, parts)]))


@dataclass(frozen=True)
class EventMeta:
    """Who issued a command, why, and which request it belongs to."""

    actor: str
    reason: str = ""
    correlation_id: str = ""
    causation_id: str = ""

    def as_event_fields(self) -> dict[str, str]:
        return {
            "actor": self.actor,
            "reason": self.reason,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }


_current_meta: ContextVar[EventMeta | None] = ContextVar("ledger_event_meta", default=None)


@contextmanager
def acting(meta: EventMeta) -> Iterator[EventMeta]:
    """Within this block, every triggered event carries ``meta``."""
    token = _current_meta.set(meta)
    try:
        yield meta
    finally:
        _current_meta.reset(token)


def current_meta() -> EventMeta:
    meta = _current_meta.get()
    if meta is None:
        raise RuntimeError("events can only be triggered inside `acting(meta)`")
    return meta


class LedgerAggregate(Aggregate):
    """Base aggregate: stamps command metadata on every event it triggers."""

    class Event(Aggregate.Event):
        actor: str
        reason: str
        correlation_id: str
        causation_id: str

    class Created(Event, Aggregate.Created):
        pass

    def trigger_event(
        self, event_class: type[CanMutateAggregate[uuid.UUID]], **kwargs: Any
    ) -> None:
        super().trigger_event(event_class, **current_meta().as_event_fields(), **kwargs)

    @classmethod
    def _create(
        cls,
        event_class: type[CanInitAggregate[uuid.UUID]],
        *,
        id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> Self:
        return super()._create(event_class, id=id, **current_meta().as_event_fields(), **kwargs)
