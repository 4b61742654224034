"""Signatures verify with the Standard Webhooks reference verifier (the `standardwebhooks`
package); a tampered body, a wrong secret and an old or future timestamp are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from executors.webhooks.message import signed_request
from ledger.bus.events import BusEvent
from ledger.commands.webhooks import check_secret, new_secret
from ledger.errors import InvalidInputError

EVENT = BusEvent(
    position=7, id="2998b6fd-32ad-5e25-a2e0-d0bd22ca5bda/1", subject="ledger.model.registered",
    type="Model.Registered", aggregate_id="2998b6fd-32ad-5e25-a2e0-d0bd22ca5bda",
    aggregate_version=1, time="2026-12-07T00:00:00+00:00", actor="ci", reason="",
    correlation_id="c", causation_id="", data={"name": "iris"},
)  # fmt: skip


def test_a_signed_delivery_verifies_and_tampering_is_refused() -> None:
    secret = new_secret()
    body, headers = signed_request(EVENT, secret, "urn:ledger:test")
    assert headers["webhook-id"] == EVENT.id
    assert headers["webhook-signature"].startswith("v1,")
    assert Verifier(secret).verify(body, headers)["data"]["data"] == {"name": "iris"}
    tampered = orjson.dumps(orjson.loads(body) | {"type": "ledger.model.deleted"})
    for bad_body, bad_secret, bad_headers in (
        (tampered, secret, headers),
        (body, new_secret(), headers),
        (body, secret, headers | {"webhook-id": "other/1"}),
    ):
        with pytest.raises(WebhookVerificationError):
            Verifier(bad_secret).verify(bad_body, bad_headers)
    for skew in (timedelta(minutes=-10), timedelta(minutes=10)):
        old_body, old = signed_request(EVENT, secret, "urn:ledger:test", datetime.now(UTC) + skew)
        with pytest.raises(WebhookVerificationError, match=r"too old|too new"):
            Verifier(secret).verify(old_body, old)


def test_secrets_are_whsec_and_24_random_bytes_at_least() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and secret != new_secret()
    assert check_secret(secret) == secret
    for bad in ("whsec_c2hvcnQ=", "nope", "whsec_!!!!", "whsec_" + "A" * 20):
        with pytest.raises(InvalidInputError, match="whsec_"):
            check_secret(bad)
