"""What the API's routes share: the write side, pooled read connections, and a follower
that keeps the views up to date."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ledger.application import Ledger
from ledger.logging import get_logger
from ledger.settings import Settings
from projections.runner import ProjectionRunner, ProjectionStatus
from projections.views import Views

T = TypeVar("T")
log = get_logger(__name__)


class ViewPool:
    """Read connections to the views, one per concurrent request (created on demand)."""

    def __init__(self, settings: Settings, size: int) -> None:
        self._settings = settings
        self._idle: queue.LifoQueue[Views] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._all: list[Views] = []
        self._lock = threading.Lock()

    @contextmanager
    def views(self) -> Iterator[Views]:
        with self._slots:
            try:
                views = self._idle.get_nowait()
            except queue.Empty:
                views = Views(ProjectionRunner(self._settings, []))
                with self._lock:
                    self._all.append(views)
            try:
                yield views
            finally:
                self._idle.put(views)

    def close(self) -> None:
        with self._lock:
            for views in self._all:
                views.close()
            self._all.clear()


class ApiServices:
    """The ledger application, its views, and the follower thread keeping them current.

    A write waits until the views include it, so a read after a write sees it
    (read-your-writes within one server). Writes by other processes reach the views
    through the follower: at once on PostgreSQL (LISTEN/NOTIFY), within
    ``poll_interval`` on SQLite.
    """

    def __init__(self, settings: Settings, *, poll_interval: float = 0.05) -> None:
        self.settings = settings
        self.ledger = Ledger(settings)
        self._runner = ProjectionRunner(settings)
        self._runner_lock = threading.Lock()
        self.pool = ViewPool(settings, settings.api_view_connections)
        self._stop = threading.Event()
        self._poll_interval = poll_interval
        self.views_position = 0  # how far the views have reached (the follower updates it)
        self.sync_views()
        self._follower = threading.Thread(target=self._follow, name="view-follower", daemon=True)
        self._follower.start()

    def sync_views(self) -> int:
        """Apply every event appended so far to the views; the position they reached."""
        with self._runner_lock:
            self._runner.catch_up()
            self.views_position = min(self._runner.positions().values())
        return self.views_position

    def run_command(self, actor: str, correlation_id: str, command: Callable[[Ledger], T]) -> T:
        """Run a ledger command as ``actor``, then bring the views up to it."""
        with self.ledger.on_behalf_of(actor, correlation_id=correlation_id):
            result = command(self.ledger)
        self.sync_views()
        return result

    def projection_status(self) -> list[ProjectionStatus]:
        with self._runner_lock:
            return self._runner.status()

    def _follow(self) -> None:
        with self._runner.db.listener() as listener:
            while not self._stop.is_set():
                try:
                    self.sync_views()
                except Exception:  # keep following: the store may come back
                    log.exception("the view follower failed; retrying")
                    self._stop.wait(1.0)
                listener.wait(self._poll_interval if self._runner.db.kind == "sqlite" else 1.0)

    def close(self) -> None:
        self._stop.set()
        self._follower.join(timeout=5)
        self.pool.close()
        with self._runner_lock:
            self._runner.close()
        self.ledger.close()
