"""Shared helpers for the benchmark scripts: timing, PostgreSQL scratch space, machine facts."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pickle
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table
from rich.text import Text

# The services a development machine runs (README: Development); each script takes --pg-url
# (and --nats-url where it uses NATS) to point elsewhere.
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"

# -- timing ----------------------------------------------------------------------------


@dataclass
class Result:
    """One measured row: ``count`` operations that took ``seconds`` in all."""

    system: str
    store: str
    label: str
    count: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    target: float | None = None
    fill: bool = False  # an untimed-per-op fill, shown for information
    start: int = 0  # the first version number of the range (0: not a version range)
    note: str = ""
    clients: int = 1  # writing at once

    @property
    def rate(self) -> float | None:
        return self.count / self.seconds if self.seconds > 0 else None

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float | None:
        return percentile(self.latencies_ms, 99)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_ms"]
        data.update(rate_per_s=self.rate, p50_ms=self.p50_ms, p99_ms=self.p99_ms)
        return data


def percentile(values: list[float], pct: int) -> float | None:
    """The ``pct``-th percentile (inclusive method), or None without enough samples."""
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def timed_ops(op: Callable[[int], object], first: int, count: int) -> tuple[float, list[float]]:
    """Call ``op(i)`` for i in first..first+count-1; return total seconds and per-op ms."""
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for i in range(first, first + count):
        before = clock()
        op(i)
        latencies.append((clock() - before) * 1000.0)
    return clock() - start, latencies


def untimed_ops(op: Callable[[int], object], first: int, count: int) -> float:
    """Call ``op(i)`` for i in first..first+count-1 as fast as possible; return seconds."""
    start = time.perf_counter()
    for i in range(first, first + count):
        op(i)
    return time.perf_counter() - start


def span(first: int, count: int) -> str:
    """``1..1,000`` style label for ``count`` consecutive numbers from ``first``."""
    return f"{first:,}..{first + count - 1:,}"


# -- PostgreSQL scratch space ------------------------------------------------------------


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def pg_connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def pg_params(url: str) -> dict[str, str]:
    """Host, port, user, password and database name of a postgresql:// URL."""
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 5432),
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "dbname": parts.path.strip("/") or "postgres",
    }


@contextmanager
def scratch_schema(url: str, name: str, *, create: bool = True) -> Iterator[str]:
    """A schema for one benchmark, dropped with everything in it afterwards, even on failure."""
    ident = sql.Identifier(name)
    if create:
        with pg_connect(url) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
    try:
        yield name
    finally:
        with pg_connect(url) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))


def analyze_schema(url: str, schema: str) -> None:
    """Fresh planner statistics for every table in ``schema`` (after a bulk fill)."""
    with pg_connect(url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))


@contextmanager
def scratch_database(url: str, name: str) -> Iterator[str]:
    """A fresh database; its connections are terminated and it is dropped afterwards."""
    ident = sql.Identifier(name)
    with pg_connect(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    try:
        yield with_database(url, name)
    finally:
        with pg_connect(url) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))


