"""Browser tests: Debian's Chromium driven by Playwright, against `ledger serve` as users
run it. Playwright downloads no browser here; it is pointed at /usr/bin/chromium, which
scripts/bootstrap.sh installs. Each test saves a screenshot of every page it visits
under test-output/ui/ (kept by CI as the pages' picture)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger.ledger import Ledger
from tests.conftest import ROLE_NAMES, StoreFactory
from tests.paths import REPO
from tests.server_support import serving

CHROMIUM = os.environ.get("LEDGER_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "test-output" / "ui"
# Where a test waits for the page to show something (seconds).
PAGE_WAIT_S = 15


def chromium_missing() -> str:
    """Why the browser tests cannot run here ("" when they can)."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return f"Chromium is not installed ({CHROMIUM}; `apt-get install chromium`)"
    return ""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium for a test module (headless, no sandbox: CI runs as root).

    Not one for the whole session: while Playwright's sync API runs, the main thread has a
    running event loop, and later tests calling asyncio.run() would fail."""
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@dataclass
class Site:
    """`ledger serve` on a test store, its URL, and a token for each role."""

    url: str
    tokens: dict[str, str]
    store: StoreFactory

    def ledger(self) -> Ledger:
        """The ledger the server writes to (to set up what a test looks at)."""
        return Ledger(self.store.settings())


@pytest.fixture
def site(store: StoreFactory) -> Iterator[Site]:
    with Ledger(store.settings()) as ledger:
        tokens = {role: ledger.tokens.create(f"{role}-person", role).secret for role in ROLE_NAMES}
    with serving(store) as url:
        yield Site(url, tokens, store)


class Screenshots:
    """Saves numbered screenshots of a test's pages: test-output/ui/<test>/NN-<what>.png."""

    def __init__(self, test_name: str) -> None:
        self.folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", test_name)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.count = 0

    def take(self, page: Any, what: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{what}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(request.node.name)


@pytest.fixture
def page(chromium: Any, site: Site) -> Iterator[Any]:
    """A fresh browser tab (its own cookies) on the site, not signed in."""
    context = chromium.new_context(base_url=site.url, bypass_csp=False)
    context.set_default_timeout(PAGE_WAIT_S * 1000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page: Any, site: Site, role: str) -> None:
    """Sign in through the form, as a person with ``role``'s token would."""
    page.goto("/ui/login")
    page.get_by_label("API token").fill(site.tokens[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/ui/models.*"))
