"""The models list, a model's page, comparing versions, and the actions on them."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from ledger.api.routes.common import read_views
from ledger.api.ui.access import UiReader
from ledger.api.ui.as_of import AsOfQuery, point_of
from ledger.api.ui.rendering import render
from ledger.api.ui.routing import ui_router
from projections.views import Views

router = ui_router()


@router.get("/models")
def models_page(request: Request, _: UiReader, as_of: AsOfQuery = "") -> Response:
    """Every model (or as they were at a past point)."""

    def read(views: Views) -> dict[str, Any]:
        at = point_of(views, as_of)
        if at is None:
            return {"models": views.models(), "as_of": None}
        past = views.registry(at)["models"]
        return {"models": [{"name": n, **m} for n, m in past.items()], "as_of": at}

    return render(request, "models.html", as_of_text=as_of, **read_views(request, read))