# -- servers under test ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(health_url: str, server: subprocess.Popen[bytes], what: str) -> None:
    """Poll ``health_url`` until it answers 200; fail if ``server`` exits or 120 s pass."""
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(health_url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


def ledger_env(settings: Any) -> dict[str, str]:
    """The LEDGER_* variables that point a `ledger` process at ``settings``' store."""
    env = {
        "LEDGER_HOME": str(settings.home),
        "LEDGER_LOG_LEVEL": "WARNING",
        "LEDGER_SQLITE_SYNCHRONOUS": settings.sqlite_synchronous,
        "LEDGER_SERVE_PORT": str(settings.serve_port),
        "LEDGER_COLLECT_FLUSH_S": str(settings.collect_flush_s),
    }
    if settings.store_location.kind == "postgres":
        env |= {"LEDGER_STORE": settings.store, "LEDGER_PG_SCHEMA": settings.pg_schema}
    return env


@contextmanager
def ledger_server(settings: Any) -> Iterator[str]:
    """`ledger serve` (uvicorn, one process) on ``settings``' store; yields its URL."""
    port = free_port()
    ledger_bin = shutil.which("ledger", path=os.path.dirname(sys.executable)) or "ledger"
    server = subprocess.Popen(
        [ledger_bin, "serve", "--port", str(port)],
        env={**os.environ, **ledger_env(settings)},
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", server, "`ledger serve`")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def ledger_with_model(
    name: str, model: Any, home: Path, *, batch: bool = True, **settings: Any
) -> tuple[Any, Any, str]:
    """A ledger of its own under ``home`` (``settings`` override its Settings) holding
    ``model`` and its ONNX conversion: the ledger, its settings and the conversion's
    NAME:VERSION; with ``batch``, a batch endpoint serving that with a replica per core."""
    # Imported here: the benchmarks that need no model do without ONNX's converters.
    from executors.onnx_conversion import convert_model_version
    from ledger.ledger import Ledger
    from ledger.settings import Settings

    options = {"executor": "local", "log_level": "ERROR", "serve_port": free_port()}
    ledger = Ledger(Settings(home=home / name, **(options | settings)))
    directory = home / f"{name}-model"
    directory.mkdir()
    (directory / "model.pkl").write_bytes(pickle.dumps(model))
    ledger.models.register_version(name, directory, flavor="sklearn")
    onnx_ref = convert_model_version(ledger, f"{name}:1", rows=1_000)[0].ref
    if batch:
        replicas = {"cpus": 1.0, "gpus": 0, "memory_mb": 1024, "replicas": os.cpu_count() or 1}
        ledger.endpoints.create("batch", "batch")
        ledger.endpoints.deploy("batch", "main", onnx_ref, resources=replicas)
        ledger.endpoints.set_traffic("batch", {"main": 100})
    return ledger, ledger.settings, onnx_ref


def online_latencies(
    url: str,
    token: str,
    rows: list[list[float]],
    rate: int,
    seconds: float,
    score: bool = True,
    correlation: str = "",
) -> list[float]:
    """One request every 1/rate s to ``url``'s online endpoint ``online``; latency from
    each request's scheduled start (ms).

    ``score=False`` sends ``GET /health`` instead: the same server's HTTP round trip with
    nothing scored, the floor under the scoring latency. With ``correlation``, request i
    carries the correlation id ``<correlation>-<i>`` (the rows it has collected carry it).
    """
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies = []
    count = int(rate * seconds)
    start = time.perf_counter()
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if correlation:
            headers["X-Correlation-ID"] = f"{correlation}-{i}"
        if score:
            body = json.dumps({"inputs": [rows[i % len(rows)]]})
            connection.request("POST", "/endpoints/online/score", body, headers)
        else:
            connection.request("GET", "/health", headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"score failed: {response.status}")
        latencies.append((time.perf_counter() - scheduled) * 1000)
    connection.close()
    return latencies


# -- the machine -------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pg_server_facts(url: str) -> dict[str, str]:
    """Server version and the durability settings that bound commit rates."""
    with pg_connect(url) as conn:
        facts = {}
        for setting in ("server_version", "fsync", "synchronous_commit"):
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()
            facts[setting] = str(row[0]) if row else "?"
        return facts


def package_version(*names: str) -> str:
    """``name version`` of the first installed distribution among ``names``."""
    for name in names:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return f"{names[0]} (not installed)"


def memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_facts() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": memory_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        # Other work on the machine while the benchmark ran (1, 5 and 15 minutes).
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def bench_console(**options: Any) -> Console:
    """A console for tables: wide enough for them when the output is piped to a file."""
    console = Console(**options)
    if not console.is_terminal:
        console.width = 140
    return console


# -- reports ----------------------------------------------------------------------------------


def plain(cell: object) -> str:
    """A Rich table cell as plain text (markup and styles dropped)."""
    if isinstance(cell, Text):
        return cell.plain
    return Text.from_markup(str(cell)).plain


def table_data(table: Table) -> dict[str, Any]:
    """A Rich table as plain data: title, caption, column headers and rows of text."""
    columns = [plain(column.header) for column in table.columns]
    cells = [[plain(cell) for cell in column.cells] for column in table.columns]
    return {
        "title": plain(table.title or ""),
        "caption": plain(table.caption or ""),
        "columns": columns,
        "rows": [list(row) for row in zip(*cells, strict=True)],
    }


@dataclass
class Report:
    """What one benchmark found: its tables, what limits each figure, and the set-up.

    ``show`` prints a table as it is ready; ``save`` writes everything as JSON, which
    ``benchmarks/run_all.py`` gathers into RESULTS.md.
    """

    title: str
    console: Console = field(default_factory=Console, repr=False)
    tables: list[dict[str, Any]] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)  # the set-up: sizes, server versions
    limits: list[str] = field(default_factory=list)  # what limits each figure

    def show(self, table: Table) -> None:
        self.console.print(table)
        self.tables.append(table_data(table))

    def fact(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)
        self.facts.append(text)

    def limit(self, text: str) -> None:
        self.console.print(f"Limit: {text}", markup=False, highlight=False)
        self.limits.append(text)

    def conclude(
        self, limits: list[str], args: argparse.Namespace, pg_url: str | None = None, **data: Any
    ) -> None:
        """Print the machine and what limits the figures; save, with ``args``, to ``--json``."""
        facts = machine_facts()
        self.console.print(
            f"{facts['cpu_count']} CPUs, {facts['cpu_model']}, Python {facts['python']}"
        )
        if pg_url:
            self.console.print(f"PostgreSQL {pg_server_facts(pg_url)}")
        for text in limits:
            self.limit(text)
        options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        self.save(args.json, options=options, **data)

    def save(self, path: Path | None, **data: Any) -> None:
        if path is None:
            return
        report = {
            "title": self.title,
            "machine": machine_facts(),
            "tables": self.tables,
            "facts": self.facts,
            "limits": self.limits,
            "data": data,
        }
        path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the tables and findings as JSON"
    )


def verdict(ok: bool, goal: str) -> str:
    """``ok`` or ``MISSED`` beside the goal, for a table's target column."""
    return f"ok ({goal})" if ok else f"MISSED ({goal})"
