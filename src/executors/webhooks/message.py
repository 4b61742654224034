"""What a delivery sends: the event as a CloudEvents structured JSON body, signed per the
Standard Webhooks spec (webhook-id: the ledger event id, the same on every retry and
redelivery; webhook-timestamp; webhook-signature)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from standardwebhooks import Webhook as Signer

from ledger.bus.cloudevents import CONTENT_TYPE, to_cloudevent
from ledger.bus.events import BusEvent
from ledger.domain.webhook import webhook_id

USER_AGENT = "lifecycle-ledger-webhooks/1"
PING_SUBJECT = "ledger.webhook.ping"


def signed_request(
    event: BusEvent, secret: str, source: str, now: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a POST that delivers ``event``."""
    body = orjson.dumps(to_cloudevent(event, source))
    moment = now or datetime.now(UTC)
    headers = {
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
        "webhook-id": event.id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Signer(secret).sign(event.id, moment, body),
    }
    return body, headers


def ping_event(webhook: str, actor: str) -> BusEvent:
    """A ``ledger.webhook.ping`` event (`ledger webhook test`): not in the ledger's log."""
    now = datetime.now(UTC).isoformat()
    return BusEvent(
        position=0,
        id=f"ping-{uuid.uuid4()}",
        subject=PING_SUBJECT,
        type="Webhook.Ping",
        aggregate_id=str(webhook_id(webhook)),
        aggregate_version=0,
        time=now,
        actor=actor,
        reason="webhook test",
        correlation_id="",
        causation_id="",
        data={"webhook": webhook},
    )
