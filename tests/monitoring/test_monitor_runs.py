"""Monitors judging collected windows: no false alarm on steady data, each break
detected in its first window and named, one alert raised and one resolved."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from pyarrow import parquet as pq
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from executors.monitoring.collector import Collector
from executors.monitoring.runner import MonitorRunner
from executors.monitoring.windows import window_of
from executors.onnx_conversion import convert_model_version
from ledger.domain.monitor import Monitor
from ledger.errors import InvalidInputError, RuleViolationError
from ledger.ledger import Ledger
from projections.views import Views
from tests.conftest import Cli, StoreFactory

HOUR = timedelta(hours=1)
FEATURES = 10
ROWS = 5_000  # per window


@pytest.fixture
def shop(ledger: Ledger, tmp_path: Path) -> str:
    """Online endpoint shop serving a logistic regression over 10 features (ONNX) as blue."""
    features, labels = make_classification(n_samples=500, n_features=FEATURES, random_state=5)
    directory = tmp_path / "clf"
    directory.mkdir()
    (directory / "model.pkl").write_bytes(pickle.dumps(LogisticRegression().fit(features, labels)))
    ledger.models.register_version("clf", directory, flavor="sklearn")
    onnx_ref = convert_model_version(ledger, "clf:1", rows=100)[0].ref
    ledger.endpoints.create("shop")
    ledger.endpoints.deploy("shop", "blue", onnx_ref)
    return onnx_ref


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _collect(ledger: Ledger, clock: Clock, rows: np.ndarray, model: str) -> None:
    """``rows`` as one replica collected them, scored at ``clock.now``, with made-up
    outputs (the monitors here watch inputs)."""
    collector = Collector(ledger.artifacts, "shop", "blue", model, "r1", flush_s=60,
                          clock=clock, background=False)  # fmt: skip
    collector.rate = 1.0
    for start in range(0, len(rows), 500):
        batch = rows[start : start + 500]
        outputs = {"label": (batch[:, 0] > 0).astype(np.int64)}
        collector.offer(f"req-{start}", {"X": batch}, outputs)
    collector.flush()


def _steady(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((ROWS, FEATURES)).astype(np.float32)


def _alerts(ledger: Ledger) -> list[tuple[str, str, list[str]]]:
    monitor = ledger.monitors.get("watch")
    return [
        (type(e).__name__, e.signal, getattr(e, "columns", []))
        for e in ledger.events_of(monitor.id)
        if isinstance(e, Monitor.AlertRaised | Monitor.AlertResolved)
    ]


def test_steady_windows_raise_nothing_and_each_break_is_named_in_its_first_window(
    ledger: Ledger, shop: str, store: StoreFactory
) -> None:
    # The reference: the day before, steady.
    day = window_of(datetime(2026, 12, 1, tzinfo=UTC), 86_400)[0]
    clock = Clock(day - timedelta(hours=12))
    _collect(ledger, clock, np.vstack([_steady(seed) for seed in range(10)]), shop)
    ledger.monitors.create("watch", endpoint="shop", reference="window:P1D",
                           signals=["data_drift", "data_quality"])  # fmt: skip
    views = Views.open(store.settings())
    runner = MonitorRunner(ledger, views)
    try:
        hours = [day + i * HOUR for i in range(24)]
        breaks = {20: "shift", 21: "nulls", 22: "steady", 23: "steady"}
        for i, hour in enumerate(hours[:20]):
            clock.now = hour + timedelta(minutes=30)
            _collect(ledger, clock, _steady(100 + i), shop)
            runner.evaluate(views.monitor("watch"), hour, hour + HOUR)
            views.updater.catch_up()
        assert _alerts(ledger) == [], "a false alarm on steady data"

        for i in (20, 21, 22):
            rows = _steady(100 + i)
            if breaks[i] == "shift":
                rows[:, 3] += 0.5  # half a standard deviation
            elif breaks[i] == "nulls":
                rows[: ROWS // 20, 7] = np.nan  # 5 % nulls
            clock.now = hours[i] + timedelta(minutes=30)
            _collect(ledger, clock, rows, shop)
            runner.evaluate(views.monitor("watch"), hours[i], hours[i] + HOUR)
            views.updater.catch_up()
        assert _alerts(ledger) == [
            ("DriftDetected", "data_drift", ["x3"]),  # the shift, in its own window
            ("DriftResolved", "data_drift", []),  # the next window is steady again
            ("DataQualityBreached", "data_quality", ["x7"]),
            ("DataQualityRestored", "data_quality", []),
        ]
        latest = views.monitor_windows("watch", limit=3)
        shifted = next(w for w in latest if w["window_start"] == hours[20].isoformat())
        drifting = [r for r in shifted["results"] if r["verdict"] == "drift"]
        assert [(r["column"], r["metric"]) for r in drifting] == [("x3", "wasserstein")]
        dataset = next(r for r in shifted["results"] if r["column"] == "*")
        assert (dataset["metric"], dataset["value"], dataset["verdict"]) == (
            "drift_share",
            0.1,
            "no_drift",  # one column of ten: under the 0.5 share
        )
        assert shifted["rows"] == ROWS and shifted["drift_shares"]["data_drift"] == 0.1
    finally:
        views.close()


def test_the_worker_pass_judges_each_ended_window_once(
    ledger: Ledger, shop: str, store: StoreFactory, cli: Cli
) -> None:
    ledger.monitors.create("watch", endpoint="shop", reference="window:PT2H")
    views = Views.open(store.settings())
    try:
        created = datetime.fromisoformat(views.monitor("watch")["created_at"])
        first, _ = window_of(created, 3600)
        clock = Clock(first - timedelta(minutes=30))  # the reference: just before
        _collect(ledger, clock, _steady(1), shop)
        for i in range(3):
            clock.now = first + i * HOUR + timedelta(minutes=10)
            _collect(ledger, clock, _steady(2 + i), shop)
        runner = MonitorRunner(ledger, views)
        later = first + 3 * HOUR + timedelta(minutes=1)
        assert runner.run_due(later) == 3
        views.updater.catch_up()
        assert runner.run_due(later) == 0  # nothing new: no window judged twice
        other = MonitorRunner(ledger, views)  # a second worker, with stale views
        assert other.run_due(later) == 0
        windows = views.monitor_windows("watch")
        assert [w["window_end"] for w in windows][::-1] == [
            (first + (i + 1) * HOUR).isoformat() for i in range(3)
        ]
        assert [w["rows"] for w in windows] == [ROWS] * 3
    finally:
        views.close()
    shown = cli("monitor", "run", "watch", "--window-end", (first + HOUR).isoformat())
    assert shown.code == 0 and "5,000 rows" in shown.out, shown
    refused = cli("monitor", "run", "watch", "--window-end", (first + HOUR / 2).isoformat())
    assert refused.code == 1 and "end on multiples of 1 h" in refused.err, refused
    in_progress = cli("monitor", "run", "watch", "--current", "--json").json()
    assert in_progress["window_end"] > datetime.now(UTC).isoformat()  # type: ignore[index]
    # Judged on demand: the schedule goes on from where it was.
    assert ledger.monitors.get("watch").last_window_end == (first + 3 * HOUR).isoformat()


def test_performance_joins_labels_by_correlation_id_as_scikit_learn_scores_them(
    ledger: Ledger, shop: str, store: StoreFactory, cli: Cli, tmp_path: Path
) -> None:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    ledger.monitors.create("watch", endpoint="shop", reference="window:P1D",
                           signals=["performance"], min_samples=100,
                           thresholds={"accuracy": {"metric": "", "value": 0.9}})  # fmt: skip
    hour = datetime(2026, 12, 1, 5, tzinfo=UTC)
    rows = _steady(7)
    _collect(ledger, Clock(hour + timedelta(minutes=5)), rows, shop)
    predicted = (rows[:, 0] > 0).astype(np.int64)  # what _collect says the model answered
    truth = np.where(np.random.default_rng(3).random(ROWS) < 0.8, predicted, 1 - predicted)
    labelled = np.random.default_rng(4).random(ROWS) < 0.7  # not every request is labelled
    ids = np.array([f"req-{i // 500 * 500}" for i in range(ROWS)])  # 500 rows per request
    index = np.arange(ROWS) % 500
    table = pa.table({"correlation_id": ids[labelled], "row": index[labelled],
                      "truth": truth[labelled]})  # fmt: skip
    pq.write_table(table.append_column("x", pa.array(np.zeros(int(labelled.sum())))),
                   tmp_path / "labels.parquet")  # fmt: skip
    recorded = cli("monitor", "labels", "shop", "--input", str(tmp_path / "labels.parquet"),
                   "--label-column", "truth")  # fmt: skip
    assert recorded.code == 0 and f"Recorded {labelled.sum():,} labels" in recorded.out, recorded
    views = Views.open(store.settings())
    try:
        MonitorRunner(ledger, views).evaluate(views.monitor("watch"), hour, hour + HOUR)
        views.updater.catch_up()
        [window] = views.monitor_windows("watch")
    finally:
        views.close()
    got = {r["metric"]: r for r in window["results"]}
    y_true, y_pred = truth[labelled], predicted[labelled]
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="macro")
    expected = {"accuracy": accuracy_score(y_true, y_pred), "precision": precision,
                "recall": recall, "f1": f1}  # fmt: skip
    assert {m: got[m]["value"] for m in expected} == pytest.approx(expected, abs=1e-12)
    assert got["accuracy"]["samples"] == labelled.sum()
    assert got["accuracy"]["verdict"] == "breach"  # about 0.8, under the 0.9 set
    assert _alerts(ledger) == [("PerformanceDegraded", "performance", ["accuracy"])]
    missing = cli("monitor", "labels", "shop", "--input", str(tmp_path / "labels.parquet"))
    assert missing.code == 1 and "no column 'label'" in missing.err, missing
    bad = {
        "row": pa.table({"correlation_id": ["a"], "row": ["first"], "label": [1]}),
        "label": pa.table({"correlation_id": ["a", "b"], "label": [0.5, float("nan")]}),
        "correlation_id": pa.table({"correlation_id": ["a", None], "label": [1, 0]}),
    }
    for column, table in bad.items():
        pq.write_table(table, tmp_path / "bad.parquet")
        refused = cli("monitor", "labels", "shop", "--input", str(tmp_path / "bad.parquet"))
        assert refused.code == 1 and "Traceback" not in refused.err, refused
        assert "bad.parquet" in refused.err and f"'{column}'" in refused.err, refused
    assert cli("monitor", "labels", "nightly-gone", "--input", "x.csv").code == 1


def test_a_data_reference_names_the_models_features_as_the_data_does(
    ledger: Ledger, shop: str, store: StoreFactory, tmp_path: Path
) -> None:
    reference = np.random.default_rng(0).standard_normal((50_000, FEATURES)).astype(np.float32)
    columns = {f"f{j}": reference[:, j] for j in range(FEATURES)}
    pq.write_table(pa.table({"id": np.arange(50_000), **columns}), tmp_path / "train.parquet")
    ledger.assets.register_data("train", tmp_path / "train.parquet")
    ledger.monitors.create("watch", endpoint="shop", reference="data:train:1",
                           signals=["data_drift", "prediction_drift"],
                           features=list(columns))  # the model's inputs: not "id"  # fmt: skip
    ledger.monitors.create("outputs", endpoint="shop", reference="window:P1D",
                           signals=["prediction_drift"])  # fmt: skip
    hour = datetime(2026, 12, 1, 5, tzinfo=UTC)
    _collect(ledger, Clock(hour - timedelta(hours=3)), _steady(1), shop)  # the day before
    rows = _steady(2)
    rows[:, 0] += 1.0  # shifts feature f0, and the made-up label (x0 > 0) with it
    _collect(ledger, Clock(hour + timedelta(minutes=5)), rows, shop)
    views = Views.open(store.settings())
    try:
        runner = MonitorRunner(ledger, views)
        for name in ("watch", "outputs"):
            runner.evaluate(views.monitor(name), hour, hour + HOUR)
        views.updater.catch_up()
        [watched] = views.monitor_windows("watch")
        [outputs] = views.monitor_windows("outputs")
    finally:
        views.close()
    drifting = {(r["signal"], r["column"]) for r in watched["results"] if r["verdict"] == "drift"}
    assert drifting == {("data_drift", "f0")}  # the model's x0, by the data's name
    assert watched["drift_shares"] == {"data_drift": 0.1}
    assert "prediction_drift" not in watched["drift_shares"]  # no batch predictions on train
    # label drifts, and with it the outputs as a whole (their dataset-level row, "*")
    assert [r["column"] for r in outputs["results"] if r["verdict"] == "drift"] == ["label", "*"]


def test_a_window_reference_names_features_mirrors_are_left_out_and_a_broken_monitor_waits(
    ledger: Ledger, shop: str, store: StoreFactory
) -> None:
    ledger.endpoints.deploy("shop", "green", shop)
    ledger.endpoints.set_mirror("shop", {"green": 100})
    names = [f"f{j}" for j in range(FEATURES)]
    ledger.monitors.create("named", endpoint="shop", reference="window:P1D", features=names)
    ledger.monitors.create("broken", endpoint="shop", reference="training")  # no lineage
    hour = datetime(2026, 12, 1, 5, tzinfo=UTC)
    _collect(ledger, Clock(hour - timedelta(hours=2)), _steady(1), shop)
    _collect(ledger, Clock(hour + timedelta(minutes=5)), _steady(2), shop)
    copies = Collector(ledger.artifacts, "shop", "green", shop, "r2", flush_s=60,
                       clock=lambda: hour + timedelta(minutes=6), background=False)  # fmt: skip
    copies.rate = 1.0
    copies.offer("req-0", {"X": _steady(3)[:500]}, {"label": np.zeros(500, np.int64)})
    copies.flush()  # the mirror's copies: not production's requests
    views = Views.open(store.settings())
    try:
        runner = MonitorRunner(ledger, views)
        with pytest.raises(InvalidInputError, match="no training data recorded"):
            runner.evaluate(views.monitor("broken"), hour, hour + HOUR)
        runner.evaluate(views.monitor("named"), hour, hour + HOUR)
        views.updater.catch_up()
        [window] = views.monitor_windows("named")
    finally:
        views.close()
    assert window["rows"] == ROWS  # blue's rows only
    columns = {r["column"] for r in window["results"] if r["signal"] == "data_drift"}
    assert columns == {*names, "*"}


def test_bad_thresholds_and_a_deleted_monitors_name_are_refused_its_history_kept(
    ledger: Ledger, shop: str, cli: Cli
) -> None:
    with pytest.raises(InvalidInputError, match="metric 'ks2' is not one of"):
        ledger.monitors.create("m", endpoint="shop", reference="training",
                               thresholds={"x0": {"metric": "ks2", "value": 0.1}})  # fmt: skip
    with pytest.raises(InvalidInputError, match="must be a number >= 0"):
        ledger.monitors.create("m", endpoint="shop", reference="training",
                               thresholds={"x0": {"metric": "", "value": -1.0}})  # fmt: skip
    ledger.monitors.create("m", endpoint="shop", reference="training")
    hour = datetime(2026, 12, 1, 5, tzinfo=UTC)
    ledger.monitors.record_window("m", window_start=hour.isoformat(),
                                  window_end=(hour + HOUR).isoformat(), rows=0, results=[],
                                  drift_shares={}, breaches={})  # fmt: skip
    ledger.monitors.delete("m")
    assert cli("monitor", "history", "m", "--json").json()["windows"][0]["rows"] == 0  # type: ignore[index]
    with pytest.raises(RuleViolationError, match="was deleted"):
        ledger.monitors.create("m", endpoint="shop", reference="training")
