"""Model performance on a window: its collected predictions joined with ground truth.

Rows join on (correlation id, row within the request). Integer, boolean and text labels
are classes: accuracy, and precision, recall and F1 averaged over the classes (macro, as
scikit-learn's ``average="macro"``); floating-point labels are values: MAE and RMSE.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from ledger.domain.monitor import ColumnResult
from ledger.ground_truth import CORRELATION, LABEL, ROW

LOWER_IS_BETTER = frozenset({"mae", "rmse"})


def row_keys(correlation_ids: list[str]) -> list[tuple[str, int]]:
    """(correlation id, index within its request) of collected rows, which a request
    writes consecutively in input order."""
    seen: dict[str, int] = {}
    keys = []
    for correlation in correlation_ids:
        index = seen.get(correlation, 0)
        seen[correlation] = index + 1
        keys.append((correlation, index))
    return keys


def joined(
    collected: Iterable[pa.Table], labels: Iterable[pa.Table], prediction: str
) -> tuple[list[Any], list[Any]]:
    """The predictions of the collected rows that have a label, and those labels (the
    latest label wins when a row was labelled twice)."""
    truth: dict[tuple[str, int], Any] = {}
    for table in labels:
        ids = table.column(CORRELATION).to_pylist()
        rows = table.column(ROW).to_pylist()
        truth.update(zip(zip(ids, rows, strict=True), table.column(LABEL).to_pylist(), strict=True))
    predicted, actual = [], []
    for table in collected:
        keys = row_keys(table.column(CORRELATION).to_pylist())
        for key, value in zip(keys, table.column(prediction).to_pylist(), strict=True):
            if key in truth:
                predicted.append(value)
                actual.append(truth[key])
    return predicted, actual


def performance(predicted: list[Any], actual: list[Any]) -> dict[str, float]:
    """Classification or regression metrics of ``predicted`` against ``actual``."""
    truth = np.asarray(actual)
    if truth.dtype.kind == "f":
        errors = np.asarray(predicted, dtype=np.float64) - truth
        return {"mae": float(np.abs(errors).mean()), "rmse": float(np.sqrt((errors**2).mean()))}
    guess = np.asarray([str(p) for p in predicted])
    truth = np.asarray([str(a) for a in actual])
    precisions, recalls, f1s = [], [], []
    for label in np.union1d(guess, truth):
        hits = float(np.sum((guess == label) & (truth == label)))
        called, there = float(np.sum(guess == label)), float(np.sum(truth == label))
        precision = hits / called if called else 0.0
        recall = hits / there if there else 0.0
        precisions.append(precision)
        recalls.append(recall)
        both = precision + recall
        f1s.append(2 * precision * recall / both if both else 0.0)
    return {
        "accuracy": float(np.mean(guess == truth)),
        "precision": float(np.mean(precisions)),
        "recall": float(np.mean(recalls)),
        "f1": float(np.mean(f1s)),
    }


def performance_results(
    metrics: dict[str, float],
    samples: int,
    thresholds: dict[str, Any],
    min_samples: int,
) -> tuple[list[ColumnResult], list[str] | None]:
    """A result per metric and the metrics in breach: below its threshold (above, for an
    error), when the monitor sets one; None with fewer than ``min_samples`` labelled rows."""
    if samples < min_samples:
        return [], None
    results: list[ColumnResult] = []
    breaching = []
    for name, value in metrics.items():
        limit = (thresholds.get(name) or {}).get("value")
        breach = limit is not None and (value > limit if name in LOWER_IS_BETTER else value < limit)
        if breach:
            breaching.append(name)
        results.append(
            {
                "signal": "performance",
                "column": name,
                "metric": name,
                "value": value,
                "threshold": limit,
                "verdict": "breach" if breach else "ok",
                "samples": samples,
            }
        )
    return results, breaching
