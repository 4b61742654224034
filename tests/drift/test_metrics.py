"""Each drift metric from sketches against the exact computation on the raw rows.

Tolerances: the KS statistic within 2x the KLL normalized rank error (k=200: 1.33 %);
the normalized Wasserstein distance within 0.06 (in reference standard deviations: the
integral of both sketches' CDF errors over the values' range; 40 runs here stayed within
0.042); on the same bins, numeric Jensen-Shannon within 0.025 (0.015 seen) and PSI within
0.02 or 20 % of its value (0.013 and 13 % seen: a tail bin's small share weighs the
sketches' PMF error, about 1.65 %, in a log ratio); categorical Jensen-Shannon and
chi-squared exactly (1e-12), since the category counts are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from ledger.drift import ColumnSketch, chi2, jensen_shannon, ks, psi, wasserstein
from ledger.drift.distributions import reference_edges
from ledger.drift.metrics import KSTWO_MAX_N, NEW_CATEGORY_PSEUDO_COUNT, PSI_EPSILON

RANK_ERROR = ColumnSketch("numeric").normalized_rank_error
SHIFTS = [(0.0, 1.0), (0.1, 1.0), (0.3, 1.2), (-0.5, 0.8)]


def numeric_pair(
    shift: float, scale: float, window_rows: int = 5_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, ColumnSketch, ColumnSketch]:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=50_000)
    window = rng.normal(shift, scale, size=window_rows)
    return reference, window, sketch_of("numeric", reference), sketch_of("numeric", window)


def sketch_of(kind: str, values: np.ndarray) -> ColumnSketch:
    sketch = ColumnSketch(kind)  # type: ignore[arg-type]
    sketch.update(values)
    return sketch


def exact_bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of ``values`` in [edge_i, edge_i+1), as the sketch's PMF bins them."""
    bins = np.searchsorted(edges, values, side="right")
    return np.bincount(bins, minlength=len(edges) + 1) / len(values)


@pytest.mark.parametrize(("shift", "scale"), SHIFTS)
@pytest.mark.parametrize("window_rows", [800, 5_000])
def test_ks_statistic_is_within_twice_the_rank_error(
    shift: float, scale: float, window_rows: int
) -> None:
    reference, window, ref, win = numeric_pair(shift, scale, window_rows)
    exact = stats.ks_2samp(reference, window, method="asymp")
    result = ks(ref, win)
    assert abs(result.statistic - exact.statistic) <= 2 * RANK_ERROR
    effective = round(len(reference) * len(window) / (len(reference) + len(window)))
    assert result.p_value == pytest.approx(stats.kstwo.sf(result.statistic, effective))
    # scipy's asymptotic p-value is the same function of the exact statistic.
    assert exact.pvalue == pytest.approx(stats.kstwo.sf(exact.statistic, effective))


def test_ks_p_value_past_kstwos_range_is_kolmogorovs_limit() -> None:
    reference, window, ref, win = numeric_pair(0.02, 1.0, window_rows=40_000)
    result = ks(ref, win)
    effective = round(len(reference) * len(window) / (len(reference) + len(window)))
    assert effective > KSTWO_MAX_N
    assert result.p_value == pytest.approx(stats.kstwobign.sf(result.statistic * effective**0.5))
    assert result.p_value == pytest.approx(stats.kstwo.sf(result.statistic, effective), rel=0.05)


@pytest.mark.parametrize(("shift", "scale"), SHIFTS)
def test_wasserstein_is_scipys_over_the_reference_std(shift: float, scale: float) -> None:
    reference, window, ref, win = numeric_pair(shift, scale)
    exact = stats.wasserstein_distance(reference, window) / np.std(reference)
    assert wasserstein(ref, win) == pytest.approx(exact, abs=0.06)


@pytest.mark.parametrize(("shift", "scale"), SHIFTS)
def test_psi_matches_numpy_on_the_same_decile_bins(shift: float, scale: float) -> None:
    reference, window, ref, win = numeric_pair(shift, scale)
    edges = reference_edges(ref)
    expected = np.maximum(exact_bin_shares(reference, edges), PSI_EPSILON)
    actual = np.maximum(exact_bin_shares(window, edges), PSI_EPSILON)
    exact = float(np.sum((actual - expected) * np.log(actual / expected)))
    assert psi(ref, win) == pytest.approx(exact, abs=0.02, rel=0.2)


@pytest.mark.parametrize(("shift", "scale"), SHIFTS)
def test_numeric_jensen_shannon_matches_scipy_on_the_same_bins(shift: float, scale: float) -> None:
    reference, window, ref, win = numeric_pair(shift, scale)
    edges = reference_edges(ref)
    exact = jensenshannon(
        exact_bin_shares(reference, edges), exact_bin_shares(window, edges), base=2
    )
    assert jensen_shannon(ref, win) == pytest.approx(exact, abs=0.025)


def categorical_pair(new_share: float = 0.0, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.array([f"c{i}" for i in range(40)])
    weights = rng.dirichlet(np.ones(40))
    reference = rng.choice(labels, 50_000, p=weights)
    window = rng.choice(labels[:35], 3_000, p=weights[:35] / weights[:35].sum())
    new = rng.random(3_000) < new_share
    window[new] = rng.choice(np.array(["new1", "new2"]), int(new.sum()))
    return reference, window


@pytest.mark.parametrize("new_share", [0.0, 0.01, 0.2])
def test_categorical_jensen_shannon_equals_scipys(new_share: float) -> None:
    reference, window = categorical_pair(new_share)
    labels = sorted(set(reference) | set(window))
    ref_counts = [np.sum(reference == label) for label in labels]
    win_counts = [np.sum(window == label) for label in labels]
    exact = jensenshannon(ref_counts, win_counts, base=2)
    value = jensen_shannon(sketch_of("categorical", reference), sketch_of("categorical", window))
    assert abs(value - exact) <= 1e-12


@pytest.mark.parametrize("new_share", [0.0, 0.01, 0.2])
def test_chi2_equals_scipys_chisquare(new_share: float) -> None:
    reference, window = categorical_pair(new_share)
    labels = sorted(set(reference))
    observed = [float(np.sum(window == label)) for label in labels]
    reference_counts = [float(np.sum(reference == label)) for label in labels]
    new = float(np.sum(~np.isin(window, labels)))
    if new:
        observed.append(new)
        reference_counts.append(NEW_CATEGORY_PSEUDO_COUNT)
    expected = np.array(reference_counts) / sum(reference_counts) * len(window)
    exact = stats.chisquare(observed, expected)
    result = chi2(sketch_of("categorical", reference), sketch_of("categorical", window))
    assert abs(result.statistic - exact.statistic) <= 1e-12 * max(1.0, exact.statistic)
    assert abs(result.p_value - exact.pvalue) <= 1e-12


def test_metrics_refuse_the_wrong_kind_and_empty_sides() -> None:
    numbers = sketch_of("numeric", np.arange(10.0))
    labels = sketch_of("categorical", np.array(["a", "b"]))
    with pytest.raises(ValueError):
        chi2(numbers, numbers)
    with pytest.raises(ValueError):
        wasserstein(labels, labels)
    with pytest.raises(ValueError):
        ks(numbers, labels)
    with pytest.raises(ValueError):
        psi(numbers, ColumnSketch("numeric"))
