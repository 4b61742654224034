"""Monitors as aggregates: creation rules, alerts on state transitions only, the view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger.domain.monitor import ColumnResult, Monitor
from ledger.errors import InvalidInputError, NotFoundError, RuleViolationError
from ledger.ledger import Ledger
from projections.views import Views
from tests.conftest import Api, Cli, StoreFactory, assert_user_error, wait_for


@pytest.fixture
def shop(ledger: Ledger, model_dir: Path) -> str:
    """Online endpoint shop serving iris:1 as blue, and batch endpoint nightly."""
    ledger.models.register_version("iris", model_dir)
    ledger.endpoints.create("shop")
    ledger.endpoints.deploy("shop", "blue", "iris:1")
    ledger.endpoints.create("nightly", "batch")
    return "shop"


def _create(ledger: Ledger, name: str = "drift", **overrides: object) -> Monitor:
    options: dict[str, object] = {"endpoint": "shop", "reference": "data:train:1"}
    return ledger.monitors.create(name, **(options | overrides))  # type: ignore[arg-type]


def _result(column: str, verdict: str, value: float = 0.2) -> ColumnResult:
    return {"signal": "data_drift", "column": column, "metric": "wasserstein",
            "value": value, "threshold": 0.1, "verdict": verdict, "samples": 5_000}  # fmt: skip


def _window(ledger: Ledger, hour: int, breaches: dict[str, list[str] | None]) -> Monitor:
    verdicts = breaches.get("data_drift") or []
    return ledger.monitors.record_window(
        "drift",
        window_start=f"2026-12-01T{hour:02}:00:00+00:00",
        window_end=f"2026-12-01T{hour + 1:02}:00:00+00:00",
        rows=5_000,
        results=[_result("x0", "drift" if "x0" in verdicts else "no_drift")],
        drift_shares={"data_drift": 0.1 * len(verdicts)},
        breaches=breaches,
    )


def _alert_events(ledger: Ledger, monitor: Monitor) -> list[str]:
    return [
        type(event).__name__
        for event in ledger.events_of(monitor.id)
        if isinstance(event, Monitor.AlertRaised | Monitor.AlertResolved)
    ]


def test_a_monitor_watches_an_online_endpoint_with_checked_settings(
    ledger: Ledger, shop: str
) -> None:
    monitor = _create(ledger, signals=["data_drift", "prediction_drift"], every_s=7200)
    assert (monitor.endpoint, monitor.every_s, monitor.min_samples) == ("shop", 7200, 100)
    refused = [
        (RuleViolationError, "already exists", {}),
        (InvalidInputError, "batch endpoint", {"endpoint": "nightly"}),
        (NotFoundError, "endpoint 'gone' does not exist", {"endpoint": "gone"}),
        (InvalidInputError, "no deployment 'green'", {"deployment": "green"}),
        (InvalidInputError, "give data:NAME:VERSION", {"reference": "train"}),
        (InvalidInputError, "ISO 8601 duration", {"reference": "window:7 days"}),
        (InvalidInputError, "unknown: latency", {"signals": ["latency"]}),
        (InvalidInputError, "whole number of hours", {"every_s": 1800}),
        (InvalidInputError, "min_samples", {"min_samples": 0}),
        (InvalidInputError, "drift_share", {"drift_share": 1.5}),
    ]
    for error, message, overrides in refused:
        name = "drift" if message == "already exists" else "other"
        with pytest.raises(error, match=message):
            _create(ledger, name, **overrides)


def test_alerts_are_raised_and_resolved_on_transitions_only(ledger: Ledger, shop: str) -> None:
    monitor = _create(ledger)
    _window(ledger, 0, {"data_drift": []})
    _window(ledger, 1, {"data_drift": ["x0"]})  # drift begins: one alert
    _window(ledger, 2, {"data_drift": ["x0", "x1"]})  # still drifting: no new alert
    _window(ledger, 3, {"data_drift": None})  # too little data: the alert stays open
    # the open alert names the columns drifting in its latest window
    assert ledger.monitors.get("drift").alerts == {"data_drift": ["x0", "x1"]}
    _window(ledger, 4, {"data_drift": []})  # back to normal: resolved once
    _window(ledger, 5, {"data_drift": []})
    monitor = ledger.monitors.get("drift")
    assert _alert_events(ledger, monitor) == ["DriftDetected", "DriftResolved"]
    assert (monitor.alerts, monitor.windows) == ({}, 6)
    assert monitor.last_window_end == "2026-12-01T06:00:00+00:00"


def test_the_view_shows_configuration_windows_and_alerts(
    ledger: Ledger, shop: str, store: StoreFactory
) -> None:
    _create(ledger, thresholds={"x0": {"metric": "psi", "value": 0.2}}, features=["x0", "x1"])
    _window(ledger, 0, {"data_drift": ["x0"]})
    _window(ledger, 1, {"data_drift": ["x0", "x2"], "data_quality": ["x1"]})
    views = Views.open(store.settings())
    try:
        [listed] = views.monitors("shop")
        assert listed["alerts"] == {"data_drift": ["x0", "x2"], "data_quality": ["x1"]}
        assert listed["thresholds"] == {"x0": {"metric": "psi", "value": 0.2}}
        assert (listed["windows"], listed["features"]) == (2, ["x0", "x1"])
        latest, first = views.monitor_windows("drift")
        assert latest["window_end"] > first["window_end"]
        assert latest["results"] == [_result("x0", "drift")]
        alerts = views.monitor_alerts("drift")
        assert [(a["event"], a["signal"]) for a in alerts] == [
            ("DataQualityBreached", "data_quality"),
            ("DriftDetected", "data_drift"),
        ]
        with pytest.raises(NotFoundError):
            views.monitor_windows("missing")
        ledger.monitors.delete("drift")
        views.updater.catch_up()
        assert views.monitors() == []
    finally:
        views.close()
    with pytest.raises(RuleViolationError, match="deleted"):
        _window(ledger, 2, {"data_drift": []})


def test_the_cli_creates_lists_shows_and_charts_monitors(
    cli: Cli, ledger: Ledger, shop: str
) -> None:
    created = cli("monitor", "create", "drift", "--endpoint", "shop", "--reference",
                  "window:P7D", "--threshold", "x0=psi:0.25", "--threshold", "x1=0.2",
                  "--every", "PT2H", "--reason", "watch the shop")  # fmt: skip
    assert created.code == 0, created
    monitor = ledger.monitors.get("drift")
    assert monitor.thresholds == {
        "x0": {"metric": "psi", "value": 0.25},
        "x1": {"metric": "", "value": 0.2},
    }
    assert monitor.every_s == 7200
    for hour, value in enumerate([0.02, 0.3, 0.02]):
        ledger.monitors.record_window(
            "drift",
            window_start=f"2026-12-01T{hour:02}:00:00+00:00",
            window_end=f"2026-12-01T{hour + 1:02}:00:00+00:00",
            rows=100,
            results=[_result("x0", "drift" if value > 0.1 else "no_drift", value)],
            drift_shares={"data_drift": 1.0 if value > 0.1 else 0.0},
            breaches={"data_drift": ["x0"] if value > 0.1 else []},
        )
    listed = cli("monitor", "list")
    assert "drift" in listed.out and "shop/*" in listed.out, listed
    shown = cli("monitor", "show", "drift")
    assert "no_drift" in shown.out and "x0" in shown.out, shown
    charted = cli("monitor", "history", "drift")
    assert "▁█▁" in charted.out, charted.out
    assert "DriftDetected" in charted.out and "DriftResolved" in charted.out
    charted_json = cli("monitor", "history", "drift", "--json").json()
    assert charted_json["alerts"][0]["columns"] == ["x0"]  # type: ignore[index]
    create = ("monitor", "create", "m2", "--endpoint", "shop", "--reference", "training")
    bad_threshold = cli(*create, "--threshold", "x0=psi:high")
    assert_user_error(bad_threshold, "threshold 'x0=psi:high'")
    assert_user_error(cli(*create, "--every", "1h"), "--every '1h'")
    assert_user_error(cli("monitor", "show", "missing"), "monitor 'missing' does not exist")


def test_the_api_creates_monitors_and_reads_their_windows(
    api: Api, ledger: Ledger, shop: str
) -> None:
    deployer, reader = api.auth("deployer"), api.auth("reader")
    body = {"name": "drift", "endpoint": "shop", "reference": "data:train:1", "every": "PT2H",
            "thresholds": {"x0": {"metric": "psi", "value": 0.2}}, "reason": "watch"}  # fmt: skip
    created = api.client.post("/monitors", json=body, headers=deployer)
    assert created.status_code == 201, created.text
    assert (created.json()["every_s"], created.json()["alerts"]) == (7200, {})
    head = api.head()
    refused = [
        (body, 409, "already exists"),
        (body | {"name": "m2", "every": "PT30M"}, 400, "whole number of hours"),
        (body | {"name": "m2", "every": "soon"}, 400, "ISO 8601 duration"),
        (body | {"name": "m2", "endpoint": "nightly"}, 400, "batch endpoint"),
        (body | {"name": "m2", "signals": ["latency"]}, 422, "signals"),
    ]
    for sent, status, message in refused:
        answer = api.client.post("/monitors", json=sent, headers=deployer)
        assert answer.status_code == status and message in answer.text, answer.text
    assert (
        api.client.post("/monitors", json=body | {"name": "m3"}, headers=reader).status_code == 403
    )
    assert api.head() == head  # nothing half-written
    _window(ledger, 0, {"data_drift": ["x0"]})  # another writer: the API's views follow

    def runs() -> Any:
        return api.client.get("/monitors/drift/runs", headers=reader).json()

    wait_for(lambda: runs(), 30, "the views to follow the window")
    assert runs()[0]["results"] == [_result("x0", "drift")]
    gauges = api.client.get("/metrics", headers=reader).text
    assert (
        'ledger_monitor_value{column="x0",metric="wasserstein",monitor="drift",'
        'signal="data_drift"} 0.2' in gauges
    )
    assert 'ledger_monitor_alert{monitor="drift",signal="data_drift"} 1.0' in gauges
    alerts = api.client.get("/monitors/drift/alerts", headers=reader).json()
    assert [a["event"] for a in alerts] == ["DriftDetected"]
    listed = api.client.get("/monitors", params={"endpoint": "shop"}, headers=reader).json()
    assert [m["name"] for m in listed] == ["drift"] and listed[0]["windows"] == 1
    assert api.client.get("/monitors/missing/runs", headers=reader).status_code == 404
    deleted = api.client.delete("/monitors/drift", headers=deployer)
    assert deleted.status_code == 204
    assert api.client.get("/monitors", headers=reader).json() == []
