"""The jobs view: every job with its pipeline, state, worker and progress."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.domain import BatchJob, Job, LedgerAggregate
from ledger.domain.job import FINAL_STATUSES
from ledger.errors import InvalidInputError
from ledger.storage.database import LedgerDatabase
from ledger.storage.timestamps import iso
from projections.base import Change, Handler, ReadModel
from projections.tables import Table

JOBS = Table(
    "ledger_view_jobs",
    key={"id": "TEXT"},
    columns={
        "pipeline": "TEXT NOT NULL",
        "status": "TEXT NOT NULL",
        "executor": "TEXT NOT NULL",
        "worker": "TEXT NOT NULL",
        "steps_total": "BIGINT NOT NULL",
        "steps_done": "BIGINT NOT NULL",
        "error": "TEXT NOT NULL",
        "rerun_of": "TEXT NOT NULL",
        "submitted_by": "TEXT NOT NULL",
        "submitted_at_us": "BIGINT NOT NULL",
        "updated_at_us": "BIGINT NOT NULL",
    },
    indexes=(("status",), ("submitted_at_us",)),
)
COLUMNS = ("id", *JOBS.columns)
_INDEX = {name: index for index, name in enumerate(JOBS.columns)}  # in a row (no id)


def job_key(change: Change) -> str:
    """The job's id as users write it (with dashes)."""
    return str(UUID(change.aggregate_id))


class JobsProjection(ReadModel):
    """Jobs by id: what `ledger job list` shows and where workers find unfinished jobs."""

    name = "jobs"
    description = "pipeline jobs: status, executor, worker, steps done"
    tables = (JOBS,)

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        return {
            Job.Submitted: self._submitted,
            Job.Started: self._started,
            Job.TakenOver: self._taken_over,
            Job.StepCompleted: self._step_completed,
            Job.CancelRequested: self._status("cancelling"),
            Job.Succeeded: self._status("succeeded"),
            Job.Failed: self._failed,
            Job.Cancelled: self._status("cancelled"),
            BatchJob.Requested: self._batch_requested,
            BatchJob.Started: self._batch_started,
            BatchJob.Progressed: self._batch_progressed,
            BatchJob.Completed: self._batch_completed,
            BatchJob.Failed: self._failed,
        }

    # Batch jobs are listed with the pipeline jobs: "pipeline" names the endpoint
    # (batch:NAME), and the steps columns count rows.

    def _batch_requested(self, change: Change) -> None:
        event = change.data
        row = (
            f"batch:{event['endpoint']}",
            "submitted",
            "ray",
            "",
            event["rows"],
            0,
            "",
            "",
            event["actor"],
            change.time_us,
            change.time_us,
        )
        self.put(JOBS.name, (job_key(change),), row)

    def _batch_started(self, change: Change) -> None:
        self._update(change, status="running", worker=change.data["worker"], steps_done=0)

    def _batch_progressed(self, change: Change) -> None:
        self._update(change, steps_done=change.data["rows_done"])

    def _batch_completed(self, change: Change) -> None:
        self._update(change, status="succeeded", steps_done=change.data["rows"])

    def _submitted(self, change: Change) -> None:
        event = change.data
        row = (
            f"{event['pipeline']}:{event['pipeline_version']}",
            "submitted",
            event["snapshot"]["executor"],
            "",
            len(event["snapshot"]["resources"]),
            0,
            "",
            event.get("rerun_of", ""),
            event["actor"],
            change.time_us,
            change.time_us,
        )
        self.put(JOBS.name, (job_key(change),), row)

    def _update(self, change: Change, **values: Any) -> None:
        key = (job_key(change),)
        row = self.get(JOBS.name, key)
        if row is None:
            return
        new = list(row)
        for column, value in {**values, "updated_at_us": change.time_us}.items():
            new[_INDEX[column]] = value
        self.put(JOBS.name, key, tuple(new))

    def _started(self, change: Change) -> None:
        event = change.data
        self._update(change, status="running", executor=event["executor"], worker=event["worker"])

    def _taken_over(self, change: Change) -> None:
        self._update(change, worker=change.data["worker"])

    def _step_completed(self, change: Change) -> None:
        row = self.get(JOBS.name, (job_key(change),))
        if row is not None:
            self._update(change, steps_done=row[_INDEX["steps_done"]] + 1)

    def _failed(self, change: Change) -> None:
        self._update(change, status="failed", error=change.data["error"])

    def _status(self, status: str) -> Handler:
        return lambda change: self._update(change, status=status)


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
