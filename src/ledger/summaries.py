"""Plain-data summaries of aggregates, shared by the CLI's --json output and the API."""

from __future__ import annotations

from typing import Any

from ledger.chain import VerifyReport
from ledger.domain import Job


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
