"""MLflow's own client against `ledger serve` and against `mlflow server`, side by side.

The unmodified ``MlflowClient`` calls ``create_model_version``, ``get_model_version`` and
``search_model_versions("tag.team = '...'")`` with 10,000 versions present, against
`ledger serve` (MLflow's REST API on the ledger, one process) and against `mlflow server
--workers 1` on the same kind of store (SQLite or PostgreSQL), filled with the same catalogue
(benchmarks/_catalogue.py: 100 versions per model, each tagged team, stage and run). Each
call runs back to back from this process, over the client's own keep-alive session, and the
table sets the two systems' median, p95 and calls/s beside each other; the issue's target
is the ledger at least 3x MLflow's rate on each call.

A new version needs a ``source`` that the server holds: a small scikit-learn model is
logged once to a run through each server's artifact proxy, and every timed
``create_model_version`` registers that run's ``model`` directory under one model.

The figures compare like with like only if both systems answer alike: every tag-search's
complete answer (the client's default ``max_results``, every match) must hold the same
versions from both, or the benchmark says where and exits 1.

    .venv/bin/python benchmarks/mlflow_client.py                 # 10,000 versions, both stores
    .venv/bin/python benchmarks/mlflow_client.py --quick         # 2,000 versions, fewer calls
    .venv/bin/python benchmarks/mlflow_client.py --stores sqlite --versions 20000
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.progress import Progress
from rich.table import Table

# benchmarks/projections.py shadows the `projections` package: look in this directory last.
sys.path.append(sys.path.pop(0))

from _catalogue import STORE_NAMES, TEAMS, VERSIONS_PER_MODEL, catalogue, fill, ledger_store
from _common import (
    DEFAULT_PG_URL,
    Report,
    add_json_option,
    bench_console,
    ledger_server,
    package_version,
    percentile,
    unique_name,
    verdict,
)
from _mlflow import fill_registry, mlflow_database, mlflow_server
from ledger.ledger import Ledger

CALLS = ("create_model_version", "get_model_version", "search_model_versions")
SYSTEMS = ("ledger", "MLflow")
TARGET_RATIO = 3.0  # the ledger's calls/s over MLflow's, on each call (the target)
CREATED_MODEL = "bench-created"
WARM_UP = 5  # untimed calls of each kind first: the session, the server's caches
console = bench_console()


# -- one system, through MLflow's client ---------------------------------------------------


@dataclass
class Timing:
    """One call's back-to-back latencies (ms) and how long they took in all."""

    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds > 0 else 0.0

    def row(self) -> list[str]:
        """Median and p95 ms, calls/s."""
        if not self.latencies_ms:
            return ["-", "-", "-"]
        return [
            f"{percentile(self.latencies_ms, 50):.2f}",
            f"{percentile(self.latencies_ms, 95):.2f}",
            f"{self.rate:,.0f}",
        ]


def timed(call: Callable[[int], object], count: int, budget_s: float) -> Timing:
    """``call(i)`` for i in 0..count-1, back to back; stops early once ``budget_s`` has
    passed, so that a slow system is measured on fewer calls instead of for hours."""
    for i in range(WARM_UP):
        call(i)
    timing = Timing()
    clock = time.perf_counter
    start = clock()
    for i in range(WARM_UP, WARM_UP + count):
        before = clock()
        call(i)
        timing.latencies_ms.append((clock() - before) * 1000.0)
        if before - start > budget_s:
            break
    timing.seconds = clock() - start
    return timing


