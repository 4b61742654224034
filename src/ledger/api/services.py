"""What the API's routes share: the write side, pooled read connections, and a follower
that keeps the views up to date."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from ledger.api.views_lag import note_views_lag
from ledger.bus.relay import RelayThread
from ledger.domain import ApiToken
from ledger.ledger import Ledger
from ledger.logging import get_logger
from ledger.settings import Settings
from projections.base import Change
from projections.following import follow_log
from projections.runner import ProjectionRunner, ProjectionStatus
from projections.tokens import token_holder
from projections.views import Views

T = TypeVar("T")
MAX_CACHED_TOKENS = 10_000
TOKEN_CACHE_S = 1.0
TOKEN_EVENTS = f"{ApiToken.__name__}."
log = get_logger(__name__)

if TYPE_CHECKING:
    from executors.serving.router import EndpointRouter


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
            self._shared = Views(ProjectionRunner(settings, []))
            self._all.append(self._shared)

    @contextmanager
    def views(self) -> Iterator[Views]:
        if self._shared is not None:
            yield self._shared
            return
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

    def __init__(
        self, settings: Settings, *, poll_interval: float = 0.05, relay: bool = False
    ) -> None:
        self.settings = settings
        self.ledger = Ledger(settings)
        # The NATS relay, when this server runs it alongside (``ledger serve --relay``).
        self.relay = RelayThread(settings) if relay else None
        self._router: EndpointRouter | None = None
        self._router_lock = threading.Lock()
        self._runner = ProjectionRunner(settings, on_commit=self._views_changed)
        # Token hash -> (when read, (name, role) or None for no live token). Entries last
        # TOKEN_CACHE_S, and all go when this server's follower applies a token event.
        self._tokens: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self._tokens_generation = 0
        self._runner_lock = threading.Lock()
        self.pool = ViewPool(settings, settings.api_view_connections)
        self._stop = threading.Event()
        self._poll_interval = poll_interval
        self.views_position = 0  # how far the views have reached (the follower updates it)
        self.sync_views()
        self._follower = threading.Thread(target=self._follow, name="view-follower", daemon=True)

    def start(self) -> None:
        """Start following the log (and relaying it): the app's lifespan does, so that an
        app that never runs leaves no thread behind. Only the first call starts them."""
        if self._follower.ident is not None:
            return
        self._follower.start()
        if self.relay is not None:
            self.relay.start()

    def sync_views(self) -> int:
        """Apply every event appended so far to the views; the position they reached."""
        with self._runner_lock:
            self._runner.catch_up()
            self.views_position = min(self._runner.positions().values())
        return self.views_position

    def run_command(
        self,
        actor: str,
        correlation_id: str,
        command: Callable[[Ledger], T],
        *,
        command_id: str = "",
    ) -> T:
        """Run a ledger command as ``actor``, then bring the views up to it. With a
        ``command_id`` (the request's Idempotency-Key), a retry returns the first result.
        A committed command is never reported as failed: if the views cannot catch up
        (the store went away), the answer says they lag (``X-Ledger-Views-Lag``)."""
        with self.ledger.on_behalf_of(actor, correlation_id=correlation_id, command_id=command_id):
            result = command(self.ledger)
        try:
            self.sync_views()
        except Exception as error:  # committed all the same: the follower catches up later
            log.warning("a write committed but the views lag", error=str(error).split("\n")[0])
            note_views_lag()
        return result

    def token_holder(self, token_hash: str) -> tuple[str, str] | None:
        """(name, role) of the live token with this hash, or None.

        A revoke applied to the views by this server's follower takes effect at once; one
        applied by another process (a CLI read, another server) within TOKEN_CACHE_S.
        """
        now = time.monotonic()
        cached = self._tokens.get(token_hash)
        if cached is not None and now - cached[0] < TOKEN_CACHE_S:
            return cached[1]
        generation = self._tokens_generation
        with self.pool.views() as views:
            holder = token_holder(views.db, token_hash)
        if generation == self._tokens_generation:  # no token event since the read
            if len(self._tokens) >= MAX_CACHED_TOKENS:
                self._tokens.clear()
            self._tokens[token_hash] = (now, holder)
        return holder

    def _views_changed(self, changes: list[Change], committed_at: float) -> None:
        if any(change.event_type.startswith(TOKEN_EVENTS) for change in changes):
            self._tokens_generation += 1
            self._tokens.clear()

    def projection_status(self) -> list[ProjectionStatus]:
        with self._runner_lock:
            return self._runner.status()

    def _follow(self) -> None:
        with self._runner.db.listener() as listener:
            wait_s = self._poll_interval if self._runner.db.kind == "sqlite" else 1.0
            follow_log(self.sync_views, listener, self._stop, wait_s, what="api views")

    def router(self) -> EndpointRouter:
        """The online endpoints' router; created (and Ray joined) on the first score."""
        with self._router_lock:
            if self._router is None:
                from executors.serving.router import EndpointRouter  # imports ray

                self._router = EndpointRouter(Ledger(self.settings))
            return self._router

    def close(self) -> None:
        if self._router is not None:
            self._router.close()
            self._router.ledger.close()
        if self.relay is not None:
            self.relay.stop()
        self._stop.set()
        if self._follower.is_alive():
            self._follower.join(timeout=5)
        self.pool.close()
        with self._runner_lock:
            self._runner.close()
        self.ledger.close()
