"""Rules and approvals over HTTP."""

from __future__ import annotations

from ledger.ledger import Ledger
from tests.conftest import Api, wait_for
from tests.rules.support import EXAMPLE_RULES

RULE = {
    "name": "tag-it",
    "on": "ledger.model.tagged",
    "do": {"set_tag": {"model": "m", "key": "seen", "value": "yes"}},
}


def test_rules_over_http(api: Api) -> None:
    deployer = api.auth("deployer")
    created = api.client.post("/rules", headers=deployer, json={"yaml": EXAMPLE_RULES.read_text()})
    assert created.status_code == 200, created.text
    assert created.json()["created"] == ["evaluate-candidates", "canary-if-better"]
    as_list = api.client.post("/rules", headers=deployer, json=[RULE])
    assert as_list.json() == {"created": ["tag-it"], "updated": [], "unchanged": []}
    again = api.client.post("/rules", headers=deployer, json=[RULE])
    assert again.json()["unchanged"] == ["tag-it"]

    reader = api.auth("reader")
    names = [r["name"] for r in api.client.get("/rules", headers=reader).json()]
    assert names == ["canary-if-better", "evaluate-candidates", "tag-it"]
    rule = api.client.get("/rules/canary-if-better", headers=reader).json()
    assert rule["spec"]["do"]["require_approval"] == "deployer" and rule["enabled"]
    assert api.client.get("/rules/tag-it/firings", headers=reader).json() == []
    disabled = api.client.post("/rules/tag-it/disable?reason=quiet", headers=deployer)
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False

    missing = api.client.get("/rules/nope", headers=reader)
    assert missing.status_code == 404 and "rule 'nope' does not exist" in missing.json()["detail"]
    bad = api.client.post("/rules", headers=deployer, json={"yaml": "- name: [x"})
    assert bad.status_code == 400
    no_action = api.client.post("/rules", headers=deployer, json=[{**RULE, "do": {}}])
    assert no_action.status_code == 400 and "no action" in no_action.json()["detail"]


def test_rules_that_nest_too_deeply_or_use_aliases_are_refused(api: Api) -> None:
    deployer = api.auth("deployer")
    deep = "[" * 1200 + "]" * 1200
    refused = api.client.post("/rules", headers=deployer, json={"yaml": deep})
    assert refused.status_code == 400 and "too deeply" in refused.json()["detail"]
    nested: object = 1
    for _ in range(40):
        nested = {"a": nested}
    as_list = api.client.post("/rules", headers=deployer, json=[{**RULE, "match": nested}])
    assert 400 <= as_list.status_code < 500, as_list.text
    aliases = "- &r {name: a, on: ledger.job.failed, do: {webhook: w}}\n- *r\n"
    refused = api.client.post("/rules", headers=deployer, json={"yaml": aliases})
    assert refused.status_code == 400 and "anchors and aliases" in refused.json()["detail"]


def test_approvals_over_http(api: Api) -> None:
    with Ledger(api.settings) as ledger:
        held = ledger.approvals.request("canary", 1, "event/1", "deployer", [])
    reader = api.auth("reader")

    def pending_approvals() -> list[dict[str, object]]:
        answer: list[dict[str, object]] = api.client.get(
            "/approvals?state=pending", headers=reader
        ).json()
        return answer

    wait_for(pending_approvals, 30, "the API's views to see the approval (written beside it)")
    [pending] = pending_approvals()
    assert pending["short_id"] == held.short_id and pending["role"] == "deployer"

    url = f"/approvals/{held.short_id}"
    too_low = api.client.post(f"{url}/approve", headers=api.auth("contributor"), json={})
    assert too_low.status_code == 403
    assert too_low.json()["detail"] == (
        f"approval {held.short_id} needs role deployer or higher; "
        "the acting principal has role contributor"
    )
    approved = api.client.post(
        f"{url}/approve", headers=api.auth("deployer"), json={"reason": "ship it"}
    )
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["state"], body["decided_by"], body["reason"]) == (
        "approved", "deployer-bot", "ship it"
    )  # fmt: skip
    twice = api.client.post(f"{url}/reject", headers=api.auth("admin"), json={"reason": "no"})
    assert twice.status_code == 409 and "approved already" in twice.json()["detail"]
    assert api.client.get(url, headers=reader).json()["state"] == "approved"
    assert api.client.get("/approvals/0123456789ab", headers=reader).status_code == 404
    assert api.client.get("/approvals?state=maybe", headers=reader).status_code == 400
