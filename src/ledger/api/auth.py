"""Bearer tokens and roles: reader < contributor < deployer < admin.

The principal a request acts as comes from its token alone; it is the actor on
every event the request writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.api.services import ApiServices
from ledger.commands.tokens import hash_token
from ledger.domain.token import Role, role_allows

ANONYMOUS = "anonymous"
_bearer = HTTPBearer(auto_error=False, description="A token from `ledger token create`")


class Unauthenticated(Exception):
    """No valid token (HTTP 401)."""


class Forbidden(Exception):
    """The token's role is too low (HTTP 403)."""


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


def services_of(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The token's holder; None for a request without a token."""
    services = services_of(request)
    if not services.settings.api_auth:
        return Principal(ANONYMOUS, "admin")
    if credentials is None:
        return None
    holder = services.token_holder(hash_token(credentials.credentials))
    if holder is None:
        raise Unauthenticated("the bearer token is unknown or revoked")
    return Principal(*holder)


async def views_include_earlier_writes(request: Request) -> None:
    """Read-your-writes for a read route: wait, off the event loop, until the views include
    every write this server finished before it (the route's own reads then never block)."""
    services = services_of(request)
    writes = request.state.views_needed = services.writes
    if services.follower.covered < writes:
        await anyio.to_thread.run_sync(services.include_writes, writes)


def require(role: Role) -> object:
    """A dependency admitting principals holding ``role`` or a higher one."""

    async def check(
        request: Request, principal: Annotated[Principal | None, Depends(authenticate)]
    ) -> Principal:
        if principal is None:
            if role == "reader" and services_of(request).settings.api_anonymous_reads:
                return Principal(ANONYMOUS, "reader")
            raise Unauthenticated("this route needs a bearer token (Authorization: Bearer ...)")
        if not role_allows(principal.role, role):
            raise Forbidden(f"{principal.name!r} has role {principal.role}; this needs {role}")
        if role == "reader":
            await views_include_earlier_writes(request)
        return principal

    return Depends(check)


async def _metrics_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Any valid token may read /metrics; none is needed with LEDGER_API_PUBLIC_METRICS
    (anonymous reads do not open it: it has its own setting, for a scraper)."""
    if services_of(request).settings.api_public_metrics:
        return
    if await authenticate(request, credentials) is None:
        raise Unauthenticated(
            "/metrics needs a bearer token (or LEDGER_API_PUBLIC_METRICS=true on the server)"
        )


MetricsAccess = Depends(_metrics_access)
Reader = Annotated[Principal, require("reader")]
Contributor = Annotated[Principal, require("contributor")]
Deployer = Annotated[Principal, require("deployer")]
Admin = Annotated[Principal, require("admin")]
