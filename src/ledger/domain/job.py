"""Jobs: one run of a pipeline version, from submission to a final state."""

from __future__ import annotations

from typing import Any, Literal, TypedDict
from uuid import UUID

from ledger.domain.base import LedgerAggregate
from ledger.errors import RuleViolationError

JobStatus = Literal["submitted", "running", "succeeded", "failed", "cancelled"]


class JobSnapshot(TypedDict):
    """What a job needs to be reproduced: code, data, environment, parameters, compute."""

    code_digest: str
    git_commit: str
    data: list[str]
    environment: str
    environment_digest: str
    parameters: dict[str, Any]
    executor: str
    resources: dict[str, Any]


class StepState(TypedDict):
    status: str
    attempt: int
    outputs: dict[str, str]
    metrics: dict[str, float]
    duration_s: float
    log_uri: str


class Job(LedgerAggregate):
    """A pipeline run; its events are the run's history."""

    def __init__(self) -> None:
        self.pipeline = ""
        self.pipeline_version = 0
        self.snapshot: JobSnapshot
        self.status: JobStatus = "submitted"
        self.executor = ""
        self.steps: dict[str, StepState] = {}
        self.error = ""

    @property
    def pipeline_ref(self) -> str:
        return f"{self.pipeline}:{self.pipeline_version}"

    class Event(LedgerAggregate.Event):
        pass

    class Submitted(Event, LedgerAggregate.Created):
        pipeline: str
        pipeline_version: int
        snapshot: JobSnapshot

        def apply(self, job: Job) -> None:
            job.pipeline = self.pipeline
            job.pipeline_version = self.pipeline_version
            job.snapshot = self.snapshot

    class Started(Event):
        executor: str

        def apply(self, job: Job) -> None:
            job.status = "running"
            job.executor = self.executor

    class StepStarted(Event):
        step: str
        attempt: int

        def apply(self, job: Job) -> None:
            job.steps[self.step] = {
                "status": "running",
                "attempt": self.attempt,
                "outputs": {},
                "metrics": {},
                "duration_s": 0.0,
                "log_uri": "",
            }

    class StepCompleted(Event):
        step: str
        outputs: dict[str, str]
        metrics: dict[str, float]
        duration_s: float
        log_uri: str

        def apply(self, job: Job) -> None:
            step = job.steps[self.step]
            step["status"] = "completed"
            step["outputs"] = self.outputs
            step["metrics"] = self.metrics
            step["duration_s"] = self.duration_s
            step["log_uri"] = self.log_uri

    class Succeeded(Event):
        def apply(self, job: Job) -> None:
            job.status = "succeeded"

    class Failed(Event):
        error: str

        def apply(self, job: Job) -> None:
            job.status = "failed"
            job.error = self.error

    class Cancelled(Event):
        def apply(self, job: Job) -> None:
            job.status = "cancelled"

    @classmethod
    def submit(
        cls, job_id: UUID, pipeline: str, pipeline_version: int, snapshot: JobSnapshot
    ) -> Job:
        return cls._create(
            cls.Submitted,
            id=job_id,
            pipeline=pipeline,
            pipeline_version=pipeline_version,
            snapshot=snapshot,
        )

    def start(self, executor: str) -> None:
        self._require_status("start", "submitted")
        self.trigger_event(self.Started, executor=executor)

    def start_step(self, step: str) -> None:
        self._require_status("start a step of", "running")
        previous = self.steps.get(step)
        if previous and previous["status"] == "completed":
            raise RuleViolationError(f"step {step!r} of job {self.id} already completed")
        attempt = previous["attempt"] + 1 if previous else 1
        self.trigger_event(self.StepStarted, step=step, attempt=attempt)

    def complete_step(
        self,
        step: str,
        outputs: dict[str, str],
        metrics: dict[str, float],
        duration_s: float,
        log_uri: str = "",
    ) -> None:
        self._require_status("complete a step of", "running")
        if step not in self.steps or self.steps[step]["status"] != "running":
            raise RuleViolationError(f"step {step!r} of job {self.id} is not running")
        self.trigger_event(
            self.StepCompleted,
            step=step,
            outputs=outputs,
            metrics=metrics,
            duration_s=duration_s,
            log_uri=log_uri,
        )

    def succeed(self) -> None:
        self._require_status("finish", "running")
        self.trigger_event(self.Succeeded)

    def fail(self, error: str) -> None:
        self._require_status("fail", "submitted", "running")
        self.trigger_event(self.Failed, error=error)

    def cancel(self) -> None:
        self._require_status("cancel", "submitted", "running")
        self.trigger_event(self.Cancelled)

    def _require_status(self, action: str, *allowed: str) -> None:
        if self.status not in allowed:
            raise RuleViolationError(f"cannot {action} job {self.id}: it is {self.status}")
