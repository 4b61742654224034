"""Monitoring benchmark: drift from mergeable sketches beside scipy on the raw rows.

Side by side in one run, on a window of --rows rows x 20 columns (10 numeric, normal;
10 categorical, 50 labels each) against a reference of --reference-rows rows, with drift
put into six columns (three numeric, three categorical; two of them below the default
thresholds):

- building the sketches (``ledger.drift.TableSketch``; rows/s, one process), and each
  column's sketch size once serialized (target: <= 64 KiB);
- drift from the sketches alone: each column's default metric (Evidently's choice:
  normalized Wasserstein and Jensen-Shannon above 1,000 values), time per window
  (target: <= 2 s for 1M x 20), then every metric (KS, Wasserstein, PSI; chi-squared,
  Jensen-Shannon);
- scipy on the raw rows: ``wasserstein_distance`` over the reference's std and
  ``jensenshannon`` over exact counts (the same default metrics), then with
  ``ks_2samp`` and ``chisquare`` too; the columns where both verdicts agree.

Evidently is not installed here, so it has no row of its own.

Online, through the API (`ledger serve` in a process of its own, as benchmarks/scoring.py
does): one-row score requests at a fixed rate (--online-rate per second for
--online-seconds, from a spawned process; latency from each request's scheduled time) to
a deployment of one replica collecting at sampling rate 0 and at 1.0, in alternating
rounds (--online-rounds; the rate changed live: the replica takes it without
restarting); p50/p99 of each and the p99 difference (target:
collecting adds <= 1 ms), and the rows collected at 1.0 read back from the Parquet files
against the requests answered (target: every request exactly once, by correlation id).

    .venv/bin/python benchmarks/monitoring.py           # 1M-row window and reference
    .venv/bin/python benchmarks/monitoring.py --quick   # 100,000 rows, 10 s online per rate
    .venv/bin/python benchmarks/monitoring.py --skip-online
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import kll_doubles_sketch
from rich.table import Table
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

# benchmarks/projections.py shadows the `projections` package: look in this directory last.
sys.path.append(sys.path.pop(0))

from _common import (
    Report,
    add_json_option,
    bench_console,
    ledger_server,
    ledger_with_model,
    online_latencies,
    percentile,
    verdict,
)
from executors.monitoring.collector import (
    Collector,
    blobs_of,
    deployment_prefix,
    is_collected,
    read_collected,
)
from ledger.drift import DEFAULT_THRESHOLDS, TableSketch, chi2, ks, psi, table_drift
from ledger.drift.metrics import NEW_CATEGORY_PSEUDO_COUNT, P_VALUE_METRICS
from ledger.ledger import Ledger

NUMERIC = [f"num{i}" for i in range(10)]
CATEGORICAL = [f"cat{i}" for i in range(10)]
LABELS = np.array([f"label{i:02d}" for i in range(50)])
LABEL_SHARES = np.linspace(1.0, 3.0, 50) / np.linspace(1.0, 3.0, 50).sum()
INJECTED = {
    "num0": "mean +0.5 sd",
    "num1": "sd x1.5",
    "num2": "mean +0.05 sd",
    "cat0": "new label at 20 %",
    "cat1": "top and bottom labels' shares swapped",
    "cat2": "new label at 1 %",
}
SKETCH_TARGET_S = 2.0
SKETCH_BYTES_TARGET = 64 * 1024
ENDPOINT, DEPLOYMENT = "online", "blue"  # online_latencies scores on endpoint "online"
P99_ADDED_TARGET_MS = 1.0
console = bench_console()


def make_table(rows: int, rng: np.random.Generator, drifted: bool) -> pa.Table:
    """10 normal and 10 categorical columns; with ``drifted``, the ``INJECTED`` changes."""
    columns: dict[str, Any] = {name: rng.normal(size=rows) for name in NUMERIC}
    for name in CATEGORICAL:
        columns[name] = rng.choice(LABELS, rows, p=LABEL_SHARES)
    if drifted:
        columns["num0"] += 0.5
        columns["num1"] *= 1.5
        columns["num2"] += 0.05
        columns["cat0"][rng.random(rows) < 0.2] = "brand-new"
        top, bottom = columns["cat1"] == LABELS[-1], columns["cat1"] == LABELS[0]
        columns["cat1"][top], columns["cat1"][bottom] = LABELS[0], LABELS[-1]
        columns["cat2"][rng.random(rows) < 0.01] = "brand-new"
    return pa.table({name: pa.array(values) for name, values in columns.items()})


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


# -- part 1: sketches ---------------------------------------------------------------------


@dataclass
class Sketched:
    reference: TableSketch
    window: TableSketch
    seconds: float  # building the window's sketch


def bench_sketching(reference: pa.Table, window: pa.Table, k: int, table: Table) -> Sketched:
    """Build both tables' sketches; a row for each, and the window's sizes per column."""
    ref_s, ref_sketch = timed(lambda: TableSketch.of_table(reference, k=k))
    win_s, win_sketch = timed(lambda: TableSketch.of_table(window, k=k))
    for label, rows, seconds in [("reference", reference, ref_s), ("window", window, win_s)]:
        table.add_row(
            f"sketch the {label}",
            f"{rows.num_rows:,} x {rows.num_columns}",
            f"{seconds:.2f} s",
            f"{rows.num_rows / seconds:,.0f} rows/s",
            "",
        )
    sizes = {name: len(column.to_bytes()) for name, column in win_sketch.columns.items()}
    for kind, names in [("numeric", NUMERIC), ("categorical", CATEGORICAL)]:
        largest = max(sizes[name] for name in names)
        table.add_row(
            f"window's sketch size, {kind}",
            "per column",
            f"{largest / 1024:.1f} KiB max",
            f"{sum(sizes[name] for name in names) / len(names) / 1024:.1f} KiB mean",
            verdict(largest <= SKETCH_BYTES_TARGET, "<= 64 KiB"),
        )
    return Sketched(ref_sketch, win_sketch, win_s)


# -- part 2: drift, sketches against scipy ----------------------------------------------


def sketch_verdicts(sketched: Sketched) -> tuple[float, float, dict[str, tuple[float, bool]]]:
    """Seconds for the default metrics and for every metric; each column's default value
    and verdict."""
    default_s, drifts = timed(lambda: table_drift(sketched.reference, sketched.window))

    def every_metric() -> None:
        for name in NUMERIC:
            ref, win = sketched.reference.columns[name], sketched.window.columns[name]
            ks(ref, win)
            psi(ref, win)
        for name in CATEGORICAL:
            chi2(sketched.reference.columns[name], sketched.window.columns[name])

    extra_s, _ = timed(every_metric)
    found = {d.column: (float(d.value or 0.0), d.verdict == "drift") for d in drifts}
    return default_s, default_s + extra_s, found


def exact_value(metric: str, reference: pa.ChunkedArray, window: pa.ChunkedArray) -> float:
    """A metric on the raw rows with scipy (counts of categories from pyarrow)."""
    if metric in ("wasserstein", "ks"):
        ref, win = reference.to_numpy(), window.to_numpy()
        if metric == "ks":
            return float(stats.ks_2samp(ref, win, method="asymp").pvalue)
        return float(stats.wasserstein_distance(ref, win) / np.std(ref))
    ref_counts, win_counts = counts(reference), counts(window)
    if metric == "jensen_shannon":
        labels = sorted(ref_counts.keys() | win_counts.keys())
        ref_vector = [ref_counts.get(label, 0) for label in labels]
        return float(
            jensenshannon(ref_vector, [win_counts.get(label, 0) for label in labels], base=2)
        )
    labels = sorted(ref_counts)
    observed = [float(win_counts.get(label, 0)) for label in labels]
    expected = [float(ref_counts[label]) for label in labels]
    new = sum(count for label, count in win_counts.items() if label not in ref_counts)
    if new:
        observed.append(float(new))
        expected.append(NEW_CATEGORY_PSEUDO_COUNT)
    shares = np.array(expected) / sum(expected)
    return float(stats.chisquare(observed, shares * sum(observed)).pvalue)


def counts(values: pa.ChunkedArray) -> dict[str, int]:
    counted = pc.value_counts(values)
    labels = counted.field("values").to_pylist()
    return dict(zip(labels, counted.field("counts").to_pylist(), strict=True))


def is_drift(metric: str, value: float) -> bool:
    threshold = DEFAULT_THRESHOLDS[metric]
    return value < threshold if metric in P_VALUE_METRICS else value > threshold


def scipy_verdicts(
    reference: pa.Table, window: pa.Table, metrics: dict[str, str]
) -> tuple[float, float, dict[str, tuple[float, bool]], dict[str, bool]]:
    """Seconds for the default metrics and with the tests added; each column's default
    value and verdict, and the test's verdict (KS or chi-squared)."""
    found: dict[str, tuple[float, bool]] = {}
    start = time.perf_counter()
    for name, metric in metrics.items():
        value = exact_value(metric, reference[name], window[name])
        found[name] = (value, is_drift(metric, value))
    default_s = time.perf_counter() - start
    tests: dict[str, bool] = {}
    for name in metrics:
        test = "ks" if name in NUMERIC else "chi2"
        tests[name] = is_drift(test, exact_value(test, reference[name], window[name]))
    return default_s, time.perf_counter() - start, found, tests


