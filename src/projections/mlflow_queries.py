"""Reading the MLflow tracking view: one experiment, run or logged model, a metric's history
(searches are in ``projections.mlflow_searches``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from ledger.domain.tracking import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    experiment_artifact_location,
)
from ledger.errors import InvalidInputError, NotFoundError
from ledger.storage.database import LedgerDatabase
from ledger.storage.rows import Row
from projections.mlflow_tracking import (
    EXPERIMENTS,
    LATEST_METRICS,
    LOGGED_MODELS,
    METRIC_HISTORY,
    MODEL_METRICS,
    PARAMS,
    RUN_TAGS,
    RUNS,
)
from projections.paging import Page, decode_token, encode_token

_EXPERIMENT_COLUMNS = ("experiment_id", *EXPERIMENTS.columns)
_RUN_COLUMNS = ("run_id", *RUNS.columns)
_MODEL_COLUMNS = ("model_id", *LOGGED_MODELS.columns)
_CHUNK = 500
MAX_OFFSET = 2**62


def in_chunks(db: LedgerDatabase, statement: str, ids: Sequence[str], *more: Any) -> list[Row]:
    """``statement`` (with ``{ids}`` where the ``IN (...)`` marks go, and ``more``
    parameters after them) run over ``ids`` in chunks."""
    rows: list[Row] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        rows.extend(db.execute(statement.format(ids=", ".join("?" * len(chunk))), [*chunk, *more]))
    return rows


def offset_of(page_token: str) -> int:
    """The offset a page token carries (0 without one)."""
    offset = decode_token(page_token) if page_token else 0
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInputError("invalid page token: pass the next_page_token of a previous page")
    return offset


def page_of(items: list[Any], max_results: int, page_token: str) -> Page[Any]:
    """A page of ``items`` after the offset ``page_token`` carries."""
    offset = offset_of(page_token)
    end = offset + max_results
    return Page(items[offset:end], encode_token(end) if end < len(items) else "")


# -- experiments ---------------------------------------------------------------------------


def default_experiment() -> dict[str, Any]:
    """The default experiment before anything was written to it (no times yet)."""
    return {
        "experiment_id": DEFAULT_EXPERIMENT_ID,
        "name": DEFAULT_EXPERIMENT_NAME,
        "artifact_location": experiment_artifact_location(DEFAULT_EXPERIMENT_ID),
        "lifecycle_stage": "active",
        "tags": {},
        "created_by": "",
        "creation_time": None,
        "last_update_time": None,
    }


def _experiment(row: Row) -> dict[str, Any]:
    item = dict(zip(_EXPERIMENT_COLUMNS, row, strict=True))
    item["tags"] = orjson.loads(item["tags"])
    return item


def experiments_where(
    db: LedgerDatabase, column: str = "", value: str = ""
) -> list[dict[str, Any]]:
    """The experiments whose ``column`` is ``value`` (every one, without ``column``), the
    default one too while nothing was written to it."""
    where = f"WHERE {column} = ?" if column else ""
    rows = db.execute(
        f"SELECT {', '.join(_EXPERIMENT_COLUMNS)} FROM {EXPERIMENTS.name} {where}",
        (value,) if column else (),
    )
    found = [_experiment(row) for row in rows]
    default = default_experiment()
    if (not column or default[column] == value) and not db.execute(
        f"SELECT 1 FROM {EXPERIMENTS.name} WHERE experiment_id = ?", (DEFAULT_EXPERIMENT_ID,)
    ):
        found.append(default)
    return found


def read_experiment(db: LedgerDatabase, experiment_id: str) -> dict[str, Any]:
    found = experiments_where(db, "experiment_id", experiment_id)
    if not found:
        raise NotFoundError(f"experiment {experiment_id[:100]!r} does not exist")
    return found[0]


def experiment_by_name(db: LedgerDatabase, name: str) -> dict[str, Any]:
    found = experiments_where(db, "name", name)
    if not found:
        raise NotFoundError(f"no experiment is named {name[:200]!r}")
    return found[0]


# -- runs ----------------------------------------------------------------------------------


def run_rows(db: LedgerDatabase, where: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    """Runs with the lifecycle stage they show: deleted with their experiment."""
    columns = ", ".join(f"r.{c}" for c in _RUN_COLUMNS)
    rows = db.execute(
        f"SELECT {columns}, e.lifecycle_stage FROM {RUNS.name} r "
        f"LEFT JOIN {EXPERIMENTS.name} e ON e.experiment_id = r.experiment_id {where}",
        params,
    )
    runs = []
    for row in rows:
        run = dict(zip(_RUN_COLUMNS, row[:-1], strict=True))
        if row[-1] == "deleted":
            run["lifecycle_stage"] = "deleted"
        runs.append(run)
    return runs


def key_values(
    db: LedgerDatabase, table: str, run_ids: Sequence[str], keys: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """run id -> {key: value} of a params or tags table (only ``keys``, when given)."""
    values: dict[str, dict[str, Any]] = {run_id: {} for run_id in run_ids}
    wanted = None if keys is None else set(keys)
    if wanted is not None and not wanted:
        return values
    statement = f"SELECT run_id, key, value FROM {table} WHERE run_id IN ({{ids}})"
    for run_id, key, value in in_chunks(db, statement, run_ids):
        if wanted is None or key in wanted:
            values[run_id][key] = value
    return values


def latest_metrics(
    db: LedgerDatabase, run_ids: Sequence[str], keys: Iterable[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """run id -> its latest value of each metric key (``keys``: only those)."""
    found: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
    wanted = None if keys is None else set(keys)
    statement = (
        f"SELECT run_id, key, value, timestamp, step FROM {LATEST_METRICS.name} "
        "WHERE run_id IN ({ids}) ORDER BY key"
    )
    for run_id, key, value, timestamp, step in in_chunks(db, statement, run_ids):
        if wanted is None or key in wanted:
            value = math.nan if value is None else float(value)
            found[run_id].append({"key": key, "value": value, "timestamp": timestamp, "step": step})
    return found


def full_runs(db: LedgerDatabase, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs with their params, latest metrics, tags, inputs and outputs."""
    run_ids = [run["run_id"] for run in runs]
    params = key_values(db, PARAMS.name, run_ids)
    tags = key_values(db, RUN_TAGS.name, run_ids)
    metrics = latest_metrics(db, run_ids)
    for run in runs:
        run_id = run["run_id"]
        run["params"], run["tags"] = params[run_id], tags[run_id]
        run["latest_metrics"] = metrics[run_id]
        run["metrics"] = {m["key"]: m["value"] for m in metrics[run_id]}
        run["inputs"] = orjson.loads(run["inputs"])
        run["model_inputs"] = orjson.loads(run["model_inputs"])
        run["model_outputs"] = orjson.loads(run.pop("outputs"))
        run["outputs"] = [output["model_id"] for output in run["model_outputs"]]
    return runs


