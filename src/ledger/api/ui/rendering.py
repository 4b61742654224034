"""Rendering the UI's pages: Jinja2 templates, autoescaped, with what every page shows."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ledger import __version__
from ledger.api.ui.access import current_user
from ledger.api.ui.session import CSRF_FIELD, CSRF_HEADER

# Scripts and styles come from /ui/static only: a user's string can never run as script.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=PackageLoader("ledger.api.ui", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,  # a misspelt name fails the page (and its test), not silently
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(app_version=__version__, csrf_field=CSRF_FIELD, csrf_header=CSRF_HEADER)


def is_htmx(request: Request) -> bool:
    """Whether htmx sent the request (it then wants a fragment, not a whole page)."""
    return request.headers.get("HX-Request") == "true"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context``, the user (whose role decides which actions
    show) and the request; a template names its page's title and heading itself."""
    values = {"as_of": None, "error": None, **context}
    page = templates.get_template(template).render(
        request=request, user=current_user(request), **values
    )
    return HTMLResponse(page, status_code=status_code, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """See Other: after a form's write, the browser loads ``url`` (reloading repeats nothing)."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
