"""Prediction drift against a data reference: the reference outputs are a batch job's
predictions over the reference data (a real batch job on Ray)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import onnxruntime
import pyarrow as pa
from pyarrow import parquet

from executors.monitoring.collector import Collector
from executors.monitoring.runner import MonitorRunner
from executors.worker import Worker
from ledger.ledger import Ledger
from projections.views import Views
from tests.conftest import StoreFactory

HOUR = timedelta(hours=1)


def _scored(ledger: Ledger, model: str, tmp_path: Path, rows: np.ndarray) -> dict[str, np.ndarray]:
    """What the model answers, as a replica would (ONNX Runtime, the same file)."""
    ledger.models.download_version(model, tmp_path / "onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
    label, probabilities = session.run(None, {"X": rows})
    return {"label": label, "probabilities": probabilities}


def test_predictions_drift_against_a_batch_jobs_predictions_over_the_reference(
    ledger: Ledger, store: StoreFactory, nightly: str, tmp_path: Path
) -> None:
    reference = np.random.default_rng(1).standard_normal((20_000, 4)).astype(np.float32)
    data = tmp_path / "reference.parquet"
    parquet.write_table(pa.table({f"x{j}": reference[:, j] for j in range(4)}), data)
    ledger.assets.register_data("reference", data)
    job = ledger.batch_jobs.invoke("nightly", data, mini_batch_size=5_000)
    worker = Worker(store.settings())
    try:
        assert worker.run_job(str(job.id)) == "succeeded"
    finally:
        worker.close()

    ledger.endpoints.create("shop")
    ledger.endpoints.deploy("shop", "blue", nightly)
    ledger.monitors.create("outputs", endpoint="shop", reference="data:reference:1",
                           signals=["prediction_drift"])  # fmt: skip
    hour = datetime(2026, 12, 1, 5, tzinfo=UTC)
    window = np.random.default_rng(2).standard_normal((5_000, 4)).astype(np.float32)
    window[:, :] += 1.5  # every input moved: the model answers differently
    collector = Collector(ledger.artifacts, "shop", "blue", nightly, "r1", flush_s=60,
                          clock=lambda: hour + HOUR / 2, background=False)  # fmt: skip
    collector.rate = 1.0
    collector.offer("req-1", {"X": window}, _scored(ledger, nightly, tmp_path, window))
    collector.flush()

    views = Views.open(store.settings())
    try:
        MonitorRunner(ledger, views).evaluate(views.monitor("outputs"), hour, hour + HOUR)
        views.updater.catch_up()
        [judged] = views.monitor_windows("outputs")
    finally:
        views.close()
    results = {r["column"]: r for r in judged["results"]}
    assert set(results) == {"label", "probabilities_0", "probabilities_1", "*"}
    assert all(r["verdict"] == "drift" for r in results.values()), results
    assert ledger.monitors.get("outputs").alerts == {
        "prediction_drift": ["label", "probabilities_0", "probabilities_1"]
    }
