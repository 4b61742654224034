"""Models and versions: upload, download, tags, aliases, archive, delete, search."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from ledger.api import version_files
from ledger.api.auth import Contributor, Principal, Reader, services_of
from ledger.api.downloads import ARTIFACT_DAMAGED
from ledger.api.form_stream import FormParts, form_boundary
from ledger.api.problems import PROBLEM_TYPE
from ledger.api.request_body import body_reader
from ledger.api.routes.common import (
    ReasonQuery,
    VersionNumber,
    json_response,
    optional_utc,
    read_json,
    read_written,
    run_command,
)
from ledger.api.schemas import AliasBody, AuditPage, ReasonBody, TagsBody, VersionPage
from ledger.api.version_upload import (
    UPLOAD_SCHEMA,
    StoredUploads,
    missing_files,
    receive_version_form,
)
from ledger.commands.models import ModelCommands
from ledger.errors import InvalidInputError
from ledger.logging import get_logger
from ledger.refs import check_name, parse_pairs
from ledger.shapes import ModelOut, VersionOut, committed_version
from projections.audit import AuditQuery
from projections.search import SearchQuery

router = APIRouter(tags=["models"])
log = get_logger(__name__)
UPLOAD_FORM_REF = {"$ref": f"#/components/schemas/{UPLOAD_SCHEMA}"}
UPLOAD_REQUEST_BODY = {
    "content": {"multipart/form-data": {"schema": UPLOAD_FORM_REF}},
    "required": True,
}
DAMAGED_RESPONSE: dict[str, Any] = {
    "description": f"A stored file is damaged (problem type {ARTIFACT_DAMAGED})",
    "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


@router.get("/models", response_model=list[ModelOut])
def list_models(request: Request, _: Reader) -> Any:
    """Every model, in registration order."""
    return read_json(request, lambda v: v.models())


@router.get("/models/{name}", response_model=ModelOut)
async def get_model(request: Request, _: Reader, name: str) -> Any:
    return read_json(request, lambda v: v.model(name))


@router.get("/models/{name}/versions", response_model=list[VersionOut])
def list_versions(
    request: Request,
    _: Reader,
    name: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    include_deleted: bool = False,
) -> Any:
    """The model's versions, newest first."""
    return read_json(
        request, lambda v: v.versions(name, limit=limit, include_deleted=include_deleted)
    )


@router.post(
    "/models/{name}/versions",
    response_model=VersionOut,
    status_code=201,
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
)
async def register_version(request: Request, principal: Contributor, name: str) -> Any:
    """Upload files (multipart) and register them as the model's next version.

    Each file goes into the artifact store while it arrives. With the `sha256` field sent
    before the files, each goes straight to its place in the store (one copy)."""
    check_name(name, "model name")
    framing = form_boundary(request.headers.get("content-type", ""))
    if framing is None:
        raise missing_files()
    return await anyio.to_thread.run_sync(
        lambda: _register_streamed(request, principal, name, framing)
    )


def _register_streamed(
    request: Request, principal: Principal, name: str, framing: tuple[bytes, str]
) -> Response:
    """Receive the form (its files stored as they arrive), then register them."""
    parts = FormParts(body_reader(request), *framing)
    with StoredUploads(services_of(request).ledger.artifacts) as uploads:
        try:
            form = receive_version_form(parts, uploads, name)
        except ClientDisconnect:
            log.info("a model upload was cut off by the client", model=name)
            raise InvalidInputError("the upload was cut off: nothing was registered") from None
        version = run_command(
            request,
            principal,
            lambda ledger: ledger.models.register_stored_files(
                name,
                uploads.keep,
                flavor=form.flavor,
                description=form.description,
                tags=form.json_field("tags"),
                metrics=form.json_field("metrics"),
                lineage=form.json_field("lineage"),  # type: ignore[arg-type]
                signature=form.json_field("signature"),
                reason=form.reason,
            ),
        )
    # Answered from the command's result, which is what the views will show (a test holds
    # them to it): a registration need not wait for them.
    return json_response(committed_version(version, principal.name), 201)


@router.get("/models/{name}/versions/{version}", response_model=VersionOut)
async def get_version(request: Request, _: Reader, name: str, version: VersionNumber) -> Any:
    return read_json(request, lambda v: v.version_of(name, version))


@router.get("/models/{name}/aliases/{alias}", response_model=VersionOut)
async def get_aliased_version(request: Request, _: Reader, name: str, alias: str) -> Any:
    """The version ``name@alias`` points at."""
    return read_json(request, lambda v: v.version(f"{name}@{alias}"))


@router.get(
    "/models/{name}/versions/{version}/files/{path:path}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 500: DAMAGED_RESPONSE},
)
def download_file(request: Request, _: Reader, name: str, version: VersionNumber, path: str) -> Any:
    """One file of the version, byte for byte as registered, with its `Repr-Digest`.

    A damaged stored file is a 500 problem (type `…:artifact-damaged`) or, when too large
    to check before sending, a transfer cut off before its end."""
    return version_files.download_file(request, name, version, path)


@router.get(
    "/models/{name}/versions/{version}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}, 500: DAMAGED_RESPONSE},
)
def download_version(request: Request, _: Reader, name: str, version: VersionNumber) -> Any:
    """Every file of the version as one zip (paths as registered); a damaged stored file
    is a 500 problem or a transfer cut off before the zip is complete."""
    return version_files.download_zip(request, name, version)


