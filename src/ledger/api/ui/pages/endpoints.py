"""The endpoints list and an endpoint's page: its deployments, the traffic split now, and
the traffic timeline (who moved traffic when and why), now or as of a past point."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from ledger.api.routes.common import read_views
from ledger.api.ui.access import UiReader
from ledger.api.ui.as_of import AsOfQuery, point_of
from ledger.api.ui.graphics.traffic import colours, split_bar, traffic_chart
from ledger.api.ui.rendering import render
from ledger.api.ui.routing import ui_router
from projections.traffic_history import TrafficHistory
from projections.views import PointInTime, Views

router = ui_router()
# The timeline's rows on the page (newest first); the audit log has every one.
TIMELINE_ROWS = 100


@router.get("/endpoints")
def endpoints_page(request: Request, _: UiReader, as_of: AsOfQuery = "") -> Response:
    """Every endpoint with its deployments and split (or as they were at a past point)."""

    def read(views: Views) -> dict[str, Any]:
        at = point_of(views, as_of)
        if at is None:
            return {"endpoints": [_listed_now(e) for e in views.endpoints()], "as_of": None}
        past = views.registry(at)["endpoints"]
        return {"endpoints": [_listed_past(n, e) for n, e in past.items()], "as_of": at}

    return render(request, "endpoints.html", as_of_text=as_of, **read_views(request, read))


def _listed_now(endpoint: Any) -> dict[str, Any]:
    return {
        "name": endpoint["name"],
        "kind": endpoint["kind"],
        "description": endpoint["description"],
        "deleted": endpoint["deleted"],
        "serving": _serving(endpoint["deployments"]),
        "traffic": endpoint["traffic"],
    }


def _listed_past(name: str, endpoint: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "kind": endpoint["kind"],
        "description": endpoint["description"],
        "deleted": endpoint["status"] == "deleted",
        "serving": _serving(endpoint["deployments"]),
        "traffic": endpoint["traffic"],
    }


def _serving(deployments: dict[str, Any]) -> dict[str, str]:
    """Deployment -> the model version it serves, as NAME:VERSION."""
    return {name: f"{d['model']}:{d['version']}" for name, d in deployments.items()}


@router.get("/endpoints/{name}")
def endpoint_page(request: Request, _: UiReader, name: str, as_of: AsOfQuery = "") -> Response:
    """An endpoint's deployments, split and traffic timeline (now, or as of a past point)."""

    def read(views: Views) -> dict[str, Any]:
        at = point_of(views, as_of)
        if at is None:
            with views.db.snapshot():  # the endpoint and its history at the same point
                endpoint: dict[str, Any] = dict(views.endpoint(name))
                history = views.traffic_history(name)
        else:
            endpoint = _endpoint_then(views.endpoint_as_of(name, at))
            history = views.traffic_history(name, at)
        return _page(endpoint, history, at)

    return render(request, "endpoint.html", as_of_text=as_of, **read_views(request, read))


def _endpoint_then(past: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as of a past point, in the shape of one now."""
    deployments = {
        name: {**d, "traffic": past["traffic"].get(name, 0), "mirror": past["mirror"].get(name, 0)}
        for name, d in past["deployments"].items()
    }
    return {**past, "deployments": deployments, "deleted": past["status"] == "deleted"}


def _page(
    endpoint: dict[str, Any], history: TrafficHistory, at: PointInTime | None
) -> dict[str, Any]:
    # Colours by first deployment: a deployment keeps its colour now and in the past.
    palette = colours(
        [*(d for c in history.changes for d in c["serving"]), *sorted(endpoint["deployments"])]
    )
    deployments = [
        _deployment_row(name, d, history) for name, d in sorted(endpoint["deployments"].items())
    ]
    split = {d["name"]: d["traffic"] for d in deployments}
    moves = _split_moves(history.changes)
    return {
        "endpoint": endpoint,
        "deployments": deployments,
        "split_bar": split_bar(split, palette, f"Traffic split of {endpoint['name']}"),
        "chart": traffic_chart(moves, palette) if moves else None,
        "timeline": [_timeline_row(c) for c in reversed(history.changes[-TIMELINE_ROWS:])],
        "timeline_total": len(history.changes),
        "as_of": at,
    }


def _deployment_row(name: str, deployment: Any, history: TrafficHistory) -> dict[str, Any]:
    deployed = history.deployed.get(name, {})
    resources = deployment["resources"]
    return {
        "name": name,
        "model": deployment["model"],
        "version": deployment["version"],
        "environment": deployment["environment"],
        "resources": resources,
        "max_replicas": resources.get("max_replicas", resources["replicas"]),
        "health": deployment["health"],
        "health_detail": deployment["health_detail"],
        "health_at": _when(history.health_at.get(name, "")),
        "sampling_rate": float(deployment.get("sampling_rate", 0.0)),
        "traffic": deployment["traffic"],
        "mirror": deployment["mirror"],
        "deployed_by": deployment.get("deployed_by") or deployed.get("by", ""),
        "deployed_at": _when(deployment.get("deployed_at") or deployed.get("at", "")),
    }


def _split_moves(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes after which the live split differed from the one before."""
    moves: list[dict[str, Any]] = []
    before: dict[str, int] = {}
    for change in changes:
        if change["traffic"] != before:
            moves.append(change)
            before = change["traffic"]
    return moves


def _timeline_row(change: dict[str, Any]) -> dict[str, Any]:
    return {
        "position": change["position"],
        "when": _when(change["time"]),
        "time": change["time"],
        "actor": change["actor"],
        "reason": change["reason"],
        "what": _what(change),
        "change": change["change"],
        "split": [
            (d, share, change["serving"].get(d, "")) for d, share in change["traffic"].items()
        ],
        "mirror": list(change["mirror"].items()),
        "correlation_id": change["correlation_id"],
    }


def _what(change: dict[str, Any]) -> str:
    """What a change did, in a few words."""
    details, kind = change["details"], change["change"]
    deployment = details.get("deployment", "")
    if kind == "Created":
        return f"endpoint created ({details.get('kind', '')})"
    if kind == "DeploymentCreated":
        return f"deployed {deployment} ({details['model']}:{details['version']})"
    if kind == "DeploymentDeleted":
        return f"undeployed {deployment}"
    if kind == "HealthReported":
        detail = f": {details['detail']}" if details.get("detail") else ""
        return f"{deployment} health {details['status']}{detail}"
    if kind == "Deleted":
        return "endpoint deleted"
    return {"TrafficChanged": "traffic split changed", "MirrorChanged": "mirror changed"}[kind]


def _when(time: str) -> str:
    """An ISO time as people read it (UTC, to the second); "" stays ""."""
    return f"{time[:10]} {time[11:19]} UTC" if time else ""
