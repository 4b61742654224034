"""The jobs list, a job's page (its pipeline's DAG, snapshot and step logs; a batch job's
progress), and rerunning or cancelling a job."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from fastapi import Query, Request, Response

from ledger.api.auth import services_of
from ledger.api.routes.common import read_views
from ledger.api.ui.access import UiContributor, UiReader
from ledger.api.ui.actions import ReasonField, ui_command
from ledger.api.ui.pages.job_details import job_details
from ledger.api.ui.rendering import redirect, render
from ledger.api.ui.routing import PREFIX, ui_router
from ledger.domain.job import JobStatus
from ledger.errors import InvalidInputError
from projections.job_queries import job_id_of
from projections.views import Views

router = ui_router()
STATUSES: tuple[str, ...] = get_args(JobStatus)
LIST_LIMIT = 200


def job_url(job_id: str) -> str:
    return f"{PREFIX}/jobs/{job_id}"


@router.get("/jobs")
def jobs_page(
    request: Request,
    _: UiReader,
    status: Annotated[str, Query(max_length=20)] = "",
    pipeline: Annotated[str, Query(max_length=300)] = "",
) -> Response:
    """Jobs newest first, by status and pipeline (NAME or NAME:VERSION)."""
    status, pipeline = status.strip(), pipeline.strip()
    if status and status not in STATUSES:
        raise InvalidInputError(f"unknown job status {status!r}; expected one of {STATUSES}")
    jobs = read_views(
        request, lambda views: views.jobs(status=status, pipeline=pipeline, limit=LIST_LIMIT)
    )
    return render(
        request,
        "jobs.html",
        jobs=jobs,
        statuses=STATUSES,
        status=status,
        pipeline=pipeline,
        limit=LIST_LIMIT,
    )


@router.get("/jobs/{job_id}")
def job_page(request: Request, _: UiReader, job_id: str) -> Response:
    """A pipeline job (live while it runs), or a batch job."""
    logs_dir = services_of(request).settings.logs_dir

    def read(views: Views) -> dict[str, Any]:
        batch = views.batch_job(job_id)
        if batch is not None:
            return {"batch": batch}
        return job_details(views, job_id, logs_dir)

    found = read_views(request, read)
    if "batch" in found:
        return render(request, "job_batch.html", **found)
    return render(request, "job.html", **found)


@router.post("/jobs/{job_id}/rerun")
def rerun_job(
    request: Request, user: UiContributor, job_id: str, reason: ReasonField = ""
) -> Response:
    """Submit the job again with the same snapshot; the new job's page follows."""
    job_id = job_id_of(job_id)
    job = ui_command(
        request, user, reason, lambda ledger, why: ledger.jobs.rerun(job_id, reason=why)
    )
    return redirect(job_url(str(job.id)))


@router.post("/jobs/{job_id}/cancel")
def cancel_job(
    request: Request, user: UiContributor, job_id: str, reason: ReasonField = ""
) -> Response:
    """Cancel the job (a running one is stopped by its worker)."""
    job_id = job_id_of(job_id)
    ui_command(request, user, reason, lambda ledger, why: ledger.jobs.cancel(job_id, reason=why))
    return redirect(job_url(job_id))
