"""A job's page, live: Server-Sent Events carrying its DAG each time the job changes.

The page's ``#job-dag-live`` connects here (htmx's sse extension) and swaps in each
``dag`` event: the DAG and the steps table, with the job's facts, actions and logs
swapped out of band. The stream polls cheaply: it reads the job again only when the
views moved (or, for the logs, every second), off the event loop; it sends a comment
every 15 s to keep the connection open, and ends with the final state and an ``end``
event (which closes the page's connection) once the job is over.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from ledger.api.auth import services_of
from ledger.api.ui.access import UiReader, UiUser
from ledger.api.ui.pages.job_details import job_details, logs_seen
from ledger.api.ui.rendering import templates
from ledger.api.ui.routing import ui_router
from projections.job_queries import job_id_of

router = ui_router()
POLL_S = 0.2
LOGS_POLL_S = 1.0
KEEPALIVE_S = 15.0
LINE_BREAKS = re.compile(r"\r\n|\r|\n")


def sse_event(name: str, data: str) -> bytes:
    """One SSE event: each line of ``data`` on a ``data:`` line of its own."""
    lines = "".join(f"data: {line}\n" for line in LINE_BREAKS.split(data))
    return f"event: {name}\n{lines}\n".encode()


class JobWatch:
    """One job as a live page shows it: reads it when something may have changed, and
    says whether what it shows did."""

    def __init__(self, request: Request, user: UiUser, job_id: str) -> None:
        self.request = request
        self.user = user
        self.job_id = job_id
        self.services = services_of(request)
        self.logs_dir: Path = self.services.settings.logs_dir
        self.position = -1
        self.logs: tuple[tuple[str, int], ...] = ()
        self.read_at = 0.0
        self.shown = ""
        self.final = False

    def due(self) -> bool:
        """Whether the views moved since the last read, or the logs may have grown."""
        moved = self.services.views_position != self.position
        return moved or time.monotonic() - self.read_at >= LOGS_POLL_S

    def read(self) -> str | None:
        """The fragment to send when what the page shows changed (None when not)."""
        self.read_at = time.monotonic()
        position = self.services.views_position
        logs = logs_seen(self.logs_dir, self.job_id)
        if position == self.position and logs == self.logs:
            return None
        with self.services.pool.views() as views:
            details = job_details(views, self.job_id, self.logs_dir)
        self.position, self.logs, self.final = position, logs, details["final"]
        fragment = self.render(details)
        if fragment == self.shown:
            return None
        self.shown = fragment
        return fragment

    def render(self, details: dict[str, Any]) -> str:
        return templates.get_template("_job_live.html").render(
            request=self.request, user=self.user, **details
        )


@router.get("/jobs/{job_id}/live", response_class=StreamingResponse)
async def job_live(request: Request, user: UiReader, job_id: str) -> Response:
    """``text/event-stream`` of the job's DAG (event ``dag``) until the job is over."""
    watch = JobWatch(request, user, job_id_of(job_id))
    first = await anyio.to_thread.run_sync(watch.read)  # a job that is not there: 404 now

    async def events() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        if first is not None:
            yield sse_event("dag", first)
        quiet_since = time.monotonic()
        while not watch.final:
            await asyncio.sleep(POLL_S)
            if watch.due():
                fragment = await anyio.to_thread.run_sync(watch.read)
                if fragment is not None:
                    yield sse_event("dag", fragment)
                    quiet_since = time.monotonic()
            if time.monotonic() - quiet_since >= KEEPALIVE_S:
                yield b": keepalive\n\n"
                quiet_since = time.monotonic()
        yield sse_event("end", watch.job_id)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
