"""The projection runner: follows the event log and keeps the views exact.

A batch reads the next events, applies them in memory to every projection
that has not seen them, then writes the changed rows and the new positions in
one transaction. A crash anywhere loses the whole batch, so after a restart
nothing is applied twice and nothing is lost. Runners in several processes
take turns: the write locks the tracking rows (SQLite: the database write lock)
and checks that nobody moved them since the batch was read.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from ledger.errors import ConcurrencyError, InvalidInputError
from ledger.logging import get_logger
from ledger.settings import Settings
from projections import view_errors
from projections.audit import AUDIT, AuditProjection
from projections.base import Change, Projection
from projections.database import PendingWrites, ViewDatabase, created_name
from projections.decoding import EventDecoder
from projections.endpoints import EndpointsProjection
from projections.entities import ENTITIES, EntityDirectory, Stored
from projections.following import follow_log
from projections.isolation import PoisonIsolation
from projections.jobs import JobsProjection
from projections.lineage import LineageProjection
from projections.registry import RegistryProjection
from projections.tables import (
    HISTORY_TABLE,
    HistoryWriter,
    Table,
    create_history_table,
    history_index_statements,
)
from projections.timestamps import from_microseconds, to_microseconds
from projections.tokens import TokensProjection
from projections.view_errors import PoisonedBulkLoad, ViewError
from projections.view_schema import GENERATION, SCHEMAS, TRACKING, schema_ready

log = get_logger(__name__)

OnCommit = Callable[[list[Change], float], None]


MAX_CONFLICTS = 100
# A bulk rebuild reads bigger batches: fewer round trips and commits (~6 % faster).
BULK_BATCH_SIZE = 20_000
# A full rebuild of at least this many events on SQLite runs these projections in a helper
# process (starting one costs about 0.4 s).
PARALLEL_FROM = 50_000
HELPER_PROJECTIONS = ("audit",)
# A bulk rebuild that reported no progress for this long has died: start it again.
REBUILD_STALE_S = 60
# The helper process's exit status when it met an event a view cannot store.
POISONED_EXIT = 3


class _Tracked(NamedTuple):
    """What a runner's in-memory state stands for: the generation and each position."""

    generation: int
    positions: dict[str, int]


class _Moved(Exception):
    """Another runner wrote the same projections since this one read them."""


def schema_fingerprint(projection: Projection) -> str:
    """A digest of the projection's table definitions: it changes when they do."""
    statements = [
        statement
        for table in projection.tables
        for statement in (table.create_table_statement(), *table.index_statements())
    ]
    return hashlib.sha256("\n".join(statements).encode()).hexdigest()[:16]


def all_projections() -> list[Projection]:
    """One instance of every projection the ledger has."""
    return [
        RegistryProjection(),
        EndpointsProjection(),
        LineageProjection(),
        AuditProjection(),
        TokensProjection(),
        JobsProjection(),
    ]


@dataclass(frozen=True)
class ProjectionStatus:
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


