"""The registry as the aggregates (the write side) know it, shaped like the views' snapshot.

Tests compare the views with this: it is built from the domain objects, not from
any projection code.
"""

from __future__ import annotations

import uuid
from typing import Any

from ledger.domain import (
    BatchJob,
    DataAsset,
    Endpoint,
    Environment,
    LedgerAggregate,
    Model,
    Pipeline,
)
from ledger.domain.base import aggregate_id
from ledger.domain.endpoint import sampling_rate_of
from ledger.domain.model import ModelVersion, model_id, model_version_id
from ledger.history import HistoryEntry
from ledger.ledger import Ledger
from ledger.storage.timestamps import to_microseconds

ASSET_CLASSES: dict[str, type[Environment | DataAsset | Pipeline]] = {
    "environment": Environment,
    "data": DataAsset,
    "pipeline": Pipeline,
}


def names_created(ledger: Ledger, created_event: type[LedgerAggregate.Event]) -> list[str]:
    """Names of every aggregate created with ``created_event``, in creation order (a scan of
    the whole log by topic: the views answer this for readers)."""
    topic = f"{created_event.__module__}:{created_event.__qualname__}"
    names: list[str] = []
    start = 1
    while page := ledger.recorder.select_notifications(start, 1_000, topics=[topic]):
        names.extend(vars(ledger.mapper.to_domain_event(n))["name"] for n in page)
        start = page[-1].id + 1
    return names


def asset_from_aggregate(ledger: Ledger, kind: str, name: str) -> dict[str, Any]:
    """An environment, data asset or pipeline as the assets view shows it."""
    asset = ledger.find(ASSET_CLASSES[kind], aggregate_id(kind, name))
    assert asset is not None, f"no {kind} {name}"
    events = ledger.events_of(asset.id)
    return {
        "kind": kind,
        "name": asset.name,
        "origin": asset.origin,
        "versions": [
            {
                **version,
                "created_at": event.timestamp.isoformat(),
                "created_by": event.actor,
            }
            for version, event in zip(asset.versions, events[1:], strict=True)
        ],
        "created_at": asset.created_on.isoformat(),
        "created_by": events[0].actor,
        "updated_at": asset.modified_on.isoformat(),
    }


def batch_job_from_aggregate(ledger: Ledger, job_id: str) -> dict[str, Any]:
    """A batch job as the jobs view shows it."""
    job = ledger.find(BatchJob, uuid.UUID(job_id))
    assert job is not None, f"no batch job {job_id}"
    return {
        "id": str(job.id),
        "kind": "batch",
        "endpoint": job.endpoint,
        "deployment": job.deployment,
        "model": job.model,
        "status": job.status,
        "worker": job.worker,
        "input_uri": job.input_uri,
        "input_digest": job.input_digest,
        "rows": job.rows,
        "rows_done": job.rows_done,
        "mini_batch_size": job.mini_batch_size,
        "output_digest": job.output_digest,
        "duration_s": job.duration_s,
        "scoring_s": job.scoring_s,
        "error": job.error,
        "submitted_at": job.created_on.isoformat(),
        "updated_at": job.modified_on.isoformat(),
    }


def model_versions(
    ledger: Ledger, name: str, *, limit: int = 50, include_deleted: bool = False
) -> list[ModelVersion]:
    """The model's versions, newest first, loaded one by one."""
    model = ledger.models.get(name)
    versions: list[ModelVersion] = []
    for number in range(model.latest_version, 0, -1):
        if len(versions) >= limit:
            break
        version = ledger.models.get_version(f"{name}:{number}")
        if include_deleted or version.status != "deleted":
            versions.append(version)
    return versions


def model_history(ledger: Ledger, name: str) -> list[HistoryEntry]:
    """Events of the model and of every one of its versions, oldest first."""
    model = ledger.models.get(name)
    ids = {model.id: f"model {name}"}
    for number in range(1, model.latest_version + 1):
        ids[model_version_id(name, number)] = f"model {name}:{number}"
    return ledger.history_of(ids)


def registry_from_aggregates(ledger: Ledger) -> dict[str, Any]:
    models: dict[str, Any] = {}
    created = names_created(ledger, Model.Registered) + names_created(ledger, Model.RenamedFrom)
    for name in created:
        model = ledger.find(Model, model_id(name))
        assert model is not None
        if model.deleted:  # deleted or renamed: the views show it no more
            continue
        versions = {}
        for number in range(1, model.latest_version + 1):
            version = ledger.models.get_version(f"{name}:{number}")
            versions[number] = {
                "status": version.status,
                "flavor": version.spec["flavor"],
                "tags": dict(sorted(version.tags.items())),
                "deployments": sorted(version.deployments, key=lambda d: tuple(d.values())),
                "created_at_us": to_microseconds(version.created_on),
                "created_by": _creator(ledger, version.id),
            }
        models[name] = {
            "description": model.description,
            "latest_version": model.latest_version,
            "tags": dict(sorted(model.tags.items())),
            "aliases": dict(sorted(model.aliases.items())),
            "versions": versions,
            **_model_created(ledger, model),
        }
    endpoints: dict[str, Any] = {}
    for name in names_created(ledger, Endpoint.Created):
        endpoint = ledger.endpoints.get(name)
        endpoints[name] = {
            "kind": endpoint.kind,
            "description": endpoint.description,
            "status": "deleted" if endpoint.deleted else "active",
            "deployments": {
                d: {
                    "model": dep["model"],
                    "version": dep["version"],
                    "environment": dep["environment"],
                    "resources": dict(dep["resources"]),
                    "health": dep["health"],
                    "health_detail": dep["health_detail"],
                    "sampling_rate": sampling_rate_of(dep),
                }
                for d, dep in sorted(endpoint.deployments.items())
            },
            "traffic": dict(sorted(endpoint.traffic.items())),
            "mirror": dict(sorted(endpoint.mirror.items())),
            "created_at_us": to_microseconds(endpoint.created_on),
            "created_by": _creator(ledger, endpoint.id),
        }
    return {"models": models, "endpoints": endpoints}


def _model_created(ledger: Ledger, model: Model) -> dict[str, Any]:
    """When and by whom the model was created: last created again, if it was."""
    events = ledger.events_of(model.id)
    created = [e for e in events if isinstance(e, Model.Recreated)] or events[:1]
    return {
        "created_at_us": to_microseconds(created[-1].timestamp),
        "created_by": created[-1].actor,
    }


def _creator(ledger: Ledger, aggregate_id: Any) -> str:
    return ledger.events_of(aggregate_id)[0].actor
