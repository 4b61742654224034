"""Monitors: every monitor with its latest verdicts and open alerts; a monitor's page with
each feature's drift over its windows (charts against the thresholds), the windows and the
alerts; deleting a monitor (deployers)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response

from ledger.api.routes.common import read_views
from ledger.api.ui.access import UiDeployer, UiReader
from ledger.api.ui.actions import ReasonField, ui_command
from ledger.api.ui.graphics.drift_chart import drift_chart, number
from ledger.api.ui.pages.monitor_shapes import (
    alert_rows,
    drift_series,
    features_of,
    latest_status,
    threshold_text,
    window_rows,
)
from ledger.api.ui.rendering import redirect, render
from ledger.api.ui.routing import PREFIX, ui_router
from projections.views import Views

router = ui_router()
WindowLimit = Annotated[int, Query(ge=1, le=1_000, description="Windows shown, the latest")]


@router.get("/monitors")
def monitors_page(request: Request, _: UiReader) -> Response:
    """Every live monitor: what it watches, how, its latest window's verdicts and alerts."""

    def read(views: Views) -> list[dict[str, Any]]:
        latest = {row["name"]: row for row in views.monitors_now()}
        return [
            {**monitor, "status": latest_status(latest.get(monitor["name"], {}).get("results", []))}
            for monitor in views.monitors()
        ]

    monitors = read_views(request, read)
    return render(
        request, "monitors.html", monitors=monitors, every=every_text, thresholds=threshold_text
    )


@router.get("/monitors/{name}")
def monitor_page(request: Request, _: UiReader, name: str, limit: WindowLimit = 48) -> Response:
    """One monitor: per feature, its drift over the latest ``limit`` windows."""

    def read(views: Views) -> dict[str, Any]:
        monitor = views.monitor(name)  # NotFoundError: a 404 page
        windows = views.monitor_windows(name, limit)[::-1]  # the oldest first
        alerts = views.monitor_alerts(name, limit)
        return {"monitor": monitor, "windows": windows, "alerts": alerts}

    found = read_views(request, read)
    monitor, windows = found["monitor"], found["windows"]
    series = drift_series(windows)
    charts = [(s, drift_chart(s, f"drift-chart-{i}")) for i, s in enumerate(series)]
    return render(
        request,
        "monitor.html",
        monitor=monitor,
        every=every_text,
        thresholds=threshold_text,
        charts=charts,
        features=features_of(series),
        windows=window_rows(windows, series),
        alerts=alert_rows(found["alerts"], windows, monitor["alerts"]),
        limit=limit,
        number=number,
    )


@router.post("/monitors/{name}/delete")
def delete_monitor(
    request: Request, user: UiDeployer, name: str, reason: ReasonField = ""
) -> Response:
    """Stop the monitor (its windows and alerts stay in the history)."""
    ui_command(request, user, reason, lambda ledger, why: ledger.monitors.delete(name, reason=why))
    return redirect(f"{PREFIX}/monitors")


def every_text(seconds: int) -> str:
    """A window's length: whole days or hours."""
    if seconds % 86_400 == 0:
        days = seconds // 86_400
        return f"{days} day{'s' if days > 1 else ''}"
    hours = seconds // 3600
    return f"{hours} hour{'s' if hours > 1 else ''}"
