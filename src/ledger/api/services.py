"""What the API's routes share: the write side, pooled read views, the follower that keeps
them up to date, the token cache, the NATS relay and the serving router."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ledger.api.serve_client import ServeClient
from ledger.api.token_cache import TokenCache
from ledger.api.view_follower import ViewFollower
from ledger.api.view_pool import ViewPool
from ledger.api.views_lag import note_views_lag
from ledger.bus.relay import RelayThread
from ledger.ledger import Ledger
from ledger.logging import get_logger
from ledger.settings import Settings
from projections.status import ViewStatus

T = TypeVar("T")
log = get_logger(__name__)
# The longest a request waits for the views to include this server's earlier writes (a
# catch-up of someone else's holds them); after that it reads them as they are, saying so.
VIEWS_WAIT_S = 5.0

if TYPE_CHECKING:
    from executors.serving.serve_endpoints import ServeEndpoints


class ApiServices:
    """The ledger application, its views, and the follower thread keeping them current.

    A write is answered once its command commits; the follower, woken by the append,
    brings the views up to it meanwhile. A request reading the views first waits until
    they include every write this server finished before it (:meth:`include_writes`),
    so a read after a write sees it (read-your-writes within one server), and
    concurrent writes never queue for a catch-up each. Writes by other processes reach
    the views through the follower: at once on PostgreSQL (LISTEN/NOTIFY), within
    ``poll_interval`` on SQLite.
    """

    def __init__(
        self, settings: Settings, *, poll_interval: float = 0.05, relay: bool = False
    ) -> None:
        self.settings = settings
        self.ledger = Ledger(settings)
        # The NATS relay, when this server runs it alongside (``ledger serve --relay``).
        self.relay = RelayThread(settings) if relay else None
        self._serve = ServeClient(settings)
        self.pool = ViewPool(settings, settings.api_view_connections)
        self.tokens = TokenCache(self.pool)
        self.follower = ViewFollower(
            settings, poll_interval=poll_interval, on_commit=self.tokens.views_changed
        )
        self._started = False
        # This server's writes that MLflow sources are read from (runs, uploads): see
        # ``note_source_write``.
        self.source_writes = 0
        self._source_lock = threading.Lock()

    def start(self) -> None:
        """Start following the log (and relaying it): the app's lifespan does, so that an
        app that never runs leaves no thread behind. Only the first call starts them."""
        if self._started:
            return
        self._started = True
        self.follower.start()
        if self.relay is not None:
            self.relay.start()

    @property
    def views_position(self) -> int:
        """How far the views have reached (the follower updates it)."""
        return self.follower.position

    def sync_views(self) -> int:
        """Apply every event appended so far to the views; the position they reached."""
        return self.follower.sync()

    @property
    def writes(self) -> int:
        """How many commands this server has finished."""
        return self.follower.writes

    def run_command(
        self,
        actor: str,
        correlation_id: str,
        command: Callable[[Ledger], T],
        *,
        command_id: str = "",
    ) -> tuple[T, int]:
        """Run a ledger command as ``actor``: its result, and the count of this server's
        writes the views must include to show it (see :meth:`include_writes`). With a
        ``command_id`` (the request's Idempotency-Key), a retry returns the first result."""
        with self.ledger.on_behalf_of(actor, correlation_id=correlation_id, command_id=command_id):
            result = command(self.ledger)
        return result, self.follower.note_write()

    def note_source_write(self, writes: int) -> None:
        """A tracking write (a run, a logged model, an upload) ended as this server's
        ``writes``-th: registering a version from an MLflow source waits for the views to
        include it (and not for the registry's own writes since, which it does not read)."""
        with self._source_lock:
            self.source_writes = max(self.source_writes, writes)

    def include_writes(self, writes: int) -> None:
        """Wait until the views include this server's first ``writes`` writes (at once when
        they do). If they cannot catch up (the store went away) or another catch-up holds
        them over ``VIEWS_WAIT_S``, the answer says they lag (``X-Ledger-Views-Lag``): a
        committed write is never reported as failed."""
        try:
            included = self.follower.include(writes, self._log_head, VIEWS_WAIT_S)
        except Exception as error:  # committed all the same: the follower catches up later
            log.warning("the views lag behind a write", error=str(error).split("\n")[0])
            included = False
        if not included:
            note_views_lag()

    def _log_head(self) -> int:
        with self.pool.views() as views:
            return views.db.head_position()

    def token_holder(self, token_hash: str) -> tuple[str, str] | None:
        """(name, role) of the live token with this hash, or None (see TokenCache)."""
        return self.tokens.holder(token_hash)

    def projection_status(self) -> list[ViewStatus]:
        """Each view's position and state."""
        return self.follower.status()

    def serve_endpoints(self) -> ServeEndpoints:
        """The online endpoints on Ray Serve; Ray joined on the first score."""
        return self._serve.get()

    def close(self) -> None:
        self._serve.close()
        if self.relay is not None:
            self.relay.stop()
        self.follower.close()
        self.pool.close()
        self.ledger.close()