@contextmanager
def client_of(url: str, token: str) -> Iterator[Any]:
    """An ``MlflowClient`` pointed at ``url`` with ``token`` (MLFLOW_TRACKING_TOKEN, "" for
    none), failing at once on an error instead of retrying."""
    from mlflow import MlflowClient

    settings = {"MLFLOW_TRACKING_TOKEN": token, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # fmt: skip
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update({name: value for name, value in settings.items() if value})
    if not token:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    try:
        yield MlflowClient(tracking_uri=url, registry_uri=url)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def logged_model_source(client: Any) -> tuple[str, str]:
    """A small scikit-learn model logged to a new run through the server's artifact proxy:
    the ``source`` of its ``model`` directory, and the run's id."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    experiment = client.create_experiment(unique_name("bench-mlflow-client"))
    run = client.create_run(experiment)
    with tempfile.TemporaryDirectory() as tmp:
        model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0]], [0, 1])
        mlflow.sklearn.save_model(model, f"{tmp}/model", pip_requirements=["scikit-learn"])
        client.log_artifacts(run.info.run_id, f"{tmp}/model", "model")
    client.set_terminated(run.info.run_id)
    return f"{run.info.artifact_uri}/model", run.info.run_id


Answers = dict[str, set[tuple[str, str]]]


def measure_system(url: str, token: str, versions: int, args: argparse.Namespace) -> Any:
    """The three calls against one server: their timings, and each tag-search's answer."""
    rng = random.Random(7)  # the same versions and queries for every system
    models = versions // VERSIONS_PER_MODEL
    gets = [(f"model-{rng.randrange(models):05d}", str(rng.randrange(1, VERSIONS_PER_MODEL + 1)))
            for _ in range(WARM_UP + args.calls)]  # fmt: skip
    teams = [f"team-{rng.randrange(TEAMS)}" for _ in range(WARM_UP + args.searches)]
    answers: Answers = {}
    with client_of(url, token) as client:
        source, run_id = logged_model_source(client)
        client.create_registered_model(CREATED_MODEL)

        def create(_: int) -> None:
            client.create_model_version(CREATED_MODEL, source, run_id=run_id)

        def get(i: int) -> None:
            client.get_model_version(*gets[i])

        def search(i: int) -> None:
            found = client.search_model_versions(f"tag.team = '{teams[i]}'")
            if teams[i] not in answers:
                answers[teams[i]] = {(v.name, v.version) for v in found}

        timings = {
            "create_model_version": timed(create, args.creates, args.seconds),
            "get_model_version": timed(get, args.calls, args.seconds),
            "search_model_versions": timed(search, args.searches, args.seconds),
        }
    return timings, answers


def differences(ours: Answers, theirs: Answers) -> list[str]:
    """Where the two systems' tag-search answers differ (empty: the same versions)."""
    found = []
    for team in sorted(ours.keys() & theirs.keys()):
        if ours[team] != theirs[team]:
            only_ours = sorted(ours[team] - theirs[team])
            only_theirs = sorted(theirs[team] - ours[team])
            found.append(
                f"tag.team = '{team}': {len(ours[team]):,} versions vs {len(theirs[team]):,} "
                f"(only the ledger's: {only_ours[:3]}; only MLflow's: {only_theirs[:3]})"
            )
    return found


# -- both systems on one kind of store ------------------------------------------------------


@contextmanager
def filled_systems(kind: str, args: argparse.Namespace) -> Iterator[tuple[Any, str, str]]:
    """A ledger store and an MLflow backend store of ``kind`` holding the same catalogue:
    the ledger's settings, a contributor token on it, and MLflow's store URI."""
    models = range(args.versions // VERSIONS_PER_MODEL)
    with (
        ledger_store(kind, args.pg_url, "bench_mlflow_client") as settings,
        mlflow_database(kind, args.pg_url) as uri,
    ):
        with Progress(console=console, transient=True) as progress:
            fill(settings, models, progress)
            task = progress.add_task(f"MLflow: {args.versions:,} versions", total=None)
            fill_registry(uri, catalogue(models.start, models.stop))
            progress.update(task, completed=1, total=1)
        with Ledger(settings) as ledger:
            token = ledger.tokens.create("bench-mlflow-client", "contributor").secret
        yield settings, token, uri


def measure_store(
    kind: str, args: argparse.Namespace, table: Table, report: Report
) -> tuple[list[str], dict[str, Any]]:
    """Both systems on one kind of store: their rows into ``table``; where their answers
    differ, and the raw figures."""
    store = STORE_NAMES[kind]
    with filled_systems(kind, args) as (settings, token, uri):
        with ledger_server(settings) as url:
            ours, our_answers = measure_system(url, token, args.versions, args)
        with mlflow_server(uri) as url:
            theirs, their_answers = measure_system(url, "", args.versions, args)
    for call in CALLS:
        ratio = ours[call].rate / theirs[call].rate if theirs[call].rate else 0.0
        table.add_row(
            store, call, *ours[call].row(), *theirs[call].row(), f"{ratio:.2f}x",
            verdict(ratio >= TARGET_RATIO, f">= {TARGET_RATIO:g}x"),
        )  # fmt: skip
    found = differences(our_answers, their_answers)
    matches = sum(len(answer) for answer in our_answers.values())
    report.fact(
        f"Answers checked ({store}): {len(our_answers)} distinct tag-searches "
        + (
            f"give the same {matches:,} versions from both systems"
            if not found
            else f"DIFFER in {len(found)} place(s)"
        )
    )
    figures = {
        f"{system} {call}": {"calls": len(t.latencies_ms), "rate_per_s": t.rate,
                             "p50_ms": percentile(t.latencies_ms, 50),
                             "p95_ms": percentile(t.latencies_ms, 95)}
        for system, timings in zip(SYSTEMS, (ours, theirs), strict=True)
        for call, t in timings.items()
    }  # fmt: skip
    return [f"{store}: {difference}" for difference in found], figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000, help="present before the calls")
    parser.add_argument("--quick", action="store_true", help="2,000 versions, fewer calls, 5 s")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, metavar="URL")
    parser.add_argument("--creates", type=int, default=500, help="create_model_version calls")
    parser.add_argument("--calls", type=int, default=2_000, help="get_model_version calls")
    parser.add_argument("--searches", type=int, default=200, help="search_model_versions calls")
    parser.add_argument("--seconds", type=float, default=30.0, help="at most this long per call")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.versions, args.creates, args.calls, args.searches = 2_000, 50, 200, 20
        args.seconds = 5.0

    report = Report("MLflow's client: `ledger serve` against `mlflow server`", console=console)
    if importlib.util.find_spec("mlflow") is None:
        report.fact("not run: MLflow is not installed (the bench extra)")
        report.conclude([], args)
        return 0
    report.fact(
        f"{args.versions:,} versions present ({VERSIONS_PER_MODEL} per model, each tagged team "
        f"(1 of {TEAMS}), stage and run); up to {args.creates:,} create_model_version, "
        f"{args.calls:,} get_model_version (random versions) and {args.searches:,} "
        f"search_model_versions(\"tag.team = '...'\") calls (every match, about "
        f"{args.versions // TEAMS:,}), or {args.seconds:g} s each, whichever comes first, "
        f"after {WARM_UP} untimed; one MlflowClient ({package_version('mlflow')}) in this "
        "process; `ledger serve` and `mlflow server --workers 1`, one process each"
    )
    table = Table("store", "call", "ledger median ms", "ledger p95 ms", "ledger calls/s",
                  "MLflow median ms", "MLflow p95 ms", "MLflow calls/s", "ledger / MLflow",
                  "target", title="MLflow's client, one call at a time")  # fmt: skip
    mismatches: list[str] = []
    figures: dict[str, Any] = {}
    for kind in args.stores.split(","):
        found, figures[STORE_NAMES[kind]] = measure_store(kind, args, table, report)
        mismatches += found
    report.show(table)
    if mismatches:
        report.fact(f"FAILED: the systems' tag-search answers differ: {'; '.join(mismatches)}")
        console.print("[bold red]tag-search answers differ: the figures are not comparable[/]")
    pg_url = args.pg_url if "postgres" in args.stores else None
    report.conclude(LIMITS, args, pg_url, figures=figures, tag_search_mismatches=mismatches)
    return 1 if mismatches else 0


LIMITS = [
    "Every call is one HTTP request from MLflow's Python client, whose own work (building the "
    "request, parsing the JSON answer into its entities) is the same for both systems and is "
    "in every figure.",
    "create_model_version on the ledger registers the run's logged files (already stored, by "
    "digest) as a version: one durable commit, answered once committed; on `mlflow server` it "
    "is one row INSERT after checking that the source lies under the run's artifacts.",
    "search_model_versions returns every match (about a twentieth of the catalogue): its cost "
    "grows with the answer's size on both systems; MLflow's filters a join of versions and "
    "tags in SQL, then loads each version's tags through its ORM.",
    "The server, the client and the database share the machine's cores.",
]


if __name__ == "__main__":
    raise SystemExit(main())
