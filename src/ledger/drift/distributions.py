"""Two sketched distributions on common ground: CDFs on a grid, bins, category vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from ledger.drift.sketches import ColumnSketch

GRID_RANKS = 2_001
"""Each sketch's quantiles at this many evenly spaced ranks make the common grid."""
QUANTILE_BINS = 10
"""Numeric PSI and Jensen-Shannon bin at the reference's deciles."""

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def common_grid(reference: ColumnSketch, window: ColumnSketch) -> FloatArray:
    """The union of both sketches' quantiles on a fine grid of ranks, sorted, distinct."""
    ranks = np.linspace(0.0, 1.0, GRID_RANKS).tolist()
    points = np.concatenate(
        [reference.kll.get_quantiles(ranks, True), window.kll.get_quantiles(ranks, True)]
    )
    return np.unique(points)


def cdf(sketch: ColumnSketch, points: FloatArray) -> FloatArray:
    """The sketch's estimate of P(X <= x) at each of ``points`` (sorted, distinct)."""
    return np.asarray(sketch.kll.get_cdf(points.tolist(), True)[:-1], dtype=np.float64)


def reference_edges(reference: ColumnSketch) -> FloatArray:
    """The reference's inner quantile bin edges (deciles), distinct and sorted."""
    ranks = (np.arange(1, QUANTILE_BINS) / QUANTILE_BINS).tolist()
    return np.unique(np.asarray(reference.kll.get_quantiles(ranks), dtype=np.float64))


def bin_shares(sketch: ColumnSketch, edges: FloatArray) -> FloatArray:
    """The share of the sketch's values in each bin: ``[edge_i, edge_i+1)``, outer bins open."""
    return np.asarray(sketch.kll.get_pmf(edges.tolist()), dtype=np.float64)


def category_vectors(
    reference: ColumnSketch, window: ColumnSketch
) -> tuple[list[str], FloatArray, FloatArray]:
    """Both columns' counts over the union of their categories, in sorted order."""
    ref_counts = reference.category_counts()
    win_counts = window.category_counts()
    labels = sorted(ref_counts.keys() | win_counts.keys())
    ref = np.array([ref_counts.get(label, 0.0) for label in labels], dtype=np.float64)
    win = np.array([win_counts.get(label, 0.0) for label in labels], dtype=np.float64)
    return labels, ref, win
