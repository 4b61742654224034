"""Monitors: creating them, and reading their windows and alerts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ledger.api.auth import Deployer, Reader
from ledger.api.monitor_schemas import MonitorBody, MonitorOut, MonitorWindowOut
from ledger.api.routes.common import ReasonQuery, read_json, read_written, run_command
from ledger.domain.monitor import Threshold, parse_duration

router = APIRouter(tags=["monitors"])
Limit = Annotated[int, Query(ge=1, le=1_000, description="How many, the latest first")]


@router.get("/monitors", response_model=list[MonitorOut])
def list_monitors(request: Request, _: Reader, endpoint: str = "") -> Any:
    return read_json(request, lambda v: v.monitors(endpoint))


@router.get("/monitors/{name}", response_model=MonitorOut)
def get_monitor(request: Request, _: Reader, name: str) -> Any:
    return read_json(request, lambda v: v.monitor(name))


@router.get("/monitors/{name}/runs", response_model=list[MonitorWindowOut])
def monitor_runs(request: Request, _: Reader, name: str, limit: Limit = 50) -> Any:
    """The monitor's evaluated windows, with each column's metric and verdict."""
    return read_json(request, lambda v: v.monitor_windows(name, limit))


@router.get("/monitors/{name}/alerts")
def monitor_alerts(request: Request, _: Reader, name: str, limit: Limit = 50) -> Any:
    """Alerts raised and resolved (DriftDetected, DriftResolved...), the latest first."""
    return read_json(request, lambda v: (v.monitor(name), v.monitor_alerts(name, limit))[1])


@router.post("/monitors", response_model=MonitorOut, status_code=201)
def create_monitor(request: Request, principal: Deployer, body: MonitorBody) -> Any:
    every_s = int(parse_duration(body.every, "every").total_seconds())
    thresholds: dict[str, Threshold] = {
        column: {"metric": t.metric, "value": t.value} for column, t in body.thresholds.items()
    }
    run_command(
        request,
        principal,
        lambda ledger: ledger.monitors.create(
            body.name,
            endpoint=body.endpoint,
            deployment=body.deployment,
            reference=body.reference,
            signals=list(body.signals),
            every_s=every_s,
            thresholds=thresholds,
            features=body.features,
            min_samples=body.min_samples,
            drift_share=body.drift_share,
            reason=body.reason,
        ),
    )
    return read_written(request, lambda v: v.monitor(body.name))


@router.delete("/monitors/{name}", status_code=204)
def delete_monitor(
    request: Request, principal: Deployer, name: str, reason: ReasonQuery = ""
) -> None:
    run_command(request, principal, lambda ledger: ledger.monitors.delete(name, reason=reason))
