"""MLflow's model-version endpoints (``/api/2.0/mlflow/model-versions/...``).

``create`` registers the files behind an MLflow source (``resolve_source``) as the model's
next ledger version, recording where they came from (``origin``). Stages are refused:
MLflow deprecated them for aliases, and the ledger has none.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Response

from ledger.api.auth import Contributor, Principal, Reader, services_of
from ledger.api.mlflow.answers import empty, page_answer
from ledger.api.mlflow.errors import RESOURCE_DOES_NOT_EXIST, MlflowError, mlflow_router
from ledger.api.mlflow.fields import Fields, RequestFields, invalid, reason_of
from ledger.api.mlflow.registry_wire import download_uri, model_version, version_record_of
from ledger.api.mlflow.search_filter import VERSION_ATTRIBUTES, VERSION_ORDER_KEYS, record_search
from ledger.api.mlflow.sources import ModelSource, resolve_source
from ledger.api.routes.common import json_response, read_views, read_written, run_command
from ledger.domain.model import Lineage, Origin
from ledger.errors import InvalidInputError, RuleViolationError
from ledger.ledger import Ledger
from projections.assets import data_version_with_digest
from projections.registry_filters import MAX_RESULTS, search_version_records
from projections.registry_records import VersionRecord, model_exists, version_record
from projections.views import Views

router = mlflow_router("/api/2.0/mlflow/model-versions")
STAGES_REFUSED = (
    "stages are deprecated in MLflow and not supported; use aliases (set_registered_model_alias)"
)


def read_version(request: Request, name: str, number: int) -> VersionRecord:
    """A live version from the views (RESOURCE_DOES_NOT_EXIST for a missing or deleted one)."""
    return read_views(request, lambda v: version_record(v.db, name, number))


def _model_exists(request: Request, name: str) -> bool:
    """Whether the model exists, before its source is read: from the views as they are, and
    only if they do not show it yet, once they include this server's writes."""
    with services_of(request).pool.views() as views:
        if model_exists(views.db, name):
            return True
    return read_views(request, lambda v: model_exists(v.db, name))


def _name_and_version(fields: Fields) -> tuple[str, int]:
    return fields.text("name", required=True), fields.version()


def change_version(
    request: Request,
    principal: Principal,
    ref: tuple[str, int],
    command: Callable[[Ledger], object],
    missing_tag: str = "",
) -> None:
    """Run ``command`` on version ``ref``. When it is refused, the views tell why (only
    then: a write never waits for them): a deleted version is RESOURCE_DOES_NOT_EXIST,
    and removing a ``missing_tag`` is no error (as in MLflow)."""
    try:
        run_command(request, principal, command)
    except (RuleViolationError, InvalidInputError) as refused:
        record = read_version(request, *ref)
        if not (missing_tag and isinstance(refused, InvalidInputError)):
            raise
        if missing_tag in record["tags"]:
            raise


def _lineage(views: Views, datasets: list[dict[str, str]]) -> tuple[Lineage, list[dict[str, str]]]:
    """The run's datasets that are ledger data asset versions (same name, and a digest that
    starts the version's: see ``data_version_with_digest``) as lineage, and the others, kept
    as they were."""
    data, others = [], []
    for dataset in datasets:
        name, digest = dataset.get("name", ""), dataset.get("digest", "")
        number = data_version_with_digest(views.db, name, digest) if name and digest else None
        if number is None:
            others.append(dataset)
        else:
            data.append(f"{name}:{number}")
    lineage: Lineage = {"data": data} if data else {}
    return lineage, others


def _origin(fields: Fields, source: ModelSource, others: list[dict[str, str]]) -> Origin:
    origin: Origin = {
        "system": "mlflow",
        "source": fields.text("source"),
        "run_id": source.run_id or fields.text("run_id"),
        "model_id": source.model_id or fields.text("model_id"),
        "params": dict(source.params),
    }
    if run_link := fields.text("run_link"):
        origin["run_link"] = run_link
    if others:
        origin["datasets"] = others
    return origin


