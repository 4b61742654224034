"""MLflow's searches of experiments, runs and logged models: filtered, ordered and paged
(offset tokens), over the candidates of the experiments asked for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.errors import InvalidInputError
from ledger.storage.database import LedgerDatabase
from projections.mlflow_queries import (
    experiments_where,
    full_runs,
    key_values,
    latest_metrics,
    logged_models_where,
    page_of,
    run_rows,
)
from projections.mlflow_search import (
    Condition,
    Ordering,
    Record,
    matches,
    needed_entities,
    parse_filter,
    parse_order_by,
    sort_records,
)
from projections.mlflow_tracking import PARAMS, RUN_TAGS
from projections.paging import Page

VIEW_TYPES = {
    "ACTIVE_ONLY": ("active",),
    "DELETED_ONLY": ("deleted",),
    "ALL": ("active", "deleted"),
}
RUN_ATTRIBUTES = {
    "run_id": "text", "run_name": "text", "status": "text", "user_id": "text",
    "artifact_uri": "text", "experiment_id": "text", "start_time": "number",
    "end_time": "number",
}  # fmt: skip
EXPERIMENT_ATTRIBUTES = {
    "name": "text", "experiment_id": "number", "creation_time": "number",
    "last_update_time": "number",
}  # fmt: skip
MODEL_ATTRIBUTES = {
    "name": "text", "model_id": "text", "model_type": "text", "status": "text",
    "source_run_id": "text", "creation_timestamp": "number", "last_updated_timestamp": "number",
}  # fmt: skip
MAX_EXPERIMENT_IDS = 1000


def stages_of(view_type: str) -> tuple[str, ...]:
    if view_type not in VIEW_TYPES:
        raise InvalidInputError(
            f"unknown view type {view_type[:40]!r}; expected one of {', '.join(VIEW_TYPES)}"
        )
    return VIEW_TYPES[view_type]


def _check_ids(experiment_ids: Sequence[str]) -> list[str]:
    if len(experiment_ids) > MAX_EXPERIMENT_IDS:
        raise InvalidInputError(f"search at most {MAX_EXPERIMENT_IDS} experiments at once")
    return list(dict.fromkeys(experiment_ids))


def _query(
    filter: str,
    order_by: list[str],
    attributes: dict[str, str],
    default_entity: str,
    newest: str,
    key: str,
) -> tuple[list[Condition], list[Ordering]]:
    """The filter's conditions and the orderings asked for, then the attribute ``newest``
    descending and ``key`` ascending (which makes the order total)."""
    conditions = parse_filter(filter, attributes, default_entity)
    orderings = [
        *parse_order_by(order_by, attributes),
        Ordering("attributes", newest, False),
        Ordering("attributes", key, True),
    ]
    return conditions, orderings


def _page(
    records: list[Record],
    conditions: list[Condition],
    orderings: list[Ordering],
    max_results: int,
    page_token: str,
) -> Page[Record]:
    """The page of the records meeting ``conditions``, sorted by ``orderings``."""
    found = sort_records([r for r in records if matches(r, conditions)], orderings)
    return page_of(found, max_results, page_token)


def search_experiments(
    db: LedgerDatabase,
    *,
    filter: str = "",
    view_type: str = "ACTIVE_ONLY",
    order_by: Sequence[str] = (),
    max_results: int = 1000,
    page_token: str = "",
) -> Page[dict[str, Any]]:
    """Experiments matching ``filter`` (on name, times and tags), newest first by default."""
    stages = stages_of(view_type)
    conditions, orderings = _query(filter, list(order_by), EXPERIMENT_ATTRIBUTES, "attributes",
                                   "creation_time", "experiment_id")  # fmt: skip
    records: list[Record] = [
        {"attributes": experiment | {"experiment_id": int(experiment["experiment_id"])},
         "tags": experiment["tags"], "params": {}, "metrics": {}, "item": experiment}
        for experiment in experiments_where(db)
        if experiment["lifecycle_stage"] in stages
    ]  # fmt: skip
    page = _page(records, conditions, orderings, max_results, page_token)
    return Page([record["item"] for record in page.items], page.next_token)


def search_runs(
    db: LedgerDatabase,
    experiment_ids: Sequence[str],
    *,
    filter: str = "",
    view_type: str = "ACTIVE_ONLY",
    order_by: Sequence[str] = (),
    max_results: int = 1000,
    page_token: str = "",
) -> Page[dict[str, Any]]:
    """Runs of the experiments matching ``filter``, latest start first by default; only the
    metrics, params and tags the filter and ordering name are read before paging."""
    stages = stages_of(view_type)
    conditions, orderings = _query(filter, list(order_by), RUN_ATTRIBUTES, "", "start_time",
                                   "run_id")  # fmt: skip
    ids = _check_ids(experiment_ids)
    if not ids:
        return Page([], "")
    marks = ", ".join("?" * len(ids))
    runs = [
        run
        for run in run_rows(db, f"WHERE r.experiment_id IN ({marks})", ids)
        if run["lifecycle_stage"] in stages
    ]
    run_ids = [run["run_id"] for run in runs]
    needed = needed_entities(conditions, orderings)
    params = key_values(db, PARAMS.name, run_ids, needed["params"])
    tags = key_values(db, RUN_TAGS.name, run_ids, needed["tags"])
    metrics = latest_metrics(db, run_ids, needed["metrics"]) if needed["metrics"] else {}
    records: list[Record] = [
        {"attributes": run, "params": params[run["run_id"]], "tags": tags[run["run_id"]],
         "metrics": {m["key"]: m["value"] for m in metrics.get(run["run_id"], [])}}
        for run in runs
    ]  # fmt: skip
    page = _page(records, conditions, orderings, max_results, page_token)
    return Page(full_runs(db, [record["attributes"] for record in page.items]), page.next_token)


def search_logged_models(
    db: LedgerDatabase,
    experiment_ids: Sequence[str],
    *,
    filter: str = "",
    order_by: Sequence[tuple[str, bool]] = (),
    max_results: int = 100,
    page_token: str = "",
) -> Page[dict[str, Any]]:
    """Logged models of the experiments matching ``filter`` (attributes, params, tags),
    newest first by default; ``order_by``: (field, ascending) pairs."""
    clauses = [f"{field} {'ASC' if ascending else 'DESC'}" for field, ascending in order_by]
    conditions, orderings = _query(filter, clauses, MODEL_ATTRIBUTES, "attributes",
                                   "creation_timestamp", "model_id")  # fmt: skip
    if any(c.entity == "metrics" for c in conditions) or any(
        o.entity == "metrics" for o in orderings
    ):
        raise InvalidInputError("the ledger does not filter or order logged models by metrics")
    ids = _check_ids(experiment_ids)
    if not ids:
        return Page([], "")
    marks = ", ".join("?" * len(ids))
    records: list[Record] = [
        {"attributes": model, "params": model["params"], "tags": model["tags"], "metrics": {}}
        for model in logged_models_where(db, f"AND experiment_id IN ({marks})", ids)
    ]
    page = _page(records, conditions, orderings, max_results, page_token)
    return Page([record["attributes"] for record in page.items], page.next_token)
