"""The jobs view: every job with its pipeline, state, worker and progress; a pipeline job's
snapshot and steps, and a batch job's input, progress and output."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson

from ledger.domain import BatchJob, Job, LedgerAggregate
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
# A pipeline job's snapshot (never changes) and the executor it started on ('' before).
JOB_DETAILS = Table(
    "ledger_view_job_details",
    key={"id": "TEXT"},
    columns={"snapshot": "TEXT NOT NULL", "executor": "TEXT NOT NULL"},
)
# Each step of a pipeline job: its state (JSON, as ledger.domain.job.StepState), and the
# position of its first start, which orders the steps as the job ran them.
JOB_STEPS = Table(
    "ledger_view_job_steps",
    key={"job": "TEXT", "step": "TEXT"},
    columns={"started_position": "BIGINT NOT NULL", "state": "TEXT NOT NULL"},
)
BATCH_JOBS = Table(
    "ledger_view_batch_jobs",
    key={"id": "TEXT"},
    columns={
        "endpoint": "TEXT NOT NULL",
        "deployment": "TEXT NOT NULL",
        "model": "TEXT NOT NULL",
        "status": "TEXT NOT NULL",
        "worker": "TEXT NOT NULL",
        "input_uri": "TEXT NOT NULL",
        "input_digest": "TEXT NOT NULL",
        "rows": "BIGINT NOT NULL",
        "rows_done": "BIGINT NOT NULL",
        "mini_batch_size": "BIGINT NOT NULL",
        "output_digest": "TEXT NOT NULL",
        "duration_s": "FLOAT8 NOT NULL",
        "scoring_s": "FLOAT8 NOT NULL",
        "error": "TEXT NOT NULL",
        "submitted_at_us": "BIGINT NOT NULL",
        "updated_at_us": "BIGINT NOT NULL",
    },
)
BATCH_COLUMNS = ("id", *BATCH_JOBS.columns)
_BATCH_INDEX = {name: index for index, name in enumerate(BATCH_JOBS.columns)}


def job_key(change: Change) -> str:
    """The job's id as users write it (with dashes)."""
    return str(UUID(change.aggregate_id))


class JobsProjection(ReadModel):
    """Jobs by id: what `ledger job list` and `ledger job show` print, and where workers
    find unfinished jobs."""

    name = "jobs"
    description = "pipeline and batch jobs: status, worker, progress, snapshot, steps, output"
    tables = (JOBS, JOB_DETAILS, JOB_STEPS, BATCH_JOBS)

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        return {
            Job.Submitted: self._submitted,
            Job.Started: self._started,
            Job.TakenOver: self._taken_over,
            Job.StepStarted: self._step_started,
            Job.StepCompleted: self._step_completed,
            Job.StepFailed: self._step_failed,
            Job.CancelRequested: self._status("cancelling"),
            Job.Succeeded: self._status("succeeded"),
            Job.Failed: self._failed,
            Job.Cancelled: self._status("cancelled"),
            BatchJob.Requested: self._batch_requested,
            BatchJob.Started: self._batch_started,
            BatchJob.Progressed: self._batch_progressed,
            BatchJob.Completed: self._batch_completed,
            BatchJob.Failed: self._batch_failed,
        }

    # Batch jobs are listed with the pipeline jobs: "pipeline" names the endpoint
    # (batch:NAME), and the steps columns count rows.

    def _batch_requested(self, change: Change) -> None:
        event = change.data
        self.put(
            BATCH_JOBS.name,
            (job_key(change),),
            (event["endpoint"], event["deployment"], event["model"], "submitted", "",
             event["input_uri"], event["input_digest"], event["rows"], 0,
             event["mini_batch_size"], "", 0.0, 0.0, "", change.time_us, change.time_us),
        )  # fmt: skip
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
        worker = change.data["worker"]
        self._update(change, status="running", worker=worker, steps_done=0)
        self._update_batch(change, status="running", worker=worker, rows_done=0)

    def _batch_progressed(self, change: Change) -> None:
        self._update(change, steps_done=change.data["rows_done"])
        self._update_batch(change, rows_done=change.data["rows_done"])

    def _batch_completed(self, change: Change) -> None:
        event = change.data
        self._update(change, status="succeeded", steps_done=event["rows"])
        self._update_batch(
            change,
            status="succeeded",
            rows_done=event["rows"],
            duration_s=float(event["duration_s"]),
            scoring_s=float(event["scoring_s"]),
            output_digest=event["output_digest"],
        )

    def _batch_failed(self, change: Change) -> None:
        self._failed(change)
        self._update_batch(change, status="failed", error=change.data["error"])

    def _update_batch(self, change: Change, **values: Any) -> None:
        key = (job_key(change),)
        row = self.get(BATCH_JOBS.name, key)
        if row is None:
            return
        new = list(row)
        for column, value in {**values, "updated_at_us": change.time_us}.items():
            new[_BATCH_INDEX[column]] = value
        self.put(BATCH_JOBS.name, key, tuple(new))

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
        snapshot = orjson.dumps(event["snapshot"]).decode()
        self.put(JOB_DETAILS.name, (job_key(change),), (snapshot, ""))

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
        key = (job_key(change),)
        details = self.get(JOB_DETAILS.name, key)
        if details is not None:
            self.put(JOB_DETAILS.name, key, (details[0], event["executor"]))

    def _taken_over(self, change: Change) -> None:
        self._update(change, worker=change.data["worker"])

    def _step_started(self, change: Change) -> None:
        event = change.data
        key = (job_key(change), event["step"])
        previous = self.get(JOB_STEPS.name, key)
        state = {
            "status": "running",
            "attempt": event["attempt"],
            "outputs": {},
            "metrics": {},
            "duration_s": 0.0,
            "log_uri": "",
            "models": [],
            "error": "",
            "failures": orjson.loads(previous[1])["failures"] if previous else 0,
            "environment": event["environment"],
            "runtime_env": event["runtime_env"],
        }
        started = previous[0] if previous else change.position
        self.put(JOB_STEPS.name, key, (started, orjson.dumps(state).decode()))
        self._update(change)

    def _change_step(self, change: Change, **values: Any) -> None:
        key = (job_key(change), change.data["step"])
        row = self.get(JOB_STEPS.name, key)
        if row is not None:
            state = {**orjson.loads(row[1]), **values}
            self.put(JOB_STEPS.name, key, (row[0], orjson.dumps(state).decode()))

    def _step_completed(self, change: Change) -> None:
        event = change.data
        self._change_step(
            change,
            status="completed",
            outputs=event["outputs"],
            metrics=event["metrics"],
            duration_s=event["duration_s"],
            log_uri=event["log_uri"],
            models=event["models"],
        )
        row = self.get(JOBS.name, (job_key(change),))
        if row is not None:
            self._update(change, steps_done=row[_INDEX["steps_done"]] + 1)

    def _step_failed(self, change: Change) -> None:
        event = change.data
        row = self.get(JOB_STEPS.name, (job_key(change), event["step"]))
        failures = orjson.loads(row[1])["failures"] if row is not None else 0
        self._change_step(
            change,
            status="failed",
            failures=failures + (1 if event["counted"] else 0),
            error=event["error"],
            duration_s=event["duration_s"],
            log_uri=event["log_uri"],
        )
        self._update(change)

    def _failed(self, change: Change) -> None:
        self._update(change, status="failed", error=change.data["error"])

    def _status(self, status: str) -> Handler:
        return lambda change: self._update(change, status=status)