@router.post("/create")
def create_model_version(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    """Register the files of ``source`` as the model's next version (the model must exist,
    as in MLflow). Answered from the command's result: it need not wait for the views."""
    name = fields.text("name", required=True)
    source_uri = fields.text("source", required=True)
    description, tags = fields.text("description"), fields.tags()
    if not _model_exists(request, name):
        raise MlflowError(RESOURCE_DOES_NOT_EXIST, f"registered model {name!r} does not exist")
    source = resolve_source(
        services_of(request), source_uri, fields.text("run_id"), fields.text("model_id")
    )
    lineage, others = (
        read_views(request, lambda v: _lineage(v, source.datasets)) if source.datasets else ({}, [])
    )
    origin = _origin(fields, source, others)
    reason = reason_of(request, description or "MLflow: create_model_version")
    version = run_command(
        request,
        principal,
        lambda ledger: ledger.models.register_stored_files(
            name,
            lambda store: source.files,
            flavor=source.flavor,
            signature=source.signature,
            metrics=source.metrics,
            tags=tags,
            description=description,
            lineage=lineage,
            origin=origin,
            reason=reason,
            must_exist=True,  # as in MLflow: create_registered_model comes first
        ),
    )
    record = version_record_of(version, principal.name)
    return json_response({"model_version": model_version(record)})


@router.get("/get")
async def get_model_version(request: Request, _: Reader, fields: RequestFields) -> Response:
    record = read_version(request, *_name_and_version(fields))
    return json_response({"model_version": model_version(record)})


@router.patch("/update")
def update_model_version(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    """Change the description (given: as MLflow, an update without one changes nothing)."""
    name, number = _name_and_version(fields)
    description = fields.text("description")
    reason = reason_of(request, "MLflow: update_model_version")
    if fields.has("description"):
        change_version(
            request,
            principal,
            (name, number),
            lambda ledger: ledger.models.describe(f"{name}:{number}", description, reason=reason),
        )
    record = read_written(request, lambda v: version_record(v.db, name, number))
    if isinstance(record, Response):
        return record
    return json_response({"model_version": model_version(record)})


@router.delete("/delete")
def delete_model_version(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    """Delete a version (RESOURCE_CONFLICT while it is deployed); its number is never reused."""
    name, number = _name_and_version(fields)
    reason = reason_of(request, "MLflow: delete_model_version")
    change_version(
        request,
        principal,
        (name, number),
        lambda ledger: ledger.models.delete_version(f"{name}:{number}", reason=reason),
    )
    return empty()


@router.get("/search")
def search_model_versions(request: Request, _: Reader, fields: RequestFields) -> Response:
    search = record_search(fields, VERSION_ATTRIBUTES, VERSION_ORDER_KEYS, MAX_RESULTS)
    page = read_views(request, lambda v: search_version_records(v.db, search))
    return page_answer("model_versions", page, model_version)


@router.get("/get-download-uri")
async def get_model_version_download_uri(
    request: Request, _: Reader, fields: RequestFields
) -> Response:
    name, number = _name_and_version(fields)
    read_version(request, name, number)
    return json_response({"artifact_uri": download_uri(name, number)})


@router.post("/set-tag")
def set_model_version_tag(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    name, number = _name_and_version(fields)
    tags = {fields.text("key", required=True): fields.text("value")}
    reason = reason_of(request, "MLflow: set_model_version_tag")
    change_version(
        request,
        principal,
        (name, number),
        lambda ledger: ledger.models.set_tags(f"{name}:{number}", tags, reason=reason),
    )
    return empty()


@router.delete("/delete-tag")
def delete_model_version_tag(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    """Remove a tag; like MLflow, a tag the version does not have is no error."""
    name, number = _name_and_version(fields)
    key = fields.text("key", required=True)
    reason = reason_of(request, "MLflow: delete_model_version_tag")
    change_version(
        request,
        principal,
        (name, number),
        lambda ledger: ledger.models.remove_tags(f"{name}:{number}", [key], reason=reason),
        missing_tag=key,
    )
    return empty()


@router.post("/transition-stage")
def transition_model_version_stage(request: Request, _: Contributor) -> Response:
    raise invalid(STAGES_REFUSED)