def bench_drift(
    reference: pa.Table, window: pa.Table, sketched: Sketched, timing: Table, columns: Table
) -> dict[str, Any]:
    """Drift from the sketches and from scipy: timing rows and a row per column."""
    default_s, all_s, sketch = sketch_verdicts(sketched)
    metrics = {d.column: d.metric for d in table_drift(sketched.reference, sketched.window)}
    scipy_s, scipy_all_s, exact, tests = scipy_verdicts(reference, window, metrics)
    agree = sum(sketch[name][1] == exact[name][1] for name in metrics)
    sketch_tests = {
        name: (ks if name in NUMERIC else chi2)(
            sketched.reference.columns[name], sketched.window.columns[name]
        ).p_value
        < 0.05
        for name in metrics
    }
    test_agree = sum(sketch_tests[name] == tests[name] for name in metrics)
    size = f"{window.num_rows:,} x {window.num_columns}"
    ok = verdict(default_s <= SKETCH_TARGET_S, f"<= {SKETCH_TARGET_S:g} s")
    timing.add_row("drift from sketches, default metrics", size, f"{default_s:.3f} s", "", ok)
    timing.add_row("drift from sketches, every metric", size, f"{all_s:.3f} s", "", "")
    timing.add_row(
        "scipy on the raw rows, default metrics",
        size,
        f"{scipy_s:.2f} s",
        f"verdicts agree on {agree} of {len(metrics)} columns",
        "",
    )
    timing.add_row(
        "scipy, default metrics + ks_2samp / chisquare",
        size,
        f"{scipy_all_s:.2f} s",
        f"KS / chi2 verdicts agree on {test_agree} of {len(metrics)}",
        "",
    )
    for name, metric in metrics.items():
        columns.add_row(
            name,
            INJECTED.get(name, "none"),
            metric,
            f"{sketch[name][0]:.4f}",
            f"{exact[name][0]:.4f}",
            f"{'drift' if sketch[name][1] else '-'} / {'drift' if exact[name][1] else '-'}",
            f"{'drift' if sketch_tests[name] else '-'} / {'drift' if tests[name] else '-'}",
        )
    return {
        "sketch_default_s": default_s,
        "sketch_all_s": all_s,
        "scipy_default_s": scipy_s,
        "scipy_all_s": scipy_all_s,
        "agree": agree,
        "test_agree": test_agree,
    }


