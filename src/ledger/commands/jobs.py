"""Jobs: submitting a pipeline run, with the snapshot that reproduces it, and cancelling it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ledger.commands.assets import AssetCommands
from ledger.core import HistoryEntry
from ledger.domain.data_asset import DataAsset, data_asset_id
from ledger.domain.environment import Environment, environment_id
from ledger.domain.job import Job, JobSnapshot
from ledger.domain.pipeline import Pipeline, pipeline_id
from ledger.errors import InvalidInputError
from ledger.pipeline_spec import merge_parameters, parse_pipeline_spec
from ledger.specs import check_json_value


class JobCommands(AssetCommands):
    """Commands and queries for jobs (runs of pipeline versions)."""

    def submit_job(
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
        pipeline, version = self._asset_version(Pipeline, pipeline_id, pipeline_ref)
        spec = parse_pipeline_spec(version["content"])
        exact_environments: dict[str, tuple[str, str]] = {}  # ref -> (NAME:VERSION, digest)
        for ref in {spec.environment_of(step) for step in spec.steps} | {spec.environment}:
            if ref:
                env, env_version = self._asset_version(Environment, environment_id, ref)
                exact = f"{env.name}:{env_version['version']}"
                exact_environments[ref] = (exact, env_version["digest"])
        environment_ref, environment_digest = exact_environments.get(spec.environment, ("", ""))
        snapshot: JobSnapshot = {
            "code_digest": spec.code.digest if spec.code else "",
            "git_commit": spec.code.git_commit if spec.code else "",
            "data": [self._exact_asset_ref(DataAsset, data_asset_id, r) for r in spec.data_refs()],
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
            "executor": executor or self.settings.executor,
            "resources": {step.name: step.resources.model_dump() for step in spec.steps},
        }
        return self._submit(pipeline.name, version["version"], snapshot, reason)

    def rerun_job(self, job_id: str, *, reason: str = "") -> Job:
        """Submit a job again with the same snapshot: same code, data, parameters, compute."""
        original = self.get_job(job_id)
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
        job_id = uuid.uuid4()

        def command() -> Job:
            job = Job.submit(job_id, pipeline, version, snapshot, rerun_of)
            self.save(job)
            return job

        return self._execute(reason, command)

    def get_job(self, job_id: str) -> Job:
        try:
            uid = uuid.UUID(job_id)
        except ValueError:
            raise InvalidInputError(f"invalid job id {job_id!r}") from None
        return self._load(Job, uid, f"job {job_id}")

    def _update_job(self, job_id: str, reason: str, change: Callable[[Job], object]) -> Job:
        return self._change(lambda: self.get_job(job_id), change, reason)

    def cancel_job(self, job_id: str, *, reason: str = "") -> Job:
        """Cancel a job: at once if no worker started it, else its worker stops it."""
        return self._update_job(job_id, reason, lambda job: job.cancel())

    def job_history(self, job_id: str) -> list[HistoryEntry]:
        job = self.get_job(job_id)
        return self.history_of({job.id: f"job {job_id}"})
