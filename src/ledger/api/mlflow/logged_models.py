"""MLflow 3's logged model endpoints (``/api/2.0/mlflow/logged-models...``): create, get,
finalize, tags, params, search, delete. Writes act as the token's holder (contributor);
reads come from the views (reader)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request, Response

from ledger.api.auth import Contributor, Reader
from ledger.api.mlflow.answers import empty, page_answer
from ledger.api.mlflow.errors import mlflow_router
from ledger.api.mlflow.tracking_schemas import (
    CreateLoggedModel,
    FinalizeLoggedModel,
    LoggedModelParams,
    LoggedModelTags,
    SearchLoggedModels,
    Text,
    as_dict,
)
from ledger.api.mlflow.tracking_wire import STATUS_OF_WIRE, logged_model_wire
from ledger.api.routes.common import json_response, read_views, read_written, run_command
from ledger.errors import InvalidInputError

PREFIX = "/api/2.0/mlflow/logged-models"
ModelId = Annotated[Text, Path()]
TagKey = Annotated[Text, Path()]


router = mlflow_router(PREFIX, tracking=True)


def _model(request: Request, model_id: str) -> Any:
    """The logged model as the views show it once they include this request's writes."""
    return read_written(
        request, lambda v: {"model": logged_model_wire(v.mlflow_logged_model(model_id))}
    )


@router.post("")
def create_logged_model(request: Request, principal: Contributor, body: CreateLoggedModel) -> Any:
    """A pending logged model (in the run ``source_run_id``'s experiment, when given)."""
    created = run_command(
        request,
        principal,
        lambda ledger: ledger.logged_models.create(
            body.experiment_id,
            name=body.name,
            source_run_id=body.source_run_id,
            model_type=body.model_type,
            params=as_dict(body.params),
            tags=as_dict(body.tags),
        ),
    )
    return _model(request, created.model_id)


@router.post("/search")
def search_logged_models(request: Request, _: Reader, body: SearchLoggedModels) -> Response:
    """Logged models of the experiments (filters on attributes, params and tags)."""
    if body.datasets or any(o.dataset_name or o.dataset_digest for o in body.order_by):
        raise InvalidInputError("the ledger does not search logged models by dataset")
    page = read_views(
        request,
        lambda v: v.mlflow_search_logged_models(
            body.experiment_ids,
            filter=body.filter,
            order_by=[(o.field_name, o.ascending) for o in body.order_by],
            max_results=body.max_results,
            page_token=body.page_token,
        ),
    )
    return page_answer("models", page, logged_model_wire)


@router.get("/{model_id}")
def get_logged_model(request: Request, _: Reader, model_id: ModelId) -> Response:
    model = read_views(request, lambda v: v.mlflow_logged_model(model_id))
    return json_response({"model": logged_model_wire(model)})


@router.patch("/{model_id}")
def finalize_logged_model(
    request: Request, principal: Contributor, model_id: ModelId, body: FinalizeLoggedModel
) -> Any:
    """READY once its files are uploaded, or FAILED (LOGGED_MODEL_UPLOAD_FAILED)."""
    status = STATUS_OF_WIRE.get(body.status, body.status.removeprefix("LOGGED_MODEL_"))
    if status not in ("READY", "FAILED"):
        raise InvalidInputError(
            f"a logged model is finalized as LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED, "
            f"not {body.status[:60]!r}"
        )
    run_command(request, principal, lambda ledger: ledger.logged_models.finalize(model_id, status))
    return _model(request, model_id)


@router.delete("/{model_id}")
def delete_logged_model(request: Request, principal: Contributor, model_id: ModelId) -> Any:
    run_command(request, principal, lambda ledger: ledger.logged_models.delete(model_id))
    return empty()


@router.patch("/{model_id}/tags")
def set_logged_model_tags(
    request: Request, principal: Contributor, model_id: ModelId, body: LoggedModelTags
) -> Any:
    tags = as_dict(body.tags)
    run_command(request, principal, lambda ledger: ledger.logged_models.set_tags(model_id, tags))
    return _model(request, model_id)


@router.delete("/{model_id}/tags/{tag_key:path}")
def delete_logged_model_tag(
    request: Request, principal: Contributor, model_id: ModelId, tag_key: TagKey
) -> Any:
    run_command(
        request, principal, lambda ledger: ledger.logged_models.delete_tag(model_id, tag_key)
    )
    return empty()


@router.post("/{model_id}/params")
def log_logged_model_params(
    request: Request, principal: Contributor, model_id: ModelId, body: LoggedModelParams
) -> Any:
    params = as_dict(body.params)
    run_command(
        request, principal, lambda ledger: ledger.logged_models.log_params(model_id, params)
    )
    return empty()
