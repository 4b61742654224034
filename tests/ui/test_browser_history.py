"""The audit log and a monitor's drift charts in a real browser."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.ui.browser_support import PAGE_WAIT_S, Screenshots, Site, sign_in
from tests.ui.test_ui_monitors import record_windows


def _written(site: Site, model_dir: Path) -> int:
    """Alice sets up a served model and a monitor with windows; Bob tags the model.
    Returns the log's head."""
    with site.ledger() as ledger:
        with ledger.on_behalf_of("alice"):
            ledger.models.register_version("iris", model_dir, reason="first cut")
            ledger.endpoints.create("shop", "online", reason="the shop's model")
            ledger.endpoints.deploy("shop", "blue", "iris:1", reason="go live")
            ledger.monitors.create("drift", endpoint="shop", reference="data:train:1",
                                   features=["x0", "x1"], reason="watch the inputs")  # fmt: skip
            record_windows(ledger, "drift")
        with ledger.on_behalf_of("bob"):
            ledger.models.set_tags("iris", {"team": "search"}, reason="ownership")
        return ledger.event_count()


def _until_shown(page: Any, url: str, selector: str) -> None:
    """Load ``url`` until the server's views include what the test wrote beside it."""
    for _ in range(PAGE_WAIT_S * 4):
        page.goto(url)
        if page.locator(selector).count():
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"{selector} never showed on {url}")


def test_filter_the_audit_log_by_actor_and_see_a_monitors_drift(
    page: Any, site: Site, screenshots: Screenshots, model_dir: Path
) -> None:
    head = _written(site, model_dir)
    sign_in(page, site, "reader")
    _until_shown(page, "/ui/audit?limit=1000", f'#audit tr[data-position="{head}"]')
    assert page.get_by_role("heading", level=1).inner_text() == "Audit log"
    screenshots.take(page, "audit")

    page.get_by_label("Actor").fill("alice")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*/ui/audit\?.*actor=alice.*"))
    actors = page.locator("#audit tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.actor)"
    )
    assert actors and set(actors) == {"alice"}
    assert page.get_by_label("Actor").input_value() == "alice"
    page.locator("#audit tbody tr").first.locator("summary").click()  # open an event's details
    assert page.locator("#audit tbody tr").first.locator("pre.event-details").is_visible()
    screenshots.take(page, "audit-by-alice")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Monitors").click()
    page.wait_for_url(re.compile(r".*/ui/monitors$"))
    assert page.locator("#monitors").get_by_role("link", name="drift").is_visible()
    screenshots.take(page, "monitors")

    page.locator("#monitors").get_by_role("link", name="drift").click()
    page.wait_for_url(re.compile(r".*/ui/monitors/drift$"))
    charts = page.locator("svg.drift-chart")
    assert charts.count() == 3  # x0, x1 and the dataset's share
    assert charts.first.is_visible()
    x0 = page.locator('svg.drift-chart[data-column="x0"]')
    assert x0.locator("circle.point.over").count() == 2
    assert x0.locator("polyline.threshold").count() == 1
    assert page.locator("#alerts tbody tr").count() == 3
    screenshots.take(page, "monitor-drift")
