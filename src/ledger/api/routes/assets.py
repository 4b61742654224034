"""Environments, data assets, pipelines and jobs, read from the assets and jobs views."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from ledger.api.auth import Contributor, Principal, Reader, services_of
from ledger.api.data_upload import (
    UnsupportedMediaType,
    server_side_path,
    server_side_url,
    upload_name,
    validated,
)
from ledger.api.openapi import PROBLEM_REF
from ledger.api.problems import PROBLEM_TYPE
from ledger.api.routes.common import VersionNumber, read_json, read_written, run_command
from ledger.api.schemas import (
    AssetOut,
    AssetVersionOut,
    CloneBody,
    DataBody,
    DataUploadForm,
    EnvironmentBody,
    JobBody,
    JobListItem,
    JobOut,
    PipelineBody,
    ProfiledOut,
    ReasonBody,
    RegisteredOut,
)
from ledger.artifacts.locations import is_object_store_url
from ledger.commands.assets import ProfiledVersion, RegisteredVersion
from ledger.domain.job import Job, JobStatus
from ledger.errors import InvalidInputError
from ledger.summaries import job_summary

router = APIRouter(tags=["environments, data, pipelines, jobs"])


def _registered(result: RegisteredVersion) -> dict[str, Any]:
    return {
        "name": result.name,
        "version": result.version,
        "ref": result.ref,
        "digest": result.digest,
        "created": result.created,
    }


def _written_job(request: Request, job: Job) -> Any:
    """A job just written, as the jobs view shows it (or as the command returned it)."""
    return read_written(request, lambda v: v.job(str(job.id)), lambda: job_summary(job))


# -- environments ----------------------------------------------------------------------


@router.post("/environments/{name}/versions", response_model=RegisteredOut, status_code=201)
def register_environment(
    request: Request, principal: Contributor, name: str, body: EnvironmentBody
) -> Any:
    """Register an environment spec; an identical spec returns its existing version."""
    result = run_command(
        request,
        principal,
        lambda ledger: ledger.assets.register_environment(name, body.spec, reason=body.reason),
    )
    return _registered(result)


@router.get("/environments/{name}", response_model=AssetOut)
async def get_environment(request: Request, _: Reader, name: str) -> Any:
    return read_json(request, lambda v: v.asset("environment", name))


@router.get("/environments/{name}/versions/{version}", response_model=AssetVersionOut)
async def get_environment_version(
    request: Request, _: Reader, name: str, version: VersionNumber
) -> Any:
    return read_json(request, lambda v: v.asset_version("environment", f"{name}:{version}"))


# -- data assets -----------------------------------------------------------------------


DATA_UPLOAD_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "A CSV or Parquet file"},
        "description": {"type": "string"},
        "reason": {"type": "string", "maxLength": 2000},
    },
}
DATA_REQUEST = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": DATA_UPLOAD_FORM},
        "application/json": {"schema": DataBody.model_json_schema()},
    },
}
UNSUPPORTED = {
    "description": "Neither JSON nor multipart/form-data",
    "content": {PROBLEM_TYPE: {"schema": PROBLEM_REF}},
}


@router.post(
    "/data/{name}/versions",
    response_model=RegisteredOut,
    status_code=201,
    openapi_extra={"requestBody": DATA_REQUEST},
    responses={415: UNSUPPORTED},
)
async def register_data(request: Request, principal: Contributor, name: str) -> Any:
    """Upload a CSV/Parquet file (multipart, field ``file``) to profile and keep, or name
    one the server reads (JSON ``{"path": ...}``: a path or an object's URL) under its
    LEDGER_DATA_ROOTS."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        async with request.form(max_files=1, max_fields=10) as form:
            return await run_in_threadpool(_register_upload, request, principal, name, form)
    if media != "application/json":
        raise UnsupportedMediaType(
            "send multipart/form-data with the file in field 'file', or application/json "
            'with {"path": ...}'
        )
    try:
        values = await request.json()
    except ValueError:
        raise InvalidInputError("the request body is not valid JSON") from None
    if not isinstance(values, dict):
        raise InvalidInputError('the JSON body must be an object such as {"path": ...}')
    body = validated(DataBody, values)
    return await run_in_threadpool(_register_path, request, principal, name, body)


def _register_path(request: Request, principal: Principal, name: str, body: DataBody) -> Any:
    settings = services_of(request).settings
    path: Path | str = (
        server_side_url(settings, body.path)
        if is_object_store_url(body.path)
        else server_side_path(settings, body.path)
    )
    result = run_command(
        request,
        principal,
        lambda ledger: ledger.assets.register_data(
            name, path, description=body.description, reason=body.reason
        ),
    )
    return _registered(result)


def _register_upload(request: Request, principal: Principal, name: str, form: FormData) -> Any:
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or len(form.getlist("file")) != 1:
        raise InvalidInputError("upload exactly one file, in the form field 'file'")
    fields = {k: v for k, v in form.multi_items() if k != "file"}
    body = validated(DataUploadForm, fields)
    filename = upload_name(upload.filename)
    result = run_command(
        request,
        principal,
        lambda ledger: ledger.assets.register_data_upload(
            name, upload.file, filename, description=body.description, reason=body.reason
        ),
    )
    return _registered(result)


@router.get("/data/{name}", response_model=AssetOut)
async def get_data(request: Request, _: Reader, name: str) -> Any:
    return read_json(request, lambda v: v.asset("data", name))


@router.get("/data/{name}/versions/{version}", response_model=AssetVersionOut)
async def get_data_version(request: Request, _: Reader, name: str, version: VersionNumber) -> Any:
    return read_json(request, lambda v: v.asset_version("data", f"{name}:{version}"))


@router.post("/data/{name}/versions/{version}/profile", response_model=ProfiledOut)
def profile_data(
    request: Request,
    principal: Contributor,
    name: str,
    version: VersionNumber,
    body: ReasonBody | None = None,
) -> Any:
    """Give a version registered before sketches were kept its sketch, read from its URI
    (409 when that data is gone or changed); one that has a sketch is answered as it is."""
    reason = body.reason if body else ""
    result: ProfiledVersion = run_command(
        request,
        principal,
        lambda ledger: ledger.assets.profile_data(f"{name}:{version}", reason=reason),
    )
    return {
        "name": result.name,
        "version": result.version,
        "ref": result.ref,
        "sketch": result.sketch,
        "created": result.created,
    }


# -- pipelines -------------------------------------------------------------------------


@router.post("/pipelines/{name}/versions", response_model=RegisteredOut, status_code=201)
def register_pipeline(
    request: Request, principal: Contributor, name: str, body: PipelineBody
) -> Any:
    """Register a pipeline DAG; an identical spec returns its existing version."""
    result = run_command(
        request,
        principal,
        lambda ledger: ledger.assets.register_pipeline(name, body.spec, reason=body.reason),
    )
    return _registered(result)


@router.post("/pipelines/{name}/clone", response_model=RegisteredOut, status_code=201)
def clone_pipeline(request: Request, principal: Contributor, name: str, body: CloneBody) -> Any:
    """Start pipeline ``name`` from a version of another; the source is untouched."""
    result = run_command(
        request,
        principal,
        lambda ledger: ledger.assets.clone_pipeline(body.source, name, reason=body.reason),
    )
    return _registered(result)


@router.get("/pipelines/{name}", response_model=AssetOut)
async def get_pipeline(request: Request, _: Reader, name: str) -> Any:
    return read_json(request, lambda v: v.asset("pipeline", name))


@router.get("/pipelines/{name}/versions/{version}", response_model=AssetVersionOut)
async def get_pipeline_version(
    request: Request, _: Reader, name: str, version: VersionNumber
) -> Any:
    return read_json(request, lambda v: v.asset_version("pipeline", f"{name}:{version}"))


# -- jobs ------------------------------------------------------------------------------


@router.post("/jobs", response_model=JobOut, status_code=201)
def submit_job(request: Request, principal: Contributor, body: JobBody) -> Any:
    """Record a run request with the snapshot needed to reproduce it."""
    job = run_command(
        request,
        principal,
        lambda ledger: ledger.jobs.submit(
            body.pipeline,
            parameters=body.parameters,
            executor=body.executor,
            reason=body.reason,
        ),
    )
    return _written_job(request, job)


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
    job = run_command(request, principal, lambda ledger: ledger.jobs.rerun(job_id, reason=reason))
    return _written_job(request, job)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(request: Request, _: Reader, job_id: str) -> Any:
    return read_json(request, lambda v: v.job(job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(
    request: Request, principal: Contributor, job_id: str, body: ReasonBody | None = None
) -> Any:
    reason = body.reason if body else ""
    job = run_command(request, principal, lambda ledger: ledger.jobs.cancel(job_id, reason=reason))
    return _written_job(request, job)
