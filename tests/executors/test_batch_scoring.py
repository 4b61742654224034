"""Batch endpoints: scoring a dataset on Ray actors, compared with ONNX Runtime directly."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pyarrow as pa
import pytest
from pyarrow import parquet

from executors.batch_scoring import BLOCK_BYTES, input_blocks
from executors.worker import Worker
from ledger.artifacts.locations import open_blobs
from ledger.domain.batch_job import BatchJob
from ledger.errors import InvalidInputError
from ledger.ledger import Ledger
from tests.conftest import Cli, StoreFactory, assert_user_error
from tests.object_stores import ObjectStoreServer


def _rows(path: Path, count: int) -> np.ndarray:
    values = np.random.default_rng(7).standard_normal((count, 4)).astype(np.float32)
    table = pa.table({f"x{j}": values[:, j] for j in range(4)} | {"id": np.arange(count)})
    parquet.write_table(table.select(["x0", "x1", "x2", "x3"]), path)
    return values


def test_inputs_are_read_in_blocks_large_enough_to_move_cheaply_and_enough_to_share() -> None:
    rows_per_block = BLOCK_BYTES // (20 * 4)  # 20 float32 features
    # a cheap model's ten million rows: blocks of BLOCK_BYTES, not of a mini-batch
    assert input_blocks(10_000_000, 20, 50_000, 2) == -(-10_000_000 // rows_per_block)
    # a small input still gives each replica several blocks to score
    assert input_blocks(1_000_000, 20, 50_000, 2) == 8
    # but no block holds less than a mini-batch, and there is always one
    assert input_blocks(100_000, 20, 50_000, 4) == 2
    assert input_blocks(0, 20, 50_000, 2) == 1


def test_a_million_rows_score_exactly_as_onnx_runtime_does_directly(
    ledger: Ledger, store: StoreFactory, nightly: str, tmp_path: Path
) -> None:
    rows = _rows(tmp_path / "million.parquet", 1_000_000)
    job = ledger.batch_jobs.invoke("nightly", tmp_path / "million.parquet", mini_batch_size=50_000)
    assert (job.rows, job.deployment, job.model) == (1_000_000, "main", nightly)
    worker = Worker(store.settings())
    try:
        assert worker.run_job(str(job.id)) == "succeeded", ledger.batch_jobs.get(str(job.id)).error
    finally:
        worker.close()
    finished = ledger.batch_jobs.get(str(job.id))
    assert finished.rows_done == 1_000_000 and finished.duration_s > 0
    history = [e.event for e in ledger.history_of({job.id: "batch"})]
    assert history[0] == "Requested" and history[-1] == "Completed" and "Started" in history

    # Row for row, in input order, exactly as ONNX Runtime scores the whole input at once.
    _assert_predictions(ledger, finished, _direct(ledger, nightly, tmp_path, rows))


def test_an_input_in_an_object_store_is_fetched_checked_and_scored(
    ledger: Ledger, store: StoreFactory, nightly: str, tmp_path: Path, s3_server: ObjectStoreServer
) -> None:
    rows = _rows(tmp_path / "lake.parquet", 20_000)
    data = (tmp_path / "lake.parquet").read_bytes()
    lake = open_blobs(s3_server.new_location("lake"))
    lake.write("lake.parquet", [data])
    url = f"{lake.url}/lake.parquet"
    job = ledger.batch_jobs.invoke("nightly", url, mini_batch_size=5_000)
    assert (job.input_uri, job.rows) == (url, 20_000)
    assert job.input_digest == hashlib.sha256(data).hexdigest()
    worker = Worker(store.settings())
    try:
        assert worker.run_job(str(job.id)) == "succeeded", ledger.batch_jobs.get(str(job.id)).error
        scored = ledger.batch_jobs.get(str(job.id))
        _assert_predictions(ledger, scored, _direct(ledger, nightly, tmp_path, rows))

        changed = ledger.batch_jobs.invoke("nightly", url)
        _rows(tmp_path / "other.parquet", 20_000 - 1)  # replaced after the request
        lake.write("lake.parquet", [(tmp_path / "other.parquet").read_bytes()])
        assert worker.run_job(str(changed.id)) == "failed"
        error = ledger.batch_jobs.get(str(changed.id)).error
        assert f"the input at {url} changed since the job was requested" in error
    finally:
        worker.close()
    missing = f"{lake.url}/missing.parquet"
    with pytest.raises(InvalidInputError, match=f"no such object: {missing}"):
        ledger.batch_jobs.invoke("nightly", missing)


def test_invoking_batch_endpoints_from_the_cli(
    cli: Cli, ledger: Ledger, nightly: str, tmp_path: Path
) -> None:
    _rows(tmp_path / "small.parquet", 1_000)
    submitted = cli("endpoint", "invoke", "nightly", "--input", str(tmp_path / "small.parquet"))
    assert submitted.code == 0 and "1,000 rows on nightly/main" in submitted.out
    job_id = submitted.out.split("batch job ")[1].split(":")[0]
    shown: Any = cli("job", "show", job_id, "--json").json()
    assert shown["kind"] == "batch" and shown["status"] == "submitted"
    listed: Any = cli("job", "list", "--json").json()
    assert [(j["pipeline"], j["steps_total"]) for j in listed] == [("batch:nightly", 1_000)]
    assert_user_error(cli("job", "output", job_id, str(tmp_path / "p.parquet")), "no output")

    small = str(tmp_path / "small.parquet")
    ledger.endpoints.create("web", "online")
    assert_user_error(cli("endpoint", "invoke", "web", "-i", small), "is online")
    ledger.endpoints.create("empty", "batch")
    assert_user_error(cli("endpoint", "invoke", "empty", "-i", small), "no deployment taking")
    assert_user_error(cli("endpoint", "invoke", "nightly", "-i", small, "--out", "x"), "--wait")
    assert_user_error(cli("endpoint", "invoke", "nightly", "-i", "ghost.csv"), "ghost.csv")


def test_invoke_and_wait_through_a_running_worker(
    cli: Cli, store: StoreFactory, nightly: str, tmp_path: Path
) -> None:
    from tests.bus_support import in_background

    _rows(tmp_path / "small.parquet", 2_500)
    out = tmp_path / "predictions.parquet"
    with in_background(Worker(store.settings()).run):
        result = cli("endpoint", "invoke", "nightly", "-i", str(tmp_path / "small.parquet"),
                     "--mini-batch-size", "1000", "--wait", "--out", str(out))  # fmt: skip
    assert result.code == 0, result.err
    assert "Wrote 2,500 predictions" in result.out and "succeeded" in result.out
    assert parquet.read_table(out).column_names == ["label", "probabilities_0", "probabilities_1"]


def _direct(ledger: Ledger, model: str, tmp_path: Path, rows: np.ndarray) -> list[np.ndarray]:
    """ONNX Runtime's own outputs for ``rows``: what every batch job must write."""
    ledger.models.download_version(model, tmp_path / "model")
    session = onnxruntime.InferenceSession(str(tmp_path / "model" / "model.onnx"))
    return list(session.run(None, {"X": rows}))


