"""HTTP API benchmark: get-version and tag-search, the ledger against an `mlflow server`.

Fills a fresh ledger store and a fresh MLflow backend store (same kind: SQLite or
PostgreSQL) with the same models and versions (tagged by team, stage and run), first
10,000 versions and then 100,000. At each size it starts `ledger serve` (uvicorn, one
process) and then `mlflow server --workers 1`, and measures each from a load generator
in another process, over keep-alive connections:

- latency: one client, requests back to back (p50, p99, max);
- throughput: several clients at once (requests/s).

At each size it also times the web UI's pages, signed in through the sign-in form: the
models list, a model page with 1,000 versions and a version page with its lineage graph
(benchmarks/_ui_pages.py), by the server's own time (its Server-Timing header) and the
client's, beside the target p99 <= 100 ms. The catalogue holds that model (`model-ui`) in
both systems, tagged so that no timed tag-search finds it.

After the reads at the largest size, the same two servers take writes: registering a
version with a small file and a tag PUT, with 1 and 8 clients (each its own model),
beside ``GET /health`` on the same server (benchmarks/_http_writes.py says how each
system is sent them).

MLflow's rows are bulk-inserted into the schema its own migrations create (registering
100,000 versions one by one through it would take most of an hour).

The figures compare like with like only if both systems answer alike: at each size, a
sample of the timed tag-searches is sent to both, and their first pages (the timed
request: 50 versions, newest first) and their complete answers (paged) must hold the same
versions. If they do not, the benchmark says where, and exits 1 (run_all marks it failed).

    .venv/bin/python benchmarks/api.py                 # 10k and 100k versions, both stores
    .venv/bin/python benchmarks/api.py --quick         # 2,000 versions, 500 requests
    .venv/bin/python benchmarks/api.py --versions 10000 --stores sqlite
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import multiprocessing
import random
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from rich.progress import Progress
from rich.table import Table

# benchmarks/projections.py shadows the `projections` package: look in this directory last.
sys.path.append(sys.path.pop(0))

from _catalogue import (
    STAGES,
    STORE_NAMES,
    TEAMS,
    VERSIONS_PER_MODEL,
    catalogue,
    fill,
    ledger_store,
)
from _common import (
    DEFAULT_PG_URL,
    Report,
    add_json_option,
    bench_console,
    ledger_server,
    package_version,
    percentile,
    verdict,
)
from _http_writes import WRITES, Load, client_models, run_clients
from _mlflow import fill_registry, mlflow_database, mlflow_server
from _ui_pages import (
    BIG_MODEL,
    BIG_MODEL_VERSIONS,
    PAGES,
    add_page_row,
    big_model,
    figures,
    fill_big_model,
    measure_pages,
    page_paths,
    pages_table,
    signed_in_cookie,
)
from ledger.ledger import Ledger
from ledger.settings import Settings

REQUESTS = ("get-version", "tag-search")
TARGETS_MS = {"get-version": 3.0, "tag-search": 15.0}  # the ledger's p99, from the issue
CHECKED_QUERIES = 8  # tag-searches whose answers (first page, every match) must agree
# Targets of the writes, from the issue: the ledger's single-client registration p50, its
# 8-client write rate against GET /health on the same server, and against `mlflow server`.
REGISTRATION_P50_TARGET_MS = 3.0
WRITE_OVER_HEALTH_TARGET = 0.6
WRITE_OVER_MLFLOW_TARGET = 3.0
console = bench_console()


# -- the load generator (a process of its own) ---------------------------------------------


def request_paths(system: str, kind: str, versions: int, count: int) -> list[str]:
    """``count`` requests of one kind, the same for every system (seeded)."""
    if kind == "tag-search":
        return [search_path(system, team, stage) for team, stage in tag_queries(count)]
    rng = random.Random(3)
    models = versions // VERSIONS_PER_MODEL
    paths = []
    for _ in range(count):
        name, number = (
            f"model-{rng.randrange(models):05d}",
            rng.randrange(1, VERSIONS_PER_MODEL + 1),
        )
        if system == "ledger":
            paths.append(f"/models/{name}/versions/{number}")
        else:
            paths.append(f"/api/2.0/mlflow/model-versions/get?name={name}&version={number}")
    return paths


def tag_queries(count: int) -> list[tuple[str, str]]:
    """The (team, stage) of ``count`` tag-searches, the same for every system (seeded)."""
    rng = random.Random(3)
    return [(f"team-{rng.randrange(TEAMS)}", rng.choice(STAGES)) for _ in range(count)]


def search_path(system: str, team: str, stage: str, limit: int = 50, page_token: str = "") -> str:
    """One page of the versions tagged ``team`` and ``stage``, newest first."""
    if system == "ledger":
        params = [("tag", f"team={team}"), ("tag", f"stage={stage}"), ("limit", str(limit))]
        params += [("page_token", page_token)] if page_token else []
        return f"/search/versions?{urlencode(params)}"
    query = {
        "filter": f"tags.team = '{team}' AND tags.stage = '{stage}'",
        "max_results": limit,
        "order_by": "creation_timestamp DESC",
    } | ({"page_token": page_token} if page_token else {})
    return f"/api/2.0/mlflow/model-versions/search?{urlencode(query)}"


# -- the two systems must give the same answers ----------------------------------------------

Answers = dict[tuple[str, str], tuple[list[tuple[str, int]], list[tuple[str, int]]]]


def tag_search_answers(
    system: str, url: str, token: str, queries: list[tuple[str, str]]
) -> Answers:
    """Per query: the first page as timed (50, newest first) and every match (paged)."""

    def page(client: httpx.Client, path: str) -> tuple[list[tuple[str, int]], str]:
        response = client.get(path)
        response.raise_for_status()
        body = response.json()
        if system == "ledger":
            items = [(item["model"], int(item["version"])) for item in body["items"]]
            return items, body["next_token"]
        versions = body.get("model_versions", [])
        return [(v["name"], int(v["version"])) for v in versions], body.get("next_page_token", "")

    answers: Answers = {}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        for team, stage in queries:
            first, _ = page(client, search_path(system, team, stage))
            everything, next_token = page(client, search_path(system, team, stage, 1000))
            while next_token:
                more, next_token = page(client, search_path(system, team, stage, 1000, next_token))
                everything += more
            answers[(team, stage)] = (first, everything)
    return answers


def differences(ledger: Answers, mlflow: Answers) -> list[str]:
    """Where the two systems' tag-search answers differ (empty: the same versions)."""
    found = []
    for query, (first, everything) in ledger.items():
        their_first, their_everything = mlflow[query]
        where = f"team={query[0]} AND stage={query[1]}"
        if first != their_first:
            found.append(f"{where}: first pages differ ({first[:3]}... vs {their_first[:3]}...)")
        ours, theirs = set(everything), set(their_everything)
        if ours != theirs or len(everything) != len(their_everything):
            only_ours, only_theirs = sorted(ours - theirs)[:3], sorted(theirs - ours)[:3]
            found.append(
                f"{where}: {len(everything):,} versions vs {len(their_everything):,} "
                f"(only the ledger's: {only_ours}; only MLflow's: {only_theirs})"
            )
    return found


