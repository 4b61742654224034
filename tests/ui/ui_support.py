"""Driving the UI through the app as a browser would: a cookie jar per user, forms with
their CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.conftest import Api

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """One person's session: a client of the app with its own cookies (over https, as the
    session cookie is Secure for a host that is not loopback)."""

    def __init__(self, api: Api) -> None:
        self.client = TestClient(
            api.client.app, base_url="https://testserver", raise_server_exceptions=False
        )
        self.client.follow_redirects = False
        self.csrf = ""

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(url, **kwargs)
        found = CSRF_INPUT.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def submit(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        """POST a form as the page's own form would, CSRF token included."""
        return self.client.post(url, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)

    def sign_in(self, token: str) -> httpx.Response:
        self.get("/ui/login")
        response = self.submit("/ui/login", {"token": token})
        assert response.status_code == 303, response.text
        self.get(response.headers["location"])
        return response


def views_caught_up(api: Api) -> None:
    """Bring the app's views up to every event in the log, those the test wrote beside the
    app through its own Ledger included (the app reads its own writes, not those)."""
    api.client.app.state.services.sync_views()


@contextmanager
def browser(api: Api, role: str | None = None) -> Iterator[Browser]:
    """A browser signed in with ``role``'s token (or not signed in: None)."""
    person = Browser(api)
    # Not entered as a context manager: that would run the app's lifespan again, and its
    # end would close the services the `api` fixture's client still uses.
    try:
        if role is not None:
            person.sign_in(api.tokens[role])
        yield person
    finally:
        person.client.close()
