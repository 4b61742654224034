"""The audit log: who did what, to which entity, when and why, with the filters of
`ledger audit` (and GET /audit), paged; each event links to its entity's page and to the
registry as it was right after it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import Query, Request, Response

from ledger.api.routes.common import MAX_NUMBER, read_views
from ledger.api.ui.access import UiReader
from ledger.api.ui.rendering import render
from ledger.api.ui.routing import PREFIX, ui_router
from ledger.errors import InvalidInputError
from ledger.storage.timestamps import as_utc
from projections.audit import ENTITY_KINDS, AuditQuery, event_types, parse_entity_filter
from projections.paging import Page

router = ui_router()
PAGE_SIZE = 50
FILTERS = ("actor", "event_type", "entity", "correlation_id", "since", "until", "after")
Filter = Annotated[str, Query(max_length=200)]


@router.get("/audit")
def audit_page(
    request: Request,
    _: UiReader,
    actor: Filter = "",
    event_type: Filter = "",
    entity: Filter = "",
    correlation_id: Filter = "",
    since: Filter = "",
    until: Filter = "",
    after: Filter = "",
    page_token: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = PAGE_SIZE,
) -> Response:
    """Events matching every filter given, in log order. A filter the ledger refuses (an
    unknown entity kind or event type, a time that is not one) is said above the form,
    which keeps what was typed."""
    given = dict(zip(FILTERS, (actor, event_type, entity, correlation_id, since, until, after),
                     strict=True))  # fmt: skip
    given = {key: value.strip() for key, value in given.items()}
    try:
        query = audit_query(given, limit, page_token)
        page: Page = read_views(request, lambda views: views.audit(query))
    except InvalidInputError as refused:
        return _page(request, given, Page([], ""), error=str(refused))
    return _page(request, given, page)


def _page(
    request: Request, given: dict[str, str], page: Page, error: str | None = None
) -> Response:
    return render(
        request,
        "audit.html",
        400 if error else 200,
        error=error,
        filters=given,
        filtered=any(given.values()),
        events=[_event(item) for item in page.items],
        next_token=page.next_token,
        event_types=sorted(event_types()),
        entity_kinds=ENTITY_KINDS,
    )


def audit_query(given: dict[str, str], limit: int, page_token: str) -> AuditQuery:
    """The view's query for the filters typed in the form (InvalidInputError as the CLI
    words it when one is not well formed)."""
    kind, name = parse_entity_filter(given["entity"])
    return AuditQuery(
        actor=given["actor"],
        event_type=given["event_type"],
        kind=kind,
        name=name,
        correlation_id=given["correlation_id"],
        since=_moment(given["since"], "since"),
        until=_moment(given["until"], "until"),
        after_position=_position(given["after"]),
        limit=limit,
        page_token=page_token,
    )


def _moment(text: str, what: str) -> datetime | None:
    if not text:
        return None
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise InvalidInputError(
            f"{what} {text!r} is not an ISO 8601 time (e.g. 2026-11-25T14:30:00Z)"
        ) from None


def _position(text: str) -> int:
    if not text:
        return 0
    if not text.isdigit() or int(text) > MAX_NUMBER:
        raise InvalidInputError(f"after {text!r} is not a log position (a whole number >= 0)")
    return int(text)


def _event(item: dict[str, Any]) -> dict[str, Any]:
    """An audit row with its entity's page (if it has one) and its details as text."""
    details = orjson.dumps(item["details"], option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    return {
        **item,
        "link": entity_page(item["kind"], item["name"], item["scope"]),
        "details_text": details.decode(),
    }


def entity_page(kind: str, name: str, scope: str) -> str:
    """The UI page of an entity the audit log names; for kinds without one, the audit
    log filtered to that entity (or nothing, for kinds it cannot filter by)."""
    if kind == "model":
        return f"{PREFIX}/models/{_part(name)}"
    if kind == "model_version":
        number = name.rpartition(":")[2]
        return f"{PREFIX}/models/{_part(scope)}/versions/{_part(number)}"
    if kind in ("endpoint", "job", "monitor"):
        return f"{PREFIX}/{kind}s/{_part(name)}"
    if kind in ENTITY_KINDS:
        return f"{PREFIX}/audit?entity={quote(f'{kind}:{name}', safe=':')}"
    return ""


def _part(text: str) -> str:
    """``text`` as one segment of a URL path."""
    return quote(text, safe="")
