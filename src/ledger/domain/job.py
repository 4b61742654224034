"""Jobs: one run of a pipeline version, from submission to a final state."""

from __future__ import annotations

from typing import Any, Literal, TypedDict
from uuid import UUID

from ledger.domain.base import LedgerAggregate
from ledger.errors import RuleViolationError

JobStatus = Literal["submitted", "running", "cancelling", "succeeded", "failed", "cancelled"]
FINAL_STATUSES = ("succeeded", "failed", "cancelled")


class JobSnapshot(TypedDict):
    """What a job needs to be reproduced: code, data, environment, parameters, compute."""

    code_digest: str
    git_commit: str
    data: list[str]
    environment: str  # the pipeline's environment, NAME:VERSION
    environment_digest: str
    environments: dict[str, str]  # step -> NAME:VERSION, for each step that has one
    parameters: dict[str, Any]
    executor: str
    resources: dict[str, Any]


class StepState(TypedDict):
    status: str  # running, completed, failed (an attempt failed; it may be retried)
    attempt: int
    outputs: dict[str, str]
    metrics: dict[str, float]
    duration_s: float
    log_uri: str
    models: list[str]
    error: str
    failures: int  # failed attempts that count against the step's retries
    environment: str  # the environment (NAME:VERSION) of its latest attempt, '' if none
    runtime_env: dict[str, Any]  # the Ray runtime env that attempt ran in, {} if none


