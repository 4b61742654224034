"""Batch endpoints: scoring a dataset on Ray actors, compared with ONNX Runtime directly."""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pyarrow as pa
import pytest
from pyarrow import parquet
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from executors.onnx_conversion import convert_model_version
from executors.worker import Worker
from ledger.domain.endpoint import Resources
from ledger.ledger import Ledger
from tests.conftest import Cli, StoreFactory, assert_user_error

TWO_REPLICAS: Resources = {"cpus": 0.5, "gpus": 0, "memory_mb": 512, "replicas": 2}


@pytest.fixture
def nightly(ledger: Ledger, tmp_path: Path, ray_started: None) -> str:
    """Batch endpoint nightly, all traffic on `main`: a logistic regression in ONNX."""
    features, labels = make_classification(n_samples=500, n_features=4, random_state=5)
    directory = tmp_path / "clf"
    directory.mkdir()
    model = LogisticRegression().fit(features, labels)
    (directory / "model.pkl").write_bytes(pickle.dumps(model))
    ledger.models.register_version("clf", directory, flavor="sklearn")
    onnx_ref = convert_model_version(ledger, "clf:1", rows=100)[0].ref
    ledger.endpoints.create("nightly", "batch")
    ledger.endpoints.deploy("nightly", "main", onnx_ref, resources=TWO_REPLICAS)
    ledger.endpoints.set_traffic("nightly", {"main": 100})
    return onnx_ref


def _rows(path: Path, count: int) -> np.ndarray:
    values = np.random.default_rng(7).standard_normal((count, 4)).astype(np.float32)
    table = pa.table({f"x{j}": values[:, j] for j in range(4)} | {"id": np.arange(count)})
    parquet.write_table(table.select(["x0", "x1", "x2", "x3"]), path)
    return values


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

    predictions = parquet.read_table(ledger.artifacts.blob_path(finished.output_digest))
    ledger.models.download_version(nightly, tmp_path / "model")
    session = onnxruntime.InferenceSession(str(tmp_path / "model" / "model.onnx"))
    labels, probabilities = session.run(None, {"X": rows})
    assert predictions.num_rows == 1_000_000
    assert np.array_equal(predictions.column("label").to_numpy(), labels)
    for j in range(2):
        column = predictions.column(f"probabilities_{j}").to_numpy()
        assert np.allclose(column, probabilities[:, j], rtol=0, atol=1e-6)


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


def test_mini_batches_of_a_dead_replica_are_scored_again_on_a_new_one(
    ledger: Ledger, nightly: str, tmp_path: Path
) -> None:
    import threading

    import ray

    from executors.batch_scoring import BatchFailedError, BatchScorer

    rows = _rows(tmp_path / "rows.parquet", 10_000)
    version = ledger.models.get_version(nightly)
    job = ledger.batch_jobs.invoke("nightly", tmp_path / "rows.parquet", mini_batch_size=500)
    started = ledger.batch_jobs.start(str(job.id), "tester-worker", may_take=lambda j: True)
    assert started is not None
    scorer = BatchScorer(ledger, version.spec["files"], TWO_REPLICAS)
    ray.get([replica.describe.remote() for replica in scorer.replicas])  # started
    dead = scorer.replicas[0]
    ray.kill(dead)
    try:
        outputs = scorer.score(started, rows, "tester-worker", threading.Event())
        assert outputs is not None and scorer.replicas[0] is not dead  # replaced
    finally:
        scorer.close()
    ledger.models.download_version(nightly, tmp_path / "model")
    session = onnxruntime.InferenceSession(str(tmp_path / "model" / "model.onnx"))
    assert np.array_equal(outputs["label"], session.run(None, {"X": rows})[0])

    no_retries = ledger.batch_jobs.invoke(
        "nightly", tmp_path / "rows.parquet", mini_batch_size=500, max_retries=0
    )
    started = ledger.batch_jobs.start(str(no_retries.id), "tester-worker", may_take=lambda j: True)
    assert started is not None
    scorer = BatchScorer(ledger, version.spec["files"], TWO_REPLICAS)
    ray.get([replica.describe.remote() for replica in scorer.replicas])
    for replica in scorer.replicas:
        ray.kill(replica)
    try:
        with pytest.raises(BatchFailedError, match="failed 1 time"):
            scorer.score(started, rows, "tester-worker", threading.Event())
    finally:
        scorer.close()
    # Every CPU the replicas held is free again (tests after this one need them).
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, ray.available_resources()
        time.sleep(0.1)
