"""Batch endpoints: invoking one over a dataset, and recording the run's progress."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from ledger.application import LedgerApplication
from ledger.commands.lookups import Lookups
from ledger.domain.batch_job import BatchJob
from ledger.errors import InvalidInputError, NotFoundError, RuleViolationError

MAX_RETRIES = 10


class BatchJobCommands:
    """Commands and queries for batch jobs (runs of batch endpoints)."""

    def __init__(self, application: LedgerApplication, lookups: Lookups) -> None:
        self._app = application
        self._lookups = lookups

    def invoke(
        self,
        endpoint_name: str,
        input_path: Path | str,
        *,
        deployment: str = "",
        mini_batch_size: int = 10_000,
        max_retries: int = 2,
        reason: str = "",
    ) -> BatchJob:
        """Request scoring of every row of ``input_path`` (CSV/Parquet file or directory,
        or an object's URL) by a deployment: ``deployment``, or the one with the largest
        traffic share."""

        endpoint = self._lookups.endpoint(endpoint_name)
        if endpoint.kind != "batch":
            raise RuleViolationError(
                f"endpoint {endpoint_name!r} is online: score it with "
                f"`ledger endpoint score` or POST /endpoints/{endpoint_name}/score"
            )
        if endpoint.deleted:
            raise RuleViolationError(f"endpoint {endpoint_name!r} is deleted")
        chosen = deployment or max(endpoint.traffic, key=endpoint.traffic.__getitem__, default="")
        if not chosen or (not deployment and endpoint.traffic[chosen] == 0):
            raise RuleViolationError(
                f"endpoint {endpoint_name!r} has no deployment taking traffic; pass a deployment"
            )
        if chosen not in endpoint.deployments:
            raise NotFoundError(f"endpoint {endpoint_name!r} has no deployment {chosen!r}")
        if mini_batch_size < 1:
            raise InvalidInputError("mini_batch_size must be at least 1")
        if not 0 <= max_retries <= MAX_RETRIES:
            raise InvalidInputError(f"max_retries must be between 0 and {MAX_RETRIES}")
        served = endpoint.deployments[chosen]
        input_uri, input_digest, rows = _input_of(input_path)
        job_id = uuid.uuid4()

        def command() -> BatchJob:
            job = BatchJob.request(
                job_id,
                endpoint=endpoint_name,
                deployment=chosen,
                model=f"{served['model']}:{served['version']}",
                input_uri=input_uri,
                input_digest=input_digest,
                rows=rows,
                mini_batch_size=mini_batch_size,
                max_retries=max_retries,
            )
            self._app.save(job)
            return job

        return self._app.execute(reason, command)

    def find(self, job_id: str) -> BatchJob | None:
        """The batch job with this id, or None (the id may be a pipeline job's)."""
        try:
            return self._app.find(BatchJob, uuid.UUID(job_id))
        except ValueError:
            raise InvalidInputError(f"invalid job id {job_id!r}") from None

    def get(self, job_id: str) -> BatchJob:
        job = self.find(job_id)
        if job is None:
            raise NotFoundError(f"batch job {job_id} does not exist")
        return job

    def _update_batch(self, job_id: str, change: Callable[[BatchJob], object]) -> BatchJob:
        return self._app.change(lambda: self.get(job_id), change, "")

    def start(
        self, job_id: str, worker: str, *, may_take: Callable[[BatchJob], bool]
    ) -> BatchJob | None:
        """Start the job on ``worker`` (again, from the top, if its worker stopped and
        ``may_take`` agrees); None when it is not this worker's to run."""

        def command() -> BatchJob | None:
            job = self.get(job_id)
            if job.finished or (job.status == "running" and not may_take(job)):
                return None
            job.start(worker)
            self._app.save(job)
            return job

        return self._app.execute("", command)

    def progress(self, job_id: str, worker: str, rows_done: int) -> BatchJob:
        return self._update_batch(job_id, lambda job: job.progress(worker, rows_done))

    def complete(
        self,
        job_id: str,
        worker: str,
        rows: int,
        duration_s: float,
        scoring_s: float,
        output_digest: str,
    ) -> BatchJob:
        return self._update_batch(
            job_id, lambda job: job.complete(worker, rows, duration_s, scoring_s, output_digest)
        )

    def fail(self, job_id: str, error: str, worker: str = "") -> BatchJob:
        return self._update_batch(job_id, lambda job: job.fail(error, worker))


def _input_of(source: Path | str) -> tuple[str, str, int]:
    """A batch input's URI, digest and row count: a local file or folder read here, an
    object by URL streamed (its digest and rows; a Parquet object's footer has the rows)."""
    # Imported here: pyarrow takes a noticeable time to load and only this needs it.
    from ledger.data_objects import DataObject, data_source
    from ledger.data_profile import count_rows, digest_path, read_table

    data = data_source(source)
    if isinstance(data, DataObject):
        rows, digest = count_rows(data), data.digest()
        data.check_unchanged()
        return data.url, digest, rows
    return data.resolve().as_uri(), digest_path(data), read_table(data).num_rows
