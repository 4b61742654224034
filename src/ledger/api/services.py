"""What the API's routes share: the write side, pooled read views, the follower that keeps
them up to date, the token cache, the NATS relay and the serving router."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ledger.api.serving_router import ServingRouter
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

if TYPE_CHECKING:
    from executors.serving.router import EndpointRouter


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
        self._router = ServingRouter(settings)
        self.pool = ViewPool(settings, settings.api_view_connections)
        self.tokens = TokenCache(self.pool)
        self.follower = ViewFollower(
            settings, poll_interval=poll_interval, on_commit=self.tokens.views_changed
        )
        self._started = False

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
        """(name, role) of the live token with this hash, or None (see TokenCache)."""
        return self.tokens.holder(token_hash)

    def projection_status(self) -> list[ViewStatus]:
        """Each view's position and state."""
        return self.follower.status()

    def router(self) -> EndpointRouter:
        """The online endpoints' router; created (and Ray joined) on the first score."""
        return self._router.get()

    def close(self) -> None:
        self._router.close()
        if self.relay is not None:
            self.relay.stop()
        self.follower.close()
        self.pool.close()
        self.ledger.close()
