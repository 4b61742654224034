"""Drift math: mergeable column sketches per window, and drift and data-quality verdicts
computed from the sketches alone (pure functions over pyarrow; no storage, no Ray)."""

from ledger.drift.metrics import (
    DEFAULT_THRESHOLDS,
    ColumnDrift,
    DatasetDrift,
    HypothesisTest,
    Metric,
    Verdict,
    chi2,
    choose_metric,
    column_drift,
    dataset_drift,
    jensen_shannon,
    ks,
    psi,
    table_drift,
    wasserstein,
)
from ledger.drift.quality import DataQuality, data_quality, out_of_bounds_rate, table_quality
from ledger.drift.sketches import MAX_EXACT_CATEGORIES, ColumnSketch, Kind, TableSketch

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MAX_EXACT_CATEGORIES",
    "ColumnDrift",
    "ColumnSketch",
    "DataQuality",
    "DatasetDrift",
    "HypothesisTest",
    "Kind",
    "Metric",
    "TableSketch",
    "Verdict",
    "chi2",
    "choose_metric",
    "column_drift",
    "data_quality",
    "dataset_drift",
    "jensen_shannon",
    "ks",
    "out_of_bounds_rate",
    "psi",
    "table_drift",
    "table_quality",
    "wasserstein",
]
