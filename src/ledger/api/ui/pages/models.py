"""The models list (searched, paged), a model's page (its versions, a metric across them),
comparing versions; each now or as of a past point. The actions are in model_actions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response

from ledger.api.routes.common import read_views
from ledger.api.ui.access import UiReader
from ledger.api.ui.as_of import AsOfQuery, point_of
from ledger.api.ui.graphics.charts import metric_chart
from ledger.api.ui.pages.model_tables import (
    before_of,
    chosen_metric,
    compared_numbers,
    comparison,
    model_url,
    version_url,
    versions_as_of,
    versions_now,
)
from ledger.api.ui.rendering import render
from ledger.api.ui.routing import ui_router
from ledger.domain.model import FLAVORS
from ledger.refs import parse_pairs
from ledger.storage.timestamps import iso
from projections.model_browse import ModelFilter, filter_models, search_models
from projections.views import Views, without_gc_pauses

router = ui_router()
TextQuery = Annotated[str, Query(max_length=200)]
TagQuery = Annotated[list[str], Query(max_length=500, description="KEY=VALUE, repeatable")]
# What the list's filters mean, said on the page.
FILTER_RULE = (
    "A model is listed when its name starts with the text given and, when you give tags, "
    "an alias or a flavor, one of its live versions has all of them (a tag on the model "
    "counts for each of its versions). With tags alone, a model carrying every tag itself "
    "is listed too."
)


@router.get("/models")
def models_page(
    request: Request,
    _: UiReader,
    q: TextQuery = "",
    tag: TagQuery = [],  # noqa: B006 (FastAPI copies it)
    alias: TextQuery = "",
    flavor: TextQuery = "",
    page_token: Annotated[str, Query(max_length=1_000)] = "",
    as_of: AsOfQuery = "",
) -> Response:
    """The models whose name starts with ``q`` and that match the tags, alias and flavor
    (see ``FILTER_RULE``), 50 a page in name order; as of a past point with ``as_of``."""
    given = [t for t in tag if t.strip()]
    query = ModelFilter(
        prefix=q.strip(),
        tags=tuple(sorted(parse_pairs(given, "tag filter").items())),
        alias=alias.strip(),
        flavor=flavor.strip(),
        page_token=page_token,
    )

    def read(views: Views) -> dict[str, Any]:
        at = point_of(views, as_of)
        if at is None:
            return {"page": search_models(views.db, query), "as_of": None}
        past = views.models_as_of(at, version_tags=bool(query.tags))
        return {"page": filter_models(past, query), "as_of": at}

    with without_gc_pauses():  # many short-lived objects: see without_gc_pauses
        found = read_views(request, read)
        return render(
            request,
            "models.html",
            as_of_text=as_of,
            q=query.prefix,
            tags=given,
            alias=query.alias,
            flavor=query.flavor,
            flavors=FLAVORS,
            rule=FILTER_RULE,
            **found,
        )


@router.get("/models/{name}")
def model_page(
    request: Request,
    user: UiReader,
    name: str,
    metric: TextQuery = "",
    deleted: bool = False,
    change: Annotated[int, Query(ge=0, le=2**62)] = 0,
    page_token: Annotated[str, Query(max_length=20)] = "",
    as_of: AsOfQuery = "",
) -> Response:
    """A model: its description, tags and aliases, its versions newest first (50 a page),
    a metric across every live version, and (to contributors) its actions; ``change``:
    the version whose actions to show."""
    before = before_of(page_token)

    def read(views: Views) -> dict[str, Any]:
        at = point_of(views, as_of)
        if at is None:
            model: dict[str, Any] = dict(views.model(name))
            page = versions_now(views, name, before, deleted)
            shown = change and user.can("contributor")
            changing = views.version_of(name, change) if shown else None
        else:
            model = views.model_as_of(name, at)
            model["created_at"] = iso(model["created_at_us"])
            page = versions_as_of(views, model, before, deleted)
            changing = None
        return {"model": model, "page": page, "as_of": at, "changing": changing}

    with without_gc_pauses():  # a thousand versions' metrics: see without_gc_pauses
        found = read_views(request, read)
        names, chosen, points = chosen_metric(found["page"].series, metric)
        chart = metric_chart(points, chosen, link=lambda n: version_url(name, n))
        return render(
            request,
            "model.html",
            as_of_text=as_of,
            metric_names=names,
            metric=chosen,
            chart=chart,
            deleted=deleted,
            here=model_url(name),
            measured=len(points),
            **found,
        )


@router.get("/models/{name}/compare")
def compare_page(
    request: Request,
    _: UiReader,
    name: str,
    v: Annotated[list[int], Query(description="Version numbers, two or more")] = [],  # noqa: B006
) -> Response:
    """Versions side by side: metrics, tags, signature, files, lineage; rows whose values
    differ are marked."""
    numbers = compared_numbers(v)

    def read(views: Views) -> dict[str, Any]:
        views.model(name)
        versions = [views.version_of(name, number) for number in numbers]
        return {"versions": versions, "sections": comparison(versions)}

    return render(request, "model_compare.html", name=name, **read_views(request, read))
