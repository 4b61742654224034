"""Applying the event log to read models in batches, exactly once.

A batch reads the next events, applies them in memory to every read model
that has not seen them, then writes the changed rows and the new positions in
one transaction. A crash anywhere loses the whole batch, so after a restart
nothing is applied twice and nothing is lost. Updaters in several processes
take turns: the write locks the position rows (SQLite: the database write lock)
and checks that nobody moved them since the batch was read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import NamedTuple

from ledger.logging import get_logger
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.decoding import EventDecoder
from ledger.storage.side_tables import VIEW_GENERATION, VIEW_POSITIONS
from ledger.storage.timestamps import to_microseconds
from projections import view_errors, view_schema
from projections.base import Change, ReadModel
from projections.catalog import all_read_models
from projections.entities import ENTITIES, EntityDirectory, Stored
from projections.isolation import PoisonIsolation
from projections.tables import HistoryWriter, Table
from projections.view_errors import PoisonedBulkLoad
from projections.writes import PendingWrites

log = get_logger(__name__)

OnCommit = Callable[[list[Change], float], None]
# Conflicts with other updaters before a batch is done holding the lock from the start.
OPTIMISTIC_TRIES = 3


class _Tracked(NamedTuple):
    """What an updater's in-memory state stands for: the generation and each position."""

    generation: int
    positions: dict[str, int]


class _Moved(Exception):
    """Another updater wrote the same projections since this one read them."""