# -- part 3: online, collecting a deployment's requests -----------------------------------


def bench_online(args: argparse.Namespace, table: Table) -> dict[str, Any]:
    """One-row requests through the API at ``args.online_rate``/s to a deployment that
    collects at sampling rate 0 and at 1.0, in ``args.online_rounds`` alternating rounds
    (the machine's other load falls on both alike); a row for each rate and one for the
    p99 difference."""
    home = Path(tempfile.mkdtemp())
    off: list[float] = []
    on: list[float] = []
    answered: set[str] = set()
    try:
        features, labels = make_classification(
            n_samples=20_000, n_features=20, n_informative=10, random_state=0
        )
        features = features.astype(np.float32)
        model = LogisticRegression(max_iter=500).fit(features, labels)
        ledger, settings, onnx_ref = ledger_with_model(
            "collecting", model, home, batch=False, collect_flush_s=args.flush_s
        )
        one_replica = {"cpus": 0.5, "gpus": 0, "memory_mb": 512, "replicas": 1}
        ledger.endpoints.create(ENDPOINT, "online")
        ledger.endpoints.deploy(ENDPOINT, DEPLOYMENT, onnx_ref, resources=one_replica)
        ledger.endpoints.set_traffic(ENDPOINT, {DEPLOYMENT: 100})
        token = ledger.tokens.create("bench", "reader").secret
        ledger.close()
        sample = features[:1000].tolist()
        seconds = args.online_seconds / args.online_rounds
        pace = (token, sample, args.online_rate, seconds, True)
        with ledger_server(settings) as url, multiprocessing.get_context("spawn").Pool(1) as load:
            online_latencies(url, token, sample, 50, 2.0)  # warm up: the replica starts
            for round_ in range(args.online_rounds):
                if round_:
                    set_sampling_rate(settings, url, token, sample, 0.0)
                off += load.apply(online_latencies, (url, *pace, f"off{round_}"))
                set_sampling_rate(settings, url, token, sample, 1.0)
                latencies = load.apply(online_latencies, (url, *pace, f"on{round_}"))
                answered |= {f"on{round_}-{i}" for i in range(len(latencies))}
                on += latencies
            collected = rows_collected(settings, "on", len(answered))
            off_rows = sum(n for key, n in collected_ids(settings).items() if key[:3] == "off")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    p99_off, p99_on = percentile(off, 99) or 0.0, percentile(on, 99) or 0.0
    twice = sum(1 for n in collected.values() if n > 1)
    missing = len(answered - collected.keys())
    exactly_once = collected == Counter(answered)
    for rate, latencies, rows in [("0 (off)", off, f"{off_rows:,}"), ("1.0", on, "")]:
        table.add_row(
            rate,
            f"{len(latencies):,}",
            f"{percentile(latencies, 50):.1f} / {percentile(latencies, 99):.1f} ms",
            rows
            or f"{sum(collected.values()):,} rows of {len(answered):,} requests "
            f"({twice} twice or more, {missing} missing)",
            verdict(exactly_once, "each request once") if not rows else "",
        )
    table.add_row(
        "p99 difference, 1.0 - 0",
        "",
        f"{p99_on - p99_off:+.1f} ms",
        "",
        verdict(p99_on - p99_off <= P99_ADDED_TARGET_MS, f"<= {P99_ADDED_TARGET_MS:g} ms"),
    )
    return {
        "online_p50_ms": {"0": percentile(off, 50), "1.0": percentile(on, 50)},
        "online_p99_ms": {"0": p99_off, "1.0": p99_on},
        "online_answered": {"0": len(off), "1.0": len(on)},
        "collected_rows": {"0": off_rows, "1.0": sum(collected.values())},
        "collected_exactly_once": exactly_once,
    }


