"""`POST /gc`: admins only; a dry run changes and records nothing, a run is an event."""

from __future__ import annotations

from typing import Any

from ledger.ledger import Ledger
from tests.conftest import Api
from tests.gc_support import blob_keys, orphan


def test_admins_collect_garbage(api: Api) -> None:
    with Ledger(api.settings) as ledger:
        lost = orphan(ledger, b"a refused upload")
    refused = api.client.post("/gc", json={"dry_run": True}, headers=api.auth("deployer"))
    assert refused.status_code == 403
    bad = api.client.post("/gc", json={"older_than": "a week"}, headers=api.auth("admin"))
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["detail"]

    head = api.head()
    dry: Any = api.client.post("/gc", json={"dry_run": True}, headers=api.auth("admin")).json()
    assert dry["dry_run"] and dry["kept_recent"] == {"count": 1, "bytes": 16}
    assert api.head() == head
    done = api.client.post(
        "/gc", json={"older_than": "PT1H", "reason": "nightly"}, headers=api.auth("admin")
    )
    assert done.status_code == 200 and done.json()["removed"]["blobs"]["count"] == 0
    assert api.head() == head + 2  # the collector's creation and its first run
    audit = api.client.get("/audit?event_type=Collected", headers=api.auth("admin")).json()
    (run,) = audit["items"]
    assert run["actor"] == "admin-bot" and run["reason"] == "nightly"
    assert run["details"]["kept_recent"] == {"count": 1, "bytes": 16}
    with Ledger(api.settings) as ledger:
        assert lost in blob_keys(ledger)