@router.put("/models/{name}/tags", status_code=204)
def tag_model(request: Request, principal: Contributor, name: str, body: TagsBody) -> None:
    run_command(
        request,
        principal,
        lambda ledger: ledger.models.set_tags(name, body.tags, reason=body.reason),
    )


@router.delete("/models/{name}/tags/{key}", status_code=204)
def untag_model(
    request: Request, principal: Contributor, name: str, key: str, reason: ReasonQuery = ""
) -> None:
    run_command(
        request,
        principal,
        lambda ledger: ledger.models.remove_tags(name, [key], reason=reason),
    )


@router.put("/models/{name}/versions/{version}/tags", status_code=204)
def tag_version(
    request: Request, principal: Contributor, name: str, version: VersionNumber, body: TagsBody
) -> None:
    ref = f"{name}:{version}"
    run_command(
        request,
        principal,
        lambda ledger: ledger.models.set_tags(ref, body.tags, reason=body.reason),
    )


@router.delete("/models/{name}/versions/{version}/tags/{key}", status_code=204)
def untag_version(
    request: Request,
    principal: Contributor,
    name: str,
    version: VersionNumber,
    key: str,
    reason: ReasonQuery = "",
) -> None:
    ref = f"{name}:{version}"
    run_command(
        request,
        principal,
        lambda ledger: ledger.models.remove_tags(ref, [key], reason=reason),
    )


@router.put("/models/{name}/aliases/{alias}", status_code=204)
def set_alias(
    request: Request, principal: Contributor, name: str, alias: str, body: AliasBody
) -> None:
    """Point ``name@alias`` at a version (moving it if it pointed elsewhere)."""
    run_command(
        request,
        principal,
        lambda ledger: ledger.models.set_alias(name, alias, body.version, reason=body.reason),
    )


@router.delete("/models/{name}/aliases/{alias}", status_code=204)
def remove_alias(
    request: Request, principal: Contributor, name: str, alias: str, reason: ReasonQuery = ""
) -> None:
    run_command(
        request,
        principal,
        lambda ledger: ledger.models.remove_alias(name, alias, reason=reason),
    )


@router.post("/models/{name}/versions/{version}/archive", response_model=VersionOut)
def archive_version(
    request: Request,
    principal: Contributor,
    name: str,
    version: VersionNumber,
    body: ReasonBody | None = None,
) -> Any:
    """Archive a version (refused with 409 while it is deployed)."""
    return _set_status(request, principal, name, version, body, ModelCommands.archive_version)


@router.post("/models/{name}/versions/{version}/restore", response_model=VersionOut)
def restore_version(
    request: Request,
    principal: Contributor,
    name: str,
    version: VersionNumber,
    body: ReasonBody | None = None,
) -> Any:
    return _set_status(request, principal, name, version, body, ModelCommands.restore_version)


def _set_status(
    request: Request,
    principal: Principal,
    name: str,
    version: int,
    body: ReasonBody | None,
    command: Callable[..., object],
) -> Any:
    """Run an archive or restore ``command`` on ``name:version``; the version as it now is."""
    reason = body.reason if body else ""
    run_command(
        request,
        principal,
        lambda ledger: command(ledger.models, f"{name}:{version}", reason=reason),
    )
    return read_written(request, lambda v: v.version_of(name, version))


@router.delete("/models/{name}/versions/{version}", status_code=204)
def delete_version(
    request: Request,
    principal: Contributor,
    name: str,
    version: VersionNumber,
    reason: ReasonQuery = "",
) -> None:
    """Delete a version (refused with 409 while it is deployed); its aliases go too."""
    ref = f"{name}:{version}"
    run_command(request, principal, lambda ledger: ledger.models.delete_version(ref, reason=reason))


@router.get("/search/versions", response_model=VersionPage)
def search_versions(
    request: Request,
    _: Reader,
    prefix: str = "",
    tag: Annotated[list[str], Query(description="KEY=VALUE on the version or its model")] = [],  # noqa: B006
    alias: str = "",
    flavor: str = "",
    since: Annotated[datetime | None, Query(description="Registered at or after")] = None,
    until: Annotated[datetime | None, Query(description="Registered before")] = None,
    include_deleted: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    page_token: str = "",
) -> Any:
    """Versions matching every criterion, newest first, paged."""
    query = SearchQuery(
        name_prefix=prefix,
        tags=parse_pairs(tag, "tag filter"),
        alias=alias,
        flavor=flavor,
        created_after=optional_utc(since),
        created_before=optional_utc(until),
        include_deleted=include_deleted,
        limit=limit,
        page_token=page_token,
    )
    return read_json(request, lambda v: v.search(query).to_dict())


@router.get("/models/{name}/history", response_model=AuditPage)
def model_history(
    request: Request,
    _: Reader,
    name: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: str = "",
) -> Any:
    """Events of the model and of its versions, in log order."""
    query = AuditQuery(kind="model", name=name, limit=limit, page_token=page_token)

    def history(views: Any) -> Any:
        views.model(name)
        return views.audit(query).to_dict()

    return read_json(request, history)
