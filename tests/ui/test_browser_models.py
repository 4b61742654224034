"""The models pages in a real browser: search the list, open a model, its chart, compare two
versions, change a tag with a reason, and follow a version's link."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ledger.storage.database import LedgerDatabase
from tests.ui.browser_support import Screenshots, Site, sign_in


def fill_registry(site: Site, tmp_path: Path) -> int:
    """Two models; iris with three versions carrying an accuracy metric. The log position
    after iris's first version."""
    files = tmp_path / "model"
    files.mkdir()
    with site.ledger() as ledger:
        for n in range(3):
            (files / "model.bin").write_bytes(f"weights {n}".encode())
            ledger.models.register_version(
                "iris",
                files,
                tags={"stage": "prod" if n == 2 else "dev"},
                metrics={"accuracy": 0.8 + n / 20},
                reason="trained",
            )
            if n == 0:
                first = head(site)
        ledger.models.register_version("wine", files, reason="trained")
        ledger.models.set_alias("iris", "champion", 3, reason="best so far")
    return first


def head(site: Site) -> int:
    db = LedgerDatabase(site.store.settings())
    try:
        return db.head_position()
    finally:
        db.close()


def test_search_open_a_model_compare_and_change_it(
    page: Any, site: Site, screenshots: Screenshots, tmp_path: Path
) -> None:
    fill_registry(site, tmp_path)
    sign_in(page, site, "contributor")
    screenshots.take(page, "models")
    models = page.locator("table#models tbody tr")
    assert models.count() == 2

    search = page.get_by_role("search", name="Search models")
    search.get_by_label("Name starts with").fill("ir")
    search.get_by_label("Tag (KEY=VALUE)").fill("stage=prod")
    search.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*q=ir.*"))
    assert models.count() == 1 and models.first.get_by_role("link", name="iris").is_visible()
    screenshots.take(page, "search")

    models.first.get_by_role("link", name="iris").click()
    page.wait_for_url(re.compile(r".*/ui/models/iris$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Model iris"
    chart = page.locator("svg#metric-chart")
    assert chart.is_visible() and chart.locator("circle.point").count() == 3
    assert page.locator("table#versions tbody tr").count() == 3
    screenshots.take(page, "model")

    page.get_by_label("Compare version 1").check()
    page.get_by_label("Compare version 3").check()
    page.get_by_role("button", name="Compare selected versions").click()
    page.wait_for_url(re.compile(r".*/compare\?v=3&v=1$"))  # in the table's order
    differing = page.locator("table#compare tr.differs th")
    assert differing.filter(has_text="accuracy").count() == 1
    screenshots.take(page, "compare")

    page.go_back()
    page.locator("table#versions tbody tr").first.get_by_role("link", name="Change").click()
    changing = page.locator("#change-version")
    changing.get_by_label("Key").fill("reviewed")
    changing.get_by_label("Value").fill("yes")
    changing.get_by_label("Reason").first.fill("checked by hand")
    changing.get_by_role("button", name="Set tag").click()
    page.wait_for_url(re.compile(r".*/ui/models/iris\?change=3#change-version$"))
    assert "reviewed" in page.locator("table#versions tbody tr").first.inner_text()
    screenshots.take(page, "tagged")

    page.locator("table#versions").get_by_role("link", name="2", exact=True).click()
    page.wait_for_url(re.compile(r".*/ui/models/iris/versions/2$"))
    assert page.get_by_role("heading", level=1).count() == 1
    screenshots.take(page, "version")


def test_a_reader_sees_the_past_and_no_forms(
    page: Any, site: Site, screenshots: Screenshots, tmp_path: Path
) -> None:
    first = fill_registry(site, tmp_path)
    sign_in(page, site, "reader")
    page.goto("/ui/models/iris")
    assert page.locator("form[method=post]").count() == 1  # signing out only
    assert page.get_by_role("link", name="Change").count() == 0
    as_of = page.get_by_role("search", name="As of")
    as_of.get_by_label("As of (log position or time, UTC)").fill(str(first))
    as_of.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(rf".*as_of={first}$"))
    assert page.locator("#as-of-banner").is_visible()
    assert page.locator("table#versions tbody tr").count() == 1
    assert page.locator("svg#metric-chart circle.point").count() == 1
    screenshots.take(page, "model-as-of")
