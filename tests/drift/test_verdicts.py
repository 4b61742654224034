"""Drift and data-quality verdicts on windows of a table against its reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from ledger.drift import (
    DEFAULT_THRESHOLDS,
    ColumnDrift,
    ColumnSketch,
    TableSketch,
    choose_metric,
    column_drift,
    dataset_drift,
    table_drift,
    table_quality,
)

FEATURES = [f"x{i}" for i in range(10)]
MEANS = np.linspace(-3, 3, 10)
SCALES = np.linspace(0.5, 5, 10)
LABELS = np.array(["a", "b", "c", "d", "e"])
LABEL_SHARES = [0.4, 0.25, 0.2, 0.1, 0.05]


def features(rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        name: rng.normal(mean, scale, rows)
        for name, mean, scale in zip(FEATURES, MEANS, SCALES, strict=True)
    }


def table(rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return features(rows, rng) | {"label": rng.choice(LABELS, rows, p=LABEL_SHARES)}


def drifting(drifts: list[ColumnDrift]) -> list[str]:
    return [drift.column for drift in drifts if drift.verdict == "drift"]


@pytest.fixture(scope="module")
def reference() -> TableSketch:
    return TableSketch.of_table(pa.table(table(50_000, np.random.default_rng(10))))


def test_no_column_drifts_between_samples_of_one_distribution() -> None:
    rng = np.random.default_rng(11)
    reference = TableSketch.of_table(pa.table(features(50_000, rng)))
    flagged = []
    for _ in range(20):
        window = TableSketch.of_table(pa.table(features(5_000, rng)))
        drifts = table_drift(reference, window)
        assert {drift.metric for drift in drifts} == {"wasserstein"}
        assert all(drift.threshold == DEFAULT_THRESHOLDS["wasserstein"] for drift in drifts)
        flagged += drifting(drifts)
    assert flagged == []


def test_a_half_sd_mean_shift_drifts_that_column_only(reference: TableSketch) -> None:
    rng = np.random.default_rng(12)
    rows = table(5_000, rng)
    rows["x3"] = rows["x3"] + 0.5 * SCALES[3]
    drifts = table_drift(reference, TableSketch.of_table(pa.table(rows)))
    assert drifting(drifts) == ["x3"]
    shifted = next(drift for drift in drifts if drift.column == "x3")
    assert shifted.metric == "wasserstein" and shifted.value == pytest.approx(0.5, abs=0.06)
    assert not any(quality.breach for quality in table_quality(reference, window_of(rows)))


def test_a_new_category_at_20_percent_drifts_that_column_only(reference: TableSketch) -> None:
    rng = np.random.default_rng(13)
    rows = table(5_000, rng)
    rows["label"][rng.random(5_000) < 0.2] = "new"
    drifts = table_drift(reference, window_of(rows))
    assert drifting(drifts) == ["label"]
    label = next(drift for drift in drifts if drift.column == "label")
    assert label.metric == "jensen_shannon"
    # With a small window, the chi-squared test sees it too.
    small = window_of({name: values[:500] for name, values in rows.items()})
    assert column_drift(reference.columns["label"], small.columns["label"]).metric == "chi2"
    assert drifting(table_drift(reference, small)) == ["label"]


def test_nulls_rising_from_0_to_5_percent_breach_that_column_only(reference: TableSketch) -> None:
    rng = np.random.default_rng(14)
    rows = table(5_000, rng)
    x5 = rows.pop("x5")
    missing = rng.random(5_000) < 0.05
    window = window_of(rows | {"x5": pa.array(x5, mask=missing)})
    qualities = table_quality(reference, window)
    breaching = {quality.column: quality.breaches for quality in qualities if quality.breach}
    assert breaching == {"x5": ("null_rate",)}
    x5_quality = next(quality for quality in qualities if quality.column == "x5")
    assert x5_quality.null_rate == pytest.approx(missing.mean())
    assert x5_quality.reference_null_rate == 0.0
    assert drifting(table_drift(reference, window)) == []


def test_out_of_bounds_and_type_errors_breach_their_rates(reference: TableSketch) -> None:
    rng = np.random.default_rng(15)
    rows = table(5_000, rng)
    rows["x0"][:250] = 1_000.0  # 5 % above the reference's max
    x1 = rows.pop("x1").astype(str)  # as a CSV reader might leave it: text
    x1[:100] = "oops"  # 2 % type errors
    window = window_of(rows | {"x1": x1})
    qualities = {quality.column: quality for quality in table_quality(reference, window)}
    assert qualities["x0"].out_of_bounds_rate == pytest.approx(0.05, abs=0.015)
    assert qualities["x0"].breaches == ("out_of_bounds_rate",)
    assert qualities["x1"].type_error_rate == pytest.approx(0.02)
    assert qualities["x1"].breaches == ("type_error_rate",)
    assert qualities["label"].out_of_bounds_rate is None and not qualities["label"].breach
    loose = table_quality(reference, window, tolerance=0.1)
    assert not any(quality.breach for quality in loose)


def window_of(rows: dict[str, object]) -> TableSketch:
    return TableSketch.of_table(pa.table(rows), kinds={"x1": "numeric"})


def test_metric_choice_follows_evidently() -> None:
    assert choose_metric("numeric", 1_000) == "ks"
    assert choose_metric("numeric", 1_001) == "wasserstein"
    assert choose_metric("categorical", 1_000) == "chi2"
    assert choose_metric("categorical", 1_001) == "jensen_shannon"
    assert DEFAULT_THRESHOLDS == {
        "ks": 0.05,
        "chi2": 0.05,
        "wasserstein": 0.1,
        "jensen_shannon": 0.1,
        "psi": 0.2,
    }


def test_an_explicit_metric_and_threshold_are_used(reference: TableSketch) -> None:
    window = window_of(table(2_000, np.random.default_rng(16)))
    drift = column_drift(reference.columns["x2"], window.columns["x2"], "psi", 0.0, column="x2")
    assert (drift.metric, drift.threshold, drift.verdict) == ("psi", 0.0, "drift")
    assert drift.value is not None and drift.value > 0.0
    # KS on a window of 300: its 5 % critical gap (about 0.08) is far above the sketches'
    # rank error, so their randomness cannot turn this sample's verdict.
    small = window_of(table(300, np.random.default_rng(16)))
    ks_drift = column_drift(reference.columns["x2"], small.columns["x2"], "ks")
    assert ks_drift.verdict == "no_drift" and ks_drift.statistic is not None
    assert ks_drift.value is not None and ks_drift.value >= 0.05


def test_a_small_window_has_insufficient_data(reference: TableSketch) -> None:
    window = ColumnSketch("numeric")
    window.update([1.0, 2.0, None])
    drift = column_drift(reference.columns["x0"], window, min_samples=30)
    assert (drift.verdict, drift.value, drift.window_count) == ("insufficient_data", None, 2)
    assert column_drift(reference.columns["x0"], window, min_samples=2).verdict != (
        "insufficient_data"
    )


def test_dataset_drift_is_the_share_of_judged_columns_drifting() -> None:
    def drift(column: str, verdict: str) -> ColumnDrift:
        return ColumnDrift(column, "ks", 0.0, 0.05, verdict, 100)  # type: ignore[arg-type]

    verdicts = [drift("a", "drift"), drift("b", "no_drift"), drift("c", "insufficient_data")]
    result = dataset_drift(verdicts)
    assert (result.drifted_columns, result.evaluated, result.drifted_share) == (("a",), 2, 0.5)
    assert result.drift
    assert not dataset_drift(verdicts, share=0.6).drift
    assert not dataset_drift([drift("c", "insufficient_data")]).drift
