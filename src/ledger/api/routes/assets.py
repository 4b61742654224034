"""Environments, data assets, pipelines and jobs.

Each is read from its aggregate; the job list comes from the jobs view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ledger.api.auth import Contributor, Reader, services_of
from ledger.api.routes.common import VersionNumber, read_json, run_command
from ledger.api.schemas import (
    AssetOut,
    AssetVersionOut,
    CloneBody,
    DataBody,
    EnvironmentBody,
    JobBody,
    JobListItem,
    JobOut,
    PipelineBody,
    ReasonBody,
    RegisteredOut,
)
from ledger.commands.assets import RegisteredVersion
from ledger.domain.job import JobStatus
from ledger.summaries import asset_summary, job_summary

router = APIRouter(tags=["environments, data, pipelines, jobs"])


def _registered(result: RegisteredVersion) -> dict[str, Any]:
    return {
        "name": result.name,
        "version": result.version,
        "ref": result.ref,
        "digest": result.digest,
        "created": result.created,
    }


def _ledger(request: Request) -> Any:
    return services_of(request).ledger


# -- environments ----------------------------------------------------------------------


@router.post("/environments/{name}/versions", response_model=RegisteredOut, status_code=201)
def register_environment(
    request: Request, principal: Contributor, name: str, body: EnvironmentBody
) -> Any:
    """Register an environment spec; an identical spec returns its existing version."""
    result = run_command(
        request,
        principal,
        lambda ledger: ledger.register_environment(name, body.spec, reason=body.reason),
    )
    return _registered(result)


@router.get("/environments/{name}", response_model=AssetOut)
def get_environment(request: Request, _: Reader, name: str) -> Any:
    return asset_summary(_ledger(request).get_environment(name))


@router.get("/environments/{name}/versions/{version}", response_model=AssetVersionOut)
def get_environment_version(request: Request, _: Reader, name: str, version: VersionNumber) -> Any:
    return _ledger(request).environment_version(f"{name}:{version}")


# -- data assets -----------------------------------------------------------------------


@router.post("/data/{name}/versions", response_model=RegisteredOut, status_code=201)
def register_data(request: Request, principal: Contributor, name: str, body: DataBody) -> Any:
    """Profile CSV/Parquet data the server can read (e.g. on a shared volume) and record it."""
    result = run_command(
        request,
        principal,
        lambda ledger: ledger.register_data_asset(
            name, Path(body.path), description=body.description, reason=body.reason
        ),
    )
    return _registered(result)


@router.get("/data/{name}", response_model=AssetOut)
def get_data(request: Request, _: Reader, name: str) -> Any:
    return asset_summary(_ledger(request).get_data_asset(name))


@router.get("/data/{name}/versions/{version}", response_model=AssetVersionOut)
def get_data_version(request: Request, _: Reader, name: str, version: VersionNumber) -> Any:
    return _ledger(request).data_asset_version(f"{name}:{version}")


# -- pipelines -------------------------------------------------------------------------


@router.post("/pipelines/{name}/versions", response_model=RegisteredOut, status_code=201)
def register_pipeline(
    request: Request, principal: Contributor, name: str, body: PipelineBody
) -> Any:
    """Register a pipeline DAG; an identical spec returns its existing version."""
    result = run_command(
        request,
        principal,
        lambda ledger: ledger.register_pipeline(name, body.spec, reason=body.reason),
    )
    return _registered(result)


@router.post("/pipelines/{name}/clone", response_model=RegisteredOut, status_code=201)
def clone_pipeline(request: Request, principal: Contributor, name: str, body: CloneBody) -> Any:
    """Start pipeline ``name`` from a version of another; the source is untouched."""
    result = run_command(
        request,
        principal,
        lambda ledger: ledger.clone_pipeline(body.source, name, reason=body.reason),
    )
    return _registered(result)


@router.get("/pipelines/{name}", response_model=AssetOut)
def get_pipeline(request: Request, _: Reader, name: str) -> Any:
    return asset_summary(_ledger(request).get_pipeline(name))


@router.get("/pipelines/{name}/versions/{version}", response_model=AssetVersionOut)
def get_pipeline_version(request: Request, _: Reader, name: str, version: VersionNumber) -> Any:
    return _ledger(request).pipeline_version(f"{name}:{version}")


# -- jobs ------------------------------------------------------------------------------


@router.post("/jobs", response_model=JobOut, status_code=201)
def submit_job(request: Request, principal: Contributor, body: JobBody) -> Any:
    """Record a run request with the snapshot needed to reproduce it."""
    job = run_command(
        request,
        principal,
        lambda ledger: ledger.submit_job(
            body.pipeline,
            parameters=body.parameters,
            executor=body.executor,
            reason=body.reason,
        ),
    )
    return job_summary(job)


@router.get("/jobs", response_model=list[JobListItem])
def list_jobs(
    request: Request,
    _: Reader,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this state")] = None,
    pipeline: Annotated[
        str, Query(max_length=300, description="Only jobs of this pipeline NAME[:VERSION]")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> Any:
    """Jobs, newest first."""
    return read_json(request, lambda v: v.jobs(status=status or "", pipeline=pipeline, limit=limit))


@router.post("/jobs/{job_id}/rerun", response_model=JobOut, status_code=201)
def rerun_job(
    request: Request, principal: Contributor, job_id: str, body: ReasonBody | None = None
) -> Any:
    """Submit the job again with the same snapshot: code, data, parameters and compute."""
    reason = body.reason if body else ""
    job = run_command(request, principal, lambda ledger: ledger.rerun_job(job_id, reason=reason))
    return job_summary(job)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(request: Request, _: Reader, job_id: str) -> Any:
    return job_summary(_ledger(request).get_job(job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(
    request: Request, principal: Contributor, job_id: str, body: ReasonBody | None = None
) -> Any:
    reason = body.reason if body else ""
    job = run_command(request, principal, lambda ledger: ledger.cancel_job(job_id, reason=reason))
    return job_summary(job)