def bench_collector(table: Table) -> dict[str, float]:
    """What collection costs a replica, in process (no Serve): ``Collector.offer`` on the
    request path at sampling rate 0 and 1.0, and a flush (the Parquet file and its
    sketch, on the replica's background thread) of 1,000 sampled one-row requests."""
    home = Path(tempfile.mkdtemp())
    try:
        collector = Collector(home, ENDPOINT, DEPLOYMENT, "m:1", "r1", flush_s=60,
                              background=False)  # fmt: skip
        inputs = {"X": np.zeros((1, 20), np.float32)}
        outputs = {"label": np.zeros(1, np.int64), "probabilities": np.zeros((1, 2), np.float32)}
        offer_us = {}
        for rate in (0.0, 1.0):
            collector.rate = rate
            started = time.perf_counter()
            for i in range(1_000):
                collector.offer(f"id{i}", inputs, outputs)
            offer_us[rate] = (time.perf_counter() - started) * 1e3  # per call, in µs
            if rate:
                flush_ms = timed(collector.flush)[0] * 1e3
    finally:
        shutil.rmtree(home, ignore_errors=True)
    table.add_row("offer(), sampling rate 0", "per request", f"{offer_us[0.0]:.1f} µs", "",
                  verdict(offer_us[0.0] <= P99_ADDED_TARGET_MS * 1e3, "<= 1 ms"))  # fmt: skip
    table.add_row("offer(), sampling rate 1.0", "per request", f"{offer_us[1.0]:.1f} µs", "",
                  verdict(offer_us[1.0] <= P99_ADDED_TARGET_MS * 1e3, "<= 1 ms"))  # fmt: skip
    table.add_row("flush: Parquet file and sketch", "1,000 requests", f"{flush_ms:.1f} ms",
                  "on the replica's background thread", "")  # fmt: skip
    return {"offer_us_rate_0": offer_us[0.0], "offer_us_rate_1": offer_us[1.0],
            "flush_ms_per_1000": flush_ms}  # fmt: skip


