"""MLflow's experiment endpoints (``/api/2.0/mlflow/experiments/...``): get, get by name,
create, search, rename, delete, restore, tags. Writes are ledger commands acting as the
token's holder (contributor), reads come from the views (reader)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response

from ledger.api.auth import Contributor, Reader
from ledger.api.mlflow.answers import empty, page_answer
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


router = mlflow_router(PREFIX, tracking=True)


@router.get("/get")
def get_experiment(
    request: Request, _: Reader, experiment_id: Annotated[Text, Query()]
) -> Response:
    experiment_id = check_experiment_id(experiment_id)
    found = read_views(request, lambda v: v.mlflow_experiment(experiment_id))
    return json_response({"experiment": experiment_wire(found)})


@router.get("/get-by-name")
def get_experiment_by_name(
    request: Request, _: Reader, experiment_name: Annotated[Text, Query()]
) -> Response:
    found = read_views(request, lambda v: v.mlflow_experiment_by_name(experiment_name))
    return json_response({"experiment": experiment_wire(found)})


@router.post("/create")
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
    return page_answer("experiments", page, experiment_wire)


@router.post("/search")
def search_experiments(request: Request, _: Reader, body: SearchExperiments) -> Response:
    return _search(request, body)


@router.get("/search")
def search_experiments_get(
    request: Request, _: Reader, query: Annotated[SearchExperiments, Query()]
) -> Response:
    return _search(request, query)


@router.post("/update")
def update_experiment(request: Request, principal: Contributor, body: UpdateExperiment) -> Any:
    run_command(
        request,
        principal,
        lambda ledger: ledger.experiments.rename(body.experiment_id, body.new_name),
    )
    return empty()


@router.post("/delete")
def delete_experiment(request: Request, principal: Contributor, body: ExperimentRef) -> Any:
    run_command(request, principal, lambda ledger: ledger.experiments.delete(body.experiment_id))
    return empty()


@router.post("/restore")
def restore_experiment(request: Request, principal: Contributor, body: ExperimentRef) -> Any:
    run_command(request, principal, lambda ledger: ledger.experiments.restore(body.experiment_id))
    return empty()


@router.post("/set-experiment-tag")
def set_experiment_tag(request: Request, principal: Contributor, body: SetExperimentTag) -> Any:
    run_command(
        request,
        principal,
        lambda ledger: ledger.experiments.set_tag(body.experiment_id, body.key, body.value),
    )
    return empty()


@router.post("/delete-experiment-tag")
def delete_experiment_tag(
    request: Request, principal: Contributor, body: DeleteExperimentTag
) -> Any:
    run_command(
        request,
        principal,
        lambda ledger: ledger.experiments.delete_tag(body.experiment_id, body.key),
    )
    return empty()
