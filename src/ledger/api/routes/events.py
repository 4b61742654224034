"""The event feed for consumers without NATS: pages by log position, and a live SSE stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import anyio
import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from ledger.api.auth import Reader, services_of
from ledger.api.routes.common import MAX_NUMBER, LogPosition
from ledger.api.schemas import EventBatch
from ledger.bus.cloudevents import to_cloudevent
from ledger.errors import InvalidInputError
from ledger.storage.decoding import EventDecoder
from ledger.storage.feed import read_feed

router = APIRouter(tags=["events"])
STREAM_BATCH = 500
POLL_S = 0.05
KEEPALIVE_S = 15.0
Format = Annotated[
    Literal["ledger", "cloudevents"],
    Query(description="`cloudevents`: each event as a CloudEvents 1.0 structured JSON event "
          "whose `data` is the ledger envelope"),
]  # fmt: skip


def _read(request: Request, after: int, limit: int) -> list[dict[str, Any]]:
    decoder: EventDecoder = request.app.state.decoder
    with services_of(request).pool.views() as views:
        return read_feed(views.db, decoder, after, limit)


def _rendered(request: Request, events: list[dict[str, Any]], form: str) -> list[dict[str, Any]]:
    if form == "ledger":
        return events
    source = services_of(request).settings.event_source
    return [to_cloudevent(event, source) for event in events]


@router.get("/events", response_model=EventBatch)
def events(
    request: Request,
    _: Reader,
    after: LogPosition = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Format = "ledger",
) -> Any:
    """Events in log order, straight from the event store."""
    items = _read(request, after, limit)
    last_position = items[-1]["position"] if items else after
    return {"items": _rendered(request, items, format), "last_position": last_position}


def _sse(event: dict[str, Any], rendered: dict[str, Any]) -> bytes:
    data = orjson.dumps(rendered)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event["position"], event["type"].encode(), data)


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    _: Reader,
    after: LogPosition | None = None,
    last_event_id: Annotated[str | None, Header(description="Resume after this event")] = None,
    format: Format = "ledger",
) -> StreamingResponse:
    """Server-Sent Events: every event after ``after`` (or the Last-Event-ID a reconnecting
    client sends), then each new one as it is appended. The SSE id is the log position."""
    start = after or 0
    if last_event_id:
        if not last_event_id.isdigit() or int(last_event_id) > MAX_NUMBER:
            raise InvalidInputError(f"Last-Event-ID must be a log position, got {last_event_id!r}")
        start = int(last_event_id)
    services = services_of(request)

    async def events_after(position: int) -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"
        quiet_since = time.monotonic()
        while True:
            batch = await anyio.to_thread.run_sync(_read, request, position, STREAM_BATCH)
            for event, rendered in zip(batch, _rendered(request, batch, format), strict=True):
                yield _sse(event, rendered)
            if batch:
                position = batch[-1]["position"]
                quiet_since = time.monotonic()
                if len(batch) == STREAM_BATCH:
                    continue
            while services.views_position <= position:
                if time.monotonic() - quiet_since > KEEPALIVE_S:
                    yield b": keepalive\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(POLL_S)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events_after(start), media_type="text/event-stream", headers=headers)
