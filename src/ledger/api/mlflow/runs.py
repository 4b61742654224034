"""MLflow's run endpoints (``/api/2.0/mlflow/runs/...`` and ``metrics/get-history``):
create, get, update, delete, restore, search; log metrics, parameters, tags, a batch of
them (one command, one atomic save), inputs and outputs. Writes act as the token's holder
(contributor); reads come from the views (reader)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Query, Request, Response

from ledger.api.auth import Contributor, Principal, Reader
from ledger.api.mlflow.answers import empty, page_answer
from ledger.api.mlflow.errors import mlflow_router
from ledger.api.mlflow.tracking_schemas import (
    CreateRun,
    DeleteTag,
    LogBatch,
    LogInputs,
    LogMetric,
    LogOutputs,
    LogParam,
    MaxResults,
    MetricIn,
    RunRef,
    SearchRuns,
    SetTag,
    Text,
    UpdateRun,
    as_dict,
    as_pairs,
)
from ledger.api.mlflow.tracking_wire import metric_wire, run_info_wire, run_wire
from ledger.api.routes.common import json_response, read_views, read_written, run_command
from ledger.domain.run import Dataset, Metric
from ledger.ledger import Ledger

PREFIX = "/api/2.0/mlflow"


router = mlflow_router(PREFIX, tracking=True)


def metric_of(metric: MetricIn) -> Metric:
    return Metric(
        key=metric.key,
        value=metric.value,
        timestamp=metric.timestamp,
        step=metric.step,
        model_id=metric.model_id,
        dataset_name=metric.dataset_name,
        dataset_digest=metric.dataset_digest,
    )


@router.post("/runs/create")
def create_run(request: Request, principal: Contributor, body: CreateRun) -> Any:
    """A new run; without ``user_id``, the token's name."""
    created = run_command(
        request,
        principal,
        lambda ledger: ledger.runs.create(
            body.experiment_id,
            user_id=body.user_id,
            run_name=body.run_name,
            start_time=body.start_time,
            tags=as_dict(body.tags),
        ),
    )
    return read_written(request, lambda v: {"run": run_wire(v.mlflow_run(created.run_id))})


@router.get("/runs/get")
def get_run(
    request: Request,
    _: Reader,
    run_id: Annotated[Text, Query()] = "",
    run_uuid: Annotated[Text, Query()] = "",
) -> Response:
    wanted = RunRef(run_id=run_id, run_uuid=run_uuid).run
    return json_response({"run": run_wire(read_views(request, lambda v: v.mlflow_run(wanted)))})


@router.post("/runs/update")
def update_run(request: Request, principal: Contributor, body: UpdateRun) -> Any:
    run_id = body.run
    run_command(
        request,
        principal,
        lambda ledger: ledger.runs.update(
            run_id, status=body.status, end_time=body.end_time, run_name=body.run_name
        ),
    )
    return read_written(request, lambda v: {"run_info": run_info_wire(v.mlflow_run(run_id))})


@router.post("/runs/delete")
def delete_run(request: Request, principal: Contributor, body: RunRef) -> Any:
    run_command(request, principal, lambda ledger: ledger.runs.delete(body.run))
    return empty()


@router.post("/runs/restore")
def restore_run(request: Request, principal: Contributor, body: RunRef) -> Any:
    run_command(request, principal, lambda ledger: ledger.runs.restore(body.run))
    return empty()


@router.post("/runs/search")
def search_runs(request: Request, _: Reader, body: SearchRuns) -> Response:
    page = read_views(
        request,
        lambda v: v.mlflow_search_runs(
            body.experiment_ids,
            filter=body.filter,
            view_type=body.run_view_type,
            order_by=body.order_by,
            max_results=body.max_results,
            page_token=body.page_token,
        ),
    )
    return page_answer("runs", page, run_wire)


def _log(
    request: Request,
    principal: Principal,
    run_id: str,
    *,
    metrics: Sequence[MetricIn] = (),
    params: Sequence[tuple[str, str]] = (),
    tags: Sequence[tuple[str, str]] = (),
) -> Response:
    def command(ledger: Ledger) -> object:
        return ledger.runs.log_batch(
            run_id, metrics=[metric_of(m) for m in metrics], params=params, tags=tags
        )

    run_command(request, principal, command)
    return empty()


@router.post("/runs/log-batch")
def log_batch(request: Request, principal: Contributor, body: LogBatch) -> Any:
    """Metrics, params and tags in one command: all are logged, or none."""
    return _log(
        request,
        principal,
        body.run,
        metrics=body.metrics,
        params=as_pairs(body.params),
        tags=as_pairs(body.tags),
    )


@router.post("/runs/log-metric")
def log_metric(request: Request, principal: Contributor, body: LogMetric) -> Any:
    return _log(request, principal, body.run, metrics=[body])


@router.post("/runs/log-parameter")
def log_param(request: Request, principal: Contributor, body: LogParam) -> Any:
    return _log(request, principal, body.run, params=[(body.key, body.value)])


@router.post("/runs/set-tag")
def set_tag(request: Request, principal: Contributor, body: SetTag) -> Any:
    return _log(request, principal, body.run, tags=[(body.key, body.value)])


@router.post("/runs/delete-tag")
def delete_tag(request: Request, principal: Contributor, body: DeleteTag) -> Any:
    run_command(request, principal, lambda ledger: ledger.runs.delete_tag(body.run, body.key))
    return empty()


@router.post("/runs/log-inputs")
def log_inputs(request: Request, principal: Contributor, body: LogInputs) -> Any:
    datasets = [
        Dataset(
            name=item.dataset.name,
            digest=item.dataset.digest,
            source_type=item.dataset.source_type,
            source=item.dataset.source,
            schema=item.dataset.schema_,
            profile=item.dataset.profile,
            tags=as_dict(item.tags),
        )
        for item in body.datasets
    ]
    models = [model.model_id for model in body.models]
    run_command(
        request, principal, lambda ledger: ledger.runs.log_inputs(body.run, datasets, models)
    )
    return empty()


@router.post("/runs/outputs")
def log_outputs(request: Request, principal: Contributor, body: LogOutputs) -> Any:
    models = [(model.model_id, model.step) for model in body.models]
    run_command(request, principal, lambda ledger: ledger.runs.log_outputs(body.run, models))
    return empty()


@router.get("/metrics/get-history")
def metric_history(
    request: Request,
    _: Reader,
    metric_key: Annotated[Text, Query()],
    run_id: Annotated[Text, Query()] = "",
    run_uuid: Annotated[Text, Query()] = "",
    max_results: Annotated[MaxResults, Query()] = 25_000,
    page_token: Annotated[Text, Query()] = "",
) -> Response:
    """Every value of one metric of a run, by time, then step."""
    wanted = RunRef(run_id=run_id, run_uuid=run_uuid).run
    page = read_views(
        request,
        lambda v: v.mlflow_metric_history(
            wanted, metric_key, max_results=max_results, page_token=page_token
        ),
    )
    return page_answer("metrics", page, lambda m: metric_wire(m, linked=True))
