"""Models and versions: upload, download, tags, aliases, archive, delete, search."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import StreamingResponse

from ledger.api import version_files
from ledger.api.auth import Contributor, Principal, Reader
from ledger.api.downloads import ARTIFACT_DAMAGED
from ledger.api.problems import PROBLEM_TYPE
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
from ledger.artifacts.paths import FileEntry, check_no_clashes, safe_relative_path
from ledger.artifacts.store import ArtifactStore
from ledger.commands.models import ModelCommands
from ledger.domain.model import FLAVORS
from ledger.errors import InvalidInputError
from ledger.refs import check_name, parse_pairs
from ledger.shapes import ModelOut, VersionOut, committed_version
from projections.audit import AuditQuery
from projections.search import SearchQuery

router = APIRouter(tags=["models"])
DAMAGED_RESPONSE: dict[str, Any] = {
    "description": f"A stored file is damaged (problem type {ARTIFACT_DAMAGED})",
    "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def _json_field(text: str, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidInputError(f"{what} must be a JSON object, got {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a JSON object, got {text[:80]!r}")
    return value


def _storing_uploads(files: list[UploadFile]) -> Callable[[ArtifactStore], list[FileEntry]]:
    """What stores the uploaded files, each read once into the artifact store, as entries
    at their (checked) relative paths, sorted like a folder's.

    Every path is checked first (length, duplicates, ``a`` beside ``a/b``), so a
    refused upload writes nothing."""
    paths = [safe_relative_path(upload.filename or "") for upload in files]
    check_no_clashes(paths)

    def store(artifacts: ArtifactStore) -> list[FileEntry]:
        entries = []
        for relative, upload in sorted(zip(paths, files, strict=True), key=lambda p: p[0]):
            digest, size = artifacts.put_stream(upload.file)
            entries.append(FileEntry(path=relative, sha256=digest, size=size))
        return entries

    return store


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


@router.post("/models/{name}/versions", response_model=VersionOut, status_code=201)
def register_version(
    request: Request,
    principal: Contributor,
    name: str,
    files: Annotated[
        list[UploadFile],
        File(description="The version's files; a filename may hold a relative path"),
    ],
    flavor: Annotated[str, Form(description=f"One of: {', '.join(FLAVORS)}")] = "custom",
    description: Annotated[str, Form()] = "",
    tags: Annotated[str, Form(description='JSON object, e.g. {"stage": "dev"}')] = "",
    metrics: Annotated[str, Form(description='JSON object, e.g. {"accuracy": 0.97}')] = "",
    lineage: Annotated[
        str, Form(description="JSON object: data, environment, derived_from, job")
    ] = "",
    signature: Annotated[str, Form(description="JSON object: inputs and outputs")] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Any:
    """Upload files (multipart) and register them as the model's next version."""
    check_name(name, "model name")
    store_files = _storing_uploads(files)
    version = run_command(
        request,
        principal,
        lambda ledger: ledger.models.register_stored_files(
            name,
            store_files,
            flavor=flavor,
            description=description,
            tags=_json_field(tags, "tags"),
            metrics=_json_field(metrics, "metrics"),
            lineage=_json_field(lineage, "lineage"),  # type: ignore[arg-type]
            signature=_json_field(signature, "signature"),
            reason=reason,
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
