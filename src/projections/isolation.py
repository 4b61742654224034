"""Finding the one event a view cannot store, so that the views go on without it.

When writing a batch fails on the data (see ``view_errors.is_data_error``), the updater
halves the batch until the failing event is the only one left, committing what comes
before it; then it applies that event to each view on its own. A view that still
fails records the event as its error and passes it (its position moves on in the same
transaction); the other views apply it as usual.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from ledger.logging import get_logger
from ledger.storage.database import LedgerDatabase
from ledger.storage.side_tables import create_side_tables
from projections import view_errors

log = get_logger(__name__)


class PoisonIsolation(ABC):
    """The updater's part that isolates an event its views cannot store."""

    db: LedgerDatabase

    @abstractmethod
    def _write_batch(self, limit: int, only: str | None = None) -> int:
        """Apply and commit up to ``limit`` events (to projection ``only``, or to all)."""

    @abstractmethod
    def positions(self) -> dict[str, int]:
        """Each projection's committed position."""

    @abstractmethod
    def _pass_event(self, names: list[str], position: int, record: Callable[[], None]) -> None:
        """Move ``names`` to ``position`` in one transaction (checking that nobody moved
        them) and run ``record`` there; raise when another updater moved them."""

    def _isolate(self, limit: int) -> int:
        """Some event among the next ``limit`` cannot be stored: commit the events before
        it (halving the batch), then pass it. Return how many events were read."""
        done = 0
        while limit > 1:
            half = limit // 2
            try:
                count = self._write_batch(half)
            except Exception as error:
                if not view_errors.is_data_error(error):
                    raise
                limit = half
                continue
            done += count
            if count < half:  # the log ended: the failing event is gone (a rebuild reset it)
                return done
            limit -= half
        return done + self._apply_apart()

    def _apply_apart(self) -> int:
        """Apply the next event to each projection on its own; record it as the error of
        those that cannot store it. Return 1 (0 when there is no next event)."""
        positions = self.positions()
        after = min(positions.values())
        rows = self.db.read_events(after, 1)
        if not rows:
            return 0
        position, topic = int(rows[0][0]), str(rows[0][3])
        event_type = topic.partition(":")[2] or topic
        for name in [name for name, done in positions.items() if done < position]:
            try:
                self._write_batch(1, only=name)
            except Exception as error:
                if not view_errors.is_data_error(error):
                    raise
                detail = view_errors.describe(error)
                log.error(
                    "a view cannot store an event; passing it",
                    projection=name,
                    position=position,
                    event_type=event_type,
                    error=detail,
                )
                create_side_tables(self.db)
                self._record_error(name, position, event_type, detail)
        return 1

    def _record_error(self, name: str, position: int, event_type: str, detail: str) -> None:
        def record() -> None:
            view_errors.record(self.db, [name], position, event_type, detail)

        self._pass_event([name], position, record)
