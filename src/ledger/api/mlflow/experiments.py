"""MLflow's experiment endpoints (``/api/2.0/mlflow/experiments/...``): get, get by name,
create, search, rename, delete, restore, tags. Writes are ledger commands acting as the
token's holder (contributor), reads come from the views (reader)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from ledger.api.auth import Contributor, Reader
from ledger.api.mlflow.errors import mlflow_router
from ledger.api.mlflow.tracking_schemas import (
    CreateExperiment,
    DeleteExperimentTag,
    ExperimentRef,
    SearchExperiments,
    SetExperimentTag,
    Text,
    UpdateExperiment,
    as_dict,
)
from ledger.api.mlflow.tracking_wire import experiment_wire
from ledger.api.routes.common import json_response, read_views, run_command
from ledger.domain.tracking import check_experiment_id

PREFIX = "/api/2.0/mlflow/experiments"
EMPTY: dict[str, Any] = {}


def experiment_router() -> APIRouter:
    """The experiment endpoints."""
    router = mlflow_router(PREFIX)
    router.add_api_route("/get", get_experiment, methods=["GET"])
    router.add_api_route("/get-by-name", get_experiment_by_name, methods=["GET"])
    router.add_api_route("/create", create_experiment, methods=["POST"])
    router.add_api_route("/search", search_experiments, methods=["POST"])
    router.add_api_route("/search", search_experiments_get, methods=["GET"])
    router.add_api_route("/update", update_experiment, methods=["POST"])
    router.add_api_route("/delete", delete_experiment, methods=["POST"])
    router.add_api_route("/restore", restore_experiment, methods=["POST"])
    router.add_api_route("/set-experiment-tag", set_experiment_tag, methods=["POST"])
    router.add_api_route("/delete-experiment-tag", delete_experiment_tag, methods=["POST"])
    return router


def get_experiment(
    request: Request, _: Reader, experiment_id: Annotated[Text, Query()]
) -> Response:
    experiment_id = check_experiment_id(experiment_id)
    found = read_views(request, lambda v: v.mlflow_experiment(experiment_id))
    return json_response({"experiment": experiment_wire(found)})


def get_experiment_by_name(
    request: Request, _: Reader, experiment_name: Annotated[Text, Query()]
) -> Response:
    found = read_views(request, lambda v: v.mlflow_experiment_by_name(experiment_name))
    return json_response({"experiment": experiment_wire(found)})


def create_experiment(request: Request, principal: Contributor, body: CreateExperiment) -> Any:
    created = run_command(
        request,
        principal,
        lambda ledger: ledger.experiments.create(
            body.name, artifact_location=body.artifact_location, tags=as_dict(body.tags)
        ),
    )
    return {"experiment_id": created.experiment_id}


def _search(request: Request, query: SearchExperiments) -> Response:
    page = read_views(
        request,
        lambda v: v.mlflow_search_experiments(
            filter=query.filter,
            view_type=query.view_type,
            order_by=query.order_by,
            max_results=query.max_results,
            page_token=query.page_token,
        ),
    )
    answer: dict[str, Any] = {"experiments": [experiment_wire(e) for e in page.items]}
    if page.next_token:
        answer["next_page_token"] = page.next_token
    return json_response(answer)


def search_experiments(request: Request, _: Reader, body: SearchExperiments) -> Response:
    return _search(request, body)


def search_experiments_get(
    request: Request, _: Reader, query: Annotated[SearchExperiments, Query()]
) -> Response:
    return _search(request, query)


def update_experiment(request: Request, principal: Contributor, body: UpdateExperiment) -> Any:
    run_command(
        request,
        principal,
        lambda ledger: ledger.experiments.rename(body.experiment_id, body.new_name),
    )
    return EMPTY


def delete_experiment(request: Request, principal: Contributor, body: ExperimentRef) -> Any:
    run_command(request, principal, lambda ledger: ledger.experiments.delete(body.experiment_id))
    return EMPTY


def restore_experiment(request: Request, principal: Contributor, body: ExperimentRef) -> Any:
    run_command(request, principal, lambda ledger: ledger.experiments.restore(body.experiment_id))
    return EMPTY


def set_experiment_tag(request: Request, principal: Contributor, body: SetExperimentTag) -> Any:
    run_command(
        request,
        principal,
        lambda ledger: ledger.experiments.set_tag(body.experiment_id, body.key, body.value),
    )
    return EMPTY


def delete_experiment_tag(
    request: Request, principal: Contributor, body: DeleteExperimentTag
) -> Any:
    run_command(
        request,
        principal,
        lambda ledger: ledger.experiments.delete_tag(body.experiment_id, body.key),
    )
    return EMPTY
