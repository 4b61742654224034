"""The views that requests read, pooled."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from projections.views import Views


class ViewPool:
    """The views for requests.

    On PostgreSQL one ``Views`` serves every request: its statements borrow connections
    from the process's ``psycopg_pool`` pool (``api_view_connections`` and a few more),
    which replaces broken connections and reconnects by itself after a restart. On
    SQLite each concurrent request gets a connection of its own (created on demand).
    """

    def __init__(self, settings: Settings, size: int) -> None:
        self._settings = settings
        self._idle: queue.LifoQueue[Views] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._all: list[Views] = []
        self._lock = threading.Lock()
        self._shared: Views | None = None
        if settings.store_location.kind == "postgres":
            self._shared = Views(LedgerDatabase(settings))
            self._all.append(self._shared)

    @contextmanager
    def views(self) -> Iterator[Views]:
        """Views for one request, back in the pool when the block ends."""
        if self._shared is not None:
            yield self._shared
            return
        with self._slots:
            try:
                views = self._idle.get_nowait()
            except queue.Empty:
                views = Views(LedgerDatabase(self._settings))
                with self._lock:
                    self._all.append(views)
            try:
                yield views
            finally:
                self._idle.put(views)

    def close(self) -> None:
        """Close every connection the pool opened."""
        with self._lock:
            for views in self._all:
                views.close()
            self._all.clear()
