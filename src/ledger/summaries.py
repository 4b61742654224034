"""Plain-data summaries of aggregates, shared by the CLI's --json output and the API."""

from __future__ import annotations

from typing import Any

from ledger.chain import VerifyReport
from ledger.domain import (
    Endpoint,
    Job,
    Model,
    ModelVersion,
)


def model_summary(model: Model) -> dict[str, Any]:
    return {
        "name": model.name,
        "latest_version": model.latest_version,
        "tags": model.tags,
        "aliases": model.aliases,
        "created_at": model.created_on.isoformat(),
        "updated_at": model.modified_on.isoformat(),
    }


def version_summary(version: ModelVersion, model: Model | None = None) -> dict[str, Any]:
    spec = version.spec
    return {
        "model": version.model_name,
        "version": version.number,
        "ref": version.ref,
        "status": version.status,
        "flavor": spec["flavor"],
        "description": spec["description"],
        "tags": version.tags,
        "aliases": model.aliases_of(version.number) if model else [],
        "metrics": spec["metrics"],
        "signature": spec["signature"],
        "lineage": spec["lineage"],
        "files": spec["files"],
        "size": sum(f["size"] for f in spec["files"]),
        "deployments": version.deployments,
        "created_at": version.created_on.isoformat(),
    }


def endpoint_summary(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "name": endpoint.name,
        "kind": endpoint.kind,
        "description": endpoint.description,
        "deleted": endpoint.deleted,
        "deployments": {
            name: {
                **deployment,
                "traffic": endpoint.traffic.get(name, 0),
                "mirror": endpoint.mirror.get(name, 0),
            }
            for name, deployment in endpoint.deployments.items()
        },
        "traffic": endpoint.traffic,
        "mirror": endpoint.mirror,
        "created_at": endpoint.created_on.isoformat(),
        "updated_at": endpoint.modified_on.isoformat(),
    }


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "pipeline": job.pipeline_ref,
        "status": job.status,
        "executor": job.executor,
        "worker": job.worker,
        "rerun_of": job.rerun_of,
        "snapshot": job.snapshot,
        "steps": job.steps,
        "error": job.error,
        "submitted_at": job.created_on.isoformat(),
        "updated_at": job.modified_on.isoformat(),
    }


def verify_summary(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "events": report.count,
        "head": report.head,
        "bad_position": report.bad_position,
        "problem": report.problem,
    }
