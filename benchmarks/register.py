"""Model-version registration throughput: the ledger against MLflow and raw baselines.

What is measured, one after the other in one process on this machine:

1. ledger on SQLite (embedded): ``Ledger.models.register_version(name, path)``
   registering versions 1..N of one model, then (unless ``--quick``) the versions
   in between as fast as possible ("fill"), then versions 10,000..10,000+N-1.
   ``path`` is a directory holding one 1 KiB file; its content is the same each
   time, so the content-addressed artifact store writes it once and then only
   hashes it.
2. ledger on PostgreSQL: the same ranges, in a fresh schema ``bench_<hex>``.
3. MLflow's model registry (``SqlAlchemyStore``) on the same PostgreSQL server, in
   a fresh database ``bench_mlflow_<hex>``: ``create_registered_model`` once, then
   ``create_model_version`` for the same ranges. MLflow records only the source
   URI; it copies no files.
4. eventsourcing's own baseline: a plain ``eventsourcing.application.Application``
   saving one new aggregate (one small event) per operation, on SQLite and on
   PostgreSQL: the floor under any application built on it.
5. the stores' ceilings: one single-row ``INSERT`` + commit per operation, with
   sqlite3 and with psycopg.

6. the same systems (but eventsourcing) with 1, 8 and 32 clients at once, each a process
   of its own registering versions of a model of its own (N / clients each), and the
   ledger through ``ledger serve`` (one uvicorn process) with as many HTTP clients (threads
   of one load-generating process, each registering a 1 KiB file in one multipart request).
   The table's "Clients" column says how each row's clients ran.

Every operation is a separate commit. The three SQLite rows run at one setting, the
ledger's (WAL, ``PRAGMA synchronous=FULL`` by default: each commit is synced to disk and
survives a power loss; ``--sqlite-synchronous normal`` measures them all relaxed), read
back from each one's connection before timing; the PostgreSQL rows at the server's
``synchronous_commit`` and ``fsync``. The table's "Durability" column says which, per row.
Each system is warmed up with a few operations (on a separate model) before timing;
rates are operations over wall-clock time, and p50/p99 are of the per-operation latencies.
Everything created (schemas, the MLflow database, temporary directories) is
removed afterwards, also when a system fails.

Run (MLflow comes with the ``bench`` extra: ``.venv/bin/pip install -e ".[dev,bench]"``)::

    .venv/bin/python benchmarks/register.py                 # full run, N = 1,000
    .venv/bin/python benchmarks/register.py --quick         # versions 1..N only
    .venv/bin/python benchmarks/register.py --versions 500 --json results.json
    .venv/bin/python benchmarks/register.py --sqlite-synchronous normal  # all SQLite relaxed
    .venv/bin/python benchmarks/register.py --clients 8          # one concurrent level only
    .venv/bin/python benchmarks/register.py --pg-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import queue
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from psycopg import sql
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from _common import (
    DEFAULT_PG_URL,
    Report,
    Result,
    add_json_option,
    bench_console,
    ledger_server,
    machine_facts,
    package_version,
    pg_connect,
    pg_params,
    pg_server_facts,
    scratch_database,
    scratch_schema,
    span,
    timed_ops,
    unique_name,
    untimed_ops,
)
from _http_writes import client_models, run_clients
from _mlflow import quiet_migrations, sqlalchemy_url
from ledger.ledger import Ledger
from ledger.settings import Settings
from ledger.storage.sqlite import SynchronousPool

HIGH_START = 10_000  # the second range starts at this version number
WARMUP_OPS = 200
MODEL = "bench-model"
WARMUP_MODEL = "warmup-model"
TARGETS = {"SQLite": 4_000.0, "PostgreSQL": 1_200.0}  # ledger versions/s, from the issue
SAME_RATE_TOLERANCE = 0.10  # a 10k/1 ratio within 10% of 1.0 counts as "the same rate"

out = bench_console()
progress = Console(stderr=True, log_path=False)


@dataclass(frozen=True)
class Plan:
    """What to run, from the command line."""

    versions: int
    clients: tuple[int, ...]  # the concurrent levels
    quick: bool
    pg_url: str
    model_dir: Path
    sqlite_synchronous: str = "full"  # of every SQLite row: the ledger's, and the baselines'

    @property
    def high_start(self) -> int:
        return max(HIGH_START, self.versions + 1)


# -- measuring a model registry -------------------------------------------------------------


def registry_rows(system: str, store: str, register: Op, plan: Plan) -> list[Result]:
    """Versions 1..N, then (full runs) the fill up to 10,000 and versions 10,000..10,000+N-1."""
    target = TARGETS.get(store) if system == "ledger" else None

    def op(expected: int) -> None:
        number = register(MODEL)
        if number != expected:
            raise RuntimeError(f"{system}: registered version {number}, expected {expected}")

    for _ in range(WARMUP_OPS):
        register(WARMUP_MODEL)
    rows = [timed_range(system, store, op, 1, plan.versions, target)]
    if plan.quick:
        return rows
    fill_first, fill_count = plan.versions + 1, plan.high_start - plan.versions - 1
    if fill_count > 0:
        progress.log(f"{system} on {store}: fill {span(fill_first, fill_count)}")
        seconds = untimed_ops(op, fill_first, fill_count)
        label = f"{span(fill_first, fill_count)} (fill)"
        rows.append(Result(system, store, label, fill_count, seconds, fill=True, start=fill_first))
    rows.append(timed_range(system, store, op, plan.high_start, plan.versions, target))
    return rows


def timed_range(
    system: str, store: str, op: Callable[[int], None], first: int, count: int, target: float | None
) -> Result:
    progress.log(f"{system} on {store}: versions {span(first, count)}")
    seconds, latencies = timed_ops(op, first, count)
    return Result(system, store, span(first, count), count, seconds, latencies, target, start=first)


# -- the systems ----------------------------------------------------------------------------
#
# A system is set up once (``prepared``: a store of its own) and then opened by each client
# (``client``), so the same code measures one client in this process and several clients in
# processes of their own.


@dataclass(frozen=True)
class Place:
    """A system's scratch store: picklable, so that client processes can open it too."""

    system: str
    store: str
    home: Path  # a scratch directory: the SQLite files, the ledger's artifacts
    model_dir: Path
    pg_url: str = ""
    schema: str = ""
    sqlite_synchronous: str = "full"


