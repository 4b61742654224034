"""Everything readers ask of the ledger, answered from the views.

``Views.open(settings)`` brings the views up to the head of the log first (the
embedded store has no separate updater process), so reads see every write that
returned before them; ``Views(db)`` reads them as they are.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.errors import InvalidInputError, NotFoundError
from ledger.settings import Settings
from ledger.shapes import VersionItem
from ledger.storage.database import LedgerDatabase
from ledger.storage.timestamps import iso, to_microseconds
from projections.assets import read_asset, read_asset_version
from projections.audit import AUDIT, AuditQuery, query_audit
from projections.entities import ENTITIES
from projections.job_queries import find_batch_job, list_jobs, predictions_of, read_job
from projections.lineage import LineageGraph, walk_lineage
from projections.mlflow_queries import (
    experiment_by_name,
    metric_history,
    read_experiment,
    read_logged_model,
    read_run,
)
from projections.mlflow_searches import search_experiments, search_logged_models, search_runs
from projections.monitors import (
    ground_truth,
    latest_windows,
    list_monitors,
    monitor_alerts,
    monitor_windows,
    read_monitor,
)
from projections.paging import Page
from projections.registry_queries import RegistryQueries
from projections.rules import (
    count_fired,
    list_approvals,
    list_rules,
    read_approval,
    read_rule,
    rule_firings,
)
from projections.search import SearchQuery, search_versions
from projections.snapshot import models_as_of, registry_as_of, registry_now
from projections.tracked_artifacts import (
    read_tracked_artifact,
    tracked_artifact_folder,
    tracked_artifacts_under,
)
from projections.traffic_history import TrafficHistory, traffic_history
from projections.updater import ViewUpdater
from projections.webhooks import list_webhooks, read_webhook


@contextmanager
def without_gc_pauses() -> Iterator[None]:
    """Building the registry makes ~10^4 small acyclic objects (refcounting frees them);
    Python's cycle collector, triggered by so many allocations, would add pauses of
    20-30 ms to a query that takes 15 (and, promoting them, bring on full collections:
    ~100 ms with 100k versions' view state in the process). For any read that builds
    many objects (a page)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class PointInTime:
    """A log position, and the time of the event recorded there (None before any event)."""

    position: int
    time: str | None


class Views(RegistryQueries):
    """Registry, endpoints, assets, jobs, search, lineage, audit and point-in-time queries."""

    def __init__(self, db: LedgerDatabase, updater: ViewUpdater | None = None) -> None:
        """Queries on ``db``; ``updater`` (on the same database) is the one these views
        were opened with, for callers that also update or rebuild them."""
        super().__init__(db)
        self._updater = updater

    @classmethod
    def open(cls, settings: Settings, *, catch_up: bool = True) -> Views:
        """The views with an updater of every read model (which creates missing tables),
        brought up to the head of the log (``catch_up``)."""
        updater = ViewUpdater(settings)
        if catch_up:
            updater.catch_up()
        return cls(updater.db, updater)

    @property
    def updater(self) -> ViewUpdater:
        """The updater these views were opened with (``Views.open``)."""
        if self._updater is None:
            raise RuntimeError("these views were opened without an updater: use Views.open")
        return self._updater

    def close(self) -> None:
        if self._updater is not None:
            self._updater.close()
        self.db.close()

    def __enter__(self) -> Views:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def asset(self, kind: str, name: str) -> dict[str, Any]:
        """An environment, data asset or pipeline (``kind``: environment, data, pipeline)
        with every version's content."""
        return read_asset(self.db, kind, name)

    def asset_version(self, kind: str, ref: str) -> dict[str, Any]:
        """``name`` (the latest version) or ``name:version`` of an asset of ``kind``."""
        return read_asset_version(self.db, kind, ref)

    def jobs(
        self, *, status: str = "", pipeline: str = "", limit: int = 50
    ) -> list[dict[str, Any]]:
        """Jobs newest first, optionally of one status or pipeline."""
        return list_jobs(self.db, status=status, pipeline=pipeline, limit=limit)

    def job(self, job_id: str) -> dict[str, Any]:
        """A pipeline job with its snapshot and steps."""
        return read_job(self.db, job_id)

    def batch_job(self, job_id: str) -> dict[str, Any] | None:
        """A batch job, or None when the id is not a batch job's."""
        return find_batch_job(self.db, job_id)

    def predictions_of(self, input_digest: str, model: str = "") -> str | None:
        """The digest of the latest batch predictions over an input (by ``model``)."""
        return predictions_of(self.db, input_digest, model)

    def monitors(self, endpoint: str = "") -> list[dict[str, Any]]:
        """Live monitors (of ``endpoint``) with their configuration and open alerts."""
        return list_monitors(self.db, endpoint)

    def monitor(self, name: str) -> dict[str, Any]:
        return read_monitor(self.db, name)

    def monitor_windows(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        """A monitor's evaluated windows with per-column results, the latest first."""
        return monitor_windows(self.db, name, limit)

    def monitor_alerts(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        return monitor_alerts(self.db, name, limit)

    def monitors_now(self) -> list[dict[str, Any]]:
        """Each live monitor's open alerts and latest window's results (for gauges)."""
        return latest_windows(self.db)

    def ground_truth(self, endpoint: str) -> list[str]:
        """Digests of the endpoint's labels files (``ledger monitor labels``)."""
        return ground_truth(self.db, endpoint)

    def webhooks(self, *, deleted: bool = False) -> list[dict[str, Any]]:
        """Webhook subscriptions by name (deleted ones too with ``deleted``)."""
        return list_webhooks(self.db, deleted=deleted)

    def webhook(self, name: str) -> dict[str, Any]:
        return read_webhook(self.db, name)

    def tracked_artifact(self, path: str) -> dict[str, Any]:
        """The file of MLflow's artifact proxy at ``path`` (path, sha256, size, uploaded_by,
        uploaded_at, uploaded_position); NotFoundError when none is there."""
        return read_tracked_artifact(self.db, path)

    def tracked_artifacts(self, prefix: str) -> list[dict[str, Any]]:
        """Every proxy file under folder ``prefix`` ("": all), recursively, sorted, as
        ``{"path", "sha256", "size"}`` with the path relative to ``prefix``."""
        return tracked_artifacts_under(self.db, prefix)

    def tracked_artifact_folder(self, folder: str) -> list[dict[str, Any]]:
        """One level of a proxy folder ("": the root): files ``{"path": name, "is_dir":
        False, "size"}`` and sub-folders ``{"path": name, "is_dir": True}``."""
        return tracked_artifact_folder(self.db, folder)

    # -- MLflow tracking -----------------------------------------------------------------

    def mlflow_experiment(self, experiment_id: str) -> dict[str, Any]:
        """An experiment: experiment_id, name, artifact_location, lifecycle_stage, tags,
        creation_time and last_update_time (ms; None for the default one before its first
        write)."""
        return read_experiment(self.db, experiment_id)

    def mlflow_experiment_by_name(self, name: str) -> dict[str, Any]:
        return experiment_by_name(self.db, name)

    def mlflow_search_experiments(self, **query: Any) -> Page[dict[str, Any]]:
        """See ``projections.mlflow_searches.search_experiments``."""
        return search_experiments(self.db, **query)

    def mlflow_run(self, run_id: str) -> dict[str, Any]:
        """A run: run_id, experiment_id, run_name, user_id, status, start_time, end_time,
        artifact_uri, lifecycle_stage, params, metrics (latest value per key),
        latest_metrics (with timestamp and step), tags, inputs (datasets), model_inputs,
        outputs (logged model ids) and model_outputs (with steps)."""
        return read_run(self.db, run_id)

    def mlflow_search_runs(self, experiment_ids: list[str], **query: Any) -> Page[dict[str, Any]]:
        """See ``projections.mlflow_searches.search_runs``."""
        return search_runs(self.db, experiment_ids, **query)

    def mlflow_metric_history(
        self, run_id: str, key: str, *, max_results: int = 25_000, page_token: str = ""
    ) -> Page[dict[str, Any]]:
        return metric_history(self.db, run_id, key, max_results, page_token)

    def mlflow_logged_model(self, model_id: str) -> dict[str, Any]:
        """A logged model: model_id, experiment_id, name, artifact_location, source_run_id,
        model_type, status (PENDING, READY, FAILED), params, tags, metrics logged for it,
        creation_timestamp and last_updated_timestamp (ms)."""
        return read_logged_model(self.db, model_id)

    def mlflow_search_logged_models(
        self, experiment_ids: list[str], **query: Any
    ) -> Page[dict[str, Any]]:
        """See ``projections.mlflow_searches.search_logged_models``."""
        return search_logged_models(self.db, experiment_ids, **query)

    def entity(self, aggregate_id: str) -> tuple[str, str] | None:
        """The kind and name of an aggregate (``model_version``, ``iris:2``), None when the
        views have not seen it."""
        uid = uuid.UUID(aggregate_id)
        rows = self.db.execute(
            f"SELECT kind, name FROM {ENTITIES.name} WHERE aggregate_id IN (?, ?)",
            (str(uid), uid.hex),
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def rules(self) -> list[dict[str, Any]]:
        """Every rule with its latest spec, whether it is enabled, and its counts."""
        return list_rules(self.db)

    def rule(self, name: str) -> dict[str, Any]:
        return read_rule(self.db, name)

    def rule_firings(
        self, name: str, *, limit: int = 50, correlation_id: str = ""
    ) -> list[dict[str, Any]]:
        """A rule's firings and skips (with reasons), the latest first."""
        return rule_firings(self.db, name, limit=limit, correlation_id=correlation_id)

    def rule_fired_count(self, name: str, correlation_id: str) -> int:
        return count_fired(self.db, name, correlation_id)

    def approvals(self, state: str = "") -> list[dict[str, Any]]:
        """Approvals (pending, approved, rejected or expired), the latest first."""
        return list_approvals(self.db, state)

    def approval(self, approval_id: str) -> dict[str, Any]:
        """An approval by its short id (a prefix of its id) or full id."""
        return read_approval(self.db, approval_id)

    def search(self, query: SearchQuery) -> Page[VersionItem]:
        return search_versions(self.db, query)

    def audit(self, query: AuditQuery) -> Page:
        return query_audit(self.db, query)

    def lineage(self, node: str, *, direction: str = "upstream", depth: int = 3) -> LineageGraph:
        return walk_lineage(self.db, node, direction, depth)

    # -- point in time -------------------------------------------------------------------

    def point_at(self, moment: datetime | None = None, position: int | None = None) -> PointInTime:
        """The log position a time stands for: the last event recorded at or before it."""
        if (moment is None) == (position is None):
            raise InvalidInputError("give either a time or a log position")
        if position is not None:
            head = self.db.head_position()
            if not 0 <= position <= head:
                raise InvalidInputError(f"position must be between 0 and {head}, got {position}")
            rows = self.db.execute(
                f"SELECT time_us FROM {AUDIT.name} WHERE position = ?", (position,)
            )
            return PointInTime(position, iso(rows[0][0]) if rows else None)
        assert moment is not None
        rows = self.db.execute(
            f"SELECT position, time_us FROM {AUDIT.name} WHERE time_us <= ? "
            "ORDER BY time_us DESC, position DESC LIMIT 1",
            (to_microseconds(moment),),
        )
        return PointInTime(rows[0][0], iso(rows[0][1])) if rows else PointInTime(0, None)

    def registry(self, at: PointInTime | None = None) -> dict[str, Any]:
        """The whole registry now, or as it was at ``at``."""
        with self.db.snapshot(), without_gc_pauses():
            state = registry_now(self.db) if at is None else registry_as_of(self.db, at.position)
        if at is not None:
            state = {"position": at.position, "time": at.time, **state}
        return state

    def models_as_of(self, at: PointInTime, *, version_tags: bool = True) -> dict[str, Any]:
        """``registry(at)["models"]``, reading the models' rows only (without
        ``version_tags``: their versions' tags left out)."""
        with without_gc_pauses():
            return models_as_of(self.db, at.position, version_tags=version_tags)

    def model_as_of(self, name: str, at: PointInTime) -> dict[str, Any]:
        with without_gc_pauses():
            models = models_as_of(self.db, at.position, name=name)
        if name not in models:
            raise NotFoundError(f"model {name!r} did not exist at position {at.position}")
        return {"position": at.position, "time": at.time, "name": name, **models[name]}

    def traffic_history(self, name: str, at: PointInTime | None = None) -> TrafficHistory:
        """Who changed the endpoint's deployments, traffic or mirror, when and why, each
        change with the split after it (in log order, up to ``at``)."""
        return traffic_history(self.db, name, None if at is None else at.position)

    def endpoint_as_of(self, name: str, at: PointInTime) -> dict[str, Any]:
        endpoints = self.registry(at)["endpoints"]
        if name not in endpoints:
            raise NotFoundError(f"endpoint {name!r} did not exist at position {at.position}")
        return {"position": at.position, "time": at.time, "name": name, **endpoints[name]}
