"""Drift metrics of a window against a reference, computed from their sketches only.

Numeric columns (KLL sketches): ``ks``, ``wasserstein``, ``psi``, ``jensen_shannon``.
Categorical columns (category counts): ``chi2``, ``jensen_shannon``. With exact counts
(up to ``MAX_EXACT_CATEGORIES`` values) the categorical metrics are exact; numeric ones
are within the KLL sketches' rank error (see ``sketches``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2 as chi2_distribution
from scipy.stats import distributions

from ledger.drift.distributions import (
    bin_shares,
    category_vectors,
    cdf,
    common_grid,
    reference_edges,
)
from ledger.drift.quality import DataQuality, data_quality, table_quality
from ledger.drift.sketches import ColumnSketch, Kind, TableSketch

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ColumnDrift",
    "DataQuality",
    "DatasetDrift",
    "HypothesisTest",
    "Metric",
    "Verdict",
    "chi2",
    "choose_metric",
    "column_drift",
    "data_quality",
    "dataset_drift",
    "jensen_shannon",
    "ks",
    "psi",
    "table_drift",
    "table_quality",
    "wasserstein",
]

KSTWO_MAX_N = 10_000
PSI_EPSILON = 1e-4
"""An empty bin counts as this share in PSI, whose log ratio is otherwise infinite."""
NEW_CATEGORY_PSEUDO_COUNT = 0.5
"""chi2: categories the reference never saw form one cell, expected as if the reference
had seen them half a time (so the statistic stays finite, and large)."""


class HypothesisTest(NamedTuple):
    """A hypothesis test's statistic and p-value."""

    statistic: float
    p_value: float


def ks(reference: ColumnSketch, window: ColumnSketch) -> HypothesisTest:
    """Two-sample Kolmogorov-Smirnov: the largest gap between the CDFs, and its p-value.

    The statistic is taken on the union of both sketches' quantile grids. The p-value is
    scipy's asymptotic one, ``kstwo`` at the effective size n*m/(n+m) rounded (as
    ``scipy.stats.ks_2samp(method="asymp")`` computes it), up to ``KSTWO_MAX_N``; past
    it, Kolmogorov's limit ``kstwobign`` at D*sqrt(n_eff) (``kstwo`` takes up to a
    second there). The statistic is within both sketches' rank errors (about 2.7 %
    together at k=200): past a few thousand values the p-value's critical gap is smaller
    than that, which is why ``choose_metric`` takes ``ks`` only up to 1,000 values.
    """
    _require(reference, window, "numeric", "ks")
    points = common_grid(reference, window)
    statistic = float(np.max(np.abs(cdf(reference, points) - cdf(window, points))))
    n, m = reference.count, window.count
    effective = round(n * m / (n + m))
    if effective <= KSTWO_MAX_N:
        p_value = float(distributions.kstwo.sf(statistic, effective))
    else:
        p_value = float(distributions.kstwobign.sf(statistic * math.sqrt(effective)))
    return HypothesisTest(statistic, min(max(p_value, 0.0), 1.0))


def wasserstein(reference: ColumnSketch, window: ColumnSketch) -> float:
    """Normalized Wasserstein distance: W1 over the reference's standard deviation.

    W1 is the integral of |F_ref - F_win|, summed over the common grid of both sketches'
    quantiles (the CDFs held constant between grid points). A constant reference
    (standard deviation 0) leaves W1 as it is.
    """
    _require(reference, window, "numeric", "wasserstein")
    points = common_grid(reference, window)
    gaps = np.abs(cdf(reference, points) - cdf(window, points))[:-1]
    distance = float(np.sum(gaps * np.diff(points)))
    scale = reference.std
    return distance / scale if scale > 0 else distance


def psi(reference: ColumnSketch, window: ColumnSketch) -> float:
    """Population stability index over bins at the reference's deciles.

    PSI = sum over bins of (w - r) * ln(w / r), r and w the reference's and the window's
    shares of a bin; a share under ``PSI_EPSILON`` counts as ``PSI_EPSILON``.
    """
    _require(reference, window, "numeric", "psi")
    edges = reference_edges(reference)
    ref = np.maximum(bin_shares(reference, edges), PSI_EPSILON)
    win = np.maximum(bin_shares(window, edges), PSI_EPSILON)
    return float(np.sum((win - ref) * np.log(win / ref)))


def jensen_shannon(reference: ColumnSketch, window: ColumnSketch) -> float:
    """Jensen-Shannon distance, base 2 (0 to 1), as ``scipy.spatial.distance.jensenshannon``.

    Categorical: over the categories' counts; numeric: over bins at the reference's deciles.
    """
    _require(reference, window, reference.kind, "jensen_shannon")
    if reference.kind == "categorical":
        _labels, ref, win = category_vectors(reference, window)
    else:
        edges = reference_edges(reference)
        ref, win = bin_shares(reference, edges), bin_shares(window, edges)
    return float(jensenshannon(ref, win, base=2))


def chi2(reference: ColumnSketch, window: ColumnSketch) -> HypothesisTest:
    """Pearson's chi-squared test of the window's counts against the reference's shares.

    One cell per reference category, plus one for all the categories the reference never
    saw (see ``NEW_CATEGORY_PSEUDO_COUNT``); degrees of freedom: cells - 1. With one cell
    there is nothing to test: statistic 0, p-value 1.
    """
    _require(reference, window, "categorical", "chi2")
    observed, expected = chi2_cells(reference, window)
    if len(observed) < 2:
        return HypothesisTest(0.0, 1.0)
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    p_value = float(chi2_distribution.sf(statistic, len(observed) - 1))
    return HypothesisTest(statistic, p_value)


