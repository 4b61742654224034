"""MLflow's registered-model endpoints (``/api/2.0/mlflow/registered-models/...``).

Every write is a ledger command run as the token's holder (Contributor), with the reason
from ``X-Ledger-Reason``, else the description given, else the MLflow call's name; reads
(Reader) answer from the views. Rename and delete move or end the model with all its
versions in one atomic save (see ``ledger.commands.model_names``).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Response

from ledger.api.auth import Contributor, Reader
from ledger.api.mlflow.answers import empty, page_answer
from ledger.api.mlflow.errors import mlflow_router
from ledger.api.mlflow.fields import RequestFields, reason_of
from ledger.api.mlflow.registry_wire import model_record_of, model_version, registered_model
from ledger.api.mlflow.search_filter import MODEL_ATTRIBUTES, MODEL_ORDER_KEYS, record_search
from ledger.api.routes.common import json_response, read_views, read_written, run_command
from ledger.errors import InvalidInputError
from projections.registry_filters import search_model_records
from projections.registry_records import (
    ModelRecord,
    VersionRecord,
    aliased_version_record,
    model_record,
)
from projections.views import Views

router = mlflow_router("/api/2.0/mlflow/registered-models")


def answer_model(
    request: Request, name: str, committed: Callable[[], ModelRecord] | None = None
) -> Response:
    """``{"registered_model": ...}`` from the views once they include the write (if they
    lag behind it: from what the command returned, else 202 saying it committed)."""
    record = read_written(request, lambda v: model_record(v.db, name), committed)
    if isinstance(record, Response):
        return record
    return json_response({"registered_model": registered_model(record)})


def read_model(request: Request, name: str) -> ModelRecord:
    return read_views(request, lambda v: model_record(v.db, name))


@router.post("/create")
def create_registered_model(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    name = fields.text("name", required=True)
    description = fields.text("description")
    tags = fields.tags()
    reason = reason_of(request, description or "MLflow: create_registered_model")
    model = run_command(
        request,
        principal,
        lambda ledger: ledger.models.create_model(
            name, description=description, tags=tags, reason=reason
        ),
    )
    return answer_model(request, name, lambda: model_record_of(model, principal.name))


@router.get("/get")
async def get_registered_model(request: Request, _: Reader, fields: RequestFields) -> Response:
    record = read_model(request, fields.text("name", required=True))
    return json_response({"registered_model": registered_model(record)})


@router.patch("/update")
def update_registered_model(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    name = fields.text("name", required=True)
    description = fields.text("description")
    reason = reason_of(request, "MLflow: update_registered_model")
    run_command(
        request, principal, lambda ledger: ledger.models.describe(name, description, reason=reason)
    )
    return answer_model(request, name)


@router.post("/rename")
def rename_registered_model(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    name = fields.text("name", required=True)
    new_name = fields.text("new_name", required=True)
    reason = reason_of(request, f"MLflow: rename_registered_model to {new_name}")
    model = run_command(
        request,
        principal,
        lambda ledger: ledger.models.rename_model(name, new_name, reason=reason),
    )
    return answer_model(request, new_name, lambda: model_record_of(model, principal.name))


@router.delete("/delete")
def delete_registered_model(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    name = fields.text("name", required=True)
    reason = reason_of(request, "MLflow: delete_registered_model")
    run_command(request, principal, lambda ledger: ledger.models.delete_model(name, reason=reason))
    return empty()


@router.get("/search")
def search_registered_models(request: Request, _: Reader, fields: RequestFields) -> Response:
    search = record_search(fields, MODEL_ATTRIBUTES, MODEL_ORDER_KEYS, 100)
    page = read_views(request, lambda v: search_model_records(v.db, search))
    return page_answer("registered_models", page, registered_model)


def _latest_versions(views: Views, name: str, stages: list[str]) -> list[VersionRecord]:
    latest = model_record(views.db, name)["latest"]
    # Every ledger version is in stage "None": asked for other stages only, there is none.
    return latest if not stages or "none" in {s.lower() for s in stages} else []


@router.api_route("/get-latest-versions", methods=["GET", "POST"])
async def get_latest_versions(request: Request, _: Reader, fields: RequestFields) -> Response:
    """The newest live version (``stages``: only when one of them is "None")."""
    name, stages = fields.text("name", required=True), fields.texts("stages")
    versions = read_views(request, lambda v: _latest_versions(v, name, stages))
    return json_response({"model_versions": [model_version(v) for v in versions]})


@router.post("/set-tag")
def set_registered_model_tag(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    name, key = fields.text("name", required=True), fields.text("key", required=True)
    tags = {key: fields.text("value")}
    reason = reason_of(request, "MLflow: set_registered_model_tag")
    run_command(
        request, principal, lambda ledger: ledger.models.set_tags(name, tags, reason=reason)
    )
    return empty()


@router.delete("/delete-tag")
def delete_registered_model_tag(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    """Remove a tag; like MLflow, a tag the model does not have is no error."""
    name, key = fields.text("name", required=True), fields.text("key", required=True)
    reason = reason_of(request, "MLflow: delete_registered_model_tag")
    try:
        run_command(
            request, principal, lambda ledger: ledger.models.remove_tags(name, [key], reason=reason)
        )
    except InvalidInputError:
        if key in read_model(request, name)["tags"]:  # refused for another reason
            raise
    return empty()


@router.post("/alias")
def set_registered_model_alias(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    name, alias = fields.text("name", required=True), fields.text("alias", required=True)
    version = fields.version()
    reason = reason_of(request, "MLflow: set_registered_model_alias")
    run_command(
        request,
        principal,
        lambda ledger: ledger.models.set_alias(name, alias, version, reason=reason),
    )
    return empty()


@router.delete("/alias")
def delete_registered_model_alias(
    request: Request, principal: Contributor, fields: RequestFields
) -> Response:
    """Remove an alias; like MLflow, an alias the model does not have is no error."""
    name, alias = fields.text("name", required=True), fields.text("alias", required=True)
    if alias in read_model(request, name)["aliases"]:
        reason = reason_of(request, "MLflow: delete_registered_model_alias")
        run_command(
            request,
            principal,
            lambda ledger: ledger.models.remove_alias(name, alias, reason=reason),
        )
    return empty()


@router.get("/alias")
async def get_model_version_by_alias(
    request: Request, _: Reader, fields: RequestFields
) -> Response:
    name, alias = fields.text("name", required=True), fields.text("alias", required=True)
    record = read_views(request, lambda v: aliased_version_record(v.db, name, alias))
    return json_response({"model_version": model_version(record)})
