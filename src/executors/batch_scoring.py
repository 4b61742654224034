"""Batch scoring on Ray: a pool of actors, each holding one ONNX Runtime session.

The rows are cut into mini-batches, put in Ray's object store, and scored by the
deployment's replicas (each with two mini-batches in hand, so none waits). A
mini-batch whose replica failed or died is scored again, on a new replica when
the old one died, up to ``max_retries`` times. The predictions are written in
input order (Parquet: one column per output, ``name_j`` for the j-th of a 2-D
output) to the artifact store, and BatchJob.Completed records their digest.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray.exceptions import RayActorError, RayTaskError

from executors.features import numeric_features
from executors.serving.replica import replica_actor
from ledger.artifacts.paths import local_path
from ledger.domain.batch_job import BatchJob
from ledger.errors import InvalidInputError, LedgerError
from ledger.ledger import Ledger
from ledger.logging import get_logger

IN_FLIGHT_PER_REPLICA = 2
PROGRESS_EVERY_S = 1.0
log = get_logger(__name__)


class BatchFailedError(Exception):
    """A mini-batch failed on every attempt."""


def write_predictions(outputs: dict[str, np.ndarray], target: Path) -> None:
    import pyarrow as pa
    from pyarrow import parquet

    columns: dict[str, Any] = {}
    for name, values in outputs.items():
        if values.ndim == 1:
            columns[name] = values
        else:
            for j in range(values.shape[1]):
                columns[f"{name}_{j}"] = values[:, j]
    parquet.write_table(pa.table(columns), target)


def run_batch_job(ledger: Ledger, job: BatchJob, worker: str, stop: threading.Event) -> str:
    """Score the whole input, record progress and the output; the final status, or
    "stopped" when ``stop`` was set (the job is left for the next worker)."""
    job_id = str(job.id)
    started = time.monotonic()
    scorer = None
    try:
        version = ledger.models.get_version(job.model)
        if version.spec["flavor"] != "onnx":
            raise InvalidInputError(f"{job.model} is a {version.spec['flavor']} model, not ONNX")
        resources = ledger.endpoints.get(job.endpoint).deployments[job.deployment]["resources"]
        # The replicas start (processes, model loads) while the input is read.
        scorer = BatchScorer(ledger, version.spec["files"], resources)
        from ledger.data_profile import digest_path

        path = local_path(job.input_uri)
        if digest_path(path) != job.input_digest:
            raise InvalidInputError(f"the input at {path} changed since the job was requested")
        shape = version.spec["signature"].get("inputs", [{}])[0].get("shape", [None, None])
        features = numeric_features(path, int(shape[1]), exact=True)
    except (LedgerError, KeyError, TypeError, ValueError) as error:
        if scorer is not None:
            scorer.close()
        ledger.batch_jobs.fail(job_id, f"cannot score: {error}", worker)
        return "failed"
    scoring_started = time.monotonic()
    try:
        outputs = scorer.score(job, features, worker, stop)
    except BatchFailedError as error:
        ledger.batch_jobs.fail(job_id, str(error), worker)
        return "failed"
    finally:
        scorer.close()
    if outputs is None:
        return "stopped"
    scoring_s = time.monotonic() - scoring_started
    with tempfile.TemporaryDirectory() as work:
        target = Path(work) / "predictions.parquet"
        write_predictions(outputs, target)
        digest, _ = ledger.artifacts.put_file(target)
    duration_s = time.monotonic() - started
    ledger.batch_jobs.complete(job_id, worker, len(features), duration_s, scoring_s, digest)
    return "succeeded"


class BatchScorer:
    """The replicas of one batch run, and the loop that keeps them busy."""

    def __init__(self, ledger: Ledger, files: Any, resources: Any) -> None:
        self.ledger = ledger
        self.files = list(files)
        self.actor = replica_actor(resources)
        self.want_gpu = resources["gpus"] > 0
        self.replicas = [self._new_replica() for _ in range(resources["replicas"])]

    def _new_replica(self) -> Any:
        return self.actor.remote(
            str(self.ledger.artifacts.root.resolve()),
            self.files,
            self.want_gpu,
            f"{tempfile.gettempdir()}/ledger-batch/{uuid.uuid4().hex}",
        )

    def score(
        self, job: BatchJob, features: np.ndarray, worker: str, stop: threading.Event
    ) -> dict[str, np.ndarray] | None:
        size = job.mini_batch_size
        batches = [ray.put(features[i : i + size]) for i in range(0, len(features), size)]
        results: list[dict[str, np.ndarray] | None] = [None] * len(batches)
        failures = [0] * len(batches)
        pending = list(range(len(batches)))
        in_flight: dict[Any, tuple[int, int]] = {}  # ref -> (batch, replica)
        rows_done, reported_at = 0, time.monotonic()
        while pending or in_flight:
            if stop.is_set():
                return None
            self._submit(pending, in_flight, batches)
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in ready:
                index, replica = in_flight.pop(ref)
                try:
                    results[index] = ray.get(ref)
                    rows_done += min(size, len(features) - index * size)
                except (RayTaskError, RayActorError) as error:
                    failures[index] += 1
                    if failures[index] > job.max_retries:
                        raise BatchFailedError(
                            f"mini-batch {index} (rows {index * size}-{(index + 1) * size - 1}) "
                            f"failed {failures[index]} time(s): {_reason(error)}"
                        ) from None
                    if isinstance(error, RayActorError):  # the replica died: replace it
                        self.replicas[replica] = self._new_replica()
                    log.warning("mini-batch failed; retrying", batch=index, error=_reason(error))
                    pending.append(index)
            if time.monotonic() - reported_at > PROGRESS_EVERY_S:
                self.ledger.batch_jobs.progress(str(job.id), worker, rows_done)
                reported_at = time.monotonic()
        names = list(results[0] or {})
        return {name: np.concatenate([r[name] for r in results if r is not None]) for name in names}

    def _submit(
        self, pending: list[int], in_flight: dict[Any, tuple[int, int]], batches: list[Any]
    ) -> None:
        load = [0] * len(self.replicas)
        for _, replica in in_flight.values():
            load[replica] += 1
        while pending:
            replica = min(range(len(self.replicas)), key=load.__getitem__)
            if load[replica] >= IN_FLIGHT_PER_REPLICA:
                return
            index = pending.pop(0)
            ref = self.replicas[replica].score_arrays.remote(batches[index])
            in_flight[ref] = (index, replica)
            load[replica] += 1

    def close(self) -> None:
        for replica in self.replicas:
            ray.kill(replica)


def _reason(error: Exception) -> str:
    if isinstance(error, RayTaskError) and error.cause is not None:
        return str(error.cause)
    if isinstance(error, RayActorError):
        detail = str(error).strip().splitlines()
        return "the replica died" + (f": {detail[-1]}" if detail else "")
    return str(error)
