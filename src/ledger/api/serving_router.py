"""The online endpoints' router, created on the first score request."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ledger.ledger import Ledger
from ledger.settings import Settings

if TYPE_CHECKING:
    from executors.serving.router import EndpointRouter


class ServingRouter:
    """Holds the endpoints' router; creating it joins Ray, so only a score request does."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._router: EndpointRouter | None = None
        self._lock = threading.Lock()

    def get(self) -> EndpointRouter:
        """The router; created (and Ray joined) on the first call."""
        with self._lock:
            if self._router is None:
                from executors.serving.router import EndpointRouter  # imports ray

                self._router = EndpointRouter(Ledger(self._settings))
            return self._router

    def close(self) -> None:
        """Close the router and its ledger, if one was created."""
        if self._router is not None:
            self._router.close()
            self._router.ledger.close()