def measure(
    url: str, token: str, paths: list[str], clients: int, budget_s: float
) -> tuple[list[float], float]:
    """Per-request ms and overall requests/s of ``clients`` clients sharing ``paths``.

    Each client is a keep-alive ``http.client`` connection: a lean client, so that the
    latency measured is the server's rather than the load generator's. A client stops
    early when ``budget_s`` has passed, so a slow system is measured on fewer requests
    instead of for hours.
    """
    import gc

    gc.disable()  # the load generator's own pauses are not the server's latency
    latencies: list[float] = []
    lock = threading.Lock()
    shares = [paths[i::clients] for i in range(clients)]
    host, port = url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {token}"}

    def get(connection: http.client.HTTPConnection, path: str) -> None:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status}: {body[:300]!r}")

    def client(share: list[str]) -> None:
        mine = []
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        for path in share[:5]:  # warm the connection and the server's caches
            get(connection, path)
        deadline = time.perf_counter() + budget_s
        for path in share:
            before = time.perf_counter()
            get(connection, path)
            mine.append((time.perf_counter() - before) * 1000)
            if before > deadline:
                break
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, len(latencies) / (time.perf_counter() - start)


# -- main ------------------------------------------------------------------------------------


@dataclass
class Systems:
    """The two systems under test on one store kind, filled with the same catalogue."""

    settings: Settings
    mlflow_uri: str | None  # None: MLflow is not installed
    models: int = 0  # filled so far

    def grow(self, versions: int, progress: Progress) -> None:
        """The catalogue up to ``versions`` in both systems; the first time, ``model-ui`` too."""
        models = range(self.models, versions // VERSIONS_PER_MODEL)
        fill(self.settings, models, progress)
        if self.models == 0:
            fill_big_model(self.settings, progress)
        if self.mlflow_uri is not None:
            task = progress.add_task(f"MLflow: {len(models) * VERSIONS_PER_MODEL:,} versions")
            filled = catalogue(models.start, models.stop)
            fill_registry(self.mlflow_uri, [*filled, big_model()] if self.models == 0 else filled)
            progress.update(task, completed=100, total=100)
        self.models = models.stop


@contextmanager
def systems(kind: str, pg_url: str) -> Iterator[Systems]:
    with ledger_store(kind, pg_url, "bench_api") as settings:
        if importlib.util.find_spec("mlflow") is None:
            yield Systems(settings, None)
            return
        with mlflow_database(kind, pg_url) as uri:
            yield Systems(settings, uri)


def measure_system(
    system: str,
    kind: str,
    url: str,
    token: str,
    versions: int,
    args: argparse.Namespace,
    table: Table,
) -> None:
    """Both requests against one server: latency with one client, throughput with several."""
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1) as load_generator:
        for request in REQUESTS:
            paths = request_paths(system, request, versions, args.requests)
            load = (url, token, paths)
            latencies, single = load_generator.apply(measure, (*load, 1, args.seconds))
            _, parallel = load_generator.apply(measure, (*load, args.clients, args.seconds))
            p99 = percentile(latencies, 99) or 0.0
            target = TARGETS_MS[request]
            table.add_row(
                STORE_NAMES[kind], f"{versions:,}", request, system, f"{len(latencies):,}",
                f"{percentile(latencies, 50):.2f}", f"{p99:.2f}", f"{max(latencies):.1f}",
                f"{single:,.0f}", f"{parallel:,.0f}",
                verdict(p99 <= target, f"<= {target:g} ms") if system == "ledger" else "",
            )  # fmt: skip


