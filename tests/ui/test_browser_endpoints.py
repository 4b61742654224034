"""An endpoint's canary in a real browser: a deployer moves traffic with a reason through the
form, sees the timeline gain the change, then looks at the split as it was before."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.ui.browser_support import Screenshots, Site, sign_in


def _set_up_shop(site: Site) -> int:
    """Through the server's API: iris 1 and 2, endpoint shop with blue (iris:1, all the
    traffic) and green (iris:2, none). The log position before the canary."""
    with httpx.Client(base_url=site.url, timeout=30) as client:

        def call(method: str, url: str, role: str, **kwargs: Any) -> None:
            auth = {"Authorization": f"Bearer {site.tokens[role]}"}
            answer = client.request(method, url, headers=auth, **kwargs)
            assert answer.status_code in (200, 201), answer.text

        upload = {"files": [("files", ("model.bin", b"weights"))], "data": {"reason": "trained"}}
        for _ in range(2):
            call("POST", "/models/iris/versions", "contributor", **upload)
        call("POST", "/endpoints", "deployer", json={"name": "shop", "reason": "launch"})
        for deployment, model in (("blue", "iris:1"), ("green", "iris:2")):
            call("POST", "/endpoints/shop/deployments", "deployer",
                 json={"deployment": deployment, "model": model, "reason": "ready"})  # fmt: skip
        return int(client.get("/health").json()["store"]["head"])


def _split(page: Any) -> list[list[str]]:
    """The rows of table#traffic: deployment, model version, traffic %, mirror %."""
    rows = page.locator("table#traffic tbody tr")
    return [
        [cell.strip() for cell in rows.nth(i).locator("th, td").all_inner_texts()]
        for i in range(rows.count())
    ]


def test_move_traffic_then_look_before_the_canary(
    page: Any, site: Site, screenshots: Screenshots
) -> None:
    before_canary = _set_up_shop(site)
    sign_in(page, site, "deployer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Endpoints").click()
    page.wait_for_url(re.compile(r".*/ui/endpoints$"))
    assert page.locator("table#endpoints").get_by_role("link", name="shop").is_visible()
    screenshots.take(page, "endpoints")

    page.locator("table#endpoints").get_by_role("link", name="shop").click()
    page.wait_for_url(re.compile(r".*/ui/endpoints/shop$"))
    assert _split(page) == [["blue", "iris:1", "100", "0"], ["green", "iris:2", "0", "0"]]
    assert page.locator("svg#traffic-chart").is_visible()
    screenshots.take(page, "endpoint-before-canary")

    form = page.locator("form#traffic-form")
    form.get_by_label("blue traffic %").fill("90")
    form.get_by_label("green traffic %").fill("10")
    form.get_by_label("Reason").fill("canary: 10% to iris 2")
    form.get_by_role("button", name="Set traffic").click()
    newest = page.locator("table#traffic-timeline tbody tr").first
    newest.locator("td.reason").get_by_text("canary: 10% to iris 2").wait_for()
    assert newest.locator("td.actor").inner_text() == "deployer-person"
    assert newest.locator("td.split").inner_text().startswith("blue 90% (iris:1), green 10%")
    assert _split(page) == [["blue", "iris:1", "90", "0"], ["green", "iris:2", "10", "0"]]
    assert page.locator("svg#traffic-chart g.change").count() == 2
    screenshots.take(page, "endpoint-after-canary")

    page.get_by_label("As of (log position or time, UTC)").fill(str(before_canary))
    page.get_by_role("button", name="Show").click()
    page.locator("#as-of-banner").wait_for()
    assert f"log position {before_canary}" in page.locator("#as-of-banner").inner_text()
    assert _split(page) == [["blue", "iris:1", "100", "0"], ["green", "iris:2", "0", "0"]]
    assert page.get_by_text("canary: 10% to iris 2").count() == 0
    assert page.locator("form#traffic-form").count() == 0
    screenshots.take(page, "endpoint-as-of-before-canary")
