"""Audit, history, lineage and the state of the ledger at a past time or position."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from ledger.api.auth import Reader
from ledger.api.routes.common import LogPosition, optional_utc, read_json, read_views
from ledger.api.schemas import AuditPage, LineageOut
from ledger.errors import InvalidInputError, NotFoundError
from projections.audit import AuditQuery, check_entity_kind, parse_entity_filter
from projections.views import Views

router = APIRouter(tags=["history"])
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/audit", response_model=AuditPage)
def audit(
    request: Request,
    _: Reader,
    actor: str = "",
    event_type: Annotated[str, Query(description="Registered, or ModelVersion.Registered")] = "",
    entity: Annotated[str, Query(description="KIND or KIND:NAME, e.g. endpoint:shop")] = "",
    correlation_id: str = "",
    since: Annotated[datetime | None, Query(description="At or after this time")] = None,
    until: Annotated[datetime | None, Query(description="Before this time")] = None,
    after: LogPosition = 0,
    limit: Limit = 100,
    page_token: str = "",
) -> Any:
    """Who did what, when and why: events matching every filter, in log order."""
    kind, name = parse_entity_filter(entity)
    query = AuditQuery(
        actor=actor,
        event_type=event_type,
        kind=kind,
        name=name,
        correlation_id=correlation_id,
        since=optional_utc(since),
        until=optional_utc(until),
        after_position=after,
        limit=limit,
        page_token=page_token,
    )
    return read_json(request, lambda v: v.audit(query).to_dict())


@router.get("/history/{kind}/{name}", response_model=AuditPage)
def history(
    request: Request, _: Reader, kind: str, name: str, limit: Limit = 100, page_token: str = ""
) -> Any:
    """Every event of one entity (a model: with its versions), in log order."""
    check_entity_kind(kind)
    page = read_views(
        request,
        lambda v: v.audit(AuditQuery(kind=kind, name=name, limit=limit, page_token=page_token)),
    )
    if not page.items and not page_token:
        raise NotFoundError(f"no events for {kind} {name!r}")
    return page.to_dict()


@router.get("/lineage/{node:path}", response_model=LineageOut)
def lineage(
    request: Request,
    _: Reader,
    node: str,
    direction: Literal["upstream", "downstream"] = "upstream",
    depth: Annotated[int, Query(ge=1, le=50)] = 3,
) -> Any:
    """What a node came from (upstream) or what came of it (downstream), e.g.
    ``model:iris:3``, ``data:train:1`` or ``deployment:shop/blue``."""
    return read_json(request, lambda v: v.lineage(node, direction=direction, depth=depth).to_dict())


@router.get("/as-of", response_model=dict[str, Any])
def as_of(
    request: Request,
    _: Reader,
    time: Annotated[datetime | None, Query(description="A past time (ISO 8601)")] = None,
    position: LogPosition | None = None,
    model: Annotated[str, Query(description="Only this model")] = "",
    endpoint: Annotated[str, Query(description="Only this endpoint")] = "",
) -> Any:
    """The registry (or one model or endpoint) as it was at a time or log position."""
    if model and endpoint:
        raise InvalidInputError("give model or endpoint, not both")

    def state(views: Views) -> dict[str, Any]:
        at = views.point_at(optional_utc(time), position)
        if model:
            return views.model_as_of(model, at)
        if endpoint:
            return views.endpoint_as_of(endpoint, at)
        return views.registry(at)

    return read_json(request, state)