def measure_ui_pages(
    kind: str, url: str, token: str, versions: int, args: argparse.Namespace, table: Table
) -> list[dict[str, object]]:
    """The UI's pages against one server, one client signed in with ``token``: a row of
    ``table`` each, and their raw figures."""
    cookie = signed_in_cookie(url, token)
    shown = f"{versions:,} + {BIG_MODEL_VERSIONS:,}"
    found = []
    with multiprocessing.get_context("spawn").Pool(1) as load_generator:
        for page in PAGES:
            paths = page_paths(page, args.requests)
            timed = load_generator.apply(measure_pages, (url, cookie, paths, args.seconds))
            add_page_row(table, STORE_NAMES[kind], shown, page, timed)
            found.append(figures(STORE_NAMES[kind], versions + BIG_MODEL_VERSIONS, page, timed))
    return found


@dataclass(frozen=True)
class WriteRow:
    """One write measurement: ``operation`` by ``clients`` clients against one server."""

    store: str
    system: str
    operation: str
    clients: int
    load: Load


def measure_writes(
    system: str, kind: str, url: str, token: str, args: argparse.Namespace
) -> list[WriteRow]:
    """GET /health, registrations, then tag PUTs on the versions just registered: with one
    client, then with ``args.write_clients`` at once (each its own model)."""
    spawn = multiprocessing.get_context("spawn")
    rows = []
    with spawn.Pool(1) as load_generator:
        for clients in (1, args.write_clients):
            models = client_models(f"bench-writes-{clients}", clients)
            versions = 0  # tags go to the versions the registrations made
            for operation in ("GET /health", *WRITES):
                load: Load = load_generator.apply(
                    run_clients,
                    (url, token, system, operation, models, args.write_requests),
                    {"versions": versions, "budget_s": args.seconds},
                )
                versions = load.fewest if operation == "registration" else versions
                rows.append(WriteRow(STORE_NAMES[kind], system, operation, clients, load))
    return rows


def writes_table(rows: list[WriteRow]) -> Table:
    table = Table("store", "system", "request", "clients", "requests", "p50 ms", "p99 ms",
                  "req/s", title="Writes over HTTP: one server process, the load in another, "
                  "each client its own model")  # fmt: skip
    for row in rows:
        load = row.load
        table.add_row(
            row.store, row.system, row.operation, str(row.clients), f"{len(load.latencies_ms):,}",
            f"{percentile(load.latencies_ms, 50) or 0:.2f}",
            f"{percentile(load.latencies_ms, 99) or 0:.2f}", f"{load.rate:,.0f}",
        )  # fmt: skip
    return table