def _start(ledger: Ledger, input_path: Path, **options: Any) -> BatchJob:
    """A batch job on ``input_path``, requested and started by a (pretend) worker."""
    job = ledger.batch_jobs.invoke("nightly", input_path, **options)
    started = ledger.batch_jobs.start(str(job.id), "tester-worker", may_take=lambda j: True)
    assert started is not None
    return started


def _score(ledger: Ledger, started: BatchJob, scorer: Any = None) -> BatchJob:
    """Run a started job in this process, as a worker runs it; the job after."""
    from executors.batch_scoring import run_batch_job

    extra = {} if scorer is None else {"scorer": scorer}
    run_batch_job(ledger, started, "tester-worker", threading.Event(), **extra)
    return ledger.batch_jobs.get(str(started.id))


def _run(ledger: Ledger, input_path: Path, scorer: Any = None, **options: Any) -> BatchJob:
    """A batch job on ``input_path`` run in this process; the job after."""
    return _score(ledger, _start(ledger, input_path, **options), scorer)


def _assert_predictions(ledger: Ledger, job: BatchJob, expected: list[np.ndarray]) -> None:
    assert job.status == "succeeded", job.error
    predictions = parquet.read_table(ledger.artifacts.blob_path(job.output_digest))
    labels, probabilities = expected
    np.testing.assert_array_equal(predictions.column("label").to_numpy(), labels)
    for j in range(probabilities.shape[1]):
        column = predictions.column(f"probabilities_{j}").to_numpy()
        np.testing.assert_array_equal(column, probabilities[:, j])


def _crashing_scorer(marker: Path, on_call: int) -> Any:
    """A replica class that kills its own process on its ``on_call``-th mini-batch, once
    (``marker`` records that it did). Defined in a function so that Ray ships it by value."""
    from executors.batch_dataset import OnnxBatchScorer

    class CrashingOnce(OnnxBatchScorer):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.calls = 0

        def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            self.calls += 1
            if self.calls == on_call and not marker.exists():
                marker.touch()
                os._exit(1)
            return super().__call__(batch)

    return CrashingOnce


