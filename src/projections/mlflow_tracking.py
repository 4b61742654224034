"""The MLflow tracking view: experiments, runs (parameters, latest metrics, tags, inputs,
outputs), every metric value logged, and logged models; what MLflow's REST API reads.

Times are MLflow's: integer milliseconds. A NaN metric value is NULL in the tables (SQLite
cannot hold NaN); infinities are stored as they are. The metric history is append-only:
its rows are inserted at flush and never held in memory, so a long history costs the
updater nothing; a value logged twice (same key, time, step and value) is kept once, as in
MLflow.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from ledger.domain import LedgerAggregate
from ledger.domain.experiment import Experiment
from ledger.domain.logged_model import LoggedModel
from ledger.domain.run import RUN_NAME_TAG, Run
from ledger.domain.tracking import decode_metric_value
from ledger.errors import NotFoundError
from ledger.storage.database import LedgerDatabase
from ledger.storage.rows import Row
from projections.base import Change, Handler, ReadModel
from projections.tables import Table
from projections.writes import RowWriter

EXPERIMENTS = Table(
    "ledger_view_mlflow_experiments",
    key={"experiment_id": "TEXT"},
    columns={
        "name": "TEXT NOT NULL",
        "artifact_location": "TEXT NOT NULL",
        "lifecycle_stage": "TEXT NOT NULL",  # active | deleted
        "tags": "TEXT NOT NULL",  # JSON object
        "created_by": "TEXT NOT NULL",
        "creation_time": "BIGINT NOT NULL",  # ms
        "last_update_time": "BIGINT NOT NULL",
    },
    indexes=(("name",),),
)
RUNS = Table(
    "ledger_view_mlflow_runs",
    key={"run_id": "TEXT"},
    columns={
        "experiment_id": "TEXT NOT NULL",
        "run_name": "TEXT NOT NULL",
        "user_id": "TEXT NOT NULL",
        "status": "TEXT NOT NULL",
        "start_time": "BIGINT NOT NULL",
        "end_time": "BIGINT",  # NULL while unset
        "artifact_uri": "TEXT NOT NULL",
        "lifecycle_stage": "TEXT NOT NULL",  # the run's own; its experiment's deletion shows too
        "inputs": "TEXT NOT NULL",  # JSON list of dataset inputs (with their tags)
        "model_inputs": "TEXT NOT NULL",  # JSON list of logged model ids
        "outputs": "TEXT NOT NULL",  # JSON list of {model_id, step}
        "created_by": "TEXT NOT NULL",
    },
    indexes=(("experiment_id",),),
)
PARAMS = Table(
    "ledger_view_mlflow_params",
    key={"run_id": "TEXT", "key": "TEXT"},
    columns={"value": "TEXT NOT NULL"},
)
RUN_TAGS = Table(
    "ledger_view_mlflow_run_tags",
    key={"run_id": "TEXT", "key": "TEXT"},
    columns={"value": "TEXT NOT NULL"},
)
LATEST_METRICS = Table(
    "ledger_view_mlflow_latest_metrics",
    key={"run_id": "TEXT", "key": "TEXT"},
    columns={"value": "FLOAT8", "timestamp": "BIGINT NOT NULL", "step": "BIGINT NOT NULL"},
)
# value_text: the value as events hold it ("NaN"...), so that NaN can be part of the key
METRIC_HISTORY = Table(
    "ledger_view_mlflow_metric_history",
    key={
        "run_id": "TEXT",
        "key": "TEXT",
        "timestamp": "BIGINT",
        "step": "BIGINT",
        "value_text": "TEXT",
    },
    columns={"value": "FLOAT8", "position": "BIGINT NOT NULL"},
)
MODEL_METRICS = Table(  # the values logged for a logged model (with its model_id)
    "ledger_view_mlflow_model_metrics",
    key={
        "model_id": "TEXT",
        "key": "TEXT",
        "timestamp": "BIGINT",
        "step": "BIGINT",
        "value_text": "TEXT",
        "run_id": "TEXT",
    },
    columns={
        "value": "FLOAT8",
        "dataset_name": "TEXT NOT NULL",
        "dataset_digest": "TEXT NOT NULL",
        "position": "BIGINT NOT NULL",
    },
)
APPEND_ONLY = (METRIC_HISTORY, MODEL_METRICS)
LOGGED_MODELS = Table(
    "ledger_view_mlflow_logged_models",
    key={"model_id": "TEXT"},
    columns={
        "experiment_id": "TEXT NOT NULL",
        "name": "TEXT NOT NULL",
        "source_run_id": "TEXT NOT NULL",
        "model_type": "TEXT NOT NULL",
        "status": "TEXT NOT NULL",  # PENDING | READY | FAILED
        "artifact_location": "TEXT NOT NULL",
        "params": "TEXT NOT NULL",  # JSON object
        "tags": "TEXT NOT NULL",  # JSON object
        "lifecycle_stage": "TEXT NOT NULL",
        "created_by": "TEXT NOT NULL",
        "creation_timestamp": "BIGINT NOT NULL",
        "last_updated_timestamp": "BIGINT NOT NULL",
    },
    indexes=(("experiment_id",),),
)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def stored_value(value: float | str) -> float | None:
    """A metric value for a FLOAT8 column: NaN as NULL."""
    number = decode_metric_value(value)
    return None if math.isnan(number) else number


class MlflowProjection(ReadModel):
    """Experiments, runs and logged models as MLflow's REST API shows them."""

    name = "mlflow"
    description = "MLflow tracking: experiments, runs, metrics, logged models"
    tables = (EXPERIMENTS, RUNS, PARAMS, RUN_TAGS, LATEST_METRICS, LOGGED_MODELS, *APPEND_ONLY)

    def __init__(self) -> None:
        super().__init__()
        for table in APPEND_ONLY:  # never loaded: their new rows are inserted at flush
            del self.state[table.name]
        self._appended: dict[str, list[Row]] = {table.name: [] for table in APPEND_ONLY}

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        return {
            Experiment.Created: self._experiment_created,
            Experiment.Renamed: lambda c: self._experiment(c, name=c.data["name"]),
            Experiment.Deleted: lambda c: self._experiment(c, lifecycle_stage="deleted"),
            Experiment.Restored: lambda c: self._experiment(c, lifecycle_stage="active"),
            Experiment.TagSet: self._experiment_tag_set,
            Experiment.TagRemoved: self._experiment_tag_removed,
            Run.Created: self._run_created,
            Run.Updated: self._run_updated,
            Run.ParamsLogged: self._params_logged,
            Run.MetricsLogged: self._metrics_logged,
            Run.TagsSet: self._tags_set,
            Run.TagDeleted: lambda c: self.delete(RUN_TAGS.name, (c.entity.name, c.data["key"])),
            Run.InputsLogged: self._inputs_logged,
            Run.OutputsLogged: self._outputs_logged,
            Run.Deleted: lambda c: self._run(c, lifecycle_stage="deleted"),
            Run.Restored: lambda c: self._run(c, lifecycle_stage="active"),
            **logged_model_handlers(self),
        }

    # -- experiments ---------------------------------------------------------------------

    def _experiment_created(self, change: Change) -> None:
        event, ms = change.data, change.time_us // 1000
        row = (event["name"], event["artifact_location"], "active", dumps(event["tags"]),
               event["actor"], ms, ms)  # fmt: skip
        self.put(EXPERIMENTS.name, (event["experiment_id"],), row)

    def _experiment(self, change: Change, **values: Any) -> None:
        self.update_row(EXPERIMENTS, (change.entity.name,), change, "last_update_time", **values)

    def _experiment_tag_set(self, change: Change) -> None:
        tags = self._json_of(EXPERIMENTS, (change.entity.name,), "tags")
        self._experiment(change, tags=dumps(tags | {change.data["key"]: change.data["value"]}))

    def _experiment_tag_removed(self, change: Change) -> None:
        tags = self._json_of(EXPERIMENTS, (change.entity.name,), "tags")
        tags.pop(change.data["key"], None)
        self._experiment(change, tags=dumps(tags))

    # -- runs -----------------------------------------------------------------------------

    def _run_created(self, change: Change) -> None:
        event = change.data
        row = (event["experiment_id"], event["run_name"], event["user_id"], "RUNNING",
               event["start_time"], None, event["artifact_uri"], "active", "[]", "[]", "[]",
               event["actor"])  # fmt: skip
        self.put(RUNS.name, (event["run_id"],), row)
        for key, value in event["tags"].items():
            self.put(RUN_TAGS.name, (event["run_id"], key), (value,))

    def _run(self, change: Change, **values: Any) -> None:
        self.update_row(RUNS, (change.entity.name,), change, **values)

    def _run_updated(self, change: Change) -> None:
        event, run_id = change.data, change.entity.name
        fields = ("status", "end_time", "run_name")
        self._run(change, **{k: event[k] for k in fields if event.get(k) is not None})
        if event.get("run_name"):
            self.put(RUN_TAGS.name, (run_id, RUN_NAME_TAG), (event["run_name"],))

    def _params_logged(self, change: Change) -> None:
        for key, value in change.data["params"].items():
            self.put(PARAMS.name, (change.entity.name, key), (value,))

    def _tags_set(self, change: Change) -> None:
        tags = change.data["tags"]
        for key, value in tags.items():
            self.put(RUN_TAGS.name, (change.entity.name, key), (value,))
        if RUN_NAME_TAG in tags:
            self._run(change, run_name=tags[RUN_NAME_TAG])

    def _metrics_logged(self, change: Change) -> None:
        run_id = change.entity.name
        history, for_models = (
            self._appended[METRIC_HISTORY.name],
            self._appended[MODEL_METRICS.name],
        )
        for metric in change.data["metrics"]:
            value = stored_value(metric["value"])
            point = (metric["key"], metric["timestamp"], metric["step"], str(metric["value"]))
            history.append((run_id, *point, value, change.position))
            if metric["model_id"]:
                for_models.append((metric["model_id"], *point, run_id, value,
                                   metric["dataset_name"], metric["dataset_digest"],
                                   change.position))  # fmt: skip
            latest = self.get(LATEST_METRICS.name, (run_id, metric["key"]))
            if latest is None or _more_recent(metric, value, latest):
                row = (value, metric["timestamp"], metric["step"])
                self.put(LATEST_METRICS.name, (run_id, metric["key"]), row)

    def _inputs_logged(self, change: Change) -> None:
        key = (change.entity.name,)
        inputs = self._json_of(RUNS, key, "inputs") + change.data["datasets"]
        models = self._json_of(RUNS, key, "model_inputs") + change.data["models"]
        self._run(change, inputs=dumps(inputs), model_inputs=dumps(models))

    def _outputs_logged(self, change: Change) -> None:
        outputs = self._json_of(RUNS, (change.entity.name,), "outputs") + change.data["models"]
        self._run(change, outputs=dumps(outputs))

    # -- helpers --------------------------------------------------------------------------

    def row_of(self, table: Table, key: tuple[Any, ...]) -> dict[str, Any]:
        row = self.get(table.name, key)
        if row is None:
            raise NotFoundError(f"{key[0]!r} is not in the view {table.name}")
        return dict(zip(table.columns, row, strict=True))

    def update_row(
        self, table: Table, key: tuple[Any, ...], change: Change, stamp: str = "", **values: Any
    ) -> None:
        """Set some columns of a row; the column ``stamp`` (if any) to the event's time (ms)."""
        row = self.row_of(table, key) | values
        if stamp:
            row[stamp] = change.time_us // 1000
        self.put(table.name, key, tuple(row.values()))

    def _json_of(self, table: Table, key: tuple[Any, ...], column: str) -> Any:
        return orjson.loads(self.row_of(table, key)[column])

    # -- the append-only metric values ----------------------------------------------------

    def flush(self, out: RowWriter, *, deferred: bool = False, into_empty: bool = False) -> None:
        super().flush(out, deferred=deferred, into_empty=into_empty)
        for table in APPEND_ONLY:  # a value logged twice is kept once
            rows, self._appended[table.name] = self._appended[table.name], []
            out.write_rows(table.name, table.column_types, tuple(table.key), rows, replace=False)

    def load(self, db: LedgerDatabase) -> None:
        super().load(db)
        self._forget_appended()

    def forget(self) -> None:
        super().forget()
        self._forget_appended()

    def _forget_appended(self) -> None:
        for rows in self._appended.values():
            rows.clear()


