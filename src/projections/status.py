"""Where each read model stands against the head of the log, for status tables and /health."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.storage.database import LedgerDatabase
from ledger.storage.decoding import EventDecoder
from ledger.storage.timestamps import from_microseconds
from projections import view_errors
from projections.base import ReadModel
from projections.view_errors import ViewError


@dataclass(frozen=True)
class ViewStatus:
    """Where one projection stands against the head of the log."""

    name: str
    description: str
    position: int
    head: int
    lag_seconds: float  # age of the oldest event it has not applied yet (0 when caught up)
    errors: int = 0  # events it could not store, and passed (see ``view_errors``)
    last_error: ViewError | None = None

    @property
    def lag_events(self) -> int:
        return self.head - self.position

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "description": self.description,
            "position": self.position,
            "head": self.head,
            "lag_events": self.lag_events,
            "lag_seconds": round(self.lag_seconds, 3),
            "errors": self.errors,
            "last_error": self.last_error.to_dict() if self.last_error else None,
        }


def read_statuses(
    db: LedgerDatabase, read_models: Sequence[ReadModel], positions: dict[str, int]
) -> list[ViewStatus]:
    """The status of each read model, at the positions it has committed."""
    head = db.head_position()
    now = datetime.now(UTC)
    decoder = EventDecoder()
    statuses = []
    errors = view_errors.summary(db)
    for model in read_models:
        position = positions[model.name]
        lag = 0.0
        if position < head:
            pending = db.read_events(position, 1)
            if pending:
                oldest = from_microseconds(decoder.decode(*pending[0][3:])[2])
                lag = max(0.0, (now - oldest).total_seconds())
        count, last = errors.get(model.name, (0, None))
        statuses.append(ViewStatus(model.name, model.description, position, head, lag, count, last))
    return statuses
