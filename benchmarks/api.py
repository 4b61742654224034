"""HTTP API benchmark: get-version and tag-search latency and throughput at 100k versions.

Fills a fresh store with models and versions (tagged by team and stage), brings the
views up to date, starts `ledger serve` (uvicorn, one process) and measures from a
load generator in another process, over keep-alive connections with a bearer token:

- latency: one client, requests back to back (p50, p99, max);
- throughput: several clients at once (requests/s).

    .venv/bin/python benchmarks/api.py                 # 100k versions, SQLite and PostgreSQL
    .venv/bin/python benchmarks/api.py --versions 10000 --stores sqlite
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

# benchmarks/projections.py shadows the `projections` package: look in this directory last.
sys.path.append(sys.path.pop(0))

from _common import machine_facts, percentile, pg_server_facts, scratch_schema, unique_name
from ledger.application import Ledger
from ledger.domain import EventMeta, Model, ModelVersion, acting
from ledger.domain.model import VersionSpec
from ledger.settings import Settings
from projections.runner import ProjectionRunner

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
VERSIONS_PER_MODEL = 100
TEAMS = 20
STAGES = ("dev", "staging", "prod")
TARGETS_MS = {"get-version": 3.0, "tag-search": 15.0}
console = Console(width=140)


# -- the store ---------------------------------------------------------------------------


@contextmanager
def store(kind: str, pg_url: str) -> Iterator[Settings]:
    home = Path(tempfile.mkdtemp())
    try:
        if kind == "postgres":
            with scratch_schema(pg_url, unique_name("bench_api"), create=False) as schema:
                yield Settings(store=pg_url, pg_schema=schema, home=home)
        else:
            yield Settings(home=home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def fill(settings: Settings, versions: int, progress: Progress) -> None:
    """``versions`` versions, ``VERSIONS_PER_MODEL`` per model, saved a model at a time.

    The versions are built as the register command builds them, with one stored
    file shared by all (hashing files is not what this benchmark measures).
    """
    task = progress.add_task(f"registering {versions:,} versions", total=versions)
    ledger = Ledger(settings)
    source = Path(tempfile.mkdtemp()) / "model.onnx"
    source.write_bytes(b"weights" * 100)
    digest, size = ledger.artifacts.put_file(source)
    rng = random.Random(11)
    meta = EventMeta(actor="bench", reason="fill", correlation_id="bench")
    for m in range(versions // VERSIONS_PER_MODEL):
        name = f"model-{m:05d}"
        with acting(meta):
            model = Model.register(name)
            aggregates: list[Any] = [model]
            for _ in range(VERSIONS_PER_MODEL):
                spec: VersionSpec = {
                    "files": [{"path": "model.onnx", "sha256": digest, "size": size}],
                    "flavor": "onnx",
                    "signature": {},
                    "tags": {
                        "team": f"team-{rng.randrange(TEAMS)}",
                        "stage": rng.choice(STAGES),
                        "run": f"{rng.getrandbits(64):016x}",
                    },
                    "metrics": {"accuracy": rng.random()},
                    "description": "",
                    "lineage": {},
                }
                aggregates.append(ModelVersion.register(name, model.add_version(), spec))
        ledger.save(*aggregates)
        progress.update(task, advance=VERSIONS_PER_MODEL)
    ledger.close()
    runner = ProjectionRunner(settings)
    views = progress.add_task("bringing the views up to date", total=None)
    runner.catch_up(lambda done, total: progress.update(views, completed=done, total=total))
    runner.close()


# -- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    env = {"LEDGER_HOME": str(settings.home), "LEDGER_LOG_LEVEL": "WARNING"}
    if settings.store_location.kind == "postgres":
        env |= {"LEDGER_STORE": settings.store, "LEDGER_PG_SCHEMA": settings.pg_schema}
    return env


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    port = free_port()
    ledger_bin = shutil.which("ledger", path=os.path.dirname(sys.executable)) or "ledger"
    server = subprocess.Popen(
        [ledger_bin, "serve", "--port", str(port)],
        env={**os.environ, **settings_env(settings)},
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("`ledger serve` did not start")
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


# -- the load generator (a process of its own) ---------------------------------------------


def request_paths(kind: str, versions: int, count: int) -> list[str]:
    rng = random.Random(3)
    models = versions // VERSIONS_PER_MODEL
    if kind == "get-version":
        return [
            f"/models/model-{rng.randrange(models):05d}/versions/"
            f"{rng.randrange(1, VERSIONS_PER_MODEL + 1)}"
            for _ in range(count)
        ]
    return [
        f"/search/versions?tag=team=team-{rng.randrange(TEAMS)}&tag=stage={rng.choice(STAGES)}"
        f"&limit=50"
        for _ in range(count)
    ]


def measure(url: str, token: str, paths: list[str], clients: int) -> tuple[list[float], float]:
    """Per-request ms and overall requests/s of ``clients`` clients sharing ``paths``.

    Each client is a keep-alive ``http.client`` connection: a lean client, so that the
    latency measured is the server's rather than the load generator's.
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
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status}")

    def client(share: list[str]) -> None:
        mine = []
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        for path in share[:20]:  # warm the connection and the server's caches
            get(connection, path)
        for path in share:
            before = time.perf_counter()
            get(connection, path)
            mine.append((time.perf_counter() - before) * 1000)
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, len(paths) / (time.perf_counter() - start)


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, metavar="URL")
    parser.add_argument("--requests", type=int, default=3_000, help="per measurement")
    parser.add_argument("--clients", type=int, default=4, help="for the throughput run")
    args = parser.parse_args(argv)

    table = Table("store", "versions", "request", "p50 ms", "p99 ms", "max ms",
                  "req/s (1 client)", f"req/s ({args.clients} clients)", "p99 target",
                  title="HTTP API, uvicorn in one process, load generator in another")  # fmt: skip
    spawn = multiprocessing.get_context("spawn")
    for kind in args.stores.split(","):
        with store(kind, args.pg_url) as settings:
            with Progress(console=console, transient=True) as progress:
                fill(settings, args.versions, progress)
            with Ledger(settings) as ledger:
                token = ledger.create_token("bench", "reader").secret
            with serving(settings) as url, spawn.Pool(1) as load_generator:
                for request in ("get-version", "tag-search"):
                    paths = request_paths(request, args.versions, args.requests)
                    latencies, single = load_generator.apply(measure, (url, token, paths, 1))
                    _, parallel = load_generator.apply(measure, (url, token, paths, args.clients))
                    p99 = percentile(latencies, 99) or 0.0
                    target = TARGETS_MS[request]
                    table.add_row(
                        kind, f"{args.versions:,}", request,
                        f"{percentile(latencies, 50):.2f}", f"{p99:.2f}", f"{max(latencies):.1f}",
                        f"{single:,.0f}", f"{parallel:,.0f}",
                        f"ok (<= {target:g} ms)" if p99 <= target else f"MISSED (<= {target:g} ms)",
                    )  # fmt: skip
    facts = machine_facts()
    console.print(f"{facts['cpu_count']} CPUs, {facts['cpu_model']}, Python {facts['python']}")
    if "postgres" in args.stores:
        console.print(f"PostgreSQL {pg_server_facts(args.pg_url)}")
    console.print(
        f"{VERSIONS_PER_MODEL} versions per model; tag-search: team (1 of {TEAMS}) AND stage "
        f"(1 of {len(STAGES)}), first page of 50, newest first"
    )
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
