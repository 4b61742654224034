"""The worker's part of serving: endpoint events on the bus, applied to Ray Serve.

A deployment, a traffic or mirror change, an undeploy or an endpoint's deletion reaches
the worker on the bus (``ledger.endpoint.>``), and the endpoint's Serve application is
brought to the ledger's state at once, so the first request after a change does not
pay for starting replicas. Between changes it counts the running replicas every
``WATCH_S`` and records a deployment's health again when they changed (autoscaling).
Serve itself is joined on the first event of an online endpoint, and only by a worker on
a shared Ray cluster (``worker_serves``). Score requests through the API apply the same
state on demand (``ServeEndpoints``), so serving also works with no worker running.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING

from ledger.bus import Delivery
from ledger.domain.endpoint import Endpoint
from ledger.ledger import Ledger
from ledger.logging import get_logger
from ledger.settings import Settings

if TYPE_CHECKING:
    from executors.serving.serve_endpoints import ServeEndpoints

CONSUMER = "ledger-serving"
SUBJECTS = ("ledger.endpoint.>",)
WATCH_S = 2.0  # how often running replicas are counted (autoscaling, replaced replicas)
log = get_logger(__name__)


def worker_serves(settings: Settings) -> bool:
    """Whether a worker applies endpoints to Serve: as set, else when it joins a shared Ray
    cluster (a worker's private local Ray serves where no API server can reach)."""
    if settings.serve_from_worker is not None:
        return settings.serve_from_worker
    return settings.shared_ray


class ServingReconciler:
    """Applies each changed online endpoint to Ray Serve, on a thread of its own (a bus
    handler must return quickly: an apply waits for replicas to start)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._serve: ServeEndpoints | None = None
        self._pending: set[uuid.UUID] = set()
        self._changed = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="serving", daemon=True)
        self._thread.start()

    def on_event(self, delivery: Delivery) -> None:
        """Note the event's endpoint; the thread brings it to its current state."""
        with self._changed:
            self._pending.add(uuid.UUID(delivery.event.aggregate_id))
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                if not self._pending and not self._stopping:
                    self._changed.wait(WATCH_S)
                if self._stopping:
                    return
                endpoint_id = self._pending.pop() if self._pending else None
            try:
                if endpoint_id is not None:
                    self.reconcile(endpoint_id)
                elif self._serve is not None:
                    self._serve.record_replica_counts()
            except Exception:  # the next event of that endpoint, or a score, applies it
                log.exception("applying endpoints to Ray Serve failed", endpoint=str(endpoint_id))

    def reconcile(self, endpoint_id: uuid.UUID) -> None:
        """Bring one endpoint's Serve application to the ledger's state of it."""
        endpoint = self.ledger.find(Endpoint, endpoint_id)
        if endpoint is not None and endpoint.kind == "online":
            self.serve().reconcile(endpoint)

    def serve(self) -> ServeEndpoints:
        """The Serve client, created (Ray joined, Serve started) on first use."""
        if self._serve is None:
            from executors.serving.serve_endpoints import ServeEndpoints  # imports ray

            self._serve = ServeEndpoints(self.ledger)
            log.info("serving online endpoints on Ray Serve")
        return self._serve

    def stop(self) -> None:
        """Stop the thread (after the apply under way, if any)."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self._thread.join(timeout=120)