def collected_ids(settings: Any) -> Counter[str]:
    """How many collected rows each correlation id has, over every file written so far."""
    ids: Counter[str] = Counter()
    blobs = blobs_of(settings.artifacts_location)
    for stored in blobs.listing(deployment_prefix(ENDPOINT, DEPLOYMENT)):
        if is_collected(stored.key):
            table = read_collected(blobs, stored.key, ["correlation_id"])
            ids.update(table.column(0).to_pylist())
    return ids


def set_sampling_rate(
    settings: Any, url: str, token: str, sample: list[list[float]], rate: float
) -> None:
    """Set the deployment's sampling rate to ``rate`` (0 or 1) and wait until its replica
    has it: a half second of check requests, sent once the change was made, are all
    collected at 1 (none at 0) once the replica has flushed twice."""
    with Ledger(settings) as ledger:
        ledger.endpoints.set_sampling_rate(ENDPOINT, DEPLOYMENT, rate)
    flush_s = settings.collect_flush_s
    deadline = time.monotonic() + 60 + 5 * flush_s
    check = 0
    while True:
        prefix = f"check{rate:g}-{check}"
        sent = len(online_latencies(url, token, sample, 10, 0.5, correlation=prefix))
        time.sleep(2.5 * flush_s)
        found = sum(n for key, n in collected_ids(settings).items() if key[: len(prefix) + 1]
                    == f"{prefix}-")  # fmt: skip
        if found == (sent if rate else 0):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the replica did not take sampling rate {rate:g} in time")
        check += 1


def rows_collected(settings: Any, prefix: str, answered: int) -> Counter[str]:
    """The rows collected per correlation id starting with ``prefix``, once the replica
    has written ``answered`` of them (or 30 s and ten flushes have passed), and two more
    flushes later (a row written twice would show then)."""

    def found() -> Counter[str]:
        return Counter({k: n for k, n in collected_ids(settings).items() if k.startswith(prefix)})

    flush_s = settings.collect_flush_s
    deadline = time.monotonic() + 30 + 10 * flush_s
    while sum(found().values()) < answered and time.monotonic() < deadline:
        time.sleep(flush_s / 2)
    time.sleep(2 * flush_s)
    return found()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="the window's rows")
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=200, help="the KLL sketches' size parameter")
    parser.add_argument(
        "--online-rate", type=int, default=50, help="online one-row requests per second"
    )
    parser.add_argument(
        "--online-seconds", type=float, default=20.0, help="online load at each sampling rate"
    )
    parser.add_argument(
        "--online-rounds",
        type=int,
        default=2,
        help="rounds of sampling rate 0 then 1.0, sharing --online-seconds",
    )
    parser.add_argument(
        "--flush-s",
        type=float,
        default=10.0,
        help="how often the replica writes what it sampled (LEDGER_COLLECT_FLUSH_S; 10 as "
        "deployed, 2 with --quick)",
    )
    parser.add_argument(
        "--skip-online", action="store_true", help="no online part (no server, no Ray)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="100,000 rows each, 10 s online per sampling rate"
    )
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.online_rounds < 1:
        parser.error("--online-rounds must be at least 1")
    if args.quick:
        args.rows = args.reference_rows = 100_000
        args.online_seconds = min(args.online_seconds, 10.0)
        args.flush_s = min(args.flush_s, 2.0)
    report = Report("Monitoring: drift from sketches beside scipy on the raw rows", console)
    rng = np.random.default_rng(0)
    reference = make_table(args.reference_rows, rng, drifted=False)
    window = make_table(args.rows, rng, drifted=True)
    timing = Table(
        "step",
        "rows x columns",
        "time",
        "rate / size / agreement",
        "target",
        title="sketches and drift per window, one process",
        caption="Evidently is not installed here: no row of its own (its default metrics "
        "are the ones chosen here, computed on raw rows like scipy's).",
    )
    columns = Table(
        "column",
        "drift put in",
        "default metric",
        "from sketches",
        "scipy, raw rows",
        "verdict: sketches / scipy",
        "KS or chi2 p < 0.05: sketches / scipy",
        title="each column of the window, default metric and thresholds",
    )
    console.print("[dim]sketches[/]")
    sketched = bench_sketching(reference, window, args.k, timing)
    console.print("[dim]drift[/]")
    figures = bench_drift(reference, window, sketched, timing, columns)
    online = Table(
        "sampling rate",
        "requests answered",
        "p50 / p99",
        "rows collected",
        "target",
        title=f"online scoring through the API, {args.online_rate} one-row requests/s for "
        f"{args.online_seconds:g} s at each sampling rate in {args.online_rounds} alternating "
        "rounds, one replica",
        caption=ONLINE_NOTE,
    )
    collection = Table(
        "step", "calls", "time", "where", "target",
        title="collection on a replica, in process (no Serve): the request path and a flush",
    )  # fmt: skip
    figures |= bench_collector(collection)
    if not args.skip_online:
        console.print("[dim]online[/]")
        figures |= bench_online(args, online)
    report.fact(
        f"window {args.rows:,} rows, reference {args.reference_rows:,} rows; 10 numeric "
        f"(normal) and 10 categorical (50 labels) columns; KLL k={args.k} (rank error "
        f"{100 * kll_doubles_sketch.get_normalized_rank_error(args.k, False):.2f} %), "
        "categories counted exactly up to 1,000 labels"
    )
    if not args.skip_online:
        report.fact(
            f"online: `ledger serve`, one replica (0.5 CPU) of a logistic regression (20 "
            f"features), {args.online_rate} one-row requests/s for {args.online_seconds:g} s "
            "at each sampling rate, in alternating rounds (0, then 1.0, ...) with the rate changed "
            "live between them and checked taken (by check requests collected or not); "
            f"latency from each request's scheduled time; the replica writes every "
            f"{args.flush_s:g} s (LEDGER_COLLECT_FLUSH_S), rows counted by correlation id"
        )
    report.show(timing)
    report.show(columns)
    report.show(collection)
    if not args.skip_online:
        report.show(online)
    report.conclude(LIMITS, args, window_sketch_s=sketched.seconds, **figures)
    return 0


