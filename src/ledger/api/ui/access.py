"""Who is using the web UI, what their role lets them do, and the CSRF check on writes.

The roles are the API's (reader < contributor < deployer < admin), held by the token the
user signed in with; a write made in the UI is a ledger command whose actor is that
token's name.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ledger.api.auth import (
    ANONYMOUS,
    Forbidden,
    Principal,
    services_of,
    views_include_earlier_writes,
)
from ledger.api.ui.session import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, SessionKeys
from ledger.domain.token import Role, role_allows


class SignInNeeded(Exception):
    """No signed-in user (the UI sends the browser to the sign-in page)."""


class CsrfRefused(Exception):
    """A write without this session's CSRF token (HTTP 403)."""


@dataclass(frozen=True)
class UiUser:
    """The person using the UI: their token's name and role, and their CSRF token."""

    name: str
    role: str
    csrf: str
    signed_in: bool  # False with auth off, or reading anonymously

    def can(self, role: Role) -> bool:
        """Whether their role is ``role`` or a higher one (the templates show actions by it)."""
        return role_allows(self.role, role)

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role)


def session_keys(request: Request) -> SessionKeys:
    keys: SessionKeys = request.app.state.ui_sessions
    return keys


def current_user(request: Request) -> UiUser | None:
    """The signed-in user (anonymous with auth off or anonymous reads); None if nobody is."""
    if hasattr(request.state, "ui_user"):
        user: UiUser | None = request.state.ui_user
        return user
    user = request.state.ui_user = _find_user(request)
    return user


def _find_user(request: Request) -> UiUser | None:
    settings = services_of(request).settings
    keys = session_keys(request)
    if not settings.api_auth:
        return UiUser(ANONYMOUS, "admin", keys.csrf_token(ANONYMOUS), signed_in=False)
    session = keys.open(request.cookies.get(SESSION_COOKIE, ""))
    holder = services_of(request).token_holder(session.token_hash) if session else None
    if session is not None and holder is not None:
        name, role = holder
        return UiUser(name, role, keys.csrf_token(session.nonce), signed_in=True)
    if settings.api_anonymous_reads:
        return UiUser(ANONYMOUS, "reader", keys.csrf_token(ANONYMOUS), signed_in=False)
    return None


async def check_csrf(request: Request, user: UiUser) -> None:
    """Refuse a write whose form (or htmx header) lacks the session's CSRF token."""
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        given = str((await request.form()).get(CSRF_FIELD, ""))
    if not given or not hmac.compare_digest(user.csrf, given):
        raise CsrfRefused(
            "this form is out of date or did not come from this site (CSRF check failed); "
            "reload the page and try again"
        )


def ui_require(role: Role) -> object:
    """A dependency admitting users whose role is ``role`` or higher; a POST must carry
    their CSRF token. A page read waits until the views include this server's writes."""

    async def check(request: Request) -> UiUser:
        user = current_user(request)
        if user is None:
            raise SignInNeeded()
        if not user.can(role):
            raise Forbidden(f"{user.name!r} has role {user.role}; this needs {role}")
        if request.method == "POST":
            await check_csrf(request, user)
        else:
            await views_include_earlier_writes(request)
        return user

    return Depends(check)


UiReader = Annotated[UiUser, ui_require("reader")]
UiContributor = Annotated[UiUser, ui_require("contributor")]
UiDeployer = Annotated[UiUser, ui_require("deployer")]
