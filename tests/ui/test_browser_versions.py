"""A model version's page in a real browser: its lineage graph from data to endpoint,
whose nodes are links (by mouse and by keyboard)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.ui.browser_support import Screenshots, Site, sign_in
from tests.ui.lineage_support import register_with_lineage
from tests.ui.seed import wait_until_served

PAGE = "/ui/models/iris/versions/1"


def test_open_a_version_and_follow_its_lineage(
    page: Any, site: Site, screenshots: Screenshots, tmp_path: Path
) -> None:
    with site.ledger() as ledger:
        job_id = register_with_lineage(ledger, tmp_path).job_id
        head = ledger.event_count()
    wait_until_served(site.url, head)
    sign_in(page, site, "reader")
    page.goto(PAGE)
    assert page.get_by_role("heading", level=1).inner_text() == "iris version 1"
    graph = page.locator("svg#lineage-graph")
    assert graph.get_attribute("role") == "group"
    nodes = graph.locator("g.node")
    shown = {nodes.nth(i).get_attribute("data-node") for i in range(nodes.count())}
    chain = ["data:train:1", f"job:{job_id}", "model:iris:1", "deployment:shop/blue",
             "endpoint:shop"]  # fmt: skip
    assert shown == {*chain, "environment:cpu:1", "pipeline:fit:1"}
    boxes = [graph.locator(f'g.node[data-node="{node}"]').bounding_box() for node in chain]
    assert all(box is not None and box["width"] > 100 for box in boxes)
    lefts = [box["x"] for box in boxes if box]
    assert lefts == sorted(lefts) and len(set(lefts)) == len(lefts)  # data on the left
    assert graph.locator("g.node.current").get_attribute("data-node") == "model:iris:1"
    assert page.locator("table#files tbody tr").count() == 3
    screenshots.take(page, "version")

    graph.locator('g.node[data-node="endpoint:shop"]').click()
    page.wait_for_url(re.compile(r".*/ui/endpoints/shop$"))
    screenshots.take(page, "endpoint-from-lineage")

    page.go_back()
    page.wait_for_url(re.compile(rf".*{PAGE}$"))
    link = page.locator('svg#lineage-graph a:has(g[data-node="data:train:1"])')
    link.focus()  # a node's link is reached by keyboard too
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/ui/audit\?entity=data:train$"))
    screenshots.take(page, "data-from-lineage")
