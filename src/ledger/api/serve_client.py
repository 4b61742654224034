"""The online endpoints on Ray Serve, joined on the first score request."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ledger.ledger import Ledger
from ledger.settings import Settings

if TYPE_CHECKING:
    from executors.serving.serve_endpoints import ServeEndpoints


class ServeClient:
    """Holds the endpoints' Serve client; creating it joins Ray (and starts Serve there),
    so only a score request does."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._endpoints: ServeEndpoints | None = None
        self._lock = threading.Lock()

    def get(self) -> ServeEndpoints:
        """The Serve client; created (and Ray joined) on the first call."""
        with self._lock:
            if self._endpoints is None:
                from executors.serving.serve_endpoints import ServeEndpoints  # imports ray

                self._endpoints = ServeEndpoints(Ledger(self._settings))
            return self._endpoints

    def close(self) -> None:
        """Close the Serve client's ledger, if one was created (the applications run on)."""
        if self._endpoints is not None:
            self._endpoints.close()
            self._endpoints.ledger.close()