def _more_recent(metric: dict[str, Any], value: float | None, latest: Row) -> bool:
    """MLflow's order of a run's values of one key: by step, then timestamp, then value
    (NaN below every number)."""
    old_value, old_timestamp, old_step = latest
    new = (metric["step"], metric["timestamp"], -math.inf if value is None else value)
    old = (old_step, old_timestamp, -math.inf if old_value is None else old_value)
    return new > old


def logged_model_handlers(view: MlflowProjection) -> dict[type[LedgerAggregate.Event], Handler]:
    """How logged models' events change the view."""

    def created(change: Change) -> None:
        event, ms = change.data, change.time_us // 1000
        row = (event["experiment_id"], event["name"], event["source_run_id"], event["model_type"],
               "PENDING", event["artifact_location"], dumps(event["params"]),
               dumps(event["tags"]), "active", event["actor"], ms, ms)  # fmt: skip
        view.put(LOGGED_MODELS.name, (event["model_id"],), row)

    def changed(change: Change, **values: Any) -> None:
        key = (change.entity.name,)
        view.update_row(LOGGED_MODELS, key, change, "last_updated_timestamp", **values)

    def json_of(change: Change, column: str) -> dict[str, str]:
        row = view.row_of(LOGGED_MODELS, (change.entity.name,))
        loaded: dict[str, str] = orjson.loads(row[column])
        return loaded

    def tag_deleted(change: Change) -> None:
        tags = json_of(change, "tags")
        tags.pop(change.data["key"], None)
        changed(change, tags=dumps(tags))

    return {
        LoggedModel.Created: created,
        LoggedModel.Finalized: lambda c: changed(c, status=c.data["status"]),
        LoggedModel.TagsSet: lambda c: changed(c, tags=dumps(json_of(c, "tags") | c.data["tags"])),
        LoggedModel.TagDeleted: tag_deleted,
        LoggedModel.ParamsLogged: lambda c: changed(
            c, params=dumps(json_of(c, "params") | c.data["params"])
        ),
        LoggedModel.Deleted: lambda c: changed(c, lifecycle_stage="deleted"),
    }
