"""The answers every MLflow endpoint shares: the empty object of a write, a page of a search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Response

from ledger.api.routes.common import json_response
from projections.paging import Page

T = TypeVar("T")


def empty() -> Response:
    """``{}``: what MLflow answers a write that returns nothing."""
    return Response(b"{}", media_type="application/json")


def page_answer(field: str, page: Page[T], wire: Callable[[T], Any]) -> Response:
    """``{field: [wire(item)...], "next_page_token": ...}`` (the token only when there is
    a next page)."""
    answer: dict[str, Any] = {field: [wire(item) for item in page.items]}
    if page.next_token:
        answer["next_page_token"] = page.next_token
    return json_response(answer)
