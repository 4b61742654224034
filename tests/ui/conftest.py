"""The browser tests' fixtures (tests/ui/browser_support.py)."""

from tests.ui.browser_support import chromium, page, screenshots, site  # noqa: F401