def write_targets_table(rows: list[WriteRow], clients: int) -> Table:
    """The issue's write targets, per store, from this run's rows."""
    found = {(r.store, r.system, r.operation, r.clients): r.load for r in rows}
    table = Table("store", "figure", "value", "target", title="Writes against their targets")

    def ratio_row(store: str, figure: str, ours: Load, theirs: Load | None, goal: float) -> None:
        if theirs is not None:
            ratio = ours.rate / theirs.rate
            table.add_row(store, figure, f"{ratio:.2f}x", verdict(ratio >= goal, f">= {goal:g}x"))

    for store in dict.fromkeys(r.store for r in rows):
        single = found.get((store, "ledger", "registration", 1))
        if single is not None:
            p50 = percentile(single.latencies_ms, 50) or 0.0
            goal = f"<= {REGISTRATION_P50_TARGET_MS:g} ms"
            ok = p50 <= REGISTRATION_P50_TARGET_MS
            table.add_row(store, "ledger registration p50, 1 client", f"{p50:.2f} ms",
                          verdict(ok, goal))  # fmt: skip
        health = found.get((store, "ledger", "GET /health", clients))
        for operation in WRITES:
            ours = found.get((store, "ledger", operation, clients))
            if ours is None:
                continue
            ratio_row(store, f"ledger {operation} / ledger GET /health, {clients} clients",
                      ours, health, WRITE_OVER_HEALTH_TARGET)  # fmt: skip
            ratio_row(store, f"ledger / MLflow {operation}, {clients} clients",
                      ours, found.get((store, "MLflow", operation, clients)),
                      WRITE_OVER_MLFLOW_TARGET)  # fmt: skip
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default="10000,100000", help="comma-separated sizes")
    parser.add_argument("--quick", action="store_true", help="2,000 versions, 500 requests, 5 s")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, metavar="URL")
    parser.add_argument("--requests", type=int, default=3_000, help="per measurement")
    parser.add_argument("--clients", type=int, default=4, help="for the throughput run")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="at most this long per measurement"
    )
    parser.add_argument("--write-requests", type=int, default=2_000, help="per write measurement")
    parser.add_argument("--write-clients", type=int, default=8, help="for the writes' second run")
    add_json_option(parser)
    args = parser.parse_args(argv)
    sizes = [2_000] if args.quick else sorted(int(v) for v in args.versions.split(","))
    if args.quick:
        args.requests, args.write_requests, args.seconds = 500, 200, 5.0

    report = Report("HTTP API: the ledger against an `mlflow server`", console=console)
    report.fact(
        f"{VERSIONS_PER_MODEL} versions per model, each tagged team (1 of {TEAMS}), stage "
        f"(1 of {len(STAGES)}) and run; tag-search: team AND stage, first page of 50, newest "
        f"first; {args.requests:,} requests per measurement (or {args.seconds:g} s, "
        f"whichever comes first); {package_version('mlflow')}, "
        "`mlflow server --workers 1`, its rows bulk-inserted into its own schema"
    )
    table = Table("store", "versions", "request", "system", "requests", "p50 ms", "p99 ms",
                  "max ms", "req/s (1 client)", f"req/s ({args.clients} clients)", "p99 target",
                  title="Reads over HTTP: one server process, the load in another")  # fmt: skip
    mismatches: list[str] = []
    writes: list[WriteRow] = []
    ui_table, ui_pages = pages_table(), []
    for kind in args.stores.split(","):
        mismatches += measure_store(kind, sizes, args, (table, ui_table), report, writes, ui_pages)
    report.show(table)
    report.fact(
        f"Web UI pages: each size's catalogue plus `{BIG_MODEL}` ({BIG_MODEL_VERSIONS:,} "
        "versions with metrics, lineage to a data asset, environment, pipeline and job, the "
        "last two deployed), in both systems; one client signed in through POST /ui/login, "
        f"{args.requests:,} requests per page (or {args.seconds:g} s); the models list, "
        f"`{BIG_MODEL}`'s page, and its versions' pages (seeded random versions)"
    )
    report.show(ui_table)
    report.fact(
        f"Writes, at {sizes[-1]:,} versions: {args.write_requests:,} requests per measurement "
        f"(or {args.seconds:g} s), 1 and {args.write_clients} clients; a registration uploads "
        "one 1 KiB file (the ledger: one multipart request; MLflow: the file to its artifact "
        "proxy, then model-versions/create), a tag PUT sets one tag on a version the same "
        "client registered (MLflow: model-versions/set-tag)"
    )
    report.show(writes_table(writes))
    report.show(write_targets_table(writes, args.write_clients))
    if mismatches:
        report.fact(f"FAILED: the systems' tag-search answers differ: {'; '.join(mismatches)}")
        console.print("[bold red]tag-search answers differ: the figures are not comparable[/]")
    pg_url = args.pg_url if "postgres" in args.stores else None
    write_figures = [
        {"store": r.store, "system": r.system, "request": r.operation, "clients": r.clients,
         "requests": len(r.load.latencies_ms), "rate_per_s": r.load.rate,
         "p50_ms": percentile(r.load.latencies_ms, 50),
         "p99_ms": percentile(r.load.latencies_ms, 99)}
        for r in writes
    ]  # fmt: skip
    report.conclude(
        LIMITS,
        args,
        pg_url,
        sizes=sizes,
        tag_search_mismatches=mismatches,
        writes=write_figures,
        ui_pages=ui_pages,
    )
    return 1 if mismatches else 0


