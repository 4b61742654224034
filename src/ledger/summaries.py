"""Plain-data summaries of aggregates, shared by the CLI's --json output and the API."""

from __future__ import annotations

from typing import Any

from ledger.chain import VerifyReport
from ledger.domain import BatchJob, DataAsset, Environment, Job, Pipeline
from ledger.domain.versioned import VersionedAsset


def asset_summary(asset: VersionedAsset) -> dict[str, Any]:
    kind = {Environment: "environment", DataAsset: "data", Pipeline: "pipeline"}[type(asset)]
    return {
        "kind": kind,
        "name": asset.name,
        "origin": asset.origin,
        "versions": asset.versions,
        "created_at": asset.created_on.isoformat(),
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


def batch_job_summary(job: BatchJob) -> dict[str, Any]:
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


def verify_summary(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "events": report.count,
        "head": report.head,
        "bad_position": report.bad_position,
        "problem": report.problem,
    }
