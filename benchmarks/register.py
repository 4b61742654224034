"""Model-version registration throughput: the ledger against MLflow and raw baselines.

What is measured, one after the other in one process on this machine:

1. ledger on SQLite (embedded): ``Ledger.register_model_version(name, path)``
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
   saving one new aggregate (one small event) per operation, on SQLite (its defaults)
   and on PostgreSQL: the floor under any application built on it.
5. the stores' ceilings: one single-row ``INSERT`` + commit per operation, with
   sqlite3 (WAL, synchronous=NORMAL like the ledger) and with psycopg.

Every operation is a separate, durable commit made by one thread. Each system is
warmed up with a few operations (on a separate model) before timing; rates are
operations over wall-clock time, and p50/p99 are of the per-operation latencies.
Everything created (schemas, the MLflow database, temporary directories) is
removed afterwards, also when a system fails.

Run (MLflow comes with the ``bench`` extra: ``.venv/bin/pip install -e ".[dev,bench]"``)::

    .venv/bin/python benchmarks/register.py                 # full run, N = 1,000
    .venv/bin/python benchmarks/register.py --quick         # versions 1..N only
    .venv/bin/python benchmarks/register.py --versions 500 --json results.json
    .venv/bin/python benchmarks/register.py --pg-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    Result,
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
from ledger.application import Ledger
from ledger.settings import Settings

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HIGH_START = 10_000  # the second range starts at this version number
WARMUP_OPS = 200
MODEL = "bench-model"
WARMUP_MODEL = "warmup-model"
TARGETS = {"SQLite": 4_000.0, "PostgreSQL": 1_200.0}  # ledger versions/s, from the issue
SAME_RATE_TOLERANCE = 0.10  # a 10k/1 ratio within 10% of 1.0 counts as "the same rate"

out = Console()
if not out.is_terminal:
    out.width = 132  # piped or redirected: keep the table on one line per row
progress = Console(stderr=True, log_path=False)


@dataclass(frozen=True)
class Plan:
    """What to run, from the command line."""

    versions: int
    quick: bool
    pg_url: str
    model_dir: Path

    @property
    def high_start(self) -> int:
        return max(HIGH_START, self.versions + 1)


# -- measuring a model registry -------------------------------------------------------------

Register = Callable[[str], int]  # register the next version of a model; return its number


def registry_rows(system: str, store: str, register: Register, plan: Plan) -> list[Result]:
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


@contextmanager
def open_ledger(settings: Settings) -> Iterator[Ledger]:
    ledger = Ledger(settings)
    try:
        yield ledger
    finally:
        ledger.close()


def ledger_register(ledger: Ledger, model_dir: Path) -> Register:
    return lambda name: ledger.register_model_version(name, model_dir).number


def bench_ledger_sqlite(plan: Plan) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        settings = Settings(home=Path(tmp) / ".ledger", store="")
        with open_ledger(settings) as ledger:
            return registry_rows("ledger", "SQLite", ledger_register(ledger, plan.model_dir), plan)


def bench_ledger_postgres(plan: Plan) -> list[Result]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp,
        scratch_schema(plan.pg_url, unique_name("bench")) as schema,
    ):
        settings = Settings(home=Path(tmp) / ".ledger", store=plan.pg_url, pg_schema=schema)
        with open_ledger(settings) as ledger:
            register = ledger_register(ledger, plan.model_dir)
            return registry_rows("ledger", "PostgreSQL", register, plan)


def bench_mlflow(plan: Plan) -> list[Result]:
    try:
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
    except ImportError as exc:
        return [
            Result(
                "MLflow",
                "PostgreSQL",
                "",
                note=f"not run: MLflow is not importable ({exc}); "
                'install it with .venv/bin/pip install -e ".[dev,bench]"',
            )
        ]
    for name in ("mlflow", "alembic"):  # schema migrations log at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    with scratch_database(plan.pg_url, unique_name("bench_mlflow")) as db_url:
        store = SqlAlchemyStore(sqlalchemy_url(db_url))
        try:
            for name in (WARMUP_MODEL, MODEL):
                store.create_registered_model(name)
            source = plan.model_dir.as_uri()

            def register(name: str) -> int:
                return int(store.create_model_version(name, source=source).version)

            return registry_rows("MLflow", "PostgreSQL", register, plan)
        finally:
            store.engine.dispose()


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy spelling of a postgresql:// URL, using psycopg 3 (the ledger's driver)."""
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql+psycopg"))


class Note(Aggregate):
    """The smallest useful aggregate: created with one short text."""

    def __init__(self, text: str) -> None:
        self.text = text


