"""The webhooks over HTTP: the secret shown once on creation, reads, refusals as problems."""

from __future__ import annotations

from tests.conftest import Api
from tests.webhooks.receiver import receiving


def test_create_read_ping_and_refusals(api: Api) -> None:
    admin, reader = api.auth("admin"), api.auth("reader")
    with receiving() as receiver:
        body = {"name": "ci", "url": receiver.url, "events": ["ledger.model_version.*"],
                "filter": "data.tags.stage in [candidate]"}  # fmt: skip
        created = api.client.post("/webhooks", json=body, headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["secret"].startswith("whsec_")
        listed = api.client.get("/webhooks", headers=reader).json()
        assert [(w["name"], w["state"], "secret" in w) for w in listed] == [("ci", "active", False)]
        pinged = api.client.post("/webhooks/ci/test", headers=api.auth("deployer"))
        assert pinged.status_code == 200 and pinged.json()["outcome"] == "delivered"
        deliveries = api.client.get("/webhooks/ci/deliveries", headers=reader).json()
        assert [d["status_code"] for d in deliveries] == [200]
    bad_filter = api.client.post(
        "/webhooks", json=body | {"name": "x", "filter": "data.a =="}, headers=admin
    )
    assert bad_filter.status_code == 400 and "column" in bad_filter.json()["detail"]
    bad_url = api.client.post("/webhooks", json=body | {"name": "y", "url": "ftp://h"},
                              headers=admin)  # fmt: skip
    assert bad_url.status_code == 400 and "bad webhook URL" in bad_url.json()["detail"]
    missing = api.client.get("/webhooks/nope/deliveries", headers=reader)
    assert missing.status_code == 404
    refused = api.client.post("/webhooks", json=body | {"name": "z"}, headers=api.auth("deployer"))
    assert refused.status_code == 403
