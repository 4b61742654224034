"""Batch jobs: one scoring run of a batch endpoint over a file or directory of rows."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from ledger.domain.base import LedgerAggregate
from ledger.errors import RuleViolationError

BatchStatus = Literal["submitted", "running", "succeeded", "failed"]


class BatchJob(LedgerAggregate):
    """A batch endpoint invocation: what it scores with, its progress, its output."""

    def __init__(self) -> None:
        self.endpoint = ""
        self.deployment = ""
        self.model = ""  # NAME:VERSION
        self.input_uri = ""
        self.input_digest = ""
        self.rows = 0
        self.mini_batch_size = 0
        self.max_retries = 0
        self.status: BatchStatus = "submitted"
        self.worker = ""
        self.rows_done = 0
        self.output_digest = ""
        self.duration_s = 0.0
        self.scoring_s = 0.0
        self.error = ""

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")

    class Event(LedgerAggregate.Event):
        pass

    class Requested(Event, LedgerAggregate.Created):
        endpoint: str
        deployment: str
        model: str
        input_uri: str
        input_digest: str
        rows: int
        mini_batch_size: int
        max_retries: int

        def apply(self, job: BatchJob) -> None:
            job.endpoint = self.endpoint
            job.deployment = self.deployment
            job.model = self.model
            job.input_uri = self.input_uri
            job.input_digest = self.input_digest
            job.rows = self.rows
            job.mini_batch_size = self.mini_batch_size
            job.max_retries = self.max_retries

    class Started(Event):
        worker: str

        def apply(self, job: BatchJob) -> None:
            job.status = "running"
            job.worker = self.worker
            job.rows_done = 0

    class Progressed(Event):
        rows_done: int

        def apply(self, job: BatchJob) -> None:
            job.rows_done = self.rows_done

    class Completed(Event):
        rows: int
        duration_s: float  # the whole run: replicas starting, reading, scoring, writing
        scoring_s: float  # from the first mini-batch sent to the last one scored
        output_digest: str

        def apply(self, job: BatchJob) -> None:
            job.status = "succeeded"
            job.rows_done = self.rows
            job.duration_s = self.duration_s
            job.scoring_s = self.scoring_s
            job.output_digest = self.output_digest

    class Failed(Event):
        error: str

        def apply(self, job: BatchJob) -> None:
            job.status = "failed"
            job.error = self.error

    @classmethod
    def request(
        cls,
        job_id: UUID,
        *,
        endpoint: str,
        deployment: str,
        model: str,
        input_uri: str,
        input_digest: str,
        rows: int,
        mini_batch_size: int,
        max_retries: int,
    ) -> BatchJob:
        return cls._create(
            cls.Requested,
            id=job_id,
            endpoint=endpoint,
            deployment=deployment,
            model=model,
            input_uri=input_uri,
            input_digest=input_digest,
            rows=rows,
            mini_batch_size=mini_batch_size,
            max_retries=max_retries,
        )

    def start(self, worker: str) -> None:
        """Start, or start again on another worker (a run is scored again from the top:
        its output is only recorded when the whole run completes)."""
        if self.finished:
            raise RuleViolationError(f"batch job {self.id} is {self.status}")
        self.trigger_event(self.Started, worker=worker)

    def progress(self, worker: str, rows_done: int) -> None:
        self._require_worker(worker)
        self.trigger_event(self.Progressed, rows_done=rows_done)

    def complete(
        self, worker: str, rows: int, duration_s: float, scoring_s: float, output_digest: str
    ) -> None:
        self._require_worker(worker)
        self.trigger_event(
            self.Completed,
            rows=rows,
            duration_s=duration_s,
            scoring_s=scoring_s,
            output_digest=output_digest,
        )

    def fail(self, error: str, worker: str = "") -> None:
        if self.finished:
            raise RuleViolationError(f"batch job {self.id} is {self.status}")
        if worker:
            self._require_worker(worker)
        self.trigger_event(self.Failed, error=error)

    def _require_worker(self, worker: str) -> None:
        if self.status != "running" or worker != self.worker:
            raise RuleViolationError(
                f"batch job {self.id} is {self.status} on {self.worker!r}, not on {worker!r}"
            )
