"""Jobs: submitting a pipeline run and recording its progress and outcome."""

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
from ledger.specs import check_json_value


class JobCommands(AssetCommands):
    """Commands and queries for jobs (runs of pipeline versions)."""

    def submit_job(
        self,
        pipeline_ref: str,
        *,
        parameters: dict[str, Any] | None = None,
        data: list[str] | None = None,
        environment: str = "",
        code_digest: str = "",
        git_commit: str = "",
        executor: str = "local",
        resources: dict[str, Any] | None = None,
        reason: str = "",
    ) -> Job:
        """Record a run request with the snapshot needed to reproduce it."""
        pipeline, version = self._asset_version(Pipeline, pipeline_id, pipeline_ref)
        data_refs = [self._exact_asset_ref(DataAsset, data_asset_id, ref) for ref in data or []]
        environment_ref, environment_digest = "", ""
        if environment:
            env, env_version = self._asset_version(Environment, environment_id, environment)
            environment_ref = f"{env.name}:{env_version['version']}"
            environment_digest = env_version["digest"]
        snapshot: JobSnapshot = {
            "code_digest": code_digest,
            "git_commit": git_commit,
            "data": data_refs,
            "environment": environment_ref,
            "environment_digest": environment_digest,
            "parameters": check_json_value(dict(parameters or {}), "parameters"),
            "executor": executor,
            "resources": check_json_value(dict(resources or {}), "resources"),
        }
        job_id = uuid.uuid4()

        def command() -> Job:
            job = Job.submit(job_id, pipeline.name, version["version"], snapshot)
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

    def start_job(self, job_id: str, executor: str, *, reason: str = "") -> Job:
        return self._update_job(job_id, reason, lambda job: job.start(executor))

    def start_step(self, job_id: str, step: str, *, reason: str = "") -> Job:
        return self._update_job(job_id, reason, lambda job: job.start_step(step))

    def complete_step(
        self,
        job_id: str,
        step: str,
        *,
        outputs: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        duration_s: float = 0.0,
        log_uri: str = "",
        reason: str = "",
    ) -> Job:
        return self._update_job(
            job_id,
            reason,
            lambda job: job.complete_step(
                step, dict(outputs or {}), dict(metrics or {}), duration_s, log_uri
            ),
        )

    def succeed_job(self, job_id: str, *, reason: str = "") -> Job:
        return self._update_job(job_id, reason, lambda job: job.succeed())

    def fail_job(self, job_id: str, error: str, *, reason: str = "") -> Job:
        return self._update_job(job_id, reason, lambda job: job.fail(error))

    def cancel_job(self, job_id: str, *, reason: str = "") -> Job:
        return self._update_job(job_id, reason, lambda job: job.cancel())

    def job_history(self, job_id: str) -> list[HistoryEntry]:
        job = self.get_job(job_id)
        return self.history_of({job.id: f"job {job_id}"})
