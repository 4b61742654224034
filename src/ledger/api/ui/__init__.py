"""The web UI, served by `ledger serve` under /ui: server-rendered pages (Jinja2), htmx for
partial updates and the live parts, static files vendored in the package (no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ledger.api.ui.pages import (
    audit,
    endpoint_actions,
    endpoints,
    job_live,
    jobs,
    model_actions,
    models,
    monitors,
    signin,
    versions,
)
from ledger.api.ui.routing import PREFIX, unknown_pages
from ledger.api.ui.session import SessionKeys
from ledger.settings import Settings

# The page modules, each with its router.
PAGES = (
    signin, models, model_actions, versions, endpoints, endpoint_actions, jobs, job_live, audit,
    monitors,
)  # fmt: skip


def install_ui(app: FastAPI, settings: Settings) -> None:
    """Serve the UI's pages and static files on ``app``."""
    app.state.ui_sessions = SessionKeys(settings)
    static = StaticFiles(directory=Path(__file__).parent / "static")
    app.mount(f"{PREFIX}/static", static, name="ui-static")
    for page in PAGES:
        app.include_router(page.router)
    app.include_router(unknown_pages)
