"""Running one job: its pipeline's steps as a task graph, every attempt recorded.

The runner is the only writer of a running job's events: JobStarted (or
TakenOver when it resumes a job whose worker stopped), StepStarted,
StepCompleted (with the model versions the step registered, atomically),
StepFailed, and at the end JobSucceeded, JobFailed or JobCancelled.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

from executors.graph import Executor, GraphOutcome, Task, TaskResources
from executors.runtime_envs import StepEnvironment, step_environment
from executors.steps import StepError, StepPayload, run_step
from ledger.domain.job import Job
from ledger.errors import LedgerError
from ledger.ledger import Ledger
from ledger.logging import get_logger
from ledger.pipeline_spec import PipelineSpec, parse_pipeline_spec
from ledger.step_results import StepOutcome

CANCEL_CHECK_S = 0.25  # how often a running job's state is read for a cancel request
log = get_logger(__name__)


class JobRecorder:
    """The task listener that writes each attempt into the ledger."""

    def __init__(self, ledger: Ledger, job: Job, actor: str) -> None:
        self.ledger = ledger
        self.job_id = str(job.id)
        self.worker = job.worker  # every write is refused once another worker took over
        self.actor = actor
        self.correlation_id = ledger.events_of(job.id)[0].correlation_id
        # Each step's environment, recorded when an attempt starts; the runtime env too
        # when the executor builds environments (Ray).
        self.environments: dict[str, StepEnvironment] = {}
        self.records_runtime_envs = False

    def _acting(self) -> Any:
        return self.ledger.on_behalf_of(
            self.actor, correlation_id=self.correlation_id, causation_id=self.job_id
        )

    def task_started(self, task: str, attempt: int) -> None:
        environment = self.environments.get(task)
        runtime_env = environment.runtime_env if environment and self.records_runtime_envs else {}
        with self._acting():
            job = self.ledger.job_runs.start_step(
                self.job_id,
                task,
                environment=environment.ref if environment else "",
                runtime_env=runtime_env,
                worker=self.worker,
            )
        recorded = job.steps[task]["attempt"]
        if recorded != attempt:
            raise RuntimeError(f"step {task!r}: the ledger records attempt {recorded}")

    def task_succeeded(self, task: str, attempt: int, result: Any) -> None:
        with self._acting():
            self.ledger.job_runs.record_step_outcome(
                self.job_id, task, result, attempt=attempt, worker=self.worker
            )

    def task_failed(
        self,
        task: str,
        attempt: int,
        error: BaseException,
        retrying: bool,
        *,
        counted: bool = True,
    ) -> None:
        details = error if isinstance(error, StepError) else StepError(f"{error}")
        with self._acting():
            self.ledger.job_runs.fail_step(
                self.job_id,
                task,
                attempt,
                str(details) or type(error).__name__,
                duration_s=details.duration_s,
                log_uri=details.log_uri,
                will_retry=retrying,
                counted=counted,
                worker=self.worker,
            )

    def finish(self, outcome: GraphOutcome) -> None:
        with self._acting():
            if outcome.status == "succeeded":
                self.ledger.job_runs.succeed(self.job_id, worker=self.worker)
            elif outcome.status == "cancelled":
                self.ledger.job_runs.confirm_cancelled(self.job_id, worker=self.worker)
            else:
                self.ledger.job_runs.fail(self.job_id, outcome.error, worker=self.worker)

    def fail(self, error: str) -> None:
        with self._acting():
            self.ledger.job_runs.fail(self.job_id, error, worker=self.worker)

    def release_running_steps(self) -> None:
        """A clean stop: the steps it interrupted run again on the next worker, without
        using up a retry (recorded as failed with ``will_retry``)."""
        job = self.ledger.jobs.get(self.job_id)
        for name, state in job.steps.items():
            if state["status"] == "running":
                stopped = StepError(f"stopped: worker {self.worker} shut down")
                self.task_failed(name, state["attempt"], stopped, True, counted=False)


def build_tasks(ledger: Ledger, job: Job, spec: PipelineSpec) -> list[Task]:
    """One task per step not completed yet, each running ``run_step`` with its payload."""
    snapshot = job.snapshot
    versions = {
        ref: ledger.assets.data_version(exact)
        for ref, exact in zip(spec.data_refs(), snapshot["data"], strict=True)
    }
    data_paths = {ref: version["content"]["uri"] for ref, version in versions.items()}
    data_digests = {ref: version["digest"] for ref, version in versions.items()}
    tasks = []
    for step in spec.steps:
        state = job.steps.get(step.name)
        if state is not None and state["status"] == "completed":
            continue
        environment = _step_environment(ledger, job, step.name)
        variables = dict(environment.runtime_env.get("env_vars", {})) if environment else {}
        payload = StepPayload(
            job_id=str(job.id),
            step=step,
            data_paths=data_paths,
            data_digests=data_digests,
            parameters=dict(snapshot["parameters"]),
            code_digest=spec.code.digest if spec.code else "",
            code_files=[f.model_dump() for f in spec.code.files] if spec.code else [],
            variables=variables,
            artifacts_url=ledger.artifacts.url,
            logs_dir=str(ledger.settings.logs_dir.resolve()),
        )
        tasks.append(
            Task(
                name=step.name,
                function=partial(run_step, payload),
                depends_on=tuple(step.depends_on),
                resources=TaskResources(
                    step.resources.cpus, step.resources.gpus, step.resources.memory_mb
                ),
                max_attempts=step.retries + 1,
                attempts_made=state["attempt"] if state else 0,
                failures=state["failures"] if state else 0,
                timeout_s=step.timeout_s,
                environment=environment,
            )
        )
    return tasks


def _step_environment(ledger: Ledger, job: Job, step: str) -> StepEnvironment | None:
    ref = job.snapshot["environments"].get(step)
    if not ref:
        return None
    content = ledger.assets.environment_version(ref)["content"]
    timeout = ledger.settings.runtime_env_setup_timeout_s
    return step_environment(ref, content, setup_timeout_s=timeout)


def completed_steps(job: Job) -> dict[str, StepOutcome]:
    return {
        name: StepOutcome(state["outputs"], state["metrics"], state["duration_s"], state["log_uri"])
        for name, state in job.steps.items()
        if state["status"] == "completed"
    }


def run_job(ledger: Ledger, executor: Executor, job: Job, actor: str, stop: threading.Event) -> str:
    """Run (or resume) ``job``, already started or taken over by this worker, to its end.

    Returns the final status, or "stopped" when ``stop`` was set first (the job is
    left for the next worker to resume).
    """
    recorder = JobRecorder(ledger, job, actor)
    if job.status == "cancelling":
        recorder.finish(GraphOutcome("cancelled", {}))
        return "cancelled"
    try:
        spec = parse_pipeline_spec(ledger.assets.pipeline_version(job.pipeline_ref)["content"])
        if not _give_up_interrupted_steps(recorder, job, spec):
            return "failed"
        job = ledger.jobs.get(str(job.id))
        tasks = build_tasks(ledger, job, spec)
    except LedgerError as error:
        recorder.fail(f"cannot run pipeline {job.pipeline_ref}: {error}")
        return "failed"
    recorder.environments = {t.name: t.environment for t in tasks if t.environment}
    recorder.records_runtime_envs = getattr(executor, "builds_environments", False)
    run = executor.submit(tasks, recorder, completed_steps(job))
    while (outcome := run.wait(CANCEL_CHECK_S)) is None:
        if stop.is_set():
            run.cancel()
            run.wait()
            recorder.release_running_steps()
            return "stopped"
        if ledger.jobs.get(str(job.id)).status == "cancelling":
            run.cancel()
    if outcome.listener_error is not None:
        raise outcome.listener_error
    recorder.finish(outcome)
    return outcome.status


def _give_up_interrupted_steps(recorder: JobRecorder, job: Job, spec: PipelineSpec) -> bool:
    """Record the attempts a dead worker left running as failed; False when one of
    those steps has no attempts left (the job is then failed)."""
    limits = {step.name: step.retries + 1 for step in spec.steps}
    for name, state in job.steps.items():
        if state["status"] != "running":
            continue
        retrying = state["failures"] + 1 < limits[name]
        recorder.task_failed(
            name,
            state["attempt"],
            StepError("interrupted: the worker running it stopped"),
            retrying,
        )
        if not retrying:
            recorder.fail(f"step {name!r} was interrupted on its last attempt")
            return False
    return True
