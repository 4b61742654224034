"""Reading the jobs view: the job list, one pipeline job, one batch job."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from ledger.domain.job import FINAL_STATUSES
from ledger.errors import InvalidInputError, NotFoundError
from ledger.storage.database import LedgerDatabase
from ledger.storage.timestamps import iso
from projections.jobs import BATCH_COLUMNS, BATCH_JOBS, COLUMNS, JOB_DETAILS, JOB_STEPS, JOBS


def list_jobs(
    db: LedgerDatabase,
    *,
    status: str = "",
    pipeline: str = "",
    unfinished: bool = False,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Jobs newest first, filtered by status, pipeline name (or NAME:VERSION)."""
    if "\0" in status + pipeline:
        raise InvalidInputError("job filters cannot contain NUL characters")
    where, params = [], []
    if status:
        where.append("status = ?")
        params.append(status)
    if unfinished:
        where.append(f"status NOT IN ({', '.join('?' * len(FINAL_STATUSES))})")
        params.extend(FINAL_STATUSES)
    if pipeline:
        where.append("(pipeline = ? OR pipeline LIKE ?)")
        params += [pipeline, f"{pipeline}:%"]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = db.execute(
        f"SELECT {', '.join(COLUMNS)} FROM {JOBS.name} {clause} "
        "ORDER BY submitted_at_us DESC, id LIMIT ?",
        (*params, limit),
    )
    return [_job_row(row) for row in rows]


def _job_row(row: tuple[Any, ...]) -> dict[str, Any]:
    item = dict(zip(COLUMNS, row, strict=True))
    item["submitted_at"] = iso(item.pop("submitted_at_us"))
    item["updated_at"] = iso(item.pop("updated_at_us"))
    return item


def job_id_of(text: str) -> str:
    """A job id as the views key it (lower case, with dashes)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidInputError(f"invalid job id {text!r}") from None


def read_job(db: LedgerDatabase, job_id: str) -> dict[str, Any]:
    """A pipeline job: its snapshot, status, executor, worker and each step's state."""
    key = job_id_of(job_id)
    rows = db.execute(
        f"SELECT j.pipeline, j.status, d.executor, j.worker, j.rerun_of, d.snapshot, j.error, "
        f"j.submitted_at_us, j.updated_at_us FROM {JOBS.name} j "
        f"JOIN {JOB_DETAILS.name} d ON d.id = j.id WHERE j.id = ?",
        (key,),
    )
    if not rows:
        raise NotFoundError(f"job {job_id} does not exist")
    pipeline, status, executor, worker, rerun_of, snapshot, error, submitted, updated = rows[0]
    steps = db.execute(
        f"SELECT step, state FROM {JOB_STEPS.name} WHERE job = ? ORDER BY started_position",
        (key,),
    )
    return {
        "id": key,
        "pipeline": pipeline,
        "status": status,
        "executor": executor,
        "worker": worker,
        "rerun_of": rerun_of,
        "snapshot": orjson.loads(snapshot),
        "steps": {step: orjson.loads(state) for step, state in steps},
        "error": error,
        "submitted_at": iso(submitted),
        "updated_at": iso(updated),
    }


def find_batch_job(db: LedgerDatabase, job_id: str) -> dict[str, Any] | None:
    """A batch job's endpoint, input, progress and output; None when there is none with
    this id (it may be a pipeline job's)."""
    rows = db.execute(
        f"SELECT {', '.join(BATCH_COLUMNS)} FROM {BATCH_JOBS.name} WHERE id = ?",
        (job_id_of(job_id),),
    )
    if not rows:
        return None
    job_key, *values, submitted_at_us, updated_at_us = rows[0]
    return {
        "id": job_key,
        "kind": "batch",
        **dict(zip(BATCH_COLUMNS[1:-2], values, strict=True)),
        "submitted_at": iso(submitted_at_us),
        "updated_at": iso(updated_at_us),
    }


def predictions_of(db: LedgerDatabase, input_digest: str, model: str = "") -> str | None:
    """The output digest of the latest succeeded batch job over the input with
    ``input_digest`` (by ``model``, NAME:VERSION, when given); None when there is none."""
    where, params = "input_digest = ? AND status = 'succeeded'", [input_digest]
    if model:
        where, params = f"{where} AND model = ?", [*params, model]
    rows = db.execute(
        f"SELECT output_digest FROM {BATCH_JOBS.name} WHERE {where} "
        "ORDER BY updated_at_us DESC LIMIT 1",
        params,
    )
    return str(rows[0][0]) if rows else None