class BatchApplier(PoisonIsolation):
    """Applies the event log to a set of read models, in batches, exactly once."""

    def __init__(
        self,
        settings: Settings,
        projections: Sequence[ReadModel] | None = None,
        *,
        batch_size: int = 5_000,
        on_commit: OnCommit | None = None,
        bulk_load: bool = False,
    ) -> None:
        self.projections = list(projections) if projections is not None else all_read_models()
        self.batch_size = batch_size
        self.on_commit = on_commit
        self.db = LedgerDatabase(settings)
        self._settings = settings
        self._decoder = EventDecoder()
        self._directory = EntityDirectory()
        self._history = HistoryWriter()
        # What the in-memory state of the projections stands for (None: load it first).
        self._loaded: _Tracked | None = None
        # Part of a bulk rebuild: the tables exist (unindexed), other updaters are waiting,
        # and rows of keyed tables are written at the end (``finish_bulk_load``).
        self._bulk_load = bulk_load
        if not bulk_load:
            self._create_tables()

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.projections]

    def close(self) -> None:
        self.db.close()

    def _tables(self) -> list[Table]:
        return [ENTITIES, *(table for p in self.projections for table in p.tables)]

    def _create_tables(self, *, indexed: bool = True) -> None:
        """Create what is missing; ``indexed=False`` leaves out indexes (for a bulk load)."""
        if view_schema.create_view_tables(
            self.db, self.projections, self._tables(), indexed=indexed
        ):
            self._forget()  # a changed view was reset

    def _apply_next_batch(self) -> int:
        """Apply the next batch of events; return how many events it read (0: caught up).

        Events are decoded and applied in memory first; only writing the result
        takes the lock, and it checks that no other updater moved the positions
        meanwhile (if one did, the batch is done again from the tables). After
        ``OPTIMISTIC_TRIES`` such conflicts the batch is done holding the lock from the
        start, so an updater that keeps losing the race (it reloads the tables each
        time, the winners do not) still makes progress. An event a view cannot store
        is recorded as that view's error and passed (``_isolate``).
        """
        attempt = 0
        while True:
            try:
                try:
                    return self._write_batch(self.batch_size, locked=attempt >= OPTIMISTIC_TRIES)
                except Exception as error:
                    if not view_errors.is_data_error(error):
                        raise
                    if self._bulk_load:  # its held-back rows are lost: start again, batch by batch
                        raise PoisonedBulkLoad(view_errors.describe(error)) from error
                    log.warning("a batch cannot be stored; finding the event",
                                error=view_errors.describe(error))  # fmt: skip
                return self._isolate(self.batch_size)
            except _Moved:
                attempt += 1
                log.debug("another updater moved the positions; applying the batch again",
                          attempt=attempt)  # fmt: skip

    def _write_batch(self, limit: int, only: str | None = None, *, locked: bool = False) -> int:
        """Read up to ``limit`` events, apply them (to projection ``only``, or to all) and
        commit the rows with the positions; return how many were read.

        Optimistic (the default): the positions are locked only to write, and _Moved is
        raised when another updater moved them since they were read. ``locked``: they are
        locked first, and the tables loaded, events applied and rows written under it."""
        try:
            if locked:
                with self.db.transaction():
                    self._lock_positions()
                    changes = self._apply_batch(limit, only, locked=True)
            else:
                changes = self._apply_batch(limit, only, locked=False)
        except BaseException:
            self._forget()
            raise
        if changes and self.on_commit is not None:
            self.on_commit(changes, time.time())
        return len(changes)

    def _apply_batch(self, limit: int, only: str | None, *, locked: bool) -> list[Change]:
        """The body of ``_write_batch``; inside its transaction when ``locked``."""
        state = self._loaded_state(in_transaction=locked)
        positions = state.positions if only is None else {only: state.positions[only]}
        history_mark = self._history.next_id
        changes = self._read_changes(self.db, min(positions.values()), limit)
        if not changes:
            return changes
        writes, advanced = self._apply(changes, positions)
        if locked:
            self._store(writes, advanced)
        else:
            with self.db.transaction():
                if (
                    self._lock_positions() != state
                    or self._history.written_up_to(self.db) > history_mark
                ):
                    raise _Moved
                self._store(writes, advanced)
        self._loaded = _Tracked(state.generation, state.positions | advanced)
        return changes

    def _loaded_state(self, *, in_transaction: bool) -> _Tracked:
        """The in-memory state, loaded from the tables first when it is not current."""
        if self._loaded is None or self._loaded != self._current_state():
            try:
                self._load(in_snapshot=not in_transaction)
            except Exception as error:  # the views' own rows: not an event's fault
                if view_errors.is_data_error(error):
                    raise RuntimeError(f"cannot load the views: {error}") from error
                raise
        assert self._loaded is not None
        return self._loaded

    def _store(self, writes: PendingWrites, advanced: dict[str, int]) -> None:
        writes.write_to(self.db)
        self._save_positions(advanced)
        if self._bulk_load:
            self._set_rebuild_heartbeat(time.time())

    def _pass_event(self, names: list[str], position: int, record: Callable[[], None]) -> None:
        """Move projections ``names`` past the event at ``position`` without applying it,
        running ``record`` in the same transaction."""
        state = self._current_state()
        with self.db.transaction():
            if self._lock_positions() != state:
                raise _Moved
            record()
            self._save_positions({name: position for name in names})
        self._forget()

    def _apply(
        self, changes: list[Change], positions: dict[str, int]
    ) -> tuple[PendingWrites, dict[str, int]]:
        """Apply ``changes`` in memory; return the writes that record them, and the
        positions the projections reach."""
        writes = PendingWrites()
        for projection in self.projections:
            if projection.name not in positions:
                continue
            done = positions[projection.name]
            for change in changes:
                if change.position > done:
                    projection.apply(change, self._history)
            projection.flush(writes, deferred=self._bulk_load)
        self._history.flush(writes, deferred=self._bulk_load)
        self._directory.flush(writes)
        last = changes[-1].position
        return writes, {name: max(done, last) for name, done in positions.items()}

    def _current_state(self, *, lock: bool = False) -> _Tracked:
        """The generation and tracked positions; ``lock``: until the transaction ends."""
        marks = ", ".join("?" * len(self.names))
        suffix = " FOR UPDATE" if lock and self.db.kind == "postgres" else ""
        # In name order: processes locking the same rows in one order cannot deadlock.
        rows = self.db.execute(
            f"SELECT name, position FROM {VIEW_POSITIONS} WHERE name IN ({marks}) "
            f"ORDER BY name{suffix}",
            self.names,
        )
        generation = self.db.execute(f"SELECT generation FROM {VIEW_GENERATION}{suffix}")[0][0]
        return _Tracked(int(generation), {name: int(position) for name, position in rows})

    def _rebuild_heartbeat(self) -> int:
        """When a bulk rebuild last reported progress (0: none is under way)."""
        return int(self.db.execute(f"SELECT rebuild_heartbeat_us FROM {VIEW_GENERATION}")[0][0])

    def _set_rebuild_heartbeat(self, now: float | None) -> None:
        heartbeat = int(now * 1e6) if now else 0
        self.db.execute(f"UPDATE {VIEW_GENERATION} SET rebuild_heartbeat_us = ?", (heartbeat,))

    def _lock_positions(self) -> _Tracked:
        return self._current_state(lock=True)

    def _save_positions(self, positions: dict[str, int]) -> None:
        now = to_microseconds(datetime.now(UTC))
        self.db.execute_many(
            f"UPDATE {VIEW_POSITIONS} SET position = ?, updated_at_us = ? WHERE name = ?",
            [(position, now, name) for name, position in positions.items()],
        )

    def _load(self, *, in_snapshot: bool = True) -> None:
        """Read the projections' tables into memory, with the positions they stand at:
        in a snapshot of their own, or (``in_snapshot=False``) in the transaction that
        holds the positions' lock."""
        self._forget()
        with self.db.snapshot() if in_snapshot else nullcontext():
            state = self._current_state()
            for projection in self.projections:
                projection.load(self.db)
            self._history.load(self.db)
        self._loaded = state

    def _forget(self) -> None:
        self._loaded = None
        for projection in self.projections:
            projection.forget()
        self._history.forget()
        self._directory.forget()

    def _read_changes(self, db: LedgerDatabase, after: int, limit: int = 0) -> list[Change]:
        decode = self._decoder.decode
        events: list[Stored] = [
            (position, aggregate_id, version, *decode(topic, state))
            for position, aggregate_id, version, topic, state in db.read_events(
                after, limit or self.batch_size
            )
        ]
        return self._directory.resolve(db, events)

    def head(self) -> int:
        return self.db.head_position()

    def positions(self) -> dict[str, int]:
        rows = self.db.execute(f"SELECT name, position FROM {VIEW_POSITIONS}")
        found = {name: int(position) for name, position in rows}
        return {name: found.get(name, 0) for name in self.names}

    def finish_bulk_load(self) -> None:
        """Write what a bulk load kept in memory (current rows, open history intervals)
        and tell other updaters the rebuild is over."""
        writes = PendingWrites()
        for projection in self.projections:
            projection.flush(writes, into_empty=True)
        self._history.flush(writes)
        with self.db.transaction():
            self._lock_positions()
            writes.write_to(self.db)
            self._set_rebuild_heartbeat(None)

    def _reset_positions(self, names: list[str]) -> None:
        view_schema.reset_positions(self.db, names)
        self._forget()
