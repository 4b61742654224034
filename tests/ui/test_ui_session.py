"""Signing in and out of the UI, roles, CSRF and the pages' safety headers."""

from __future__ import annotations

from tests.conftest import Api
from tests.ui.ui_support import Browser, browser


def test_a_page_sends_a_stranger_to_sign_in_and_back(api: Api) -> None:
    with browser(api) as person:
        response = person.get("/ui/models?q=ir")
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/login?next=%2Fui%2Fmodels%3Fq%3Dir"
        form = person.get(response.headers["location"])
        assert form.status_code == 200 and 'name="token"' in form.text
        signed_in = person.submit(
            "/ui/login", {"token": api.tokens["reader"], "next": "/ui/models?q=ir"}
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/ui/models?q=ir"
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
        assert api.tokens["reader"] not in cookie  # the cookie names the token by its hash


def test_a_wrong_token_is_refused_on_the_form(api: Api) -> None:
    with browser(api) as person:
        person.get("/ui/login")
        response = person.submit("/ui/login", {"token": "not-a-token"})
        assert response.status_code == 401
        assert "error: that token is unknown or revoked" in response.text
        assert "ledger_session" not in response.headers.get("set-cookie", "")


def test_sign_in_needs_the_forms_csrf_token(api: Api) -> None:
    with browser(api) as person:
        person.get("/ui/login")
        person.csrf = "forged"
        response = person.submit("/ui/login", {"token": api.tokens["admin"]})
        assert response.status_code == 403
        assert "ledger_session" not in response.headers.get("set-cookie", "")


def test_sign_out_ends_the_session(api: Api) -> None:
    with browser(api, "reader") as person:
        assert 'reader-bot <span class="role">(reader)</span>' in person.get("/ui/models").text
        out = person.submit("/ui/logout")
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        assert person.get("/ui/models").status_code == 303


def test_sign_out_without_the_csrf_token_is_refused(api: Api) -> None:
    with browser(api, "reader") as person:
        response = person.client.post("/ui/logout")
        assert response.status_code == 403
        assert "CSRF check failed" in response.text


def test_a_revoked_token_ends_its_sessions(api: Api) -> None:
    with browser(api, "reader") as person:
        api.client.delete("/tokens/reader-bot", headers=api.auth("admin"))
        assert person.get("/ui/models").status_code == 303


def test_a_forged_cookie_is_no_session(api: Api) -> None:
    person = Browser(api)
    person.client.cookies.set("ledger_session", "eyJ0IjoiYWJjIn0.forged.sig", domain="testserver")
    assert person.get("/ui/models").status_code == 303


def test_after_sign_in_only_pages_of_this_site(api: Api) -> None:
    with browser(api) as person:
        person.get("/ui/login")
        response = person.submit(
            "/ui/login", {"token": api.tokens["reader"], "next": "https://evil.example/"}
        )
        assert response.headers["location"] == "/ui/models"