def read_run(db: LedgerDatabase, run_id: str) -> dict[str, Any]:
    found = run_rows(db, "WHERE r.run_id = ?", (run_id,))
    if not found:
        raise NotFoundError(f"run {run_id[:100]!r} does not exist")
    return full_runs(db, found)[0]


def metric_history(
    db: LedgerDatabase, run_id: str, key: str, max_results: int, page_token: str = ""
) -> Page[dict[str, Any]]:
    """Every value logged for the run's metric ``key``, by time, then step."""
    require_run(db, run_id)
    offset = offset_of(page_token)
    rows = db.execute(
        f"SELECT value, timestamp, step FROM {METRIC_HISTORY.name} WHERE run_id = ? AND key = ? "
        "ORDER BY timestamp, step, value_text LIMIT ? OFFSET ?",
        (run_id, key, max_results + 1, offset),
    )
    items = [
        {"key": key, "value": math.nan if value is None else float(value),
         "timestamp": timestamp, "step": step, "run_id": run_id}
        for value, timestamp, step in rows[:max_results]
    ]  # fmt: skip
    return Page(items, encode_token(offset + max_results) if len(rows) > max_results else "")


def require_run(db: LedgerDatabase, run_id: str) -> None:
    if not db.execute(f"SELECT 1 FROM {RUNS.name} WHERE run_id = ?", (run_id,)):
        raise NotFoundError(f"run {run_id[:100]!r} does not exist")


# -- logged models -------------------------------------------------------------------------


def _logged_model(row: Row) -> dict[str, Any]:
    model = dict(zip(_MODEL_COLUMNS, row, strict=True))
    model["params"] = orjson.loads(model["params"])
    model["tags"] = orjson.loads(model["tags"])
    return model


def logged_models_where(
    db: LedgerDatabase, where: str, params: Sequence[Any]
) -> list[dict[str, Any]]:
    """Logged models (not deleted) matching ``where``, with the metrics logged for them."""
    rows = db.execute(
        f"SELECT {', '.join(_MODEL_COLUMNS)} FROM {LOGGED_MODELS.name} "
        f"WHERE lifecycle_stage = 'active' {where}",
        params,
    )
    models = [_logged_model(row) for row in rows]
    metrics: dict[str, list[dict[str, Any]]] = {m["model_id"]: [] for m in models}
    statement = (
        f"SELECT model_id, run_id, key, value, timestamp, step, dataset_name, dataset_digest "
        f"FROM {MODEL_METRICS.name} WHERE model_id IN ({{ids}}) ORDER BY key, timestamp, step"
    )
    for model_id, run_id, key, value, timestamp, step, name, digest in in_chunks(
        db, statement, list(metrics)
    ):
        metrics[model_id].append(
            {"key": key, "value": math.nan if value is None else float(value),
             "timestamp": timestamp, "step": step, "run_id": run_id, "model_id": model_id,
             "dataset_name": name, "dataset_digest": digest}
        )  # fmt: skip
    for model in models:
        model["metrics"] = metrics[model["model_id"]]
    return models


def read_logged_model(db: LedgerDatabase, model_id: str) -> dict[str, Any]:
    found = logged_models_where(db, "AND model_id = ?", (model_id,))
    if not found:
        raise NotFoundError(f"logged model {model_id[:100]!r} does not exist")
    return found[0]
