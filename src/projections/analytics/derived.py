"""The analytics datasets computed from the views, on either store, as Arrow tables.

PostgreSQL's ``analytics`` schema computes the same rows in SQL (``pg_views``); a test
holds the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
import pyarrow as pa

from ledger.domain import Endpoint
from ledger.storage.database import LedgerDatabase
from ledger.storage.decoding import EventDecoder
from ledger.storage.rows import Row
from projections.analytics import catalog
from projections.analytics.deployments_over_time import deployments_over_time
from projections.audit import AUDIT
from projections.base import event_type
from projections.jobs import BATCH_JOBS, JOBS
from projections.monitors import MONITORS, WINDOWS
from projections.registry import ALIASES, MODEL_TAGS, MODELS, VERSION_SPECS, VERSION_TAGS, VERSIONS

SPLIT_CHANGES = {
    event_type(Endpoint.TrafficChanged): ("traffic", "weights"),
    event_type(Endpoint.MirrorChanged): ("mirror", "mirror"),
}


def arrow_table(dataset: catalog.Dataset, rows: Iterable[Row]) -> pa.Table:
    """Rows (values in the dataset's column order; times in microseconds) as a table."""
    columns = list(zip(*rows, strict=True)) or [()] * len(dataset.columns)
    pairs = zip(dataset.columns, columns, strict=True)
    arrays = [pa.array(values, type=column.arrow_type) for column, values in pairs]
    return pa.table(arrays, schema=dataset.arrow_schema)


def _grouped(rows: list[Row], width: int) -> dict[tuple[Any, ...], dict[str, Any]]:
    """(owner key of ``width`` columns, key, value) rows as owner -> {key: value}."""
    grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        grouped.setdefault(tuple(row[:width]), {})[row[width]] = row[width + 1]
    return grouped


def models(db: LedgerDatabase) -> pa.Table:
    tags = _grouped(db.execute(f"SELECT model, key, value FROM {MODEL_TAGS.name}"), 1)
    aliases = _grouped(db.execute(f"SELECT model, alias, version FROM {ALIASES.name}"), 1)
    rows = db.execute(
        "SELECT name, description, latest_version, created_at_us, created_by, updated_at_us "
        f"FROM {MODELS.name} ORDER BY name"
    )
    return arrow_table(
        catalog.MODELS,
        ((*row, tags.get((row[0],), {}), aliases.get((row[0],), {})) for row in rows),
    )


def model_versions(db: LedgerDatabase) -> pa.Table:
    tags = _grouped(db.execute(f"SELECT model, version, key, value FROM {VERSION_TAGS.name}"), 2)
    rows = db.execute(
        "SELECT v.model, v.version, v.flavor, v.status, s.description, v.created_at_us, "
        "v.created_by, v.created_position, s.spec, s.run_id, s.source "
        f"FROM {VERSIONS.name} v LEFT JOIN {VERSION_SPECS.name} s "
        "ON s.model = v.model AND s.version = v.version ORDER BY v.model, v.version"
    )

    def version(row: Row) -> Row:
        metrics = orjson.loads(row[8]).get("metrics", {}) if row[8] else {}
        return (*row[:8], metrics, tags.get((row[0], row[1]), {}), *row[9:])

    return arrow_table(catalog.MODEL_VERSIONS, map(version, rows))


def traffic_changes(db: LedgerDatabase) -> pa.Table:
    events, position = db.events_table
    marks = ", ".join("?" * len(SPLIT_CHANGES))
    rows = db.execute(
        "SELECT a.position, a.time_us, a.name, a.event_type, a.actor, a.reason, "
        f"a.correlation_id, e.topic, e.state FROM {AUDIT.name} a "
        f"JOIN {events} e ON e.{position} = a.position "
        f"WHERE a.event_type IN ({marks}) ORDER BY a.position",
        tuple(SPLIT_CHANGES),
    )
    decoder = EventDecoder()

    def change(row: Row) -> Row:
        kind, field = SPLIT_CHANGES[row[3]]
        _, fields, _ = decoder.decode(row[7], bytes(row[8]))
        return (*row[:3], kind, fields[field], *row[4:7])

    return arrow_table(catalog.TRAFFIC_CHANGES, map(change, rows))


def jobs(db: LedgerDatabase) -> pa.Table:
    rows = db.execute(
        "SELECT j.id, CASE WHEN b.id IS NULL THEN 'pipeline' ELSE 'batch' END, j.pipeline, "
        "j.status, j.executor, j.worker, j.steps_total, j.steps_done, j.error, j.rerun_of, "
        f"j.submitted_by, j.submitted_at_us, j.updated_at_us FROM {JOBS.name} j "
        f"LEFT JOIN {BATCH_JOBS.name} b ON b.id = j.id ORDER BY j.submitted_at_us, j.id"
    )
    return arrow_table(catalog.JOBS, rows)


def monitor_runs(db: LedgerDatabase) -> pa.Table:
    rows = db.execute(
        "SELECT w.monitor, w.position, m.endpoint, m.deployment, w.window_start, "
        "w.window_end, w.rows, w.drift_shares, w.results, w.evaluated_at_us "
        f"FROM {WINDOWS.name} w LEFT JOIN {MONITORS.name} m ON m.name = w.monitor "
        "ORDER BY w.position"
    )
    return arrow_table(
        catalog.MONITOR_RUNS, ((*row[:7], orjson.loads(row[7]), *row[8:]) for row in rows)
    )


def _deployments(db: LedgerDatabase) -> pa.Table:
    return arrow_table(catalog.DEPLOYMENTS_OVER_TIME, deployments_over_time(db))


BUILDERS: dict[str, Callable[[LedgerDatabase], pa.Table]] = {
    catalog.MODELS.name: models,
    catalog.MODEL_VERSIONS.name: model_versions,
    catalog.DEPLOYMENTS_OVER_TIME.name: _deployments,
    catalog.TRAFFIC_CHANGES.name: traffic_changes,
    catalog.JOBS.name: jobs,
    catalog.MONITOR_RUNS.name: monitor_runs,
}


def analytics_tables(db: LedgerDatabase) -> dict[str, pa.Table]:
    """Every analytics dataset, by name (read in the caller's snapshot)."""
    return {dataset.name: BUILDERS[dataset.name](db) for dataset in catalog.DATASETS}
