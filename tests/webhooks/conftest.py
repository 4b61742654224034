"""Fixtures of the webhook tests: a store with its bus (in-process on SQLite and PostgreSQL,
NATS JetStream on PostgreSQL), and the dispatcher running in the background."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from executors.webhooks.dispatcher import WebhookDispatcher, consumer_name
from ledger.bus.consumers import consumer_exists
from ledger.bus.relay import Relay
from ledger.domain.webhook import webhook_id
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.webhook_tables import list_deliveries
from tests.bus_support import NATS_URL, delete_stream, in_background, wait_for
from tests.conftest import StoreFactory

SCALE = 0.01  # the retry schedule in hundredths: 0.1 s, 0.3 s, 0.6 s...
BUSES = [("sqlite", False), ("postgres", False), ("postgres", True)]


@pytest.fixture(params=BUSES, ids=["sqlite-local", "postgres-local", "postgres-nats"])
def bus_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A fresh store; on NATS, with a stream and subjects of the test's own."""
    kind, on_nats = request.param
    store = StoreFactory(kind, tmp_path)
    overrides: dict[str, Any] = {"webhook_retry_scale": SCALE}
    if on_nats:
        suffix = uuid.uuid4().hex[:10]
        overrides |= {
            "nats_url": NATS_URL,
            "nats_stream": f"TEST_{suffix}",
            "nats_subject_prefix": f"test_{suffix}",
            "nats_ack_wait_s": 5.0,
        }
    settings_of, env_of = store.settings, store.env
    store.settings = lambda **more: settings_of(**(overrides | more))  # type: ignore[method-assign]
    store.env = lambda: (
        env_of()
        | {  # type: ignore[method-assign]
            f"LEDGER_{k.upper()}": str(v) for k, v in overrides.items()
        }
    )
    yield store
    if on_nats:
        delete_stream(store.settings())
    store.drop()


def consumer_ready(settings: Settings, consumer: str) -> bool:
    """The durable consumer exists (it starts at the head of the log)."""
    return consumer_exists(settings, consumer)


@contextmanager
def dispatching(settings: Settings, *webhooks: str) -> Iterator[WebhookDispatcher]:
    """The dispatcher (and on NATS the relay) in the background, its consumers of the
    given webhooks created."""
    dispatcher = WebhookDispatcher(settings, watch_interval_s=0.2)
    mains = [dispatcher.run, Relay(settings).run] if settings.nats_url else [dispatcher.run]
    with in_background(*mains):
        for name in webhooks:
            consumer = consumer_name(str(webhook_id(name)))
            wait_for(lambda c=consumer: consumer_ready(settings, c), 30, f"consumer of {name}")
        yield dispatcher


def log_of(settings: Settings, name: str, **filters: Any) -> list[dict[str, Any]]:
    db = LedgerDatabase(settings)
    try:
        return list_deliveries(db, name, limit=1000, **filters)
    finally:
        db.close()


def outcomes(settings: Settings, name: str) -> list[str]:
    """The webhook's delivery log's outcomes, oldest first."""
    return [row["outcome"] for row in reversed(log_of(settings, name))]
