"""Signing in to the UI with an API token, and out again."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Form, Request, Response

from ledger.api.auth import services_of
from ledger.api.middleware import is_loopback
from ledger.api.ui.access import UiReader, session_keys
from ledger.api.ui.rendering import redirect, render
from ledger.api.ui.routing import PREFIX, local_page, ui_router
from ledger.api.ui.session import LOGIN_COOKIE, LOGIN_FORM_S, SESSION_COOKIE
from ledger.commands.tokens import hash_token

router = ui_router()
HOME = f"{PREFIX}/models"


def _secure(request: Request) -> bool:
    """Cookies are Secure (sent over HTTPS only) except to a loopback address over plain
    HTTP, where a local `ledger serve` answers (browsers treat that as secure too)."""
    return request.url.scheme == "https" or not is_loopback(request.url.hostname or "")


def _local_page(next_page: str) -> str:
    """Where to go after signing in: a UI page of this server (never another site)."""
    return local_page(next_page, HOME)


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )


@router.get("")
async def home() -> Response:
    return redirect(HOME)


@router.get("/login")
async def sign_in_page(request: Request, next: str = "") -> Response:
    """The sign-in form; with auth off there is nobody to sign in as."""
    if not services_of(request).settings.api_auth:
        return redirect(_local_page(next))
    return _sign_in_form(request, next)


def _sign_in_form(request: Request, next_page: str, status: int = 200, error: str = "") -> Response:
    nonce = secrets.token_urlsafe(16)
    form_csrf = session_keys(request).csrf_token(f"login:{nonce}")
    response = render(
        request, "login.html", status, next=_local_page(next_page), form_csrf=form_csrf, error=error
    )
    _set_cookie(request, response, LOGIN_COOKIE, nonce, LOGIN_FORM_S)
    return response


@router.post("/login")
async def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=500)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2_000)] = "",
) -> Response:
    """Sign in with a token from `ledger token create`: a session cookie names it (by its
    hash) until it expires, the user signs out, or the token is revoked."""
    keys = session_keys(request)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not hmac.compare_digest(keys.csrf_token(f"login:{nonce}"), csrf_token):
        return _sign_in_form(request, next, 403, "the sign-in form expired; try again")
    token_hash = hash_token(token.strip())
    if services_of(request).token_holder(token_hash) is None:
        return _sign_in_form(request, next, 401, "that token is unknown or revoked")
    response = redirect(_local_page(next))
    _set_cookie(request, response, SESSION_COOKIE, keys.new_session(token_hash), keys.max_age_s)
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
async def sign_out(request: Request, _: UiReader) -> Response:
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX, secure=_secure(request), httponly=True)
    return response