def measure_store(
    kind: str,
    sizes: list[int],
    args: argparse.Namespace,
    tables: tuple[Table, Table],
    report: Report,
    writes: list[WriteRow],
    ui_pages: list[dict[str, object]],
) -> list[str]:
    """Both systems on one kind of store at each size, the ledger's UI pages (into
    ``ui_pages``), then their writes at the largest (into ``writes``); where their tag-search
    answers differ."""
    table, ui_table = tables
    mismatches = []
    queries = list(dict.fromkeys(tag_queries(CHECKED_QUERIES)))  # distinct
    with systems(kind, args.pg_url) as both:
        with Ledger(both.settings) as ledger:
            token = ledger.tokens.create("bench", "reader").secret
            writer = ledger.tokens.create("bench-writer", "contributor").secret
        for versions in sizes:
            last = versions == sizes[-1]
            with Progress(console=console, transient=True) as progress:
                both.grow(versions, progress)
            with ledger_server(both.settings) as url:
                measure_system("ledger", kind, url, token, versions, args, table)
                ui_pages += measure_ui_pages(kind, url, token, versions, args, ui_table)
                ours = tag_search_answers("ledger", url, token, queries)
                # After the answers are taken: the writes add models of their own.
                writes += measure_writes("ledger", kind, url, writer, args) if last else []
            if both.mlflow_uri is None:
                missing = "not run: MLflow is not installed (the bench extra)"
                table.add_row(STORE_NAMES[kind], f"{versions:,}", "both", "MLflow", missing)
                continue
            with mlflow_server(both.mlflow_uri) as url:
                measure_system("MLflow", kind, url, token, versions, args, table)
                theirs = tag_search_answers("MLflow", url, token, queries)
                writes += measure_writes("MLflow", kind, url, token, args) if last else []
            where = f"{STORE_NAMES[kind]}, {versions:,} versions"
            found = differences(ours, theirs)
            mismatches += [f"{where}: {difference}" for difference in found]
            matches = sum(len(everything) for _, everything in ours.values())
            report.fact(
                f"Answers checked ({where}): {len(queries)} tag-searches"
                + (
                    f" give the same {matches:,} versions from both systems, and the same "
                    "first page of 50 in the same order"
                    if not found
                    else f" DIFFER in {len(found)} place(s)"
                )
            )
    return mismatches


LIMITS = [
    "get-version reads one row of the versions view by its key; the latency is "
    "mostly the HTTP round trip and uvicorn/FastAPI's per-request work in one Python process, "
    "so it does not grow with the number of versions.",
    "tag-search walks the index of its rarest tag newest first and stops after a page of 50; "
    "its cost grows with the page, not with the catalogue.",
    "A UI page's server time runs from the request's arrival to its response's headers, the "
    "page rendered (Server-Timing); the client's time adds the body's transfer and the HTTP "
    "round trip. The pages read the views as the JSON API does, then render HTML with "
    "Jinja2 (and the lineage graph and charts as SVG) in the same Python process.",
    "MLflow's search joins the versions with their tags and filters in SQL (its schema has no "
    "index on tag values), then loads each version's tags through the ORM; its cost grows with "
    "the number of versions.",
    "The server, the load generator and the database share the machine's cores, so the "
    "several-clients column is bound by the CPU, not by the server's concurrency.",
    "Every write is durable when answered (SQLite synchronous=FULL by default; PostgreSQL "
    "at the server's synchronous_commit); the ledger's concurrent writes share commits "
    "(group commit) and answer once committed, and a later read waits until the views show "
    "them (read-your-writes); GET /health on the same server is the floor of a request "
    "that reads the store.",
]


if __name__ == "__main__":
    raise SystemExit(main())
