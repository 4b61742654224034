"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts``): what ``mlflow-artifacts:/``
URIs and the client's HttpArtifactRepository read and write.

Uploads are streamed into the content-addressed artifact store (never whole in memory;
straight to their blob when a digest header gives their sha256) and recorded as
``TrackedArtifact.Uploaded`` events; downloads are checked against their digest like the
ledger's own. ``ledger/models/<name>/<version>/...`` is a read-only folder: the files of
registered model versions (what get-download-uri names). Multipart uploads and presigned
downloads are not offered: the client falls back to plain requests when the server says
so (NOT_IMPLEMENTED, with MLflow's messages).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import Query, Request, Response
from starlette.requests import ClientDisconnect

from ledger.api.auth import Contributor, Reader, services_of
from ledger.api.downloads import file_response
from ledger.api.mlflow.errors import (
    DATA_LOSS,
    INVALID_PARAMETER_VALUE,
    NOT_IMPLEMENTED,
    RESOURCE_DOES_NOT_EXIST,
    MlflowError,
    error_response,
    mlflow_router,
)
from ledger.api.request_body import body_reader, given_sha256
from ledger.api.routes.common import json_response, read_views, run_command
from ledger.artifact_integrity import BlobDamage
from ledger.artifacts.paths import safe_relative_path
from ledger.domain.model import StoredFile
from ledger.domain.tracked_artifact import RESERVED_FOLDER, check_artifact_path
from ledger.errors import IntegrityViolationError, NotFoundError
from ledger.logging import get_logger
from projections.tracked_artifacts import folder_entries
from projections.views import Views

log = get_logger(__name__)
PREFIX = "/api/2.0/mlflow-artifacts"
MODELS_FOLDER = f"{RESERVED_FOLDER}/models"
# What MLflow's server answers when its store cannot do these (the client checks the text).
NO_MULTIPART_UPLOAD = "Multipart upload is not supported for the current artifact repository"
NO_MULTIPART_DOWNLOAD = "Multipart download is not supported for the current artifact repository"
PathQuery = Annotated[str, Query(max_length=4096, description="A folder; empty: the root")]


def read_path(path: str) -> str:
    """A path to read, normalised; "" is the root. INVALID_PARAMETER_VALUE when unsafe
    (absolute, with ``..``...); a trailing slash is dropped."""
    return "" if path == "" else safe_relative_path(path.rstrip("/") or path)


def version_path(path: str) -> tuple[str, int, str] | None:
    """(model, version, path inside it) of ``ledger/models/<name>/<version>/...``; None
    for any other path. RESOURCE_DOES_NOT_EXIST for a version number that is none."""
    parts = path.split("/", 4)
    if len(parts) < 4 or "/".join(parts[:2]) != MODELS_FOLDER:
        return None
    if not parts[3].isdecimal() or len(parts[3]) > 18 or int(parts[3]) < 1:
        raise MlflowError(RESOURCE_DOES_NOT_EXIST, f"no model version at {path!r}")
    return parts[2], int(parts[3]), parts[4] if len(parts) == 5 else ""


def live_version_files(views: Views, name: str, number: int) -> list[StoredFile]:
    """The files of a registered version; NotFoundError when it is unknown or deleted."""
    found = views.version_of(name, number)
    if found["status"] == "deleted":
        raise NotFoundError(f"model version {name}:{number} is deleted")
    return found["files"]


def _refuse_damaged(ref: str, path: str, damage: BlobDamage) -> Response:
    log.error("artifact download refused: stored blob is damaged", path=path, **damage.to_dict())
    return error_response(DATA_LOSS, f"{ref}: {damage.describe()}; run `ledger verify --artifacts`")


router = mlflow_router(PREFIX, tracking=True)


@router.put("/artifacts/{path:path}")
async def upload_artifact(request: Request, principal: Contributor, path: str) -> Response:
    """Store the body as the artifact at ``path`` (replacing what was there). With the
    body's sha256 in a ``Content-Digest`` (or ``Repr-Digest``) header, the bytes go
    straight to their blob (one copy) and a body that hashes otherwise is refused."""
    checked = check_artifact_path(path)
    expected = given_sha256(request)
    reader = body_reader(request)

    def upload() -> None:
        run_command(
            request,
            principal,
            lambda ledger: ledger.tracked_artifacts.upload(
                checked, reader, expected_sha256=expected
            ),
        )

    try:
        await anyio.to_thread.run_sync(upload)
    except ClientDisconnect:
        log.info("artifact upload cut off by the client", path=checked)
        raise MlflowError(
            INVALID_PARAMETER_VALUE, f"the upload of {checked!r} was cut off"
        ) from None
    except IntegrityViolationError as error:  # only a body unlike its digest header
        raise MlflowError(
            INVALID_PARAMETER_VALUE, f"{checked!r} does not match its digest header: {error}"
        ) from None
    return json_response({})


@router.get("/artifacts/{path:path}")
def download_artifact(request: Request, _: Reader, path: str) -> Any:
    """The file at ``path``, streamed as stored, with its digest (``Repr-Digest``)."""
    wanted = read_path(path)
    in_version = version_path(wanted)
    if in_version is not None:
        name, number, inner = in_version
        files = read_views(request, lambda v: live_version_files(v, name, number))
        entry = next((f for f in files if f["path"] == inner), None)
        if entry is None:
            prefix = f"{inner}/" if inner else ""
            raise _not_a_file(wanted, any(f["path"].startswith(prefix) for f in files))
    else:
        entry = read_views(request, lambda v: _tracked_file(v, wanted))
    store = services_of(request).ledger.artifacts
    return file_response(store, wanted, entry, refuse=_refuse_damaged)


def _tracked_file(views: Views, path: str) -> StoredFile:
    try:
        found = views.tracked_artifact(path)
    except NotFoundError:
        raise _not_a_file(path, bool(path) and bool(views.tracked_artifacts(path))) from None
    return {"path": path, "sha256": found["sha256"], "size": found["size"]}


def _not_a_file(path: str, is_folder: bool) -> MlflowError:
    if is_folder:
        return MlflowError(INVALID_PARAMETER_VALUE, f"artifact path {path!r} is a folder")
    return MlflowError(RESOURCE_DOES_NOT_EXIST, f"no such artifact: {path!r}")


@router.get("/artifacts")
def list_artifacts(request: Request, _: Reader, path: PathQuery = "") -> Response:
    """One level of the folder ``path``: ``{"files": [{"path", "is_dir", "file_size"}]}``
    (names only, as MLflow's server answers); ``{}`` for a file or a missing folder."""
    folder = read_path(path)
    entries = read_views(request, lambda v: _folder(v, folder))
    files = [
        {"path": e["path"], "is_dir": True}
        if e["is_dir"]
        else {"path": e["path"], "is_dir": False, "file_size": e["size"]}
        for e in entries
    ]
    return json_response({"files": files} if files else {})


def _folder(views: Views, folder: str) -> list[dict[str, Any]]:
    try:
        in_version = version_path(folder)
    except MlflowError:  # not a version number: nothing there
        return []
    if in_version is None:
        return views.tracked_artifact_folder(folder)
    name, number, inner = in_version
    try:
        files = live_version_files(views, name, number)
    except NotFoundError:
        return []
    prefix = f"{inner}/" if inner else ""
    return folder_entries(
        {"path": f["path"][len(prefix) :], "size": f["size"]}
        for f in files
        if f["path"].startswith(prefix)
    )


@router.delete("/artifacts/{path:path}")
def delete_artifacts(request: Request, principal: Contributor, path: str) -> Response:
    """Delete the file at ``path``, or every file under the folder ``path`` (nothing
    there: nothing to do, as with MLflow's server)."""
    checked = check_artifact_path(path)
    paths = read_views(request, lambda v: _files_at(v, checked))
    if paths:
        run_command(request, principal, lambda ledger: ledger.tracked_artifacts.delete(paths))
    return json_response({})


def _files_at(views: Views, path: str) -> list[str]:
    under = [f"{path}/{item['path']}" for item in views.tracked_artifacts(path)]
    try:
        views.tracked_artifact(path)
    except NotFoundError:
        return under
    return [path, *under]


def _not_offered(message: str) -> Response:
    return error_response(NOT_IMPLEMENTED, message)


@router.post("/mpu/create/{path:path}")
@router.post("/mpu/complete/{path:path}")
@router.post("/mpu/abort/{path:path}")
def multipart_upload(path: str) -> Response:
    """Not offered: the client then uploads the file in one PUT."""
    return _not_offered(NO_MULTIPART_UPLOAD)


@router.get("/presigned/{path:path}")
def presigned_download(path: str) -> Response:
    """Not offered: the client then downloads through GET /artifacts/{path}."""
    return _not_offered(NO_MULTIPART_DOWNLOAD)
