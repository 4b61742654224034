"""Collected data kept in the artifact store wherever it is: a Collector writing to a local
directory, moto's S3 or Azurite, and the monitor runner judging the windows from there
(their sketches, and the rows themselves where a sketch is missing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from executors.monitoring.collector import (
    Collector,
    collected_files,
    is_collected,
    sketch_key,
)
from executors.monitoring.runner import MonitorRunner
from ledger.ledger import Ledger
from projections.views import Views
from tests.conftest import StoreFactory

HOUR = timedelta(hours=1)
DAY = datetime(2026, 12, 1, tzinfo=UTC)
ROWS = 2_000


def _served(ledger: Ledger, model_dir: Path) -> str:
    """Endpoint shop, deployment blue: a model of four features answering a label."""
    signature = {
        "inputs": [{"name": "X", "type": "float32", "shape": [None, 4]}],
        "outputs": [{"name": "label", "type": "int64", "shape": [None]}],
    }
    version = ledger.models.register_version("clf", model_dir, signature=signature)
    ledger.endpoints.create("shop")
    ledger.endpoints.deploy("shop", "blue", version.ref)
    return version.ref


def _collect(ledger: Ledger, model: str, at: datetime, rows: np.ndarray) -> list[str]:
    collector = Collector(ledger.settings.artifacts_location, "shop", "blue", model, "r1",
                          flush_s=60, clock=lambda: at, background=False)  # fmt: skip
    collector.rate = 1.0
    for start in range(0, len(rows), 500):
        batch = rows[start : start + 500]
        collector.offer(f"req-{start}", {"X": batch}, {"label": (batch[:, 0] > 0).astype(int)})
    return collector.flush()


def test_windows_collected_in_the_artifact_store_are_judged_from_there(
    ledger_on_stores: Ledger, store: StoreFactory, model_dir: Path, artifact_location: str
) -> None:
    model = _served(ledger_on_stores, model_dir)
    ledger_on_stores.monitors.create("watch", endpoint="shop", reference="window:P1D",
                                     signals=["data_drift", "prediction_drift"])  # fmt: skip
    rng = np.random.default_rng(0)
    steady = rng.standard_normal((ROWS, 4)).astype(np.float32)
    reference = _collect(ledger_on_stores, model, DAY - 12 * HOUR, steady)
    shifted = rng.standard_normal((ROWS, 4)).astype(np.float32)
    shifted[:, 2] += 1.0
    hour = DAY + 5 * HOUR
    written = _collect(ledger_on_stores, model, hour + timedelta(minutes=10), shifted)
    blobs = ledger_on_stores.artifacts.blobs
    if artifact_location:  # in the object store, and nothing in the ledger's home
        assert blobs.local_root is None
        assert not (store.tmp_path / ".ledger" / "artifacts" / "collected").exists()
    assert collected_files(ledger_on_stores.artifacts, "shop", "blue", hour, hour + HOUR) == written
    listed = [o.key for o in blobs.listing("collected/endpoint=shop/")]
    assert sorted(k for k in listed if is_collected(k)) == sorted(reference + written)
    blobs.delete(sketch_key(reference[0]))  # its rows are read instead

    views = Views.open(store.settings(artifacts=artifact_location))
    try:
        MonitorRunner(ledger_on_stores, views).evaluate(views.monitor("watch"), hour, hour + HOUR)
        views.updater.catch_up()
        [window] = views.monitor_windows("watch")
    finally:
        views.close()
    assert window["rows"] == ROWS
    drifting = {(r["signal"], r["column"]) for r in window["results"] if r["verdict"] == "drift"}
    assert ("data_drift", "x2") in drifting
    assert {c for s, c in drifting if s == "data_drift"} <= {"x2", "*"}
    assert ledger_on_stores.monitors.get("watch").alerts["data_drift"] == ["x2"]
