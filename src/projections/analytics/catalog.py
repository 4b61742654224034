"""The six analytics datasets: their names, columns and meanings, in one place.

The same definitions name the PostgreSQL ``analytics`` views' columns (and their
``COMMENT``s), and type the Parquet and DuckDB exports' ``analytics/`` tables. Column
kinds map to both: a map is a Parquet ``MAP`` and a PostgreSQL ``jsonb`` object.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# kind -> (Arrow type, PostgreSQL type)
KINDS: dict[str, tuple[pa.DataType, str]] = {
    "text": (pa.string(), "text"),
    "bigint": (pa.int64(), "bigint"),
    "time": (pa.timestamp("us", tz="UTC"), "timestamptz"),
    "json": (pa.string(), "jsonb"),  # JSON text in Parquet
    "text_map": (pa.map_(pa.string(), pa.string()), "jsonb"),
    "int_map": (pa.map_(pa.string(), pa.int64()), "jsonb"),
    "float_map": (pa.map_(pa.string(), pa.float64()), "jsonb"),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # a key of KINDS
    description: str

    @property
    def arrow_type(self) -> pa.DataType:
        return KINDS[self.kind][0]

    @property
    def pg_type(self) -> str:
        return KINDS[self.kind][1]


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.arrow_type) for c in self.columns])


def _created(what: str) -> tuple[Column, Column]:
    return (
        Column("created_at", "time", f"when the {what} was created"),
        Column("created_by", "text", f"who created the {what}"),
    )


MODELS = Dataset(
    "models",
    "Registered models as the registry shows them now (deleted ones are absent).",
    (
        Column("name", "text", "the model's name"),
        Column("description", "text", "its description"),
        Column("latest_version", "bigint", "its highest version number"),
        *_created("model"),
        Column("updated_at", "time", "last change of its description or versions"),
        Column("tags", "text_map", "its tags, key to value"),
        Column("aliases", "int_map", "its aliases, alias to version number"),
    ),
)
MODEL_VERSIONS = Dataset(
    "model_versions",
    "Every model version ever registered, with its metrics and tags.",
    (
        Column("model", "text", "the model's name"),
        Column("version", "bigint", "the version number"),
        Column("flavor", "text", "onnx, sklearn, pytorch or custom"),
        Column("status", "text", "ready, archived or deleted"),
        Column("description", "text", "its description"),
        *_created("version"),
        Column("created_position", "bigint", "log position of its registration"),
        Column("metrics", "float_map", "metrics it was registered with, name to value"),
        Column("tags", "text_map", "its tags, key to value"),
        Column("run_id", "text", "the run it came from, when another system recorded one"),
        Column("source", "text", "where its files came from, when recorded"),
    ),
)
DEPLOYMENTS_OVER_TIME = Dataset(
    "deployments_over_time",
    "Which model version each endpoint deployment served, with which live traffic and "
    "mirrored shares, from when to when: one row per unchanged stretch.",
    (
        Column("endpoint", "text", "the endpoint's name"),
        Column("deployment", "text", "the deployment's name"),
        Column("model", "text", "the model it served"),
        Column("version", "bigint", "the model version it served"),
        Column("traffic", "bigint", "its share of live traffic, in percent"),
        Column("mirror", "bigint", "its share of mirrored (shadow) traffic, in percent"),
        Column("valid_from", "time", "when this stretch began"),
        Column("valid_to", "time", "when it ended (NULL: it still holds)"),
        Column("from_position", "bigint", "log position of the event that began it"),
        Column("to_position", "bigint", "log position of the event that ended it (NULL: none)"),
    ),
)
TRAFFIC_CHANGES = Dataset(
    "traffic_changes",
    "Every change of an endpoint's traffic or mirror split: who, when, why, the new split.",
    (
        Column("position", "bigint", "log position of the change"),
        Column("changed_at", "time", "when it was made"),
        Column("endpoint", "text", "the endpoint's name"),
        Column("change", "text", "traffic (live split) or mirror (shadow split)"),
        Column("shares", "int_map", "the split after it, deployment to percent"),
        Column("actor", "text", "who made it"),
        Column("reason", "text", "why"),
        Column("correlation_id", "text", "the request or rule firing it belongs to"),
    ),
)
JOBS = Dataset(
    "jobs",
    "Pipeline and batch jobs: state, worker and progress.",
    (
        Column("id", "text", "the job's id"),
        Column("kind", "text", "pipeline or batch"),
        Column("pipeline", "text", "name:version of its pipeline (batch:ENDPOINT for batch jobs)"),
        Column("status", "text", "submitted, running, cancelling, succeeded, failed, cancelled"),
        Column("executor", "text", "what runs it (local, ray)"),
        Column("worker", "text", "the worker running it last"),
        Column("steps_total", "bigint", "steps (rows for a batch job) to do"),
        Column("steps_done", "bigint", "steps (rows) done"),
        Column("error", "text", "why it failed, if it did"),
        Column("rerun_of", "text", "the job it reruns, if any"),
        Column("submitted_by", "text", "who submitted it"),
        Column("submitted_at", "time", "when it was submitted"),
        Column("updated_at", "time", "its last change"),
    ),
)
MONITOR_RUNS = Dataset(
    "monitor_runs",
    "Every window a monitor evaluated, with its per-column results.",
    (
        Column("monitor", "text", "the monitor's name"),
        Column("position", "bigint", "log position of the evaluation"),
        Column("endpoint", "text", "the endpoint it watches (NULL: monitor deleted)"),
        Column("deployment", "text", "the deployment it watches ('' : all)"),
        Column("window_start", "text", "the window's start, ISO 8601 as recorded"),
        Column("window_end", "text", "the window's end, ISO 8601 as recorded"),
        Column("rows", "bigint", "rows of production data in the window"),
        Column("drift_shares", "float_map", "per drift signal, the share of columns drifting"),
        Column("results", "json", "per column and signal: metric, value, threshold, verdict"),
        Column("evaluated_at", "time", "when the window was evaluated"),
    ),
)
DATASETS = (MODELS, MODEL_VERSIONS, DEPLOYMENTS_OVER_TIME, TRAFFIC_CHANGES, JOBS, MONITOR_RUNS)