class ProjectionRunner(PoisonIsolation):
    """Applies the event log to a set of projections, in batches, exactly once."""

    def __init__(
        self,
        settings: Settings,
        projections: Sequence[Projection] | None = None,
        *,
        batch_size: int = 5_000,
        on_commit: OnCommit | None = None,
        bulk_load: bool = False,
    ) -> None:
        self.projections = list(projections) if projections is not None else all_projections()
        self.batch_size = batch_size
        self.on_commit = on_commit
        self.db = ViewDatabase(settings)
        self._settings = settings
        self._decoder = EventDecoder()
        self._directory = EntityDirectory()
        self._history = HistoryWriter()
        # What the in-memory state of the projections stands for (None: load it first).
        self._loaded: _Tracked | None = None
        # Part of a bulk rebuild: the tables exist (unindexed), other runners are waiting,
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
        """Create what is missing; ``indexed=False`` leaves out indexes (for a bulk load).
        Nothing is locked when nothing is missing (see ``ViewDatabase.schema_change``)."""
        statements = [
            statement
            for table in self._tables()
            for statement in (table.create_table_statement(), *table.index_statements())
            if indexed or "INDEX" not in statement
        ] + (history_index_statements() if indexed else [])
        fingerprints = {p.name: schema_fingerprint(p) for p in self.projections}
        relations = [HISTORY_TABLE, *(created_name(s) for s in statements)]
        if schema_ready(self.db, relations, fingerprints):
            return
        with self.db.schema_change():
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {TRACKING} (name TEXT PRIMARY KEY, "
                "position BIGINT NOT NULL, updated_at_us BIGINT NOT NULL)"
            )
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {GENERATION} (generation BIGINT NOT NULL, "
                "rebuild_heartbeat_us BIGINT NOT NULL)"
            )
            if not self.db.execute(f"SELECT 1 FROM {GENERATION}"):
                self.db.execute(f"INSERT INTO {GENERATION} VALUES (0, 0)")
            create_history_table(self.db, indexed=indexed)
            self._drop_changed_views()
            for table in self._tables():
                self.db.execute(table.create_table_statement())
                if indexed:
                    for statement in table.index_statements():
                        self.db.execute(statement)
            self.db.execute_many(
                f"INSERT INTO {TRACKING} (name, position, updated_at_us) VALUES (?, 0, 0) "
                "ON CONFLICT (name) DO NOTHING",
                [(name,) for name in self.names],
            )

    def _drop_changed_views(self) -> None:
        """Drop the tables of projections whose table definitions changed since they were
        built (a new release), so that they are built again from the log."""
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMAS} "
            "(name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)"
        )
        stored: dict[str, str] = dict(self.db.execute(f"SELECT name, fingerprint FROM {SCHEMAS}"))
        built: dict[str, int] = dict(self.db.execute(f"SELECT name, position FROM {TRACKING}"))
        changed = [
            projection
            for projection in self.projections
            if stored.get(projection.name, "") != schema_fingerprint(projection)
            and (projection.name in stored or built.get(projection.name, 0) > 0)
        ]
        for projection in changed:
            log.warning("a view changed its tables; rebuilding it", projection=projection.name)
            for table in projection.tables:
                self.db.execute(f"DELETE FROM {HISTORY_TABLE} WHERE tbl = ?", (table.name,))
                self.db.execute(f"DROP TABLE IF EXISTS {table.name}")
        if changed:
            self._reset_positions([p.name for p in changed])
        self.db.execute_many(
            f"INSERT INTO {SCHEMAS} (name, fingerprint) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint",
            [(p.name, schema_fingerprint(p)) for p in self.projections],
        )

    # -- applying events -----------------------------------------------------------------

    def run_batch(self) -> int:
        """Apply the next batch of events; return how many events it read (0: caught up).

        Events are decoded and applied in memory first; only writing the result
        takes the lock, and it checks that no other runner moved the positions
        meanwhile (if one did, the batch is done again from the tables). An event a
        view cannot store is recorded as that view's error and passed (``_isolate``).
        """
        if not self._bulk_load and (heartbeat := self._rebuild_heartbeat()):
            if time.time() * 1e6 - heartbeat < REBUILD_STALE_S * 1e6:
                return 0  # another process is rebuilding every projection: wait for it
            log.warning("a rebuild stopped half way; starting it again")
            everything = ProjectionRunner(self._settings, batch_size=self.batch_size)
            try:
                return everything.rebuild()
            finally:
                everything.close()
        for _ in range(MAX_CONFLICTS):
            try:
                try:
                    return self._write_batch(self.batch_size)
                except Exception as error:
                    if not view_errors.is_data_error(error):
                        raise
                    if self._bulk_load:  # its held-back rows are lost: start again, batch by batch
                        raise PoisonedBulkLoad(view_errors.describe(error)) from error
                    log.warning("a batch cannot be stored; finding the event",
                                error=view_errors.describe(error))  # fmt: skip
                return self._isolate(self.batch_size)
            except _Moved:
                log.debug("another runner moved the positions; applying the batch again")
        raise ConcurrencyError(f"projections: gave up after {MAX_CONFLICTS} conflicting runners")

    def _write_batch(self, limit: int, only: str | None = None) -> int:
        """Read up to ``limit`` events, apply them (to projection ``only``, or to all) and
        commit the rows with the positions; return how many were read. Raises _Moved when
        another runner moved the positions since they were read."""
        if self._loaded is None or self._loaded != self._current_state():
            try:
                self._load()
            except Exception as error:  # the views' own rows: not an event's fault
                if view_errors.is_data_error(error):
                    raise RuntimeError(f"cannot load the views: {error}") from error
                raise
        assert self._loaded is not None
        state = self._loaded
        positions = state.positions if only is None else {only: state.positions[only]}
        history_mark = self._history.next_id
        try:
            changes = self._read_changes(self.db, min(positions.values()), limit)
            if not changes:
                return 0
            writes, advanced = self._apply(changes, positions)
            with self.db.transaction():
                if (
                    self._lock_positions() != state
                    or self._history.written_up_to(self.db) > history_mark
                ):
                    raise _Moved
                writes.write_to(self.db)
                self._save_positions(advanced)
                if self._bulk_load:
                    self._set_rebuild_heartbeat(time.time())
        except BaseException:
            self._forget()
            raise
        self._loaded = _Tracked(state.generation, state.positions | advanced)
        if self.on_commit is not None:
            self.on_commit(changes, time.time())
        return len(changes)

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

    def catch_up(self, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Apply every event up to the head of the log; return how many were read."""
        total = self.head() - min(self.positions().values()) if on_progress else 0
        done = 0
        while count := self.run_batch():
            done += count
            if on_progress:
                on_progress(done, max(total, done))
        self._directory.trim()
        return done

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

    def follow(self, stop: threading.Event, poll_interval: float = 0.1) -> None:
        """Keep the views up to date until ``stop`` is set: LISTEN/NOTIFY on PostgreSQL
        (``poll_interval`` is then only a safety net), polling on SQLite. Store outages
        are waited out (see ``follow_log``)."""
        log.info("following the event log", projections=self.names, store=self.db.kind)
        with self.db.listener() as listener:
            wait_s = poll_interval if self.db.kind == "sqlite" else 1.0
            follow_log(self.catch_up, listener, stop, wait_s, what="projections")

    def _current_state(self, *, lock: bool = False) -> _Tracked:
        """The generation and tracked positions; ``lock``: until the transaction ends."""
        marks = ", ".join("?" * len(self.names))
        suffix = " FOR UPDATE" if lock and self.db.kind == "postgres" else ""
        rows = self.db.execute(
            f"SELECT name, position FROM {TRACKING} WHERE name IN ({marks}){suffix}", self.names
        )
        generation = self.db.execute(f"SELECT generation FROM {GENERATION}{suffix}")[0][0]
        return _Tracked(int(generation), {name: int(position) for name, position in rows})

    def _rebuild_heartbeat(self) -> int:
        """When a bulk rebuild last reported progress (0: none is under way)."""
        return int(self.db.execute(f"SELECT rebuild_heartbeat_us FROM {GENERATION}")[0][0])

    def _set_rebuild_heartbeat(self, now: float | None) -> None:
        heartbeat = int(now * 1e6) if now else 0
        self.db.execute(f"UPDATE {GENERATION} SET rebuild_heartbeat_us = ?", (heartbeat,))

    def _lock_positions(self) -> _Tracked:
        return self._current_state(lock=True)

    def _save_positions(self, positions: dict[str, int]) -> None:
        now = to_microseconds(datetime.now(UTC))
        self.db.execute_many(
            f"UPDATE {TRACKING} SET position = ?, updated_at_us = ? WHERE name = ?",
            [(position, now, name) for name, position in positions.items()],
        )

    def _load(self) -> None:
        """Read the projections' tables into memory, with the positions they stand at."""
        self._forget()
        with self.db.snapshot():
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

    def _read_changes(self, db: ViewDatabase, after: int, limit: int = 0) -> list[Change]:
        decode = self._decoder.decode
        events: list[Stored] = [
            (position, aggregate_id, version, *decode(topic, state))
            for position, aggregate_id, version, topic, state in db.read_events(
                after, limit or self.batch_size
            )
        ]
        return self._directory.resolve(db, events)

    # -- status and rebuild -------------------------------------------------------------

    def head(self) -> int:
        return self.db.head_position()

    def positions(self) -> dict[str, int]:
        rows = self.db.execute(f"SELECT name, position FROM {TRACKING}")
        found = {name: int(position) for name, position in rows}
        return {name: found.get(name, 0) for name in self.names}

    def status(self) -> list[ProjectionStatus]:
        head = self.head()
        now = datetime.now(UTC)
        statuses = []
        errors = view_errors.summary(self.db)
        for projection in self.projections:
            position = self.positions()[projection.name]
            lag = 0.0
            if position < head:
                pending = self.db.read_events(position, 1)
                if pending:
                    oldest = from_microseconds(self._decoder.decode(*pending[0][3:])[2])
                    lag = max(0.0, (now - oldest).total_seconds())
            count, last = errors.get(projection.name, (0, None))
            statuses.append(
                ProjectionStatus(
                    projection.name, projection.description, position, head, lag, count, last
                )
            )
        return statuses

    def named(self, names: Sequence[str]) -> list[Projection]:
        """The projections with these names (all of them when none are given)."""
        unknown = sorted(set(names) - set(self.names))
        if unknown:
            raise InvalidInputError(
                f"unknown projection {', '.join(unknown)}; expected one of {', '.join(self.names)}"
            )
        return [p for p in self.projections if not names or p.name in names]

    def rebuild(
        self,
        names: Sequence[str] = (),
        on_progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Empty the named projections (all when none are named) and replay the log into them."""
        chosen = self.named(names)
        log.info("rebuilding projections", projections=[p.name for p in chosen])
        if {p.name for p in chosen} == {p.name for p in all_projections()}:
            return self._rebuild_everything(on_progress)
        with self.db.transaction():
            self._lock_positions()
            for projection in chosen:
                self._empty(projection)
            self._reset_positions([p.name for p in chosen])
        return self.catch_up(on_progress)

    def _rebuild_everything(self, on_progress: Callable[[int, int], None] | None) -> int:
        """A bulk load: drop every view table, replay the log into tables without indexes,
        then index. On SQLite a large log is split between this process and a helper process
        (the audit view), one core each. Other runners wait meanwhile; if this process dies
        half way, the next runner to notice (after ``REBUILD_STALE_S``) starts again."""
        with self.db.transaction():
            self._lock_positions()
            for table in self._tables():
                self.db.execute(f"DROP TABLE IF EXISTS {table.name}")
            self.db.execute(f"DROP TABLE IF EXISTS {HISTORY_TABLE}")
            self._reset_positions(self.names)
            self._set_rebuild_heartbeat(time.time())
        self._create_tables(indexed=False)
        # On PostgreSQL the server's own processes already keep the second core busy.
        helped = (
            self.db.kind == "sqlite"
            and self.head() >= PARALLEL_FROM
            and set(HELPER_PROJECTIONS) < set(self.names)
        )
        helper = self._start_helper() if helped else None
        here = [p for p in all_projections() if p.name in self.names]
        if helper is not None:
            here = [p for p in here if p.name not in HELPER_PROJECTIONS]
        batch = max(self.batch_size, BULK_BATCH_SIZE)
        loader = ProjectionRunner(self._settings, here, batch_size=batch, bulk_load=True)
        poisoned: Exception | None = None
        try:
            count = loader.catch_up(on_progress)
            if helper is not None and helper.wait() == POISONED_EXIT:
                raise PoisonedBulkLoad("the rebuild's helper process met such an event")
            if helper is not None and helper.returncode != 0:
                raise RuntimeError(
                    f"the rebuild's helper process failed (exit {helper.returncode})"
                )
            loader.finish_bulk_load()
        except Exception as error:
            if not isinstance(error, PoisonedBulkLoad) and not view_errors.is_data_error(error):
                raise
            poisoned = error
        finally:
            loader.close()
            if helper is not None and helper.poll() is None:
                helper.kill()
                helper.wait()
        if poisoned is not None:
            return self._rebuild_batch_by_batch(on_progress, poisoned)
        self._forget()
        self._build_indexes()
        return count

    def _rebuild_batch_by_batch(
        self, on_progress: Callable[[int, int], None] | None, error: Exception
    ) -> int:
        """The bulk load met an event a view cannot store, and lost the rows it held back:
        empty the views again and replay the log in ordinary batches, which pass it."""
        log.warning("a rebuild met an event a view cannot store; rebuilding batch by batch",
                    error=view_errors.describe(error))  # fmt: skip
        with self.db.transaction():
            self._lock_positions()
            for projection in self.projections:
                self._empty(projection)
            self._reset_positions(self.names)
            self._set_rebuild_heartbeat(None)
        self._build_indexes()
        return self.catch_up(on_progress)

    def _start_helper(self) -> subprocess.Popen[str]:
        """``python -m projections.helper``: catches up ``HELPER_PROJECTIONS`` alongside."""
        helper = subprocess.Popen(
            [sys.executable, "-m", "projections.helper", ",".join(HELPER_PROJECTIONS),
             str(max(self.batch_size, BULK_BATCH_SIZE))],
            stdin=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert helper.stdin is not None
        helper.stdin.write(self._settings.model_dump_json())
        helper.stdin.close()
        return helper

    def finish_bulk_load(self) -> None:
        """Write what a bulk load kept in memory (current rows, open history intervals)
        and tell other runners the rebuild is over."""
        writes = PendingWrites()
        for projection in self.projections:
            projection.flush(writes, into_empty=True)
        self._history.flush(writes)
        with self.db.transaction():
            self._lock_positions()
            writes.write_to(self.db)
            self._set_rebuild_heartbeat(None)

    def _build_indexes(self) -> None:
        """Index the bulk-loaded tables. On PostgreSQL the audit table (the largest) is
        indexed on a second connection meanwhile: two server processes, two cores."""
        if self.db.kind == "postgres" and AUDIT in self._tables():
            second = ViewDatabase(self._settings)
            worker = threading.Thread(
                target=lambda: [second.execute(s) for s in AUDIT.index_statements()],
                name="index-audit",
            )
            worker.start()
            try:
                with self.db.transaction():
                    for statement in history_index_statements() + [
                        s for t in self._tables() if t is not AUDIT for s in t.index_statements()
                    ]:
                        self.db.execute(statement)
            finally:
                worker.join()
                second.close()
        self._create_tables(indexed=True)  # whatever is still missing

    def _reset_positions(self, names: list[str]) -> None:
        self.db.execute_many(
            f"UPDATE {TRACKING} SET position = 0 WHERE name = ?", [(name,) for name in names]
        )
        view_errors.forget(self.db, names)  # they meet those events again
        self.db.execute(f"UPDATE {GENERATION} SET generation = generation + 1")
        self._forget()

    def _empty(self, projection: Projection) -> None:
        historized = [t.name for t in projection.tables if t.historized]
        if historized:
            marks = ", ".join("?" * len(historized))
            self.db.execute(f"DELETE FROM {HISTORY_TABLE} WHERE tbl IN ({marks})", historized)
        for table in projection.tables:
            self.db.execute(f"DELETE FROM {table.name}")
