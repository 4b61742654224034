"""Health, Prometheus metrics, projection status and API tokens."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ledger.api.auth import Admin, MetricsAccess, Reader, services_of
from ledger.api.problems import RETRY_AFTER_S
from ledger.api.routes.common import ReasonQuery, read_json, run_command, settle_views
from ledger.api.schemas import HealthOut, NewTokenOut, ProjectionOut, TokenBody, TokenOut
from ledger.api.services import ApiServices
from ledger.bus.nats_auth import describe_nats_url
from ledger.bus.relay import relayed_position
from projections.tokens import list_tokens

router = APIRouter(tags=["operations"])
# A projection further behind than this makes the service "degraded".
DEGRADED_LAG_S = 30.0
# Events waiting this long with no relay publishing make the bus "stalled".
RELAY_STALLED_S = 30.0


class LedgerCollector(Collector):
    """Scrape-time gauges: the log's head (events appended) and each projection's lag."""

    def __init__(self, services: ApiServices) -> None:
        self.services = services

    def collect(self) -> Any:
        statuses = self.services.projection_status()
        head = GaugeMetricFamily("ledger_events_appended", "Events in the log (its head position)")
        head.add_metric([], statuses[0].head if statuses else 0)
        lag_events = GaugeMetricFamily(
            "ledger_projection_lag_events", "Events not yet applied", labels=["projection"]
        )
        lag_seconds = GaugeMetricFamily(
            "ledger_projection_lag_seconds",
            "Age of the oldest unapplied event",
            labels=["projection"],
        )
        view_errors = GaugeMetricFamily(
            "ledger_projection_errors",
            "Events a view could not store and passed (see `ledger projections status`)",
            labels=["projection"],
        )
        for status in statuses:
            lag_events.add_metric([status.name], status.lag_events)
            lag_seconds.add_metric([status.name], status.lag_seconds)
            view_errors.add_metric([status.name], status.errors)
        families = [head, lag_events, lag_seconds, view_errors, *self._monitors()]
        bus = bus_health(self.services, statuses[0].head if statuses else 0)
        if "relay" in bus:
            relay_lag = GaugeMetricFamily(
                "ledger_relay_lag_events", "Events not yet published to NATS"
            )
            relay_lag.add_metric([], bus["relay"]["lag_events"])
            families.append(relay_lag)
        if "connected" in bus.get("relay", {}):
            connected = GaugeMetricFamily(
                "ledger_relay_connected", "Whether this server's relay is connected to NATS"
            )
            connected.add_metric([], int(bus["relay"]["connected"]))
            families.append(connected)
            refused = GaugeMetricFamily(
                "ledger_relay_refused",
                "Whether this server's relay refuses the stream (it does not continue the log)",
            )
            refused.add_metric([], int(bool(bus["relay"]["refused"])))
            families.append(refused)
        return families

    def _monitors(self) -> list[GaugeMetricFamily]:
        """Each monitor's latest window, column by column, and its open alerts."""
        value = GaugeMetricFamily(
            "ledger_monitor_value",
            "A monitor's latest window: each signal's metric per column",
            labels=["monitor", "signal", "column", "metric"],
        )
        share = GaugeMetricFamily(
            "ledger_monitor_drift_share",
            "Share of columns drifting in a monitor's latest window",
            labels=["monitor", "signal"],
        )
        alert = GaugeMetricFamily(
            "ledger_monitor_alert",
            "1 while a monitor's signal is in alert",
            labels=["monitor", "signal"],
        )
        with self.services.pool.views() as views:
            monitors = views.monitors_now()
        for monitor in monitors:
            for result in monitor["results"]:
                if result["value"] is not None:
                    labels = [monitor["name"], result["signal"], result["column"], result["metric"]]
                    value.add_metric(labels, result["value"])
            for signal, drifted in monitor["drift_shares"].items():
                share.add_metric([monitor["name"], signal], drifted)
            for signal in monitor["alerts"]:
                alert.add_metric([monitor["name"], signal], 1)
        return [value, share, alert]


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
def health(request: Request) -> Any:
    """Whether the store answers, how far behind the views are, and the bus (no auth)."""
    services = services_of(request)
    location = services.settings.store_location
    store: dict[str, Any] = {"kind": location.kind, "location": location.describe()}
    # Where only: probing an object store that is away would wait out its retries.
    artifacts = {"location": services.ledger.artifacts.url}
    try:
        statuses = services.projection_status()
    except Exception as error:  # the store is down: say so rather than fail
        store |= {"reachable": False, "error": str(error).splitlines()[0] if str(error) else ""}
        body = {"status": "degraded", "store": store, "projections": {}, "bus": {},
                "artifacts": artifacts}  # fmt: skip
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    store |= {"reachable": True, "head": statuses[0].head if statuses else 0}
    lag_s = max((s.lag_seconds for s in statuses), default=0.0)
    projections = {
        "lag_events": max((s.lag_events for s in statuses), default=0),
        "lag_seconds": round(lag_s, 3),
        # Events a view could not store (it passed them): the view misses their changes.
        "errors": {s.name: s.errors for s in statuses if s.errors},
    }
    bus = bus_health(services, store["head"])
    healthy = lag_s <= DEGRADED_LAG_S and bus["state"] == "ok" and not projections["errors"]
    state = "ok" if healthy else "degraded"
    return {"status": state, "store": store, "projections": projections, "bus": bus,
            "artifacts": artifacts}  # fmt: skip