LIMITS = [
    "Sketching: pyarrow's value_counts and the KLL sketch's array update run in C++ on one "
    "core; the numeric columns' mean and variance are one numpy pass each.",
    "Drift from sketches costs milliseconds whatever the rows: it reads the sketches only "
    "(a grid of 2 x 2,001 quantiles per numeric column, one count per label).",
    "KS and chi-squared at a million rows: the KS p-value's critical gap (about "
    "1.36 / sqrt(n*m/(n+m))) is far below the KLL rank error, so a sketch's KS verdict is "
    "noise there; Evidently's choice uses them only up to 1,000 values, as here.",
    "Chi-squared takes the reference's shares as exact (Pearson's goodness of fit, as "
    "Evidently does): with a reference no larger than the window, the same distribution "
    "fails it far more often than 5 % of the time, from the sketches and from scipy alike.",
    "Normalized Wasserstein from k=200 sketches reads high by about 0.02 reference sd "
    "(up to 0.06 seen) where nothing drifts: |F_ref - F_win| integrates both sketches' "
    "rank errors over the values' range; --k 1000 cuts that about fivefold at about "
    "24 KiB per numeric column.",
    "Online: the same 2 cores run the load generator, the API (`ledger serve`), Serve's "
    "proxy and controller, the endpoint's ingress and the replica; each Serve hop costs "
    "about 5 ms of CPU here, so about 100 requests/s is the most this machine sustains. "
    "Latency moves by tens to hundreds of milliseconds at p99 (and by several ms at p50) "
    "from one round to the next, whatever the sampling rate: in a probe of four 8 s rounds "
    "(0, 1.0, 0, 1.0) the p50s were 18.9, 33.8, 31.4 and 15.3 ms. The 1 ms target on p99 "
    "cannot be judged end to end here; what collection adds to a request is the "
    "in-process offer() above (microseconds), and its flush runs on the replica's "
    "background thread.",
    "scipy on the raw rows sorts both samples per numeric column (wasserstein_distance, "
    "ks_2samp) and counts labels with pyarrow: it needs the rows themselves, in memory.",
]

ONLINE_NOTE = (
    "The load is a spawned process over one keep-alive connection; each request carries "
    "its own correlation id. At 200 requests/s (more than Serve sustains here) the queue "
    "grows and latencies are seconds: one run (--online-rate 200 --online-seconds 4, load "
    "average about 3.5 from other work) gave p50 / p99 2.6 / 5.7 s at 0 and 3.5 / 7.4 s at "
    "1.0, and each of the 800 requests at 1.0 collected once."
)


if __name__ == "__main__":
    raise SystemExit(main())
