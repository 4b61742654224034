"""Publishing the ledger's log: the NATS JetStream relay, and the event bus consumers use
(on NATS, or in process for the embedded default)."""

from __future__ import annotations

from ledger.bus.events import EVERYTHING, BusEvent, subject_matches
from ledger.bus.handled import Delivery, Handler, Outcome, RetryLater
from ledger.bus.subscriptions import EventBus, Subscription
from ledger.settings import Settings


def open_bus(settings: Settings) -> EventBus:
    """The bus the settings choose: NATS JetStream when LEDGER_NATS_URL is set, else the
    in-process bus."""
    if settings.nats_url:
        from ledger.bus.nats_bus import NatsBus

        return NatsBus(settings)
    from ledger.bus.local import LocalBus

    return LocalBus(settings)


__all__ = [
    "EVERYTHING",
    "BusEvent",
    "Delivery",
    "EventBus",
    "Handler",
    "Outcome",
    "RetryLater",
    "Subscription",
    "open_bus",
    "subject_matches",
]
