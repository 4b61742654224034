"""Helpers every route module uses: running a command as the caller, reading the views."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Path, Query, Request

from ledger.api.auth import Principal, services_of
from ledger.application import Ledger
from projections.views import Views

T = TypeVar("T")
CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def correlation_of(request: Request) -> str:
    """The caller's correlation id (when well formed), or a new one."""
    given = request.headers.get(CORRELATION_HEADER, "")
    return given if _CORRELATION.match(given) else uuid.uuid4().hex


def run_command(request: Request, principal: Principal, command: Callable[[Ledger], T]) -> T:
    """Run ``command`` as the token's holder; the views include its events afterwards."""
    services = services_of(request)
    return services.run_command(principal.name, correlation_of(request), command)


def read_views(request: Request, query: Callable[[Views], T]) -> T:
    with services_of(request).pool.views() as views:
        return query(views)


# Numbers the stores can hold (SQLite and PostgreSQL integers are 64-bit).
MAX_NUMBER = 2**62
VersionNumber = Annotated[int, Path(ge=1, le=MAX_NUMBER, description="Version number")]
LogPosition = Annotated[int, Query(ge=0, le=MAX_NUMBER, description="A log position")]
