"""Accessibility of every page, in a real browser, on a seeded world (tests/ui/seed.py).

- axe-core 4.11.1 (tests/ui/vendor/) finds no violation of serious or critical impact;
- every input, select and textarea has an accessible name, and each page one <h1>;
- by keyboard: Tab reaches the skip link first, then the navigation, and the skip link
  takes the focus to the content; signing in (and out) needs no mouse.

The pages are seen by an admin, who is shown every action form. One server with one world
serves the whole module (per store): the tests only read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.ledger import Ledger
from tests.conftest import ROLE_NAMES, STORES, StoreFactory
from tests.server_support import serving
from tests.ui.a11y_support import describe, focused, serious_violations, unnamed_controls
from tests.ui.browser_support import Screenshots, Site, chromium_missing, sign_in
from tests.ui.seed import World, seed_world, wait_until_served

PAGES = list(World().pages)
NAVIGATION = ["Lifecycle Ledger", "Models", "Endpoints", "Jobs", "Monitors", "Audit"]


@pytest.fixture(scope="module", params=STORES)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Site, World]]:
    """`ledger serve` on a store holding the seeded world, and a token for each role."""
    if chromium_missing():
        pytest.skip(chromium_missing())
    store = StoreFactory(request.param, tmp_path_factory.mktemp(f"a11y-{request.param}"))
    with pytest.MonkeyPatch.context() as environment:  # as tests/conftest.py does per test
        for key in [k for k in os.environ if k.startswith("LEDGER_")]:
            if key != "LEDGER_TEST_PG_URL":
                environment.delenv(key)
        try:
            with Ledger(store.settings()) as ledger:
                tokens = {
                    role: ledger.tokens.create(f"{role}-person", role).secret for role in ROLE_NAMES
                }
                world = seed_world(ledger)
            with serving(store) as url:
                wait_until_served(url, world.head)
                yield Site(url, tokens, store), world
        finally:
            store.drop()


@pytest.fixture(scope="module")
def site(seeded: tuple[Site, World]) -> Site:
    """The module's server (the browser fixtures' `site`, shared by the module's tests)."""
    return seeded[0]


@pytest.fixture(scope="module")
def world(seeded: tuple[Site, World]) -> World:
    return seeded[1]


@pytest.mark.parametrize("name", PAGES)
def test_page_passes_axe_and_names_every_control(
    name: str, page: Any, site: Site, world: World, screenshots: Screenshots
) -> None:
    path = world.pages[name]
    if name != "sign-in":
        sign_in(page, site, "admin")
    response = page.goto(path)
    assert response is not None and response.status == 200, (
        f"{name}: GET {path} answered HTTP {response.status if response else '?'}"
    )
    screenshots.take(page, name)

    violations = serious_violations(page)
    if violations:
        print(f"\naxe on {name} ({path}):\n{describe(violations)}")
    assert not violations, f"axe on {name} ({path}):\n{describe(violations)}"
    unnamed = unnamed_controls(page)
    assert not unnamed, f"{name} ({path}): controls without an accessible name: {unnamed}"
    assert page.locator("h1").count() == 1, f"{name} ({path}) should have exactly one <h1>"


def test_the_checks_find_what_they_look_for(page: Any) -> None:
    """On a page given an unlabelled input and grey-on-grey text, both checks complain (so
    their silence on the real pages means something)."""
    page.goto("/ui/login")
    page.evaluate(
        """() => {
            const main = document.querySelector('main');
            main.insertAdjacentHTML('beforeend', '<input id="nameless"><p id="faint">faint</p>');
            const faint = document.getElementById('faint');
            faint.style.color = '#bbb';
            faint.style.background = '#ccc';
        }"""
    )
    found = {v["id"]: v for v in serious_violations(page)}
    assert {"label", "color-contrast"} <= set(found), describe(list(found.values()))
    assert ["#nameless"] in [node["target"] for node in found["label"]["nodes"]]
    assert unnamed_controls(page) == ['<input id="nameless">']


def tab(page: Any) -> dict[str, Any]:
    page.keyboard.press("Tab")
    return focused(page)


def test_tab_reaches_the_skip_link_first_then_the_navigation(page: Any, site: Site) -> None:
    sign_in(page, site, "reader")
    page.goto("/ui/models")

    skip = tab(page)
    assert (skip["href"], skip["text"]) == ("#main", "Skip to content"), skip
    assert page.get_by_role("link", name="Skip to content").is_visible()  # shown when focused
    assert [tab(page)["text"] for _ in NAVIGATION] == NAVIGATION

    page.goto("/ui/models")
    tab(page)
    page.keyboard.press("Enter")  # the skip link: the next Tab is inside the content
    assert page.url.endswith("#main")
    assert tab(page)["inMain"], "Tab after the skip link should land in <main>"


def test_sign_in_and_out_by_keyboard_only(page: Any, site: Site, screenshots: Screenshots) -> None:
    page.goto("/ui/login")
    for _ in range(10):
        if tab(page)["id"] == "token":
            break
    else:
        pytest.fail("Tab never reached the API token field")
    page.keyboard.type(site.tokens["contributor"])
    assert tab(page)["text"] == "Sign in"
    screenshots.take(page, "sign-in-by-keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/ui/models$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Models"

    for _ in range(20):
        if tab(page)["text"] == "Sign out":
            break
    else:
        pytest.fail("Tab never reached the Sign out button")
    page.keyboard.press("Space")
    page.wait_for_url(re.compile(r".*/ui/login$"))
