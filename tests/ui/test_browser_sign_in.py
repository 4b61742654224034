"""Signing in and out in a real browser, with the page's scripts under its CSP."""

from __future__ import annotations

import re
from typing import Any

from tests.ui.browser_support import Screenshots, Site, sign_in


def test_sign_in_land_on_models_and_sign_out(
    page: Any, site: Site, screenshots: Screenshots
) -> None:
    page.goto("/ui/models?q=iris")
    assert "/ui/login" in page.url
    screenshots.take(page, "sign-in")
    sign_in(page, site, "deployer")
    assert page.get_by_role("heading", level=1).inner_text() == "Models"
    assert page.locator("header").get_by_text("deployer-person").is_visible()
    assert page.evaluate("typeof htmx") == "object"  # the vendored script ran under the CSP
    screenshots.take(page, "models")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/ui/login$"))
    page.goto("/ui/models")
    assert "/ui/login" in page.url