def bench_eventsourcing(plan: Plan) -> list[Result]:
    with scratch_schema(plan.pg_url, unique_name("bench_es")) as schema:
        pg = pg_params(plan.pg_url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": pg["dbname"],
            "POSTGRES_HOST": pg["host"],
            "POSTGRES_PORT": pg["port"],
            "POSTGRES_USER": pg["user"],
            "POSTGRES_PASSWORD": pg["password"],
            "POSTGRES_SCHEMA": schema,
        }
        app: Application[Any] = Application(env=env)
        try:
            return [baseline_row("eventsourcing", lambda i: app.save(Note(f"note {i}")), plan)]
        finally:
            app.close()


def bench_raw_psycopg(plan: Plan) -> list[Result]:
    with (
        scratch_schema(plan.pg_url, unique_name("bench_raw")) as schema,
        pg_connect(plan.pg_url) as conn,
    ):
        table = sql.Identifier(schema, "rows")
        conn.execute(
            sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, payload bytea NOT NULL)").format(
                table
            )
        )
        insert = sql.SQL("INSERT INTO {} (payload) VALUES (%s)").format(table)
        payload = os.urandom(256)
        return [baseline_row("raw psycopg", lambda i: conn.execute(insert, (payload,)), plan)]


def baseline_row(
    system: str, op: Callable[[int], object], plan: Plan, store: str = "PostgreSQL"
) -> Result:
    untimed_ops(op, 0, WARMUP_OPS)
    progress.log(f"{system} on {store}: {plan.versions:,} commits")
    seconds, latencies = timed_ops(op, 1, plan.versions)
    unit = "events (1 new aggregate each)" if system == "eventsourcing" else "INSERT+COMMIT"
    return Result(system, store, f"{plan.versions:,} {unit}", plan.versions, seconds, latencies)


def bench_eventsourcing_sqlite(plan: Plan) -> list[Result]:
    """eventsourcing's own save on a SQLite file (its defaults: WAL, synchronous=FULL)."""
    with tempfile.TemporaryDirectory(prefix="bench-es-") as tmp:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(tmp) / "es.db"),
        }
        app: Application[Any] = Application(env=env)
        try:
            return [
                baseline_row("eventsourcing", lambda i: app.save(Note(f"note {i}")), plan, "SQLite")
            ]
        finally:
            app.close()


def bench_raw_sqlite(plan: Plan) -> list[Result]:
    """The SQLite ceiling: one INSERT + COMMIT per operation (WAL, synchronous=NORMAL)."""
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB)")
        body = b"x" * 600
        try:
            return [
                baseline_row(
                    "raw sqlite3",
                    lambda i: conn.execute("INSERT INTO rows (body) VALUES (?)", (body,)),
                    plan,
                    "SQLite",
                )
            ]
        finally:
            conn.close()


SYSTEMS: list[tuple[str, str, Callable[[Plan], list[Result]]]] = [
    ("ledger", "SQLite", bench_ledger_sqlite),
    ("eventsourcing", "SQLite", bench_eventsourcing_sqlite),
    ("raw sqlite3", "SQLite", bench_raw_sqlite),
    ("ledger", "PostgreSQL", bench_ledger_postgres),
    ("MLflow", "PostgreSQL", bench_mlflow),
    ("eventsourcing", "PostgreSQL", bench_eventsourcing),
    ("raw psycopg", "PostgreSQL", bench_raw_psycopg),
]


def run_all(plan: Plan, pg_error: str) -> list[Result]:
    """Every system in turn; a failing one becomes a row with the reason, not a crash."""
    results: list[Result] = []
    for system, store, bench in SYSTEMS:
        if store == "PostgreSQL" and pg_error:
            results.append(Result(system, store, "", note="not run: PostgreSQL unreachable"))
            continue
        try:
            results.extend(bench(plan))
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            results.append(Result(system, store, "", note=f"failed: {type(exc).__name__}: {exc}"))
    return results


# -- reporting ------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def vs_target(row: Result) -> str:
    if row.target is None or row.rate is None or row.fill:
        return "—"
    ratio = row.rate / row.target
    colour = "green" if ratio >= 1 else "red"
    return f"[{colour}]{ratio:.2f}x of {row.target:,.0f}/s[/{colour}]"


