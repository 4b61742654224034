"""Batch scoring on Ray Data: the input streamed through the deployment's replicas.

The worker process consumes the scored dataset block by block, in input order, and
writes each block to one Parquet file (one column per output, ``name_j`` for the j-th
of a 2-D output), so it never holds the whole input or output. The file goes to the
artifact store and BatchJob.Completed records its digest.
"""

from __future__ import annotations

import gc
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ray.data import Dataset
from ray.exceptions import RayError

from executors.batch_dataset import OnnxBatchScorer, feature_dataset, scored_dataset
from ledger.artifacts.paths import local_path
from ledger.domain.batch_job import BatchJob
from ledger.errors import IntegrityViolationError, InvalidInputError, LedgerError
from ledger.ledger import Ledger
from ledger.logging import get_logger

PROGRESS_EVERY_S = 1.0
MAX_BLOCKS = 1_000
# Blocks of about this many bytes of features: moving a block between processes then
# costs little beside scoring it, even for a model as cheap as a linear one.
BLOCK_BYTES = 32 * 2**20
BLOCKS_PER_REPLICA = 4  # at least: every replica keeps busy while blocks are read
WRAPPED = "The above exception was the direct cause of the following exception"
log = get_logger(__name__)


class BatchFailedError(Exception):
    """Scoring failed on every attempt."""


def run_batch_job(
    ledger: Ledger,
    job: BatchJob,
    worker: str,
    stop: threading.Event,
    scorer: Any = OnnxBatchScorer,
) -> str:
    """Score the whole input, record progress and the output; the final status, or
    "stopped" when ``stop`` was set (the job is left for the next worker). ``scorer``:
    the replicas' callable class (OnnxBatchScorer's constructor arguments)."""
    job_id = str(job.id)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        try:
            dataset = _scored_input(ledger, job, scorer, Path(work))
        except (LedgerError, RayError, KeyError, TypeError, ValueError) as error:
            ledger.batch_jobs.fail(job_id, f"cannot score: {error}", worker)
            return "failed"
        target = Path(work) / "predictions.parquet"
        scoring_started = time.monotonic()
        failure = ""
        try:
            rows = write_predictions(ledger, job, worker, stop, dataset, target)
        except BatchFailedError as error:
            rows, failure = None, str(error)
        if rows is None:
            # An unfinished run's replicas go once the last handle to them does, which
            # may sit in a reference cycle: collect now, not at some later time.
            del dataset
            gc.collect()
            if not failure:
                return "stopped"
            ledger.batch_jobs.fail(job_id, failure, worker)
            return "failed"
        scoring_s = time.monotonic() - scoring_started
        digest, _ = ledger.artifacts.put_file(target)
    duration_s = time.monotonic() - started
    ledger.batch_jobs.complete(job_id, worker, rows, duration_s, scoring_s, digest)
    log.info("batch job scored", job=job_id, rows=rows, duration_s=round(duration_s, 3))
    return "succeeded"


def _scored_input(ledger: Ledger, job: BatchJob, scorer: Any, work: Path) -> Dataset:
    """The job's input, checked against the model, as a (lazy) scored dataset."""
    version = ledger.models.get_version(job.model)
    if version.spec["flavor"] != "onnx":
        raise InvalidInputError(f"{job.model} is a {version.spec['flavor']} model, not ONNX")
    resources = ledger.endpoints.get(job.endpoint).deployments[job.deployment]["resources"]
    path, fetched = _input_path(job, work)
    shape = version.spec["signature"].get("inputs", [{}])[0].get("shape", [None, None])
    features = int(shape[1])
    blocks = input_blocks(job.rows, features, job.mini_batch_size, resources["replicas"])
    dataset = feature_dataset(path, features, blocks, on_this_node=fetched)
    args = (ledger.artifacts.url, list(version.spec["files"]), resources["gpus"] > 0)
    return scored_dataset(dataset, job, resources, scorer, args)


def _input_path(job: BatchJob, work: Path) -> tuple[Path, bool]:
    """The job's input as a local path, checked against the digest recorded when the job
    was requested, and whether it was fetched: an object in a store is streamed into
    ``work`` (then read on this node only); a local file or folder is read where it is."""
    from ledger.data_objects import fetch_data
    from ledger.data_profile import digest_path

    if not job.input_uri.startswith("file:"):
        try:
            return fetch_data(job.input_uri, job.input_digest, work / "input"), True
        except IntegrityViolationError:
            raise InvalidInputError(
                f"the input at {job.input_uri} changed since the job was requested"
            ) from None
    path = local_path(job.input_uri)
    if digest_path(path) != job.input_digest:
        raise InvalidInputError(f"the input at {path} changed since the job was requested")
    return path, False


def input_blocks(rows: int, features: int, mini_batch: int, replicas: int) -> int:
    """How many blocks to read an input in: of about BLOCK_BYTES of float32 features
    each, at least BLOCKS_PER_REPLICA per replica, never under a mini-batch each."""
    by_size = -(-rows * features * 4 // BLOCK_BYTES)
    wanted = max(by_size, replicas * BLOCKS_PER_REPLICA)
    return max(1, min(wanted, -(-rows // mini_batch), MAX_BLOCKS))


def write_predictions(
    ledger: Ledger,
    job: BatchJob,
    worker: str,
    stop: threading.Event,
    dataset: Dataset,
    target: Path,
) -> int | None:
    """Run ``dataset`` and write its rows, in order, to the Parquet file ``target``,
    reporting progress about once a second; the row count, or None when stopped."""
    from pyarrow import parquet

    rows, reported_at = 0, time.monotonic()
    writer = None
    failure = ""
    blocks: Iterable[Any] = dataset.iter_batches(batch_size=None, batch_format="pyarrow")
    try:
        for block in blocks:
            if stop.is_set():
                return None
            if writer is None:
                writer = parquet.ParquetWriter(target, block.schema)
            writer.write_table(block)
            rows += block.num_rows
            if time.monotonic() - reported_at >= PROGRESS_EVERY_S:
                ledger.batch_jobs.progress(str(job.id), worker, rows)
                reported_at = time.monotonic()
    except RayError as error:
        failure = _reason(error)
    finally:
        if writer is not None:
            writer.close()
    if failure:
        # Raised here, not in the handler, so as not to keep the failed execution (and
        # its replicas) alive through the exception's context.
        retries = f"{job.max_retries} retr{'y' if job.max_retries == 1 else 'ies'}"
        raise BatchFailedError(f"scoring failed after {retries}: {failure}")
    if writer is None:  # no rows: an empty file all the same
        import pyarrow as pa

        parquet.write_table(pa.table({}), target)
    return rows


def _reason(error: Exception) -> str:
    """What the model or the replica said: the replica's own exception, which Ray passes
    on only as text (a traceback above the UserCodeException it raises instead), else
    the first line of the innermost error."""
    before, wrapped, _ = str(error).partition(WRAPPED)
    if wrapped and before.strip():
        return before.strip().splitlines()[-1]
    cause = getattr(error, "cause", None)
    if isinstance(cause, Exception):
        error = cause
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"
