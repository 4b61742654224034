"""The "as of" control: the models and endpoints pages shown as they were at a past time or
log position, under a banner saying so."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query

from ledger.errors import InvalidInputError
from ledger.storage.timestamps import as_utc
from projections.views import PointInTime, Views

AsOfQuery = Annotated[
    str,
    Query(
        alias="as_of",
        max_length=64,
        description="A log position, or a time (ISO 8601, UTC unless it says otherwise)",
    ),
]


def point_of(views: Views, asked: str) -> PointInTime | None:
    """The point in the log ``asked`` names (a position or a time); None for "now"."""
    asked = asked.strip()
    if not asked:
        return None
    if asked.isdigit():
        return views.point_at(position=int(asked))
    try:
        moment = datetime.fromisoformat(asked)
    except ValueError:
        raise InvalidInputError(
            f"as of takes a log position or a time such as 2026-12-01T09:30, got {asked!r}"
        ) from None
    return views.point_at(as_utc(moment))
