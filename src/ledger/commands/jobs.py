"""Jobs: submitting a pipeline run, with the snapshot that reproduces it, and cancelling it."""

from __future__ import annotations

import uuid
from typing import Any

from ledger.application import LedgerApplication
from ledger.command_context import running_command_id
from ledger.commands.lookups import Lookups
from ledger.domain.data_asset import DataAsset, data_asset_id
from ledger.domain.environment import Environment, environment_id
from ledger.domain.job import Job, JobSnapshot
from ledger.domain.pipeline import Pipeline, pipeline_id
from ledger.history import HistoryEntry
from ledger.pipeline_spec import merge_parameters, parse_pipeline_spec
from ledger.specs import check_json_value

_JOB_IDS = uuid.UUID("0f6c1d2e-8a4b-4c3d-9e5f-7a1b2c3d4e5f")


class JobCommands:
    """Commands and queries for jobs (runs of pipeline versions)."""

    def __init__(self, application: LedgerApplication, lookups: Lookups) -> None:
        self._app = application
        self._lookups = lookups

    def submit(
        self,
        pipeline_ref: str,
        *,
        parameters: dict[str, Any] | None = None,
        executor: str = "",
        reason: str = "",
    ) -> Job:
        """Record a run request with the snapshot needed to reproduce it.

        The snapshot pins everything the run depends on: the pipeline version and
        its code digest, the exact data asset and environment versions (the latest
        ones now, for references without a version), the parameters, the executor
        and each step's resources.
        """
        pipeline, version = self._lookups.asset_version(Pipeline, pipeline_id, pipeline_ref)
        spec = parse_pipeline_spec(version["content"])
        exact_environments: dict[str, tuple[str, str]] = {}  # ref -> (NAME:VERSION, digest)
        for ref in {spec.environment_of(step) for step in spec.steps} | {spec.environment}:
            if ref:
                env, env_version = self._lookups.asset_version(Environment, environment_id, ref)
                exact = f"{env.name}:{env_version['version']}"
                exact_environments[ref] = (exact, env_version["digest"])
        environment_ref, environment_digest = exact_environments.get(spec.environment, ("", ""))
        snapshot: JobSnapshot = {
            "code_digest": spec.code.digest if spec.code else "",
            "git_commit": spec.code.git_commit if spec.code else "",
            "data": [
                self._lookups.exact_asset_ref(DataAsset, data_asset_id, r) for r in spec.data_refs()
            ],
            "environment": environment_ref,
            "environment_digest": environment_digest,
            "environments": {
                step.name: exact_environments[spec.environment_of(step)][0]
                for step in spec.steps
                if spec.environment_of(step)
            },
            "parameters": check_json_value(
                merge_parameters(spec, dict(parameters or {})), "parameters"
            ),
            "executor": executor or self._app.settings.executor,
            "resources": {step.name: step.resources.model_dump() for step in spec.steps},
        }
        return self._submit(pipeline.name, version["version"], snapshot, reason)

    def rerun(self, job_id: str, *, reason: str = "") -> Job:
        """Submit a job again with the same snapshot: same code, data, parameters, compute."""
        original = self._lookups.job(job_id)
        return self._submit(
            original.pipeline,
            original.pipeline_version,
            original.snapshot,
            reason,
            rerun_of=str(original.id),
        )

    def _submit(
        self, pipeline: str, version: int, snapshot: JobSnapshot, reason: str, rerun_of: str = ""
    ) -> Job:
        def command() -> Job:
            # From the command id: a retried command (same id) names the same job, so
            # replaying it returns the job it submitted the first time.
            job_id = uuid.uuid5(_JOB_IDS, running_command_id.get() or uuid.uuid4().hex)
            job = Job.submit(job_id, pipeline, version, snapshot, rerun_of)
            self._app.save(job)
            return job

        return self._app.execute(reason, command)

    def get(self, job_id: str) -> Job:
        return self._lookups.job(job_id)

    def cancel(self, job_id: str, *, reason: str = "") -> Job:
        """Cancel a job: at once if no worker started it, else its worker stops it."""
        return self._app.change(lambda: self._lookups.job(job_id), Job.cancel, reason)

    def history(self, job_id: str) -> list[HistoryEntry]:
        job = self._lookups.job(job_id)
        return self._app.history_of({job.id: f"job {job_id}"})
