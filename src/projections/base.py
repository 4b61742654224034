"""What every read model shares: the decoded event it applies, and its tables."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from ledger.domain import LedgerAggregate
from ledger.storage.database import LedgerDatabase
from ledger.storage.rows import Row
from projections.tables import HistoryWriter, Key, Table, TableState
from projections.writes import RowWriter


@dataclass(frozen=True)
class Entity:
    """What an aggregate is, for readers: kind, name, and the name it belongs under.

    ``scope`` groups an entity with its parent: a model version ``iris:2`` is in
    scope ``iris``, so a model's audit trail includes its versions.
    """

    kind: str
    name: str
    scope: str


class Change(NamedTuple):  # a tuple: a rebuild makes one per event
    """One event of the log: where it is, what it did, to which entity, and when."""

    position: int
    aggregate_id: str
    aggregate_version: int
    event_type: str  # the event class, e.g. "ModelVersion.Registered"
    data: dict[str, Any]  # the event's fields (actor, reason... and its own)
    entity: Entity
    time_us: int


Handler = Callable[[Change], None]


def event_type(event_class: type[LedgerAggregate.Event]) -> str:
    """The ``event_type`` of changes made by ``event_class``."""
    return event_class.__qualname__


class ReadModel(ABC):
    """A read model: tables, and how each kind of event changes them.

    Subclasses list their ``tables`` and map event types to handlers in
    ``handlers()``. Keyed tables are kept in memory between batches (the updater
    reloads them whenever another process moved the tracked position), so
    applying an event costs no database round trip; ``flush`` writes what changed.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]

    def __init__(self) -> None:
        self.state = {table.name: TableState(table) for table in self.tables}
        self._handlers = {event_type(cls): handler for cls, handler in self.handlers().items()}
        self._history = HistoryWriter()
        self._position = 0  # of the change being applied

    @abstractmethod
    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        """Which events change this projection, and how."""

    def apply(self, change: Change, history: HistoryWriter) -> None:
        handler = self._handlers.get(change.event_type)
        if handler is not None:
            self._position = change.position
            self._history = history
            handler(change)

    # -- helpers for handlers --------------------------------------------------------

    def put(self, table: str, key: Key, row: Row) -> None:
        self.state[table].put(key, row, self._position, self._history)

    def delete(self, table: str, key: Key) -> None:
        self.state[table].delete(key, self._position, self._history)

    def get(self, table: str, key: Key) -> Row | None:
        return self.state[table].get(key)

    # -- lifecycle -------------------------------------------------------------------

    def load(self, db: LedgerDatabase) -> None:
        for state in self.state.values():
            state.load(db)

    def flush(self, out: RowWriter, *, deferred: bool = False, into_empty: bool = False) -> None:
        """Write what changed; ``deferred``: keep changed rows of keyed tables in memory;
        ``into_empty``: the tables are empty (the end of a bulk load)."""
        for state in self.state.values():
            state.flush(out, deferred=deferred, into_empty=into_empty)

    def forget(self) -> None:
        for state in self.state.values():
            state.forget()


class AppendOnlyReadModel(ReadModel):
    """A projection whose rows never change once written (audit, lineage).

    Nothing is kept in memory: rows collected during a batch are inserted at
    flush, and a row already present (same key) is left as it is.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[str, list[Row]] = {table.name: [] for table in self.tables}

    def add(self, table: str, row: Row) -> None:
        self._pending[table].append(row)

    def load(self, db: LedgerDatabase) -> None:
        self.forget()

    def flush(self, out: RowWriter, *, deferred: bool = False, into_empty: bool = False) -> None:
        for table in self.tables:
            rows = self._pending[table.name]
            out.write_rows(table.name, table.column_types, tuple(table.key), rows, replace=False)
            self._pending[table.name] = []

    def forget(self) -> None:
        for rows in self._pending.values():
            rows.clear()