@contextmanager
def prepared(system: str, store: str, plan: Plan) -> Iterator[Place]:
    """A fresh store for ``system``, removed afterwards even when the run fails."""
    with tempfile.TemporaryDirectory(prefix="bench-register-") as tmp:
        home = Path(tmp)
        if store == "SQLite":
            yield Place(
                system, store, home, plan.model_dir, sqlite_synchronous=plan.sqlite_synchronous
            )
        elif system == "MLflow":
            with scratch_database(plan.pg_url, unique_name("bench_mlflow")) as url:
                yield Place(system, store, home, plan.model_dir, url)
        else:
            with scratch_schema(plan.pg_url, unique_name("bench")) as schema:
                yield Place(system, store, home, plan.model_dir, plan.pg_url, schema)


Op = Callable[[str], object]  # one durable write for the named model; registries return its number


def ledger_settings(place: Place) -> Settings:
    store = {"store": place.pg_url, "pg_schema": place.schema} if place.pg_url else {"store": ""}
    return Settings(
        home=place.home / ".ledger", sqlite_synchronous=place.sqlite_synchronous, **store
    )


@contextmanager
def ledger_client(place: Place, models: list[str]) -> Iterator[Op]:
    ledger = Ledger(ledger_settings(place))
    try:
        if not place.pg_url:
            check_synchronous(place, ledger.recorder.datastore)  # type: ignore[attr-defined]
        yield lambda name: ledger.models.register_version(name, place.model_dir).number
    finally:
        ledger.close()