def chi2_cells(
    reference: ColumnSketch, window: ColumnSketch
) -> tuple[
    np.ndarray[tuple[int], np.dtype[np.float64]], np.ndarray[tuple[int], np.dtype[np.float64]]
]:
    """The observed and expected counts of each cell of ``chi2`` (reference order, then
    the new-category cell when the window has one)."""
    ref_counts = reference.category_counts()
    win_counts = window.category_counts()
    labels = sorted(ref_counts)
    ref = [ref_counts[label] for label in labels]
    observed = [win_counts.get(label, 0.0) for label in labels]
    new = sum(count for label, count in win_counts.items() if label not in ref_counts)
    if new > 0:
        ref.append(NEW_CATEGORY_PSEUDO_COUNT)
        observed.append(new)
    shares = np.asarray(ref, dtype=np.float64) / sum(ref)
    observed_array = np.asarray(observed, dtype=np.float64)
    return observed_array, shares * observed_array.sum()


def _require(reference: ColumnSketch, window: ColumnSketch, kind: str, metric: str) -> None:
    if reference.kind != window.kind:
        raise ValueError(f"a {window.kind} window against a {reference.kind} reference")
    if reference.kind != kind:
        raise ValueError(f"{metric} does not apply to a {reference.kind} column")
    if not reference.count or not window.count:
        raise ValueError(f"{metric} needs values in both the reference and the window")


# -- verdicts ---------------------------------------------------------------------------

Metric = Literal["ks", "wasserstein", "psi", "jensen_shannon", "chi2"]
Verdict = Literal["drift", "no_drift", "insufficient_data"]

P_VALUE_METRICS = frozenset({"ks", "chi2"})
"""Metrics whose value is a p-value: drift when it is under the threshold."""
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chi2": 0.05,
    "wasserstein": 0.1,
    "jensen_shannon": 0.1,
    "psi": 0.2,
}
SMALL_WINDOW = 1_000
"""Evidently's rule: up to this many values a statistical test, above it a distance."""
MIN_SAMPLES = 30


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift verdict: the metric's value against its threshold.

    ``statistic`` is the test statistic of ``ks`` and ``chi2`` (whose ``value`` is the
    p-value), else the value itself; None with insufficient data.
    """

    column: str
    metric: Metric
    value: float | None
    threshold: float
    verdict: Verdict
    window_count: int
    statistic: float | None = None


def choose_metric(kind: Kind, window_count: int) -> Metric:
    """Evidently's defaults: numeric ``ks`` up to 1,000 values, else ``wasserstein``;
    categorical ``chi2`` up to 1,000, else ``jensen_shannon``."""
    small = window_count <= SMALL_WINDOW
    if kind == "numeric":
        return "ks" if small else "wasserstein"
    return "chi2" if small else "jensen_shannon"


def column_drift(
    reference: ColumnSketch,
    window: ColumnSketch,
    metric: Metric | None = None,
    threshold: float | None = None,
    min_samples: int = MIN_SAMPLES,
    column: str = "",
) -> ColumnDrift:
    """The window's drift from the reference by ``metric`` (chosen by ``choose_metric``
    when not given) against ``threshold`` (``DEFAULT_THRESHOLDS``' when not given);
    ``insufficient_data`` when either has fewer than ``min_samples`` values."""
    if reference.kind != window.kind:
        raise ValueError(f"{column}: a {window.kind} window against a {reference.kind} reference")
    metric = metric or choose_metric(window.kind, window.count)
    if metric not in DEFAULT_THRESHOLDS:
        raise ValueError(f"unknown drift metric {metric!r}")
    limit = DEFAULT_THRESHOLDS[metric] if threshold is None else threshold
    if min(reference.count, window.count) < max(min_samples, 1):
        return ColumnDrift(column, metric, None, limit, "insufficient_data", window.count)
    statistic, value = _measure(metric, reference, window)
    drifted = value < limit if metric in P_VALUE_METRICS else value > limit
    verdict: Verdict = "drift" if drifted else "no_drift"
    return ColumnDrift(column, metric, value, limit, verdict, window.count, statistic)


def _measure(metric: Metric, reference: ColumnSketch, window: ColumnSketch) -> tuple[float, float]:
    """The metric's statistic and value (for tests, the p-value)."""
    if metric == "ks":
        return ks(reference, window)
    if metric == "chi2":
        return chi2(reference, window)
    distance = {"wasserstein": wasserstein, "psi": psi, "jensen_shannon": jensen_shannon}
    value = distance[metric](reference, window)
    return value, value


def table_drift(
    reference: TableSketch,
    window: TableSketch,
    metrics: dict[str, Metric] | None = None,
    thresholds: dict[str, float] | None = None,
    min_samples: int = MIN_SAMPLES,
) -> list[ColumnDrift]:
    """``column_drift`` of each of the reference's columns the window also has."""
    return [
        column_drift(
            sketch,
            window.columns[name],
            (metrics or {}).get(name),
            (thresholds or {}).get(name),
            min_samples,
            name,
        )
        for name, sketch in reference.columns.items()
        if name in window.columns
    ]


@dataclass(frozen=True)
class DatasetDrift:
    """How many of the columns with a verdict drift, and whether that reaches ``share``."""

    drifted_columns: tuple[str, ...]
    evaluated: int
    drifted_share: float
    share: float
    drift: bool


def dataset_drift(column_drifts: list[ColumnDrift], share: float = 0.5) -> DatasetDrift:
    """The dataset drifts when at least ``share`` of the columns with a verdict drift."""
    judged = [drift for drift in column_drifts if drift.verdict != "insufficient_data"]
    drifted = tuple(drift.column for drift in judged if drift.verdict == "drift")
    fraction = len(drifted) / len(judged) if judged else 0.0
    return DatasetDrift(drifted, len(judged), fraction, share, bool(judged) and fraction >= share)
