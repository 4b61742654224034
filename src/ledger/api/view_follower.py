"""The thread that keeps this server's views up to date with the log."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ledger.settings import Settings
from ledger.storage.following import follow_log
from projections.base import Change
from projections.status import ViewStatus
from projections.updater import ViewUpdater

# Called with the changes each commit made to the views, and when it committed.
OnCommit = Callable[[list[Change], float], None]


class ViewFollower:
    """Applies the log to the views: on request (:meth:`sync`) and from a thread.

    Writes by other processes reach the views through the thread: at once on PostgreSQL
    (LISTEN/NOTIFY), within ``poll_interval`` on SQLite. ``lock`` is held while the
    views are being brought up to date.

    This server's own writes are counted (:meth:`note_write`), and so is how many of
    them the views are known to include (``covered``): a request that must see the
    writes answered before it waits for the catch-up under way, or runs one
    (:meth:`include`), instead of every write queueing for a catch-up of its own.
    """

    def __init__(
        self, settings: Settings, *, poll_interval: float, on_commit: OnCommit | None = None
    ) -> None:
        self._updater = ViewUpdater(settings, on_commit=on_commit)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._poll_interval = poll_interval
        self.position = 0  # how far the views have reached
        self.writes = 0  # commands this server finished: their events are in the log
        self.covered = 0  # how many of them the views include
        self._count_lock = threading.Lock()
        self.sync()
        self._thread = threading.Thread(target=self._follow, name="view-follower", daemon=True)

    def start(self) -> None:
        """Start the thread that follows the log (once)."""
        self._thread.start()

    def sync(self) -> int:
        """Apply every event appended so far to the views; the position they reached."""
        with self.lock:
            self._catch_up()
        return self.position

    def note_write(self) -> int:
        """Count a command this server finished; the count the views must reach to show it."""
        with self._count_lock:
            self.writes += 1
            return self.writes

    def include(self, writes: int, head: Callable[[], int], timeout: float) -> bool:
        """Bring the views to include this server's first ``writes`` writes: at once when
        they do; else, once the log's ``head()`` is known, after the catch-up under way,
        running one only if that one stopped short of it. False when another catch-up
        held the views for all of ``timeout``."""
        if self.covered >= writes:
            return True
        counted = self.writes
        target = head()  # past every write counted so far
        if self.position < target:
            if not self.lock.acquire(timeout=timeout):
                return False
            try:
                if self.position < target:
                    self._catch_up()
            finally:
                self.lock.release()
        self.covered = max(self.covered, counted)
        return True

    def _catch_up(self) -> None:
        writes = self.writes  # finished before the catch-up begins, so it reads their events
        self._updater.catch_up()
        self.position = min(self._updater.positions().values())
        self.covered = max(self.covered, writes)

    def status(self) -> list[ViewStatus]:
        """Each view's position and state."""
        with self.lock:
            return self._updater.status()

    def _follow(self) -> None:
        with self._updater.db.listener() as listener:
            wait_s = self._poll_interval if self._updater.db.kind == "sqlite" else 1.0
            follow_log(self._catch_up_if_behind, listener, self._stop, wait_s, what="api views")

    def _catch_up_if_behind(self) -> None:
        """The thread's catch-up, after each append (or poll): one query when the views
        hold the log's head already (a request that needed the append applied it)."""
        with self.lock:
            writes = self.writes
            if self._updater.head() > self.position:
                self._catch_up()
            self.covered = max(self.covered, writes)

    def close(self) -> None:
        """Stop the thread (if it runs) and close the views."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self.lock:
            self._updater.close()