@contextmanager
def mlflow_client(place: Place, models: list[str]) -> Iterator[Op]:
    """MLflow's registry store; it records the source URI and copies no files."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    quiet_migrations()
    store = SqlAlchemyStore(sqlalchemy_url(place.pg_url))
    try:
        for name in models:
            try:
                store.create_registered_model(name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
        source = place.model_dir.as_uri()
        yield lambda name: int(store.create_model_version(name, source=source).version)
    finally:
        store.engine.dispose()


class Note(Aggregate):
    """The smallest useful aggregate: created with one short text."""

    def __init__(self, text: str) -> None:
        self.text = text


@contextmanager
def eventsourcing_client(place: Place, models: list[str]) -> Iterator[Op]:
    """eventsourcing's own save of one new aggregate: the floor under any application on it.

    SQLite in WAL mode (its default) at the ledger's synchronous setting, set the way the
    ledger sets it (eventsourcing's own default is FULL).
    """
    if place.pg_url:
        pg = pg_params(place.pg_url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": pg["dbname"],
            "POSTGRES_HOST": pg["host"],
            "POSTGRES_PORT": pg["port"],
            "POSTGRES_USER": pg["user"],
            "POSTGRES_PASSWORD": pg["password"],
            "POSTGRES_SCHEMA": place.schema,
        }
    else:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(place.home / "es.db"),
        }
    app: Application[Any] = Application(env=env)
    try:
        if not place.pg_url:
            datastore = app.recorder.datastore  # type: ignore[attr-defined]
            datastore.pool.close()
            datastore.pool = SynchronousPool(
                db_name=datastore.pool.db_name,
                lock_timeout=datastore.pool.lock_timeout,
                synchronous=place.sqlite_synchronous.upper(),
            )
            check_synchronous(place, datastore)
        yield lambda name: app.save(Note(name))
    finally:
        app.close()


def rows_table(conn: Any, place: Place) -> sql.Identifier:
    """The raw clients' table in the place's schema, created if missing."""
    table = sql.Identifier(place.schema, "rows")
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, payload bytea NOT NULL)"
        ).format(table)
    )
    return table


@contextmanager
def raw_psycopg_client(place: Place, models: list[str]) -> Iterator[Op]:
    """The PostgreSQL ceiling: one single-row INSERT + commit per operation."""
    with pg_connect(place.pg_url) as conn:
        table = rows_table(conn, place)
        insert = sql.SQL("INSERT INTO {} (payload) VALUES (%s)").format(table)
        payload = os.urandom(256)
        yield lambda name: conn.execute(insert, (payload,))


@contextmanager
def raw_locked_client(place: Place, models: list[str]) -> Iterator[Op]:
    """raw psycopg's INSERT + commit holding the table's EXCLUSIVE lock, as each append of an
    eventsourcing PostgreSQL recorder does (so that readers never see a gap in the
    positions): beside raw psycopg, what that lock costs clients that do not share commits,
    which is the most a design without it (positions from a sequencer) could win."""
    with pg_connect(place.pg_url) as conn:
        table = rows_table(conn, place)
        lock = sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table)
        insert = sql.SQL("INSERT INTO {} (payload) VALUES (%s)").format(table)
        payload = os.urandom(256)

        def locked_insert(name: str) -> None:
            with conn.transaction():
                conn.execute(lock)
                conn.execute(insert, (payload,))

        yield locked_insert


@contextmanager
def raw_sqlite_client(place: Place, models: list[str]) -> Iterator[Op]:
    """The SQLite ceiling: one INSERT + COMMIT per operation (WAL, the ledger's synchronous)."""
    conn = sqlite3.connect(place.home / "raw.db", isolation_level=None, timeout=60)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={place.sqlite_synchronous.upper()}")
        synchronous_is(place, conn.execute("PRAGMA synchronous").fetchone()[0])
        conn.execute("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, body BLOB)")
        body = b"x" * 600
        yield lambda name: conn.execute("INSERT INTO rows (body) VALUES (?)", (body,))
    finally:
        conn.close()


SYNCHRONOUS_LEVELS = {0: "off", 1: "normal", 2: "full", 3: "extra"}


def check_synchronous(place: Place, datastore: Any) -> None:
    """Read ``PRAGMA synchronous`` back from an eventsourcing datastore's writer."""
    with datastore.transaction(commit=True) as cursor:
        cursor.execute("PRAGMA synchronous")
        synchronous_is(place, cursor.fetchone()[0])


def synchronous_is(place: Place, level: int) -> None:
    """Refuse to time a SQLite row at another setting than the report states."""
    found = SYNCHRONOUS_LEVELS.get(level, str(level))
    if found != place.sqlite_synchronous:
        raise RuntimeError(
            f"{place.system}: SQLite synchronous={found}, expected {place.sqlite_synchronous}"
        )


def durability(store: str, plan: Plan, postgres: dict[str, str]) -> str:
    """The commit durability every row on ``store`` was measured at."""
    if store == "SQLite":
        return f"WAL, synchronous={plan.sqlite_synchronous.upper()}"
    if "synchronous_commit" not in postgres:
        return "—"
    return f"synchronous_commit={postgres['synchronous_commit']}, fsync={postgres['fsync']}"


CLIENTS: dict[str, Callable[[Place, list[str]], AbstractContextManager[Op]]] = {
    "ledger": ledger_client,
    "MLflow": mlflow_client,
    "eventsourcing": eventsourcing_client,
    "raw psycopg": raw_psycopg_client,
    "raw psycopg, table lock": raw_locked_client,
    "raw sqlite3": raw_sqlite_client,
}
REGISTRIES = {"ledger", "MLflow"}  # the others are baselines: one event or one row per op

SYSTEMS: list[tuple[str, str]] = [
    ("ledger", "SQLite"),
    ("eventsourcing", "SQLite"),
    ("raw sqlite3", "SQLite"),
    ("ledger", "PostgreSQL"),
    ("MLflow", "PostgreSQL"),
    ("eventsourcing", "PostgreSQL"),
    ("raw psycopg", "PostgreSQL"),
]
SERVED = "ledger serve"  # the ledger through its HTTP API, measured with several clients only
THREADED = "ledger, one process"  # one Ledger shared by client threads: its group commit joins them
CONCURRENT_SYSTEMS = [
    ("ledger", "SQLite"),
    (THREADED, "SQLite"),
    (SERVED, "SQLite"),
    ("raw sqlite3", "SQLite"),
    ("ledger", "PostgreSQL"),
    (THREADED, "PostgreSQL"),
    (SERVED, "PostgreSQL"),
    ("MLflow", "PostgreSQL"),
    ("raw psycopg", "PostgreSQL"),
    ("raw psycopg, table lock", "PostgreSQL"),
]


def one_client(system: str, store: str, plan: Plan) -> list[Result]:
    with (
        prepared(system, store, plan) as place,
        CLIENTS[system](place, [WARMUP_MODEL, MODEL]) as op,
    ):
        if system in REGISTRIES:
            return registry_rows(system, store, op, plan)
        return [baseline_row(system, store, op, plan)]


def baseline_row(system: str, store: str, op: Op, plan: Plan) -> Result:
    untimed_ops(lambda i: op(WARMUP_MODEL), 0, WARMUP_OPS)
    progress.log(f"{system} on {store}: {plan.versions:,} commits")
    seconds, latencies = timed_ops(lambda i: op(MODEL), 1, plan.versions)
    unit = "events (1 new aggregate each)" if system == "eventsourcing" else "INSERT+COMMIT"
    return Result(system, store, f"{plan.versions:,} {unit}", plan.versions, seconds, latencies)


# -- several clients at once ------------------------------------------------------------------


def many_clients(system: str, store: str, plan: Plan, clients: int) -> list[Result]:
    """``clients`` processes (``ledger serve``: HTTP clients), each writing versions of a
    model of its own, at once.

    The rate is all their operations over the time from the first start to the last end.
    """
    per_client = max(1, plan.versions // clients)
    progress.log(f"{system} on {store}: {plural(clients, 'client')} x {per_client:,} ops")
    label = f"{plural(clients, 'client')} x {per_client:,} versions"
    if system not in REGISTRIES | {SERVED, THREADED}:
        label = f"{plural(clients, 'client')} x {per_client:,} INSERT+COMMIT"
    target = TARGETS.get(store) if system in ("ledger", SERVED, THREADED) else None
    with prepared(system, store, plan) as place:
        if system == SERVED:
            seconds, latencies = served_clients(place, clients, per_client)
        elif system == THREADED:
            seconds, latencies = client_threads(place, clients, per_client)
        else:
            seconds, latencies = client_processes(place, clients, per_client)
    count = len(latencies)
    return [Result(system, store, label, count, seconds, latencies, target, clients=clients)]


def client_processes(place: Place, clients: int, per_client: int) -> tuple[float, list[float]]:
    """Seconds from the first client's start to the last one's end, and every op's ms."""
    spawn = multiprocessing.get_context("spawn")
    with CLIENTS[place.system](place, [WARMUP_MODEL]) as op:
        op(WARMUP_MODEL)  # the schema exists before the clients start
    barrier, results = spawn.Barrier(clients), spawn.Queue()
    warmup = warmup_ops(clients)
    processes = [
        spawn.Process(target=client_process, args=(place, i, per_client, warmup, barrier, results))
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=600) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return spanned(outcomes)


def client_threads(place: Place, clients: int, per_client: int) -> tuple[float, list[float]]:
    """``clients`` threads of this process sharing one Ledger (as the threads of one
    `ledger serve` or worker do, without HTTP); as ``client_processes`` measures."""
    barrier: Any = threading.Barrier(clients)
    results: queue.Queue[Any] = queue.Queue()
    with ledger_client(place, [WARMUP_MODEL]) as op:
        op(WARMUP_MODEL)
        threads = [
            threading.Thread(
                target=timed_client, args=(op, i, per_client, warmup_ops(clients), barrier, results)
            )
            for i in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return spanned([results.get_nowait() for _ in threads])


def warmup_ops(clients: int) -> int:
    return min(WARMUP_OPS // 4, max(5, WARMUP_OPS * 2 // clients))


def spanned(outcomes: list[Any]) -> tuple[float, list[float]]:
    """From the clients' outcomes: seconds from the first start to the last end, and every
    op's ms; a client's error (a string) is raised."""
    errors = [outcome for outcome in outcomes if isinstance(outcome, str)]
    if errors:
        raise RuntimeError(errors[0])
    starts, ends, latencies = zip(*outcomes, strict=True)
    return max(ends) - min(starts), [ms for client in latencies for ms in client]


def served_clients(place: Place, clients: int, per_client: int) -> tuple[float, list[float]]:
    """``ledger serve`` on the place's store, and ``clients`` HTTP clients registering
    through it from one load-generating process (keep-alive connections, one thread each)."""
    settings = ledger_settings(place)
    with Ledger(settings) as ledger:
        token = ledger.tokens.create("bench", "contributor").secret
    spawn = multiprocessing.get_context("spawn")
    with ledger_server(settings) as url, spawn.Pool(1) as load_generator:
        warmup = client_models(WARMUP_MODEL, clients)
        load_generator.apply(
            run_clients, (url, token, "ledger", "registration", warmup, 5 * clients)
        )
        models = client_models(MODEL, clients)
        load = load_generator.apply(
            run_clients,
            (url, token, "ledger", "registration", models, per_client * clients),
            {"budget_s": 600.0},
        )
    return len(load.latencies_ms) / load.rate, load.latencies_ms


def client_process(
    place: Place, index: int, count: int, warmup_ops: int, barrier: Any, results: Any
) -> None:
    """One client process: open the system, then time it as ``timed_client`` does."""
    try:
        with CLIENTS[place.system](place, [f"{WARMUP_MODEL}-{index}", f"{MODEL}-{index}"]) as op:
            timed_client(op, index, count, warmup_ops, barrier, results)
    except Exception as exc:
        barrier.abort()
        results.put(f"client {index}: {type(exc).__name__}: {exc}")


def timed_client(
    op: Op, index: int, count: int, warmup_ops: int, barrier: Any, results: Any
) -> None:
    """One client: warm up, wait for the others, then time ``count`` operations; put
    (start, end, latencies) or an error message into ``results``."""
    try:
        model, warmup = f"{MODEL}-{index}", f"{WARMUP_MODEL}-{index}"
        untimed_ops(lambda i: op(warmup), 0, warmup_ops)
        barrier.wait(timeout=300)
        start = time.monotonic()
        _, latencies = timed_ops(lambda i: op(model), 1, count)
        results.put((start, time.monotonic(), latencies))
    except Exception as exc:
        barrier.abort()
        results.put(f"client {index}: {type(exc).__name__}: {exc}")


def run_all(plan: Plan, pg_error: str) -> tuple[list[Result], list[Result]]:
    """Every system, one client and then several; a failure becomes a row with the reason."""
    single: list[Result] = []
    concurrent: list[Result] = []
    for system, store in SYSTEMS:
        single.extend(guarded(one_client, system, store, plan, pg_error))
    for clients in plan.clients:
        for system, store in CONCURRENT_SYSTEMS:
            bench = functools.partial(many_clients, clients=clients)
            concurrent.extend(guarded(bench, system, store, plan, pg_error, clients))
    return single, concurrent


def guarded(
    bench: Callable[[str, str, Plan], list[Result]],
    system: str,
    store: str,
    plan: Plan,
    pg_error: str,
    clients: int = 1,
) -> list[Result]:
    def failed(note: str) -> list[Result]:
        return [Result(system, store, "", note=note, clients=clients)]

    if store == "PostgreSQL" and pg_error:
        return failed("not run: PostgreSQL unreachable")
    try:
        return bench(system, store, plan)
    except ImportError as exc:
        return failed(
            f'not run: {exc}; install the bench extra: .venv/bin/pip install -e ".[dev,bench]"'
        )
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        return failed(f"failed: {type(exc).__name__}: {exc}")


# -- reporting ------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def vs_target(row: Result) -> str:
    if row.target is None or row.rate is None or row.fill:
        return "—"
    ratio = row.rate / row.target
    colour = "green" if ratio >= 1 else "red"
    return f"[{colour}]{ratio:.2f}x of {row.target:,.0f}/s[/{colour}]"


def plural(count: int, noun: str, many: str = "") -> str:
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


def how_clients_ran(row: Result, concurrent: bool) -> str:
    """How a row's clients ran (HOW_CLIENTS_RAN says more): in this process, in processes of
    their own, or over HTTP."""
    if not concurrent:
        return "this process"
    if row.system == SERVED:
        return f"{row.clients} over HTTP"
    if row.system == THREADED:
        return plural(row.clients, "thread")
    return plural(row.clients, "process", "processes")


HOW_CLIENTS_RAN = (
    "Clients: N processes each hold their own Ledger, SqlAlchemyStore (MLflow) or connection "
    "(raw); N threads (`ledger, one process`) share one Ledger in this process, so its group "
    "commit joins their saves; N over HTTP are N threads of one load-generating process, each "
    "on a keep-alive connection to one `ledger serve` process (uvicorn), registering a 1 KiB "
    "file in one multipart request; every client registers versions of a model of its own."
)


def results_table(
    title: str, results: list[Result], settings: dict[str, str], *, concurrent: bool = False
) -> Table:
    """The rows, each with how its clients ran and the durability setting it was measured at
    (``settings[store]``)."""
    table = Table(
        title=title,
        caption="Baselines count events saved (eventsourcing) and rows inserted (sqlite3, "
        "psycopg) per s.",
    )
    table.add_column("System")
    table.add_column("Store")
    table.add_column("Clients")
    table.add_column("Range")
    table.add_column("versions/s", justify="right")
    table.add_column("p50 ms/op", justify="right")
    table.add_column("p99 ms/op", justify="right")
    table.add_column("vs target", justify="right")
    table.add_column("Durability")
    for row in results:
        setting = settings.get(row.store, "—")
        clients = how_clients_ran(row, concurrent)
        if row.note:
            note = f"[yellow]{escape(row.note)}[/yellow]"
            table.add_row(row.system, row.store, clients, note, *["—"] * 4, setting)
            continue
        table.add_row(
            row.system,
            row.store,
            clients,
            row.label,
            fmt(row.rate, ",.0f"),
            "—" if row.fill else fmt(row.p50_ms, ".2f"),
            "—" if row.fill else fmt(row.p99_ms, ".2f"),
            vs_target(row),
            setting,
            style="dim" if row.fill else None,
        )
    return table


def rate_ratios(results: list[Result], plan: Plan) -> dict[str, float]:
    """Rate at version 10,000 divided by the rate at version 1, per system and store."""
    rates: dict[tuple[str, str, int], float] = {}
    for row in results:
        if not row.fill and row.rate is not None:
            rates[(row.system, row.store, row.start)] = row.rate
    ratios = {}
    for system, store in SYSTEMS:
        low, high = rates.get((system, store, 1)), rates.get((system, store, plan.high_start))
        if low and high:
            ratios[f"{system} {store}"] = high / low
    return ratios


def first_rate(results: list[Result], system: str, store: str) -> float | None:
    return next((r.rate for r in results if (r.system, r.store) == (system, store)), None)


def speedup(results: list[Result], store: str) -> str:
    """How much faster the ledger would have to run to meet its target on ``store``."""
    value = first_rate(results, "ledger", store)
    return "—" if not value else f"{TARGETS[store] / value:.1f}x"


def share(results: list[Result], store: str, baseline: str) -> str:
    """The ledger's rate on ``store`` as a multiple of ``baseline``'s (first ranges)."""
    ours, theirs = first_rate(results, "ledger", store), first_rate(results, baseline, store)
    return "—" if not ours or not theirs else f"{ours / theirs:.2f}x"


def limits(single: list[Result], concurrent: list[Result], plan: Plan) -> list[str]:
    """What bounds each figure, with the numbers of this run."""

    def rate(rows: list[Result], system: str, store: str) -> str:
        value = first_rate(rows, system, store)
        return "—" if value is None else f"{value:,.0f}/s"

    return [
        "Every operation is a commit of its own (durable: see the Durability column), so each "
        "figure is bound by its "
        "store's commit path: compare each system with the raw INSERT+COMMIT rows (the "
        "ceiling) and with eventsourcing's one-event save (the floor under any application "
        "built on that library).",
        f"ledger on SQLite ({rate(single, 'ledger', 'SQLite')}): one registration hashes the "
        "model's files, then writes two events (the model's version counter and the version) "
        "and their two chain links in one transaction. Profiled with py-spy (at "
        "synchronous=NORMAL; at FULL the commit's fsync takes a larger share), its time is "
        "spread out: storing the files about 20 %, SQLite's transaction and commit about 20 %, "
        "inserting the events and chaining them about 18 %, building the domain events about "
        "13 %, encoding them about 10 %. In this run it ran at "
        f"{share(single, 'SQLite', 'eventsourcing')} the rate of eventsourcing's own one-event "
        f"save ({rate(single, 'eventsourcing', 'SQLite')}) and "
        f"{share(single, 'SQLite', 'raw sqlite3')} that of one raw INSERT+COMMIT "
        f"({rate(single, 'raw sqlite3', 'SQLite')}), all three at synchronous="
        f"{plan.sqlite_synchronous.upper()}"
        + (
            ": each commit waits for an fsync, so all three follow the disk's sync latency, "
            "which moves a lot from run to run on a shared virtual machine"
            if plan.sqlite_synchronous == "full"
            else ""
        )
        + f". The {TARGETS['SQLite']:,.0f}/s target is {speedup(single, 'SQLite')} this rate.",
        f"ledger on PostgreSQL ({rate(single, 'ledger', 'PostgreSQL')}): one round trip for "
        "the insert (a stored function) and one WAL flush per commit; the events table is "
        "locked for the insert so that the log's positions never show gaps to readers.",
        "Several clients: the machine has "
        f"{os.cpu_count()} cores shared by the clients, `ledger serve` "
        "and the database server. On SQLite the ledger's writers queue on a file lock for "
        "SQLite's one write lock (the raw sqlite3 clients sleep in SQLite's busy wait instead), "
        "and their tail is the clients waiting for a core; on PostgreSQL commits of different "
        "clients share WAL flushes while the ledger's writers queue for the events table "
        "lock; the ledger's own group commit joins the saves of one process's threads, so "
        "N client processes (N Ledgers) do not share commits, while the threads of one "
        "`ledger serve` do. Through `ledger serve` each registration is also an HTTP request "
        "(the multipart upload parsed and stored in the same process, on the same cores).",
        "MLflow's registry store runs several ORM queries per new version (the model, its "
        "latest version number, the insert, the model's update)"
        + (
            f"; at version {plan.high_start:,} it ran at {mlflow_ratio:.2f} of its rate at "
            "version 1."
            if (mlflow_ratio := rate_ratios(single, plan).get("MLflow PostgreSQL"))
            else "."
        ),
    ]


def print_report(
    report: Report,
    single: list[Result],
    concurrent: list[Result],
    plan: Plan,
    settings: dict[str, str],
) -> None:
    report.show(
        results_table("Registering a version, one client (one commit per op)", single, settings)
    )
    levels = ", ".join(str(clients) for clients in plan.clients)
    report.show(
        results_table(
            f"Registering a version, {levels} clients at once (each its own model)",
            concurrent,
            settings,
            concurrent=True,
        )
    )
    report.fact(HOW_CLIENTS_RAN)
    served = served_over_raw(concurrent)
    if served:
        report.fact(
            "Through one `ledger serve`, and threads of one process, against raw INSERT+COMMIT "
            "with as many clients (target: with 8+ clients, at least the raw 8-client rate): "
            + " · ".join(served)
        )
    locked = lock_cost(concurrent)
    if locked:
        report.fact(
            "The events table's lock (gap-free positions) at the raw level, INSERT+COMMIT with "
            "it over without it: " + " · ".join(locked) + ". That is the most positions "
            "assigned without the lock (a sequencer) could win for clients that share no "
            "commits; the ledger's group commit takes the lock once per batch of commands."
        )
    report.fact(
        "Targets (issue): ledger ≥ 1,200 versions/s on PostgreSQL, ≥ 4,000 versions/s on "
        "SQLite, and the same rate at version 10,000 as at version 1."
    )
    ratios = rate_ratios(single, plan)
    if ratios:
        parts = [f"{name} {ratio:.2f}" for name, ratio in ratios.items()]
        report.fact(f"Rate at {plan.high_start:,} / rate at 1 (1.00 = same): " + " · ".join(parts))
    elif plan.quick:
        report.fact(f"(--quick: the {HIGH_START:,} range was skipped, so no 10k/1 ratios)")
    for text in limits(single, concurrent, plan):
        report.limit(text)


def lock_cost(concurrent: list[Result]) -> list[str]:
    """Per level: raw psycopg's rate with the table lock over its rate without."""
    rates = {(r.system, r.clients): r.rate for r in concurrent if r.rate and r.store != "SQLite"}
    return [
        f"{plural(clients, 'client')} {rate / free:.2f}x"
        for (system, clients), rate in rates.items()
        if system == "raw psycopg, table lock" and (free := rates.get(("raw psycopg", clients)))
    ]


def served_over_raw(concurrent: list[Result]) -> list[str]:
    """Per store and level: ``ledger serve``'s rate over raw INSERT+COMMIT's, same clients."""
    raw = {"SQLite": "raw sqlite3", "PostgreSQL": "raw psycopg"}
    rates = {(r.system, r.store, r.clients): r.rate for r in concurrent if r.rate}
    found = []
    for (system, store, clients), rate in rates.items():
        theirs = rates.get((raw[store], store, clients))
        if system in (SERVED, THREADED) and theirs:
            found.append(f"{system} on {store}, {plural(clients, 'client')} {rate / theirs:.2f}x")
    return found


def machine_line(machine: dict[str, Any], postgres: dict[str, str], packages: list[str]) -> str:
    pg = (
        f"PostgreSQL {postgres['server_version']} (fsync={postgres['fsync']}, "
        f"synchronous_commit={postgres['synchronous_commit']})"
        if "server_version" in postgres
        else f"PostgreSQL unreachable ({postgres.get('error', '?')})"
    )
    return (
        f"{machine['cpu_count']} CPUs ({machine['cpu_model']}) · Python {machine['python']} · "
        f"{pg} · " + ", ".join(packages)
    )


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


# -- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1_000, metavar="N", help="ops per range")
    parser.add_argument(
        "--clients",
        default="1,8,32",
        type=lambda text: tuple(int(level) for level in text.split(",")),
        help="comma-separated numbers of clients for the concurrent runs",
    )
    parser.add_argument("--quick", action="store_true", help="skip the version-10,000 ranges")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, metavar="URL", help="PostgreSQL")
    parser.add_argument(
        "--sqlite-synchronous",
        choices=["full", "normal"],
        default=Settings.model_fields["sqlite_synchronous"].default,
        help="PRAGMA synchronous of every SQLite row (default: the ledger's default)",
    )
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.versions < 1 or min(args.clients) < 1:
        parser.error("--versions and --clients must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    report = Report("Registering model versions", console=out)
    try:
        postgres = pg_server_facts(args.pg_url)
        pg_error = ""
    except Exception as exc:
        pg_error = " ".join(str(exc).split())  # one line
        postgres = {"error": pg_error}
    packages = [
        package_version(name)
        for name in ("eventsourcing", "psycopg", "mlflow", "SQLAlchemy", "alembic")
    ]
    report.fact(machine_line(machine_facts(), postgres, packages))
    mode = "quick: versions 1..N only" if args.quick else f"full: also versions from {HIGH_START:,}"
    report.fact(f"N = {args.versions:,} per range ({mode}); PostgreSQL {redacted(args.pg_url)}")

    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        (model_dir / "weights.bin").write_bytes(os.urandom(1024))
        plan = Plan(
            args.versions,
            args.clients,
            args.quick,
            args.pg_url,
            model_dir,
            args.sqlite_synchronous,
        )
        settings = {store: durability(store, plan, postgres) for store in ("SQLite", "PostgreSQL")}
        report.fact(
            "Durability: SQLite rows (ledger, eventsourcing, raw sqlite3) "
            f"{settings['SQLite']}, read back from each one's connection; PostgreSQL rows "
            f"(all clients of one server) {settings['PostgreSQL']}."
        )
        single, concurrent = run_all(plan, pg_error)

    print_report(report, single, concurrent, plan, settings)
    total = time.perf_counter() - started
    out.print(f"Total runtime: {total:.1f} s")
    report.save(
        args.json,
        postgres=postgres,
        packages=packages,
        options={
            "versions": args.versions,
            "clients": list(args.clients),
            "quick": args.quick,
            "sqlite_synchronous": args.sqlite_synchronous,
        },
        durability=settings,
        targets_versions_per_s={f"ledger {k}": v for k, v in TARGETS.items()},
        one_client=[row.to_dict() for row in single],
        clients=[row.to_dict() for row in concurrent],
        rate_ratio_10k_over_1=rate_ratios(single, plan),
    )
    failed = any(row.note.startswith("failed") for row in single + concurrent)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
