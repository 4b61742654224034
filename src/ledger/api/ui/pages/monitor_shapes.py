"""What the monitor pages show, shaped from the monitors view: each feature's drift series,
the windows table's cells, the alerts with the score that raised them, a monitor's latest
verdict per signal. (No routes here: pages/monitors.py serves them.)"""

from __future__ import annotations

from typing import Any

from ledger.api.ui.graphics.drift_chart import DriftPoint, DriftSeries, number
from ledger.drift.metrics import P_VALUE_METRICS

DRIFT_SIGNALS = ("data_drift", "prediction_drift")
DATASET = "*"  # a window's dataset-level result: the share of features drifting
FLAGGED = ("drift", "breach")


def drift_series(windows: list[dict[str, Any]]) -> list[DriftSeries]:
    """Each drift signal's (signal, feature, metric) over ``windows`` (the oldest first);
    a window without a result for it is a gap. Features in name order, the dataset last."""
    found: dict[tuple[str, str, str], list[DriftPoint]] = {}
    for index, window in enumerate(windows):
        for result in window["results"]:
            if result["signal"] not in DRIFT_SIGNALS:
                continue
            key = (result["signal"], result["column"], result["metric"])
            points = found.setdefault(
                key, [DriftPoint(w["window_end"], None, None, False) for w in windows]
            )
            points[index] = DriftPoint(
                window["window_end"],
                result["value"],
                result["threshold"],
                result["verdict"] == "drift",
            )
    order = sorted(found, key=lambda k: (DRIFT_SIGNALS.index(k[0]), k[1] == DATASET, k[1], k[2]))
    return [
        DriftSeries(
            signal, column, metric, metric in P_VALUE_METRICS, found[signal, column, metric]
        )
        for signal, column, metric in order
    ]


def features_of(series: list[DriftSeries]) -> list[tuple[str, str]]:
    """The (signal, feature) pairs the series cover, in their order."""
    return list(dict.fromkeys((s.signal, s.column) for s in series))


def result_text(result: dict[str, Any]) -> str:
    """A result's value as a person reads it: a p-value says so."""
    if result["value"] is None:
        return "too little data"
    if result["metric"] in P_VALUE_METRICS:
        return f"p = {number(result['value'])}"
    return number(result["value"])


def window_rows(windows: list[dict[str, Any]], series: list[DriftSeries]) -> list[dict[str, Any]]:
    """The windows table, the latest first: per feature the value (the p-value of a
    test) and verdict; whether the window drifted; other signals' breaches."""
    features = features_of(series)
    rows = []
    for window in reversed(windows):
        results = window["results"]
        by_feature = {(r["signal"], r["column"]): r for r in results}
        drift = [r for r in results if r["signal"] in DRIFT_SIGNALS and r["column"] != DATASET]
        if any(r["verdict"] == "drift" for r in drift):
            drifted = "drift"
        elif any(r["verdict"] == "no_drift" for r in drift):
            drifted = "no drift"
        else:
            drifted = "no verdict"
        cells = []
        for feature in features:
            result = by_feature.get(feature)
            cells.append(
                None
                if result is None
                else {**result, "text": result_text(result), "limit": number(result["threshold"])}
            )
        breaches = [
            f"{r['signal']}: {r['column']} {r['metric']} {number(r['value'])}"
            for r in results
            if r["signal"] not in DRIFT_SIGNALS and r["verdict"] == "breach"
        ]
        rows.append({**window, "cells": cells, "drifted": drifted, "breaches": breaches})
    return rows


def alert_rows(
    alerts: list[dict[str, Any]], windows: list[dict[str, Any]], open_alerts: dict[str, Any]
) -> list[dict[str, Any]]:
    """The alerts, the latest first: one row per feature an alert names, with the score
    and threshold of its window (when shown) and whether it is still open."""
    rows = []
    later: set[str] = set()  # signals with a later alert event
    for alert in alerts:
        signal, raised = alert["signal"], bool(alert["columns"])
        if raised:
            status = "open" if signal in open_alerts and signal not in later else "resolved"
        else:
            status = "resolution"
        later.add(signal)
        window = _window_of(alert, windows)
        for column in alert["columns"] or [""]:
            result = _result_of(window, signal, column) if column else None
            rows.append(
                {
                    **alert,
                    "feature": column,
                    "status": status,
                    "score": result_text(result) if result else "",
                    "metric": result["metric"] if result else "",
                    "threshold": number(result["threshold"]) if result else "",
                }
            )
    return rows


def _window_of(alert: dict[str, Any], windows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The evaluated window that raised (or resolved) ``alert``: the latest one before it
    ending when it says."""
    candidates = [
        w
        for w in windows
        if w["window_end"] == alert["window_end"] and w["position"] < alert["position"]
    ]
    return max(candidates, key=lambda w: w["position"], default=None)


def _result_of(window: dict[str, Any] | None, signal: str, column: str) -> dict[str, Any] | None:
    if window is None:
        return None
    matching = [r for r in window["results"] if r["signal"] == signal and r["column"] == column]
    flagged = [r for r in matching if r["verdict"] in FLAGGED]
    chosen: dict[str, Any] | None = (flagged or matching or [None])[0]
    return chosen


def latest_status(results: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Per signal, the verdict of the latest window: drift, breach, ok or no verdict."""
    verdicts: dict[str, set[str]] = {}
    for result in results:
        verdicts.setdefault(result["signal"], set()).add(result["verdict"])
    status = []
    for signal, seen in verdicts.items():
        flagged = [v for v in FLAGGED if v in seen]
        if flagged:
            state = flagged[0]
        elif seen <= {"insufficient_data"}:
            state = "no verdict"
        else:
            state = "ok"
        status.append({"signal": signal, "state": state})
    return status


def threshold_text(thresholds: dict[str, dict[str, Any]]) -> list[str]:
    """Each feature's threshold as a rule: ``x0: psi > 0.2``, ``x1: ks p < 0.05``."""
    texts = []
    for column, threshold in thresholds.items():
        metric, value = threshold["metric"], threshold["value"]
        limit = "the metric's default" if value is None else number(value)
        if metric in P_VALUE_METRICS:
            texts.append(f"{column}: {metric} p < {limit}")
        else:
            texts.append(f"{column}: {metric or 'auto'} > {limit}")
    return texts
