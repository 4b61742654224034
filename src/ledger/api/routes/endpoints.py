"""Endpoints, deployments, traffic, mirror and health: the deployer's routes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from ledger import correlation
from ledger.api.auth import Deployer, Reader, services_of
from ledger.api.routes.common import (
    ReasonQuery,
    correlation_of,
    json_response,
    read_json,
    read_written,
    run_command,
)
from ledger.api.schemas import (
    CollectionBody,
    DeploymentBody,
    EndpointBody,
    HealthBody,
    ScoreBody,
    ScoreOut,
    WeightsBody,
)
from ledger.domain.endpoint import Endpoint
from ledger.shapes import EndpointOut, committed_endpoint

router = APIRouter(tags=["endpoints"])


def _endpoint(request: Request, written: Endpoint) -> Any:
    """The endpoint after a write to it (see ``read_written``)."""
    return read_written(
        request, lambda v: v.endpoint(written.name), lambda: committed_endpoint(written)
    )


@router.get("/endpoints", response_model=list[EndpointOut])
def list_endpoints(request: Request, _: Reader) -> Any:
    return read_json(request, lambda v: v.endpoints())


@router.get("/endpoints/{name}", response_model=EndpointOut)
async def get_endpoint(request: Request, _: Reader, name: str) -> Any:
    return read_json(request, lambda v: v.endpoint(name))


@router.post("/endpoints", response_model=EndpointOut, status_code=201)
def create_endpoint(request: Request, principal: Deployer, body: EndpointBody) -> Any:
    written = run_command(
        request,
        principal,
        lambda ledger: ledger.endpoints.create(
            body.name, body.kind, description=body.description, reason=body.reason
        ),
    )
    return _endpoint(request, written)


@router.delete("/endpoints/{name}", status_code=204)
def delete_endpoint(
    request: Request, principal: Deployer, name: str, reason: ReasonQuery = ""
) -> None:
    """Delete an endpoint that has no deployments left (409 otherwise)."""
    run_command(request, principal, lambda ledger: ledger.endpoints.delete(name, reason=reason))


@router.post("/endpoints/{name}/deployments", response_model=EndpointOut, status_code=201)
def deploy(request: Request, principal: Deployer, name: str, body: DeploymentBody) -> Any:
    """Deploy a model version; it takes no traffic until the split gives it some."""
    written = run_command(
        request,
        principal,
        lambda ledger: ledger.endpoints.deploy(
            name,
            body.deployment,
            body.model,
            environment=body.environment,
            resources=body.resources.model_dump(exclude_none=True),  # type: ignore[arg-type]
            sampling_rate=body.sampling_rate,
            reason=body.reason,
        ),
    )
    return _endpoint(request, written)


@router.delete("/endpoints/{name}/deployments/{deployment}", status_code=204)
def undeploy(
    request: Request, principal: Deployer, name: str, deployment: str, reason: ReasonQuery = ""
) -> None:
    """Remove a deployment that receives no traffic (409 otherwise)."""
    run_command(
        request,
        principal,
        lambda ledger: ledger.endpoints.undeploy(name, deployment, reason=reason),
    )


@router.put("/endpoints/{name}/traffic", response_model=EndpointOut)
def set_traffic(request: Request, principal: Deployer, name: str, body: WeightsBody) -> Any:
    """Set the live split: whole percentages summing to 100; unnamed deployments get 0."""
    written = run_command(
        request,
        principal,
        lambda ledger: ledger.endpoints.set_traffic(name, body.weights, reason=body.reason),
    )
    return _endpoint(request, written)


@router.put("/endpoints/{name}/mirror", response_model=EndpointOut)
def set_mirror(request: Request, principal: Deployer, name: str, body: WeightsBody) -> Any:
    """Copy a share of requests to deployments with no live traffic ({} clears)."""
    written = run_command(
        request,
        principal,
        lambda ledger: ledger.endpoints.set_mirror(name, body.weights, reason=body.reason),
    )
    return _endpoint(request, written)


@router.put("/endpoints/{name}/deployments/{deployment}/collection", response_model=EndpointOut)
def set_collection(
    request: Request, principal: Deployer, name: str, deployment: str, body: CollectionBody
) -> Any:
    """Collect this share (0-1) of the deployment's requests from now on (0 stops); its
    replicas take it without restarting."""
    written = run_command(
        request,
        principal,
        lambda ledger: ledger.endpoints.set_sampling_rate(
            name, deployment, body.sampling_rate, reason=body.reason
        ),
    )
    return _endpoint(request, written)


@router.put("/endpoints/{name}/deployments/{deployment}/health", response_model=EndpointOut)
def report_health(
    request: Request, principal: Deployer, name: str, deployment: str, body: HealthBody
) -> Any:
    written = run_command(
        request,
        principal,
        lambda ledger: ledger.endpoints.report_health(
            name, deployment, body.status, body.detail, reason=body.reason
        ),
    )
    return _endpoint(request, written)


@router.post("/endpoints/{name}/score", response_model=ScoreOut)
async def score(
    request: Request,
    _: Reader,
    name: str,
    body: ScoreBody,
    deployment: Annotated[
        str,
        Header(
            alias="X-Ledger-Deployment",
            max_length=200,
            description="Score on this deployment instead of the traffic split",
        ),
    ] = "",
) -> Any:
    """Score on an online endpoint: a deployment picked by the traffic weights answers;
    mirrored deployments get a copy whose answer is dropped."""
    serve = await asyncio.to_thread(services_of(request).serve_endpoints)
    correlation_id = correlation_of(request)
    scored = await serve.score(name, body.inputs, deployment, correlation_id)
    answer = json_response(
        {"deployment": scored.deployment, "model": scored.model, "outputs": scored.outputs}
    )
    answer.headers[correlation.HEADER] = correlation_id  # what ground truth is joined by
    return answer
