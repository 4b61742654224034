"""An entity's history: its events, in a form fit to print or serialise."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain import LedgerAggregate
from ledger.storage.envelope import public_details


@dataclass(frozen=True)
class HistoryEntry:
    """One event of an entity's history."""

    timestamp: datetime
    entity: str
    version: int
    event: str
    actor: str
    reason: str
    correlation_id: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp.isoformat(),
            "entity": self.entity,
            "version": self.version,
            "event": self.event,
            "actor": self.actor,
            "reason": self.reason,
            "correlation_id": self.correlation_id,
            "details": self.details,
        }


def history_entries(
    events_of: Callable[[uuid.UUID], list[LedgerAggregate.Event]],
    aggregate_ids: dict[uuid.UUID, str],
) -> list[HistoryEntry]:
    """Every event of the given aggregates (id -> label), oldest first."""
    entries = [
        HistoryEntry(
            timestamp=event.timestamp,
            entity=label,
            version=event.originator_version,
            event=type(event).__name__,
            actor=event.actor,
            reason=event.reason,
            correlation_id=event.correlation_id,
            details=public_details(vars(event)),
        )
        for aggregate_id, label in aggregate_ids.items()
        for event in events_of(aggregate_id)
    ]
    entries.sort(key=lambda entry: entry.timestamp)
    return entries