class Job(LedgerAggregate):
    """A pipeline run; its events are the run's history."""

    # v2 added the worker, rerun_of, per-step environments and the steps' models, error
    # and failures; v3 each step's environment and runtime env. Aggregate snapshots
    # taken before are upcast when loaded.
    class_version = 3

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state.setdefault("worker", "")
        state.setdefault("rerun_of", "")
        state["snapshot"].setdefault("environments", {})
        for step in state["steps"].values():
            step.setdefault("models", [])
            step.setdefault("error", "")
            step.setdefault("failures", 0)

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        for step in state["steps"].values():
            step.setdefault("environment", "")
            step.setdefault("runtime_env", {})

    def __init__(self) -> None:
        self.pipeline = ""
        self.pipeline_version = 0
        self.snapshot: JobSnapshot
        self.status: JobStatus = "submitted"
        self.executor = ""
        self.worker = ""  # the worker process running the job
        self.rerun_of = ""
        self.steps: dict[str, StepState] = {}
        self.error = ""

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def pipeline_ref(self) -> str:
        return f"{self.pipeline}:{self.pipeline_version}"

    class Event(LedgerAggregate.Event):
        pass

    class Submitted(Event, LedgerAggregate.Created):
        pipeline: str
        pipeline_version: int
        snapshot: JobSnapshot
        rerun_of: str

        # v2 added rerun_of (the job whose snapshot this one repeats) and each step's
        # environment to the snapshot.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["rerun_of"] = ""
            state["snapshot"].setdefault("environments", {})

        def apply(self, job: Job) -> None:
            job.pipeline = self.pipeline
            job.pipeline_version = self.pipeline_version
            job.snapshot = self.snapshot
            job.rerun_of = self.rerun_of

    class Started(Event):
        executor: str
        worker: str

        # v2 added the worker that runs the job.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["worker"] = ""

        def apply(self, job: Job) -> None:
            job.status = "running"
            job.executor = self.executor
            job.worker = self.worker

    class TakenOver(Event):
        """Another worker resumed the job: the one running it stopped (killed, or lost)."""

        worker: str
        previous_worker: str

        def apply(self, job: Job) -> None:
            job.worker = self.worker

    class StepStarted(Event):
        step: str
        attempt: int
        environment: str  # NAME:VERSION, '' when the step has none
        runtime_env: dict[str, Any]  # what Ray built it in; {} when nothing was built

        # v2 added the step's environment and the runtime environment it ran in.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["environment"] = ""
            state["runtime_env"] = {}

        def apply(self, job: Job) -> None:
            previous = job.steps.get(self.step)
            job.steps[self.step] = {
                "status": "running",
                "attempt": self.attempt,
                "outputs": {},
                "metrics": {},
                "duration_s": 0.0,
                "log_uri": "",
                "models": [],
                "error": "",
                "failures": previous["failures"] if previous else 0,
                "environment": self.environment,
                "runtime_env": self.runtime_env,
            }

    class StepCompleted(Event):
        step: str
        outputs: dict[str, str]
        metrics: dict[str, float]
        duration_s: float
        log_uri: str
        models: list[str]

        # v2 added the model versions the step registered.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["models"] = []

        def apply(self, job: Job) -> None:
            step = job.steps[self.step]
            step["status"] = "completed"
            step["outputs"] = self.outputs
            step["metrics"] = self.metrics
            step["duration_s"] = self.duration_s
            step["log_uri"] = self.log_uri
            step["models"] = self.models

    class StepFailed(Event):
        step: str
        attempt: int
        error: str
        duration_s: float
        log_uri: str
        will_retry: bool
        counted: bool  # False when the attempt was stopped cleanly (its worker shut down)

        def apply(self, job: Job) -> None:
            step = job.steps[self.step]
            step["status"] = "failed"
            step["failures"] += 1 if self.counted else 0
            step["error"] = self.error
            step["duration_s"] = self.duration_s
            step["log_uri"] = self.log_uri

    class CancelRequested(Event):
        def apply(self, job: Job) -> None:
            job.status = "cancelling"

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
        cls,
        job_id: UUID,
        pipeline: str,
        pipeline_version: int,
        snapshot: JobSnapshot,
        rerun_of: str = "",
    ) -> Job:
        return cls._create(
            cls.Submitted,
            id=job_id,
            pipeline=pipeline,
            pipeline_version=pipeline_version,
            snapshot=snapshot,
            rerun_of=rerun_of,
        )

    def start(self, executor: str, worker: str = "") -> None:
        self._require_status("start", "submitted")
        self.trigger_event(self.Started, executor=executor, worker=worker)

    def take_over(self, worker: str) -> None:
        """Resume a job whose worker stopped; steps it left running are started again."""
        self._require_status("take over", "running", "cancelling")
        if worker == self.worker:
            raise RuleViolationError(f"job {self.id} is already run by {worker}")
        self.trigger_event(self.TakenOver, worker=worker, previous_worker=self.worker)

    def require_worker(self, worker: str) -> None:
        """Refuse a write from a worker that no longer runs the job: it was presumed
        dead and another took over, so only the new one's results count."""
        if worker and worker != self.worker:
            raise RuleViolationError(f"job {self.id} is run by {self.worker!r}, not {worker!r}")

    def start_step(
        self, step: str, environment: str = "", runtime_env: dict[str, Any] | None = None
    ) -> None:
        """Start the step's next attempt, in ``environment`` (NAME:VERSION), built as
        ``runtime_env`` by the executor when it builds environments."""
        self._require_status("start a step of", "running")
        previous = self.steps.get(step)
        if previous and previous["status"] == "completed":
            raise RuleViolationError(f"step {step!r} of job {self.id} already completed")
        attempt = previous["attempt"] + 1 if previous else 1
        self.trigger_event(
            self.StepStarted,
            step=step,
            attempt=attempt,
            environment=environment,
            runtime_env=dict(runtime_env or {}),
        )

    def complete_step(
        self,
        step: str,
        outputs: dict[str, str],
        metrics: dict[str, float],
        duration_s: float,
        log_uri: str = "",
        models: list[str] | None = None,
        attempt: int | None = None,
    ) -> None:
        """Record a step's results; ``attempt``, when given, must be the running one.

        A step completes once: a late result of an attempt that was given up on
        (its worker was taken over) is refused, so no output is recorded twice.
        """
        self._require_status("complete a step of", "running", "cancelling")
        self._require_running_step(step, attempt)
        self.trigger_event(
            self.StepCompleted,
            step=step,
            outputs=outputs,
            metrics=metrics,
            duration_s=duration_s,
            log_uri=log_uri,
            models=list(models or []),
        )

    def fail_step(
        self,
        step: str,
        attempt: int,
        error: str,
        *,
        duration_s: float = 0.0,
        log_uri: str = "",
        will_retry: bool = False,
        counted: bool = True,
    ) -> None:
        self._require_status("fail a step of", "running", "cancelling")
        self._require_running_step(step, attempt)
        self.trigger_event(
            self.StepFailed,
            step=step,
            attempt=attempt,
            error=error,
            duration_s=duration_s,
            log_uri=log_uri,
            will_retry=will_retry,
            counted=counted,
        )

    def _require_running_step(self, step: str, attempt: int | None) -> None:
        state = self.steps.get(step)
        if state is None or state["status"] != "running":
            raise RuleViolationError(f"step {step!r} of job {self.id} is not running")
        if attempt is not None and state["attempt"] != attempt:
            raise RuleViolationError(
                f"step {step!r} of job {self.id} runs attempt {state['attempt']}, not {attempt}"
            )

    def succeed(self) -> None:
        # A cancel that came after the last step finished is too late: the job succeeded.
        self._require_status("finish", "running", "cancelling")
        self.trigger_event(self.Succeeded)

    def fail(self, error: str) -> None:
        self._require_status("fail", "submitted", "running", "cancelling")
        self.trigger_event(self.Failed, error=error)

    def cancel(self) -> None:
        """Cancel a job not started yet; a running one is asked to stop (its worker
        stops the running steps, then records Cancelled)."""
        self._require_status("cancel", "submitted", "running", "cancelling")
        if self.status == "submitted":
            self.trigger_event(self.Cancelled)
        elif self.status == "running":
            self.trigger_event(self.CancelRequested)

    def confirm_cancelled(self) -> None:
        self._require_status("confirm the cancellation of", "cancelling")
        self.trigger_event(self.Cancelled)

    def _require_status(self, action: str, *allowed: str) -> None:
        if self.status not in allowed:
            raise RuleViolationError(f"cannot {action} job {self.id}: it is {self.status}")
