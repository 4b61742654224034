"""Webhook deliveries end to end: a real receiver, the dispatcher on the in-process bus
(SQLite, PostgreSQL) and on NATS JetStream (PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

import orjson
import psycopg
import pytest
from standardwebhooks import Webhook as Verifier

from executors.webhooks.dispatcher import WebhookDispatcher, consumer_name
from ledger.domain import EventMeta, Model, acting
from ledger.domain.webhook import secret_fingerprint, webhook_id
from ledger.errors import InvalidInputError
from ledger.ledger import Ledger
from ledger.settings import Settings
from projections.views import Views
from tests.bus_support import wait_for
from tests.conftest import StoreFactory
from tests.webhooks.conftest import SCALE, consumer_ready, dispatching, log_of, outcomes
from tests.webhooks.receiver import receiving


def register(settings: Settings, name: str, **tags: str) -> str:
    """Register model ``name`` (tagged); the id of its Registered event."""
    with Ledger(settings) as ledger, acting(EventMeta("tester", "webhook test", "wh")):
        model = Model.register(name)
        for key, value in tags.items():
            model.set_tag(key, value)
        ledger.save(model)
    return f"{model.id}/1"


def test_retried_on_the_schedule_then_delivered_once(bus_store: StoreFactory) -> None:
    settings = bus_store.settings()
    with receiving() as receiver, Ledger(settings) as ledger:
        receiver.answer(500, 500, 200)
        secret = ledger.webhooks.create(
            "ops", url=receiver.url, events=["ledger.model.registered"]
        ).secret
        with dispatching(settings, "ops"):
            event_id = register(settings, "iris")
            wait_for(lambda: "delivered" in outcomes(settings, "ops"), 30, "the delivery")
    assert receiver.ids() == [event_id] * 3  # the same webhook-id on every attempt
    rows = list(reversed(log_of(settings, "ops")))
    assert [(r["attempt"], r["status_code"], r["outcome"]) for r in rows] == [
        (1, 500, "retrying"), (2, 500, "retrying"), (3, 200, "delivered"),
    ]  # fmt: skip
    first, second, third = (r.at for r in receiver.requests)
    assert 10 * SCALE * 0.8 <= second - first < 10 * SCALE * 1.2 + 1.0
    assert 30 * SCALE * 0.8 <= third - second < 30 * SCALE * 1.2 + 1.0
    request = receiver.requests[-1]
    cloudevent = Verifier(secret).verify(request.body, request.headers)
    assert cloudevent["id"] == event_id and cloudevent["type"] == "ledger.model.registered"
    assert request.headers["content-type"] == "application/cloudevents+json"


def test_gone_pauses_and_a_bad_request_is_a_dead_letter_until_redelivered(
    bus_store: StoreFactory,
) -> None:
    settings = bus_store.settings()
    with receiving() as gone, receiving() as strict, Ledger(settings) as ledger:
        gone.answer(410)
        strict.answer(400)
        for name, receiver in (("gone", gone), ("strict", strict)):
            ledger.webhooks.create(name, url=receiver.url, events=["ledger.model.registered"])
        with dispatching(settings, "gone", "strict"):
            event_id = register(settings, "iris")
            wait_for(lambda: outcomes(settings, "gone") == ["gone"], 30, "the 410")
            wait_for(lambda: outcomes(settings, "strict") == ["dead"], 30, "the 400")
            wait_for(lambda: ledger.webhooks.get("gone").paused, 30, "the pause")
            assert ledger.webhooks.get("gone").pause_cause == "gone"
            assert len(strict.requests) == 1  # 400: never retried
            dead = log_of(settings, "strict", dead=True)
            assert [d["event_id"] for d in dead] == [event_id]
            strict.answer(200)
            ledger.webhooks.request_redelivery("strict", event_id)
            wait_for(lambda: "delivered" in outcomes(settings, "strict"), 30, "the redelivery")
        paused = [e for e in ledger.events_of(ledger.webhooks.get("gone").id)
                  if type(e).__qualname__.endswith("Paused")]  # fmt: skip
    assert paused[0].actor == "webhook-delivery"
    assert outcomes(settings, "strict") == ["dead", "delivered"]
    assert log_of(settings, "strict", dead=True) == []
    assert strict.ids() == [event_id, event_id]  # the same webhook-id again
    assert [r["attempt"] for r in reversed(log_of(settings, "strict"))] == [1, 2]


def test_the_filter_selects_events(bus_store: StoreFactory) -> None:
    settings = bus_store.settings()
    with receiving() as receiver, Ledger(settings) as ledger:
        ledger.webhooks.create(
            "candidates",
            url=receiver.url,
            events=["ledger.model.>"],
            filter="type == 'ledger.model.tagged' and data.value in [candidate]",
        )
        with dispatching(settings, "candidates"):
            register(settings, "a", stage="candidate")
            register(settings, "b", stage="production")
            wait_for(lambda: len(outcomes(settings, "candidates")) >= 1, 30, "a delivery")
            register(settings, "c", stage="candidate")
            wait_for(lambda: len(outcomes(settings, "candidates")) >= 2, 30, "the second")
    bodies = [orjson.loads(r.body) for r in receiver.requests]
    assert [b["data"]["data"]["value"] for b in bodies] == ["candidate", "candidate"]
    assert all(b["type"] == "ledger.model.tagged" for b in bodies)


def test_a_deleted_webhook_gets_nothing_more_and_loses_its_consumer(
    bus_store: StoreFactory,
) -> None:
    settings = bus_store.settings()
    consumer = consumer_name(str(webhook_id("short-lived")))
    with receiving() as receiver, Ledger(settings) as ledger:
        ledger.webhooks.create("short-lived", url=receiver.url, events=["ledger.model.*"])
        with dispatching(settings, "short-lived") as dispatcher:
            register(settings, "a")
            wait_for(lambda: len(receiver.requests) == 1, 30, "the first delivery")
            ledger.webhooks.delete("short-lived")
            wait_for(lambda: dispatcher.active == (), 30, "the dispatcher to let go")
            register(settings, "b")
            if settings.nats_url:
                wait_for(lambda: not consumer_ready(settings, consumer), 30, "the deletion")
            time.sleep(0.5)
    assert len(receiver.requests) == 1


def test_events_before_the_dispatcher_starts_are_delivered(bus_store: StoreFactory) -> None:
    settings = bus_store.settings()
    with receiving() as receiver, Ledger(settings) as ledger:
        register(settings, "before")  # before the webhook: never delivered
        ledger.webhooks.create("late", url=receiver.url, events=["ledger.model.registered"])
        expected = [register(settings, name) for name in ("a", "b", "c")]
        with dispatching(settings, "late"):
            wait_for(lambda: len(outcomes(settings, "late")) >= 3, 30, "the deliveries")
            time.sleep(0.3)
    assert sorted(receiver.ids()) == sorted(expected)
    assert outcomes(settings, "late") == ["delivered"] * 3


def test_a_redelivery_the_subscription_would_not_send_is_refused(store: StoreFactory) -> None:
    settings = store.settings()
    with Ledger(settings) as ledger:
        ledger.webhooks.create(
            "picky", url="https://example.com/hook", events=["ledger.model.tagged"],
            filter="data.value == 'candidate'",
        )  # fmt: skip
        registered = register(settings, "a", stage="production")
        tagged = registered.replace("/1", "/2")
        for event_id, why in ((registered, "do not include"), (tagged, "does not select")):
            with pytest.raises(InvalidInputError, match=why):
                ledger.webhooks.request_redelivery("picky", event_id)


def test_the_dispatcher_skips_a_redelivery_its_subscription_no_longer_selects(
    bus_store: StoreFactory,
) -> None:
    settings = bus_store.settings()
    with receiving() as receiver, Ledger(settings) as ledger:
        ledger.webhooks.create("moved", url=receiver.url, events=["ledger.model.registered"])
        registered = register(settings, "a")
        ledger.webhooks.request_redelivery("moved", registered)
        ledger.webhooks.update("moved", events=["ledger.model.tagged"])
        tagged = register(settings, "b", stage="candidate").replace("/1", "/2")
        ledger.webhooks.request_redelivery("moved", tagged)
        with dispatching(settings, "moved"):
            wait_for(lambda: len(receiver.requests) >= 2, 30, "the tagged event twice")
            time.sleep(0.3)
    assert receiver.ids() == [tagged, tagged]


def test_a_store_outage_while_watching_the_view_is_waited_out(
    store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = store.settings()
    read = WebhookDispatcher._webhooks
    calls: list[int] = []

    def flaky(self: WebhookDispatcher, views: Views) -> list[dict[str, Any]]:
        calls.append(1)
        if len(calls) in (2, 3):  # the watch poll, then the first restart
            raise psycopg.OperationalError("the database system is shutting down")
        return read(self, views)

    monkeypatch.setattr(WebhookDispatcher, "_webhooks", flaky)
    with receiving() as receiver, Ledger(settings) as ledger:
        ledger.webhooks.create("steady", url=receiver.url, events=["ledger.model.registered"])
        with dispatching(settings, "steady"):
            wait_for(lambda: len(calls) > 4, 30, "the dispatcher to go on")
            event_id = register(settings, "after")
            wait_for(lambda: receiver.ids() == [event_id], 30, "the delivery")


def test_a_replayed_create_returns_the_secret_that_signs(store: StoreFactory) -> None:
    settings = store.settings()
    with Ledger(settings) as ledger:
        created = []
        for _ in range(2):  # an Idempotency-Key retry: the same command id
            with ledger.on_behalf_of("ci-bot", command_id="create-hooks-1"):
                created.append(
                    ledger.webhooks.create("once", url="https://example.com/h", events=["ledger.>"])
                )
        first, again = created
        assert again.secret == first.secret
        assert secret_fingerprint(again.secret) == ledger.webhooks.get("once").secret_fingerprint