def results_table(results: list[Result]) -> Table:
    table = Table(
        title="Model-version registration throughput (one writer, one commit per op)",
        caption="Baselines count events saved (eventsourcing) and rows inserted (sqlite3, "
        "psycopg) per s.",
    )
    table.add_column("System")
    table.add_column("Store")
    table.add_column("Range")
    table.add_column("versions/s", justify="right")
    table.add_column("p50 ms/op", justify="right")
    table.add_column("p99 ms/op", justify="right")
    table.add_column("vs target", justify="right")
    for row in results:
        if row.note:
            table.add_row(row.system, row.store, f"[yellow]{escape(row.note)}[/yellow]", *["—"] * 4)
            continue
        table.add_row(
            row.system,
            row.store,
            row.label,
            fmt(row.rate, ",.0f"),
            "—" if row.fill else fmt(row.p50_ms, ".2f"),
            "—" if row.fill else fmt(row.p99_ms, ".2f"),
            vs_target(row),
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
    for system, store, _ in SYSTEMS:
        low, high = rates.get((system, store, 1)), rates.get((system, store, plan.high_start))
        if low and high:
            ratios[f"{system} {store}"] = high / low
    return ratios


def describe_ratio(ratio: float) -> str:
    same = abs(ratio - 1) <= SAME_RATE_TOLERANCE
    return f"[{'green' if same else 'red'}]{ratio:.2f}[/]"


def print_report(results: list[Result], ratios: dict[str, float], plan: Plan) -> None:
    out.print(results_table(results))
    out.print(
        "Targets (issue): ledger ≥ 1,200 versions/s on PostgreSQL, ≥ 4,000 versions/s on "
        "SQLite, and the same rate at version 10,000 as at version 1."
    )
    if ratios:
        parts = [f"{name} {describe_ratio(ratio)}" for name, ratio in ratios.items()]
        out.print(
            f"Rate at {plan.high_start:,} / rate at 1 (1.00 = same; green within "
            f"±{SAME_RATE_TOLERANCE:.0%}): " + " · ".join(parts)
        )
    elif plan.quick:
        out.print(f"(--quick: the {HIGH_START:,} range was skipped, so no 10k/1 ratios)")


def machine_line(machine: dict[str, Any], postgres: dict[str, str], packages: list[str]) -> str:
    pg = (
        f"PostgreSQL {postgres['server_version']} (fsync={postgres['fsync']}, "
        f"synchronous_commit={postgres['synchronous_commit']})"
        if "server_version" in postgres
        else f"PostgreSQL unreachable ({postgres.get('error', '?')})"
    )
    return (
        f"{machine['date']} · {machine['cpu_count']} CPUs ({machine['cpu_model']}) · "
        f"Python {machine['python']} · {machine['platform']} · {pg}\n" + ", ".join(packages)
    )


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    out.print(f"Results written to {escape(str(path))}")


# -- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1_000, metavar="N", help="ops per range")
    parser.add_argument("--quick", action="store_true", help="skip the version-10,000 ranges")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, metavar="URL", help="PostgreSQL")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    args = parser.parse_args(argv)
    if args.versions < 1:
        parser.error("--versions must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    machine = machine_facts()
    try:
        postgres = pg_server_facts(args.pg_url)
        pg_error = ""
    except Exception as exc:
        pg_error = " ".join(str(exc).split())  # one line
        postgres = {"error": pg_error}
    packages = [
        package_version(name) for name in ("eventsourcing", "psycopg", "SQLAlchemy", "alembic")
    ]
    packages.insert(2, package_version("mlflow-skinny", "mlflow"))
    out.print(escape(machine_line(machine, postgres, packages)))
    mode = "quick: versions 1..N only" if args.quick else f"full: also versions from {HIGH_START:,}"
    out.print(f"N = {args.versions:,} per range ({mode}); PostgreSQL {redacted(args.pg_url)}")

    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        (model_dir / "weights.bin").write_bytes(os.urandom(1024))
        plan = Plan(args.versions, args.quick, args.pg_url, model_dir)
        results = run_all(plan, pg_error)

    ratios = rate_ratios(results, plan)
    print_report(results, ratios, plan)
    total = time.perf_counter() - started
    out.print(f"Total runtime: {total:.1f} s")
    if args.json:
        report = {
            "machine": machine,
            "postgres": postgres,
            "packages": packages,
            "options": {"versions": args.versions, "quick": args.quick},
            "targets_versions_per_s": {f"ledger {k}": v for k, v in TARGETS.items()},
            "results": [row.to_dict() for row in results],
            "rate_ratio_10k_over_1": ratios,
            "total_seconds": total,
        }
        write_json(args.json, report)
    return 1 if any(row.note.startswith("failed") for row in results) else 0


if __name__ == "__main__":
    sys.exit(main())