def bus_health(services: ApiServices, head: int) -> dict[str, Any]:
    """The bus: in process, or NATS with how far the relay has published (from its tracked
    position, whichever process runs it) and, when this server runs it, its connection."""
    settings = services.settings
    if not settings.nats_url:
        return {"kind": "in-process", "state": "ok"}
    with services.pool.views() as views:
        position, moved_at = relayed_position(views.db, settings.nats_stream) or (0, 0.0)
    relay: dict[str, Any] = {
        "running_here": services.relay is not None,
        "position": position,
        "lag_events": max(head - position, 0),
    }
    state = "ok"
    if relay["lag_events"] and time.time() - moved_at > RELAY_STALLED_S:
        state = "stalled"  # events wait and no relay has published for a while
    if services.relay is not None:
        status = services.relay.relay.status
        relay |= {
            "active": status.active,
            "connected": status.connected,
            "last_error": status.last_error,
            "refused": status.refused,
        }
        if not status.connected:
            state = "disconnected"
        if status.refused:  # the stream does not continue the log: `ledger relay --reset`
            state = "refused"
    return {
        "kind": "nats",
        "url": describe_nats_url(settings.nats_url),
        "stream": settings.nats_stream,
        "state": state,
        "relay": relay,
    }


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
    dependencies=[MetricsAccess],
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests and latency by route, events appended, projection lag.
    Needs a token of any role, unless the server sets LEDGER_API_PUBLIC_METRICS=true."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/projections", response_model=list[ProjectionOut])
def projections(request: Request, _: Reader) -> Any:
    """Where each projection stands against the head of the log."""
    return [status.to_dict() for status in services_of(request).projection_status()]


@router.get("/tokens", response_model=list[TokenOut])
def tokens(request: Request, _: Admin) -> Any:
    return read_json(request, lambda v: list_tokens(v.db))


@router.post("/tokens", response_model=NewTokenOut, status_code=201)
def create_token(request: Request, principal: Admin, body: TokenBody) -> Any:
    """Issue a token; its secret is in this response only."""
    issued = run_command(
        request,
        principal,
        lambda ledger: ledger.tokens.create(body.name, body.role, reason=body.reason),
    )
    settle_views(request)  # the next request's auth reads the views
    return {"name": issued.name, "role": issued.role, "token": issued.secret}


@router.delete("/tokens/{name}", status_code=204)
def revoke_token(request: Request, principal: Admin, name: str, reason: ReasonQuery = "") -> None:
    run_command(request, principal, lambda ledger: ledger.tokens.revoke(name, reason=reason))
    settle_views(request)  # refused from the next request on
