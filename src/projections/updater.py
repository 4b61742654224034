"""The view updater: keeps the read models exact, following the log or rebuilding them.

Batches are applied by ``BatchApplier`` (see ``projections.batches``). A full rebuild is
a bulk load: every view table is dropped and the log replayed into tables without
indexes, then indexed; on SQLite a large log is split with a second process
(``projections.bulk_load_process``). Other updaters wait meanwhile.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

from ledger.errors import InvalidInputError
from ledger.logging import get_logger
from ledger.storage.database import LedgerDatabase
from ledger.storage.following import follow_log
from projections import view_errors, view_schema
from projections.audit import AUDIT
from projections.base import ReadModel
from projections.batches import BatchApplier
from projections.catalog import all_read_models
from projections.status import ViewStatus, read_statuses
from projections.tables import HISTORY_TABLE, history_index_statements
from projections.view_errors import PoisonedBulkLoad

log = get_logger(__name__)

# A bulk rebuild reads bigger batches: fewer round trips and commits (~6 % faster).
BULK_BATCH_SIZE = 20_000
# A full rebuild of at least this many events on SQLite loads these read models in a
# second process (starting one costs about 0.4 s).
PARALLEL_FROM = 50_000
SEPARATE_PROCESS_MODELS = ("audit",)
# A bulk rebuild that reported no progress for this long has died: start it again.
REBUILD_STALE_S = 60
# The bulk load process's exit status when it met an event a view cannot store.
POISONED_EXIT = 3


class ViewUpdater(BatchApplier):
    """Brings read models up to the head of the log, follows it, rebuilds them."""

    def run_batch(self) -> int:
        """Apply the next batch of events; return how many events it read (0: caught up
        or waiting for a rebuild another process is doing)."""
        if not self._bulk_load and (heartbeat := self._rebuild_heartbeat()):
            if time.time() * 1e6 - heartbeat < REBUILD_STALE_S * 1e6:
                return 0  # another process is rebuilding every read model: wait for it
            log.warning("a rebuild stopped half way; starting it again")
            everything = ViewUpdater(self._settings, batch_size=self.batch_size)
            try:
                return everything.rebuild()
            finally:
                everything.close()
        return self._apply_next_batch()

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

    def follow(self, stop: threading.Event, poll_interval: float = 0.1) -> None:
        """Keep the views up to date until ``stop`` is set: LISTEN/NOTIFY on PostgreSQL
        (``poll_interval`` is then only a safety net), polling on SQLite. Store outages
        are waited out (see ``follow_log``)."""
        log.info("following the event log", projections=self.names, store=self.db.kind)
        with self.db.listener() as listener:
            wait_s = poll_interval if self.db.kind == "sqlite" else 1.0
            follow_log(self.catch_up, listener, stop, wait_s, what="projections")

    def status(self) -> list[ViewStatus]:
        return read_statuses(self.db, self.projections, self.positions())

    def named(self, names: Sequence[str]) -> list[ReadModel]:
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
        if {p.name for p in chosen} == {p.name for p in all_read_models()}:
            return self._rebuild_everything(on_progress)
        with self.db.transaction():
            self._lock_positions()
            for projection in chosen:
                view_schema.empty(self.db, projection)
            self._reset_positions([p.name for p in chosen])
        return self.catch_up(on_progress)

    def _rebuild_everything(self, on_progress: Callable[[int, int], None] | None) -> int:
        """A bulk load: drop every view table, replay the log into tables without indexes,
        then index. On SQLite a large log is split between this process and a second one
        (the audit view), one core each. Other updaters wait meanwhile; if this process dies
        half way, the next updater to notice (after ``REBUILD_STALE_S``) starts again."""
        with self.db.transaction():
            self._lock_positions()
            for table in self._tables():
                self.db.execute(f"DROP TABLE IF EXISTS {table.name}")
            self.db.execute(f"DROP TABLE IF EXISTS {HISTORY_TABLE}")
            self._reset_positions(self.names)
            self._set_rebuild_heartbeat(time.time())
        self._create_tables(indexed=False)
        # On PostgreSQL the server's own processes already keep the second core busy.
        split = (
            self.db.kind == "sqlite"
            and self.head() >= PARALLEL_FROM
            and set(SEPARATE_PROCESS_MODELS) < set(self.names)
        )
        helper = self._start_bulk_load_process() if split else None
        here = [p for p in all_read_models() if p.name in self.names]
        if helper is not None:
            here = [p for p in here if p.name not in SEPARATE_PROCESS_MODELS]
        batch = max(self.batch_size, BULK_BATCH_SIZE)
        loader = ViewUpdater(self._settings, here, batch_size=batch, bulk_load=True)
        poisoned: Exception | None = None
        try:
            count = loader.catch_up(on_progress)
            if helper is not None and helper.wait() == POISONED_EXIT:
                raise PoisonedBulkLoad("the rebuild's bulk load process met such an event")
            if helper is not None and helper.returncode != 0:
                raise RuntimeError(
                    f"the rebuild's bulk load process failed (exit {helper.returncode})"
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
                view_schema.empty(self.db, projection)
            self._reset_positions(self.names)
            self._set_rebuild_heartbeat(None)
        self._build_indexes()
        return self.catch_up(on_progress)

    def _start_bulk_load_process(self) -> subprocess.Popen[str]:
        """``python -m projections.bulk_load_process``: loads ``SEPARATE_PROCESS_MODELS``
        alongside this process."""
        helper = subprocess.Popen(
            [sys.executable, "-m", "projections.bulk_load_process",
             ",".join(SEPARATE_PROCESS_MODELS), str(max(self.batch_size, BULK_BATCH_SIZE))],
            stdin=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert helper.stdin is not None
        helper.stdin.write(self._settings.model_dump_json())
        helper.stdin.close()
        return helper

    def _build_indexes(self) -> None:
        """Index the bulk-loaded tables. On PostgreSQL the audit table (the largest) is
        indexed on a second connection meanwhile: two server processes, two cores."""
        if self.db.kind == "postgres" and AUDIT in self._tables():
            second = LedgerDatabase(self._settings)
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
