"""Events as CloudEvents 1.0: the envelope, the NATS payload setting, GET /events."""

from __future__ import annotations

from typing import Any

import orjson

from ledger.bus import BusEvent, Delivery, open_bus
from ledger.bus.cloudevents import CONTENT_TYPE, event_fields, to_cloudevent
from ledger.bus.relay import Relay
from ledger.ledger import Ledger
from tests.bus_support import (
    consumer_settled,
    in_background,
    wait_for,
    with_jetstream,
)
from tests.conftest import Api, StoreFactory, running_api

REQUIRED = {"specversion", "id", "source", "type"}


def _registered_version(ledger: Ledger, tmp_path: Any) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"weights")
    ledger.models.register_version("iris", model, tags={"stage": "candidate"})


def test_an_event_renders_as_a_cloudevent_carrying_the_ledger_envelope() -> None:
    envelope = {
        "position": 7,
        "id": "0b5e2f7e-0000-4000-8000-000000000001/2",
        "subject": "ledger.model_version.registered",
        "type": "ModelVersion.Registered",
        "aggregate_id": "0b5e2f7e-0000-4000-8000-000000000001",
        "aggregate_version": 2,
        "time": "2026-12-07T03:00:00.000000Z",
        "actor": "ci",
        "reason": "nightly",
        "correlation_id": "c1",
        "causation_id": "",
        "data": {"model_name": "iris", "version": 2, "spec": {"tags": {"stage": "candidate"}}},
    }
    cloudevent = to_cloudevent(envelope, "https://ledger.example.com")
    assert cloudevent.keys() >= REQUIRED
    assert cloudevent["specversion"] == "1.0"
    assert cloudevent["id"] == envelope["id"]  # stable: the same on every redelivery
    assert cloudevent["type"] == "ledger.model_version.registered"
    assert cloudevent["subject"] == "model_version/0b5e2f7e-0000-4000-8000-000000000001"
    assert cloudevent["ledgerposition"] == 7
    assert cloudevent["data"] == envelope
    event = BusEvent.from_envelope(envelope)
    assert to_cloudevent(event, "s") == to_cloudevent(envelope, "s")
    fields = event_fields(event)
    assert fields["data"]["tags"] == {"stage": "candidate"}  # lifted out of the spec
    assert fields["data"]["model_name"] == "iris"
    assert fields["type"] == "ledger.model_version.registered"
    assert CONTENT_TYPE == "application/cloudevents+json"


def test_nats_consumers_read_cloudevents_published_by_the_relay(
    nats_store: StoreFactory, tmp_path: Any
) -> None:
    settings = nats_store.settings(
        nats_event_format="cloudevents", event_source="https://ledger.test"
    )
    with Ledger(settings) as ledger:
        _registered_version(ledger, tmp_path)
    got: list[BusEvent] = []

    def keep(delivery: Delivery) -> None:
        got.append(delivery.event)

    bus = open_bus(settings)
    bus.subscribe("cloudevents-reader", keep, subjects=["ledger.model_version.registered"])
    with in_background(Relay(settings).run, bus.run):
        wait_for(lambda: got, 30, "the registration")
        wait_for(lambda: consumer_settled(settings, "cloudevents-reader"), 30, "acknowledged")
    assert got[0].data["model_name"] == "iris"

    async def first_payload(js: Any) -> bytes:
        message = await js.get_msg(settings.nats_stream, 1)
        return bytes(message.data)

    payload = orjson.loads(with_jetstream(settings.nats_url, first_payload))
    assert payload["specversion"] == "1.0"
    assert payload["source"] == "https://ledger.test"
    assert payload["data"]["position"] == 1


def test_the_event_feed_answers_in_cloudevents_when_asked(
    store: StoreFactory, tmp_path: Any
) -> None:
    settings = store.settings(event_source="urn:ledger:test")
    with Ledger(settings) as ledger:
        _registered_version(ledger, tmp_path)
    with running_api(settings) as api:
        plain = _get(api, "/events")
        cloud = _get(api, "/events?format=cloudevents")
        bad = api.client.get("/events?format=xml", headers=api.auth("reader"))
    assert [c["data"] for c in cloud["items"]] == plain["items"]
    assert {c["source"] for c in cloud["items"]} == {"urn:ledger:test"}
    assert cloud["last_position"] == plain["last_position"]
    assert bad.status_code == 422


def _get(api: Api, path: str) -> dict[str, Any]:
    answer = api.client.get(path, headers=api.auth("reader"))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body
