"""`ledger webhook test`: a signed ``ledger.webhook.ping`` CloudEvent sent now, once, and
recorded in the delivery log (delivered, or dead: a ping is never retried)."""

from __future__ import annotations

import time

from executors.webhooks.message import ping_event, signed_request
from executors.webhooks.outbound import GuardedClient
from executors.webhooks.schedule import outcome_of
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.webhook_tables import (
    Attempt,
    create_webhook_tables,
    read_secret,
    record_attempts,
)


def send_ping(settings: Settings, webhook: dict[str, object]) -> Attempt:
    """Ping ``webhook`` (a row of the webhooks view); the recorded attempt."""
    name, fingerprint = str(webhook["name"]), str(webhook["secret_fingerprint"])
    db = LedgerDatabase(settings)
    client = GuardedClient(settings)
    try:
        secret = read_secret(db, name, fingerprint)
        event = ping_event(name, settings.effective_actor)
        body, headers = signed_request(event, secret, settings.event_source)
        answer = client.post(str(webhook["url"]), body, headers)
        outcome = "dead" if answer.refused else outcome_of(answer.status)
        if outcome == "retrying":
            outcome = "dead"
        error = answer.error or ("" if outcome == "delivered" else f"HTTP {answer.status}")
        attempt = Attempt(name, event.id, 1, answer.status, answer.latency_ms, answer.head,
                          error, outcome, int(time.time() * 1e6))  # fmt: skip
        create_webhook_tables(db)
        record_attempts(db, [attempt])
        return attempt
    finally:
        client.close()
        db.close()
