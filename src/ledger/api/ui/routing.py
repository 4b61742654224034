"""The UI's routes: a router under /ui whose errors are pages people read, not JSON.

A refusal reads as the CLI prints it (``error: <message>``), with the HTTP status the API
gives the same error. A request htmx sent gets the message in the page's alert region
instead of a whole page; a browser that is not signed in is sent to the sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from ledger.api.auth import Forbidden
from ledger.api.problems import (
    RETRY_AFTER_S,
    STORE_ERRORS,
    UNSTORABLE_ERRORS,
    status_of,
    unstorable_message,
    validation_errors,
)
from ledger.api.ui.access import CsrfRefused, SignInNeeded
from ledger.api.ui.rendering import is_htmx, redirect, render
from ledger.errors import NotFoundError
from ledger.logging import get_logger
from ledger.outages import first_line

log = get_logger(__name__)
PREFIX = "/ui"


def ui_router() -> APIRouter:
    """A router for UI pages (under /ui, answering HTML, hidden from the API's docs)."""
    return APIRouter(
        prefix=PREFIX,
        route_class=UiRoute,
        include_in_schema=False,
        default_response_class=HTMLResponse,
    )


class UiRoute(APIRoute):
    """A route whose errors, sign-in and validation included, are answered as pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as error:  # every error: a person reads it, never a traceback
                return error_page(request, error)

        return handle


def local_page(path: str, otherwise: str) -> str:
    """``path`` when it is a page of this UI (a local path, never another site, as a
    ``next`` or ``back`` field may name), else ``otherwise``."""
    local = path.startswith(f"{PREFIX}/") and not path.startswith("//")
    return path if local and "\\" not in path and path.isprintable() else otherwise


def sign_in_url(request: Request) -> str:
    """The sign-in page, coming back to this page afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{PREFIX}/login?next={quote(here, safe='')}"


def error_page(request: Request, error: Exception) -> Response:
    """What the user sees for ``error``: a page (or an alert, for htmx) with its status."""
    if isinstance(error, SignInNeeded) and request.method == "GET" and not is_htmx(request):
        return redirect(sign_in_url(request))
    status, message = _status_and_message(request, error)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}
    if is_htmx(request):
        response = render(request, "_alert.html", status, message=message)
        response.headers.update({"HX-Retarget": "#alert", "HX-Reswap": "innerHTML", **headers})
        if isinstance(error, SignInNeeded):
            response.headers["HX-Redirect"] = sign_in_url(request)
        return response
    back = request.headers.get("Referer", "")
    same_site = back.startswith(f"{request.base_url}".rstrip("/") + PREFIX)
    response = render(
        request, "error.html", status, message=message, back=back if same_site else ""
    )
    response.headers.update(headers)
    return response


def _status_and_message(request: Request, error: Exception) -> tuple[int, str]:
    if isinstance(error, SignInNeeded):
        return 401, "your sign-in has ended: sign in again"
    if isinstance(error, CsrfRefused | Forbidden):
        return 403, str(error)
    if isinstance(error, RequestValidationError):
        problems = "; ".join(f"{e['location'].split('.')[-1]}: {e['message']}"
                             for e in validation_errors(error))  # fmt: skip
        return 422, f"invalid form: {problems}"
    if isinstance(error, HTTPException):
        return error.status_code, str(error.detail)
    if isinstance(error, UNSTORABLE_ERRORS):
        return 400, unstorable_message(error)
    if isinstance(error, STORE_ERRORS):
        log.warning("event store unavailable", path=request.url.path, error=str(error))
        return 503, f"the event store is unavailable: {first_line(error)}; try again shortly"
    status = status_of(error)
    if status is None:
        log.exception("unhandled error", path=request.url.path)
        return 500, "internal error; the server log has the details"
    if status >= 500:
        log.error("request failed", path=request.url.path, error=str(error))
    return status, str(error)


# Any other path under /ui: a page saying so (mounted after every page).
unknown_pages = ui_router()


@unknown_pages.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def unknown_page(request: Request, rest: str) -> Response:
    raise NotFoundError(f"there is no page {request.url.path}")
