"""Judging a window: each signal's per-column results and which columns breach.

Pure: sketches in, verdicts out. The window's collected features are named as the model
takes them (``x0..x{n-1}`` for a model with one input); a data reference names its
columns as the data does. The window's ``x{j}`` is reported by the reference's name for
it: the j-th of the monitor's ``features`` when it lists them (the model's inputs in
order), else the reference's j-th numeric column, as batch scoring reads a dataset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ledger.domain.monitor import ColumnResult
from ledger.drift.metrics import ColumnDrift, Metric, dataset_drift, table_drift, table_quality
from ledger.drift.sketches import TableSketch
from ledger.errors import InvalidInputError

POSITIONAL = re.compile(r"x(\d+)")
DATASET = "*"  # the column of a window's dataset-level result
QUALITY_RATES = ("null_rate", "type_error_rate", "out_of_bounds_rate")


@dataclass(frozen=True)
class Judgement:
    """A window's results, the share of drifting columns per drift signal, and per
    signal the columns in breach (None: too little data for a verdict)."""

    results: list[ColumnResult] = field(default_factory=list)
    drift_shares: dict[str, float] = field(default_factory=dict)
    breaches: dict[str, list[str] | None] = field(default_factory=dict)


def split_outputs(window: TableSketch, outputs: list[str]) -> tuple[TableSketch, TableSketch]:
    """The window's feature columns and its output columns (``name`` or ``name_j`` of
    each of the model's ``outputs``)."""
    features, predicted = TableSketch(window.rows), TableSketch(window.rows)
    for name, column in window.columns.items():
        is_output = any(name == o or name.startswith(f"{o}_") for o in outputs)
        (predicted if is_output else features).columns[name] = column
    return features, predicted


def named(sketch: TableSketch, names: list[str]) -> TableSketch:
    """``sketch`` with positional feature columns (``x{j}``) named ``names[j]``."""
    renamed = TableSketch(sketch.rows)
    for name, column in sketch.columns.items():
        match = POSITIONAL.fullmatch(name)
        if match and int(match.group(1)) < len(names):
            name = names[int(match.group(1))]
        renamed.columns[name] = column
    return renamed


def judge(
    config: dict[str, Any],
    reference: TableSketch,
    window: TableSketch,
    reference_outputs: TableSketch | None = None,
    window_outputs: TableSketch | None = None,
) -> Judgement:
    """The monitor's signals (``config``: a monitor as the view shows it) on a window of
    features (and outputs) against its reference. The window's ``x{j}`` is named as the
    monitor's ``features`` list the model's inputs (a positional reference, an earlier
    window, too), else as the reference's j-th numeric column."""
    features = config["features"]
    numeric = [n for n, c in reference.columns.items() if c.kind == "numeric"]
    window = _chosen(named(window, features or numeric), features)
    reference = named(reference, features) if features else reference
    judgement = Judgement()
    try:
        for signal in config["signals"]:
            if signal == "data_drift":
                _drift(judgement, signal, config, reference, window)
            elif signal == "prediction_drift":
                if reference_outputs is None or window_outputs is None:
                    judgement.breaches[signal] = None  # nothing to compare outputs with
                else:
                    _drift(judgement, signal, config, reference_outputs, window_outputs)
            elif signal == "data_quality":
                _quality(judgement, config, reference, window)
    except ValueError as error:  # a metric that does not fit a column, kinds that differ
        raise InvalidInputError(f"monitor {config['name']!r}: {error}") from None
    return judgement


def _chosen(window: TableSketch, features: list[str]) -> TableSketch:
    if not features:
        return window
    return TableSketch(window.rows, {n: c for n, c in window.columns.items() if n in features})


def _drift(
    judgement: Judgement,
    signal: str,
    config: dict[str, Any],
    reference: TableSketch,
    window: TableSketch,
) -> None:
    thresholds = config["thresholds"]
    metrics: dict[str, Metric] = {c: t["metric"] for c, t in thresholds.items() if t["metric"]}
    values = {c: t["value"] for c, t in thresholds.items() if t["value"] is not None}
    drifts = table_drift(reference, window, metrics, values, config["min_samples"])
    judgement.results.extend(_drift_result(signal, d) for d in drifts)
    summary = dataset_drift(drifts, config["drift_share"])
    judgement.drift_shares[signal] = summary.drifted_share
    judgement.breaches[signal] = list(summary.drifted_columns) if summary.evaluated else None
    if summary.evaluated:  # the dataset as a whole: drifts when enough columns do
        judgement.results.append(
            {
                "signal": signal,
                "column": DATASET,
                "metric": "drift_share",
                "value": summary.drifted_share,
                "threshold": summary.share,
                "verdict": "drift" if summary.drift else "no_drift",
                "samples": window.rows,
            }
        )


def _drift_result(signal: str, drift: ColumnDrift) -> ColumnResult:
    return {
        "signal": signal,
        "column": drift.column,
        "metric": drift.metric,
        "value": drift.value,
        "threshold": drift.threshold,
        "verdict": drift.verdict,
        "samples": drift.window_count,
    }


def _quality(
    judgement: Judgement, config: dict[str, Any], reference: TableSketch, window: TableSketch
) -> None:
    if window.rows < config["min_samples"]:
        judgement.breaches["data_quality"] = None
        return
    breaching: list[str] = []
    for quality in table_quality(reference, window):
        for rate in QUALITY_RATES:
            value = getattr(quality, rate)
            if value is None:
                continue
            base = getattr(quality, f"reference_{rate}", 0.0)
            breach = rate in quality.breaches
            judgement.results.append(
                {
                    "signal": "data_quality",
                    "column": quality.column,
                    "metric": rate,
                    "value": value,
                    "threshold": base + quality.tolerance,
                    "verdict": "breach" if breach else "ok",
                    "samples": window.rows,
                }
            )
        if quality.breach:
            breaching.append(quality.column)
    judgement.breaches["data_quality"] = breaching