def test_a_replica_killed_mid_job_loses_no_row_and_duplicates_none(
    ledger: Ledger, nightly: str, tmp_path: Path
) -> None:
    rows = _rows(tmp_path / "rows.parquet", 100_000)
    marker = tmp_path / "crashed"
    crashing = _crashing_scorer(marker, on_call=3)
    job = _run(ledger, tmp_path / "rows.parquet", crashing, mini_batch_size=5_000)
    assert marker.exists()  # a replica did die
    assert job.rows_done == 100_000
    _assert_predictions(ledger, job, _direct(ledger, nightly, tmp_path, rows))


def test_a_stopping_worker_leaves_the_job_unfinished_for_the_next(
    ledger: Ledger, nightly: str, tmp_path: Path
) -> None:
    from executors.batch_scoring import run_batch_job

    _rows(tmp_path / "rows.parquet", 10_000)
    started = _start(ledger, tmp_path / "rows.parquet", mini_batch_size=1_000)
    stop = threading.Event()
    stop.set()
    assert run_batch_job(ledger, started, "tester-worker", stop) == "stopped"
    assert ledger.batch_jobs.get(str(started.id)).status == "running"


def test_a_job_fails_naming_the_cause_once_its_retries_are_spent(
    ledger: Ledger, nightly: str, tmp_path: Path
) -> None:
    from executors.batch_dataset import OnnxBatchScorer

    class Refusing(OnnxBatchScorer):
        def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            raise RuntimeError("the model refused this batch")

    _rows(tmp_path / "rows.parquet", 10_000)
    job = _run(ledger, tmp_path / "rows.parquet", Refusing, mini_batch_size=5_000, max_retries=1)
    assert job.status == "failed"
    assert "after 1 retry" in job.error and "the model refused this batch" in job.error, job.error

    crashed = _run(
        ledger, tmp_path / "rows.parquet", _crashing_scorer(tmp_path / "m", 1), max_retries=0
    )
    assert crashed.status == "failed" and "after 0 retries" in crashed.error, crashed.error
    # Not checked here: that the failed runs' replicas let their CPUs go. Ray Data drops
    # its handles to them, but a replica that crashed or restarted may hold its CPU on
    # (seen with Ray 2.60: 0.5 to 1 of the session's 4 CPUs, for a minute and more).


class PeakAnonymousMemory:
    """The highest private (anonymous) resident memory this process reached while in
    the ``with`` block, sampled from /proc. Shared memory, such as the Ray object store's
    pages mapped in to read a block, is not the process's own and does not count."""

    def __enter__(self) -> PeakAnonymousMemory:
        self.start = self.peak = self._now()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, self._now())

    @staticmethod
    def _now() -> int:
        status = Path("/proc/self/status").read_text()
        kilobytes = next(line for line in status.splitlines() if line.startswith("RssAnon:"))
        return int(kilobytes.split()[1]) * 1024


@pytest.mark.slow
def test_a_large_input_is_scored_without_the_worker_ever_holding_it(
    ledger: Ledger, nightly: str, tmp_path: Path
) -> None:
    count = 2_000_000
    values = np.random.default_rng(3).standard_normal((count, 4))  # float64: 64 MB
    table = pa.table({f"x{j}": values[:, j] for j in range(4)})
    parquet.write_table(table, tmp_path / "large.parquet", row_group_size=20_000)
    input_bytes = table.nbytes
    del table
    _rows(tmp_path / "warm.parquet", 10_000)
    _run(ledger, tmp_path / "warm.parquet")  # Ray Data's first use imports and starts things

    started = _start(ledger, tmp_path / "large.parquet", mini_batch_size=20_000)
    with PeakAnonymousMemory() as memory:
        job = _score(ledger, started)
    assert job.status == "succeeded" and job.rows_done == count, job.error
    growth_mib, input_mib = memory.growth / 2**20, input_bytes / 2**20
    print(f"peak private memory growth {growth_mib:.1f} MiB for a {input_mib:.0f} MiB input")
    # Holding the input would take input_bytes (its predictions, half as much again).
    assert memory.growth < input_bytes / 4, (memory.growth, input_bytes)
    _assert_predictions(ledger, job, _direct(ledger, nightly, tmp_path, values.astype(np.float32)))
