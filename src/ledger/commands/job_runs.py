"""What a worker records while it runs a job: start, steps, models, the outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.application import LedgerApplication
from ledger.commands.lookups import Lookups
from ledger.commands.models import add_version, check_model_identity, version_spec
from ledger.domain.job import Job
from ledger.domain.model import Lineage, VersionSpec
from ledger.errors import NotFoundError
from ledger.step_results import StepOutcome


def step_lineage(job: Job, step: str) -> Lineage:
    """The lineage of a model version a job's step made: the job, its data, environment
    and pipeline."""
    lineage: Lineage = {"job": str(job.id), "pipeline": job.pipeline_ref}
    if job.snapshot["data"]:
        lineage["data"] = list(job.snapshot["data"])
    environment = job.snapshot["environments"].get(step) or job.snapshot["environment"]
    if environment:
        lineage["environment"] = environment
    return lineage


class JobRunCommands:
    """The commands a worker issues for the jobs it runs."""

    def __init__(self, application: LedgerApplication, lookups: Lookups) -> None:
        self._app = application
        self._lookups = lookups

    def _update(self, job_id: str, reason: str, change: Callable[[Job], object]) -> Job:
        return self._app.change(lambda: self._lookups.job(job_id), change, reason)

    def start(self, job_id: str, executor: str, *, worker: str = "", reason: str = "") -> Job:
        return self._update(job_id, reason, lambda job: job.start(executor, worker))

    def take_over(
        self, job_id: str, worker: str, *, may_take: Callable[[Job], bool], reason: str = ""
    ) -> Job | None:
        """Resume ``job_id`` on ``worker`` if ``may_take(job)`` (decided on fresh state,
        so two workers never both take it); None when it may not be taken."""

        def command() -> Job | None:
            job = self._lookups.job(job_id)
            if job.finished or job.status == "submitted" or not may_take(job):
                return None
            job.take_over(worker)
            self._app.save(job)
            return job

        return self._app.execute(reason, command)

    def _run_update(
        self, job_id: str, worker: str, reason: str, change: Callable[[Job], object]
    ) -> Job:
        """Change a running job on behalf of ``worker`` (when given: it must still run it)."""

        def checked(job: Job) -> None:
            job.require_worker(worker)
            change(job)

        return self._update(job_id, reason, checked)

    def start_step(
        self,
        job_id: str,
        step: str,
        *,
        environment: str = "",
        runtime_env: dict[str, Any] | None = None,
        worker: str = "",
        reason: str = "",
    ) -> Job:
        return self._run_update(
            job_id, worker, reason, lambda job: job.start_step(step, environment, runtime_env)
        )

    def complete_step(
        self,
        job_id: str,
        step: str,
        *,
        outputs: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        duration_s: float = 0.0,
        log_uri: str = "",
        attempt: int | None = None,
        worker: str = "",
        reason: str = "",
    ) -> Job:
        return self.record_step_outcome(
            job_id,
            step,
            StepOutcome(dict(outputs or {}), dict(metrics or {}), duration_s, log_uri),
            attempt=attempt,
            worker=worker,
            reason=reason,
        )

    def record_step_outcome(
        self,
        job_id: str,
        step: str,
        outcome: StepOutcome,
        *,
        attempt: int | None = None,
        worker: str = "",
        reason: str = "",
    ) -> Job:
        """Complete the step and register the model versions it made, atomically.

        Each model version's lineage names the job, its data, environment and
        pipeline. Either everything is recorded or nothing is, so a worker that
        dies here leaves the step to run again, never half recorded.
        """
        specs = self._version_specs(outcome, step_lineage(self._lookups.job(job_id), step))

        def command() -> Job:
            job = self._lookups.job(job_id)
            job.require_worker(worker)
            changed: list[Any] = []
            refs = []
            for name, spec in specs:
                model, version = add_version(self._app, name, spec)
                changed += [model, version]
                refs.append(version.ref)
            job.complete_step(
                step,
                outcome.outputs,
                outcome.metrics,
                outcome.duration_s,
                outcome.log_uri,
                models=refs,
                attempt=attempt,
            )
            self._app.save(job, *changed)
            return job

        return self._app.execute(reason, command)

    def _version_specs(
        self, outcome: StepOutcome, lineage: Lineage
    ) -> list[tuple[str, VersionSpec]]:
        """(model name, version spec) of each model the step made; its files must be stored."""
        for request in outcome.models:
            check_model_identity(request.name, request.flavor)
            missing = [f.path for f in request.files if not self._app.artifacts.has(f.sha256)]
            if missing:
                raise NotFoundError(f"model {request.name!r}: files not stored: {missing[:5]}")
        return [
            (
                request.name,
                version_spec(
                    request.files,
                    flavor=request.flavor,
                    tags=request.tags,
                    metrics=request.metrics,
                    description=request.description,
                    signature=request.signature,
                    lineage=lineage,
                ),
            )
            for request in outcome.models
        ]

    def fail_step(
        self,
        job_id: str,
        step: str,
        attempt: int,
        error: str,
        *,
        duration_s: float = 0.0,
        log_uri: str = "",
        will_retry: bool = False,
        counted: bool = True,
        worker: str = "",
        reason: str = "",
    ) -> Job:
        return self._run_update(
            job_id,
            worker,
            reason,
            lambda job: job.fail_step(
                step,
                attempt,
                error,
                duration_s=duration_s,
                log_uri=log_uri,
                will_retry=will_retry,
                counted=counted,
            ),
        )

    def succeed(self, job_id: str, *, worker: str = "", reason: str = "") -> Job:
        return self._run_update(job_id, worker, reason, lambda job: job.succeed())

    def fail(self, job_id: str, error: str, *, worker: str = "", reason: str = "") -> Job:
        return self._run_update(job_id, worker, reason, lambda job: job.fail(error))

    def confirm_cancelled(self, job_id: str, *, worker: str = "", reason: str = "") -> Job:
        return self._run_update(job_id, worker, reason, lambda job: job.confirm_cancelled())
