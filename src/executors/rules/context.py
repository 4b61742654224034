"""What a rule sees of an event: the event's fields, and the entity it is about as the
views know it (a model version's tags and metrics, a job's pipeline, parameters and
metrics, an endpoint's deployments)."""

from __future__ import annotations

from typing import Any

from ledger.bus import BusEvent
from ledger.bus.cloudevents import event_fields
from ledger.errors import NotFoundError
from projections.views import Views


def version_fields(version: dict[str, Any]) -> dict[str, Any]:
    """A model version as rules see it (also what ``alias()`` and ``latest()`` return)."""
    return {
        "model": version["model"],
        "version": version["version"],
        "ref": version["ref"],
        "status": version["status"],
        "tags": dict(version["tags"]),
        "metrics": dict(version["metrics"]),
        "aliases": list(version["aliases"]),
    }


def _job_fields(views: Views, job_id: str) -> dict[str, Any]:
    job = views.job(job_id)
    pipeline, _, pipeline_version = job["pipeline"].rpartition(":")
    metrics: dict[str, Any] = {}
    for step in job["steps"].values():  # later steps' metrics win
        metrics |= step.get("metrics") or {}
    return {
        "id": job["id"],
        "pipeline": pipeline,
        "pipeline_version": int(pipeline_version) if pipeline_version.isdigit() else 0,
        "params": dict(job["snapshot"].get("parameters") or {}),
        "status": job["status"],
        "metrics": metrics,
    }


def entity_fields(event: BusEvent, views: Views) -> dict[str, Any]:
    """The fields of the entity ``event`` is about, read from the views."""
    found = views.entity(event.aggregate_id)
    if found is None:
        return {}
    kind, name = found
    try:
        if kind == "model_version":
            model, _, number = name.rpartition(":")
            return version_fields(dict(views.version_of(model, int(number))))
        if kind == "model":
            found_model = views.model(name)
            return {"model": name, "tags": dict(found_model["tags"]),
                    "aliases": dict(found_model["aliases"])}  # fmt: skip
        if kind == "job" and not event.subject.startswith("ledger.batch_job."):
            job = _job_fields(views, name)
            return {"job": job, "pipeline": job["pipeline"], "params": job["params"],
                    "metrics": job["metrics"]}  # fmt: skip
        if kind == "endpoint":
            return {"endpoint": dict(views.endpoint(name))}
    except NotFoundError:  # deleted since: the event's own fields still count
        return {}
    return {kind: name}


def rule_context(event: BusEvent, views: Views) -> dict[str, Any]:
    """The context of ``match``, ``when`` and templates: the event's data and entity fields
    at the top, and ``event`` (the envelope, with the entity's model and version copied)."""
    fields = event_fields(event) | {
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
    }
    entity = entity_fields(event, views)
    copied: dict[str, Any] = {k: entity[k] for k in ("model", "version") if k in entity}
    envelope = {**fields, **copied}
    return {**fields["data"], **entity, "event": envelope}
