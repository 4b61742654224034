"""Helpers every route module uses: running a command as the caller, reading the views.

Reads that are a primary-key lookup (one version, one model, one endpoint) are
``async def`` routes: they run on the event loop, which saves the hop to a worker
thread (about half a millisecond here). Everything else runs in FastAPI's threadpool.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Path, Query, Request, Response

from ledger import correlation
from ledger.api.auth import Principal, services_of
from ledger.api.problems import STORE_ERRORS
from ledger.api.views_lag import note_views_lag, views_lagging
from ledger.ledger import Ledger
from ledger.storage.timestamps import as_utc
from projections.views import Views

T = TypeVar("T")


def optional_utc(moment: datetime | None) -> datetime | None:
    """A time given as a query parameter, without a timezone taken as UTC."""
    return None if moment is None else as_utc(moment)


def correlation_of(request: Request) -> str:
    """The caller's correlation id (when well formed), or a new one."""
    return correlation.given_or_new(request.headers.get(correlation.HEADER, ""))


def run_command(request: Request, principal: Principal, command: Callable[[Ledger], T]) -> T:
    """Run ``command`` as the token's holder. It is answered without waiting for the
    views; the request's own reads of them (``read_views``) include its events."""
    services = services_of(request)
    command_id = getattr(request.state, "command_id", "")
    result, request.state.views_needed = services.run_command(
        principal.name, correlation_of(request), command, command_id=command_id
    )
    return result


def settle_views(request: Request) -> None:
    """Wait until the views include every write this request needs them to: its own,
    else all this server finished so far (a request that reads, or whose answer others
    depend on, such as a token's issue or revoke for the next request's auth). Once a
    wait failed (the views cannot catch up), the request reads them as they are: it
    never waits again, and so never blocks the event loop of an ``async`` route."""
    if views_lagging():
        return
    services = services_of(request)
    needed = getattr(request.state, "views_needed", None)
    services.include_writes(services.writes if needed is None else needed)


def read_written(
    request: Request, query: Callable[[Views], Any], committed: Callable[[], Any] | None = None
) -> Any:
    """A write route's answer, read from the views once they include the write. If they
    lag behind it (the store went away right after the commit), the write still succeeded:
    the answer is ``committed()``, built from what the command returned, or else 202
    Accepted saying so; either way with ``X-Ledger-Views-Lag: true``."""
    settle_views(request)
    if not views_lagging():
        try:
            return read_views(request, query)
        except STORE_ERRORS:
            note_views_lag()
    if committed is not None:
        return committed()
    detail = "the write committed; the views will show it once the event store answers again"
    return json_response({"committed": True, "views_lag": True, "detail": detail}, 202)


def read_views(request: Request, query: Callable[[Views], T]) -> T:
    """``query`` on the views, once they include the writes this request must see (at
    once on an ``async`` read route: its ``Reader`` dependency waited already)."""
    settle_views(request)
    with services_of(request).pool.views() as views:
        return query(views)


def json_response(data: Any, status_code: int = 200) -> Response:
    """``data`` as JSON, serialised directly: the route's response model documents it
    (and the schema tests hold responses to it) without validating it on every call."""
    return Response(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), status_code,
                    media_type="application/json")  # fmt: skip


def read_json(request: Request, query: Callable[[Views], Any]) -> Response:
    """The answer of ``query`` on the views, as a JSON response."""
    return json_response(read_views(request, query))


# Numbers the stores can hold (SQLite and PostgreSQL integers are 64-bit).
MAX_NUMBER = 2**62
VersionNumber = Annotated[int, Path(ge=1, le=MAX_NUMBER, description="Version number")]
LogPosition = Annotated[int, Query(ge=0, le=MAX_NUMBER, description="A log position")]
ReasonQuery = Annotated[
    str, Query(max_length=2_000, description="Why: recorded on every event written")
]
