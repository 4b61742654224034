"""The web UI's pages in the HTTP API benchmark (benchmarks/api.py): the models list, a model
page with 1,000 versions and a version page with its lineage graph, timed as a signed-in
browser asks for them.

The catalogue gains one model, ``model-ui``, with 1,000 versions: in the ledger each has
metrics (accuracy, f1) and lineage (a data asset version, an environment, a pipeline and a
job), and the last two are deployed to an endpoint, so that a version page draws a graph
from data to endpoint. MLflow is given the same model and tags, so that both systems still
hold the same registry; its versions are tagged ``team=team-ui``, which no timed tag-search
asks for.

Each page is timed from the server's ``Server-Timing: app;dur=<ms>`` header (the time to its
response's headers, the page rendered) and from the client (the whole round trip).
"""

from __future__ import annotations

import gc
import http.client
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.progress import Progress
from rich.table import Table

from _catalogue import STAGES
from _common import percentile, verdict
from ledger.domain import EventMeta, Model, ModelVersion, acting
from ledger.domain.model import VersionSpec
from ledger.ledger import Ledger
from ledger.settings import Settings
from ledger.specs import EnvironmentSpec
from projections.updater import ViewUpdater

BIG_MODEL = "model-ui"
BIG_MODEL_VERSIONS = 1_000
TARGET_MS = 100.0  # the pages' p99 server time, from the issue
PAGES = ("models list", f"model, {BIG_MODEL_VERSIONS:,} versions", "version + lineage")
PIPELINE = {
    "environment": "bench-env",
    "steps": [
        {"name": "prepare", "run": "steps:prepare", "inputs": {"raw": "data:bench-data"}},
        {"name": "train", "run": "steps:train", "depends_on": ["prepare"]},
    ],
}
TIMING = re.compile(r"app;dur=([0-9.]+)")


def big_model() -> tuple[str, list[dict[str, str]]]:
    """``model-ui`` and its versions' tags, as the catalogue gives a model (for MLflow too)."""
    rng = random.Random(BIG_MODEL)
    tags = [
        {"team": "team-ui", "stage": rng.choice(STAGES), "run": f"{rng.getrandbits(64):016x}"}
        for _ in range(BIG_MODEL_VERSIONS)
    ]
    return BIG_MODEL, tags


def fill_big_model(settings: Settings, progress: Progress) -> None:
    """``model-ui`` into the ledger: its lineage's assets and job, its versions (built as the
    register command builds them, saved at once), two of them deployed; then the views."""
    task = progress.add_task(f"ledger: {BIG_MODEL}, {BIG_MODEL_VERSIONS:,} versions", total=None)
    ledger = Ledger(settings)
    folder = Path(tempfile.mkdtemp(dir=settings.home))
    data = folder / "bench-data.csv"
    data.write_text("x,label\n" + "".join(f"{i / 7:.3f},{'ab'[i % 2]}\n" for i in range(200)))
    ledger.assets.register_environment("bench-env", EnvironmentSpec(python="3.11"))
    ledger.assets.register_data("bench-data", data)
    ledger.assets.register_pipeline("bench-train", PIPELINE)
    job = str(ledger.jobs.submit("bench-train:1").id)
    weights = folder / "model.onnx"
    weights.write_bytes(b"weights" * 100)
    digest, size = ledger.artifacts.put_file(weights)
    name, version_tags = big_model()
    rng = random.Random(f"{BIG_MODEL}-metrics")
    with acting(EventMeta(actor="bench", reason="fill", correlation_id="bench")):
        model = Model.register(name)
        aggregates: list[Any] = [model]
        for tags in version_tags:
            spec: VersionSpec = {
                "files": [{"path": "model.onnx", "sha256": digest, "size": size}],
                "flavor": "onnx",
                "signature": {},
                "tags": tags,
                "metrics": {"accuracy": rng.uniform(0.8, 0.99), "f1": rng.uniform(0.75, 0.98)},
                "description": "",
                "lineage": {
                    "job": job,
                    "data": ["bench-data:1"],
                    "environment": "bench-env:1",
                    "pipeline": "bench-train:1",
                },
            }
            aggregates.append(ModelVersion.register(name, model.add_version(), spec))
    ledger.save(*aggregates)
    ledger.endpoints.create("bench-shop")
    ledger.endpoints.deploy("bench-shop", "blue", f"{name}:{BIG_MODEL_VERSIONS - 1}")
    ledger.endpoints.deploy("bench-shop", "green", f"{name}:{BIG_MODEL_VERSIONS}")
    ledger.endpoints.set_traffic("bench-shop", {"blue": 50, "green": 50})
    ledger.close()
    updater = ViewUpdater(settings)
    updater.catch_up()
    updater.close()
    progress.update(task, completed=1, total=1)


def page_paths(page: str, count: int) -> list[str]:
    """``count`` requests for one of PAGES (version pages: seeded random versions)."""
    if page == PAGES[0]:
        return ["/ui/models"] * count
    if page == PAGES[1]:
        return [f"/ui/models/{BIG_MODEL}"] * count
    rng = random.Random(5)
    numbers = [rng.randrange(1, BIG_MODEL_VERSIONS + 1) for _ in range(count)]
    return [f"/ui/models/{BIG_MODEL}/versions/{number}" for number in numbers]


def signed_in_cookie(url: str, token: str) -> str:
    """Sign in through the UI's form (POST /ui/login, with its CSRF token) as a person
    would; the Cookie header of that session."""
    with httpx.Client(base_url=url, timeout=60) as client:
        form = client.get("/ui/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        if form.status_code != 200 or csrf is None:
            raise RuntimeError(f"GET /ui/login: HTTP {form.status_code}, no sign-in form")
        answer = client.post("/ui/login", data={"token": token, "csrf_token": csrf.group(1)})
        session = client.cookies.get("ledger_session")
        if answer.status_code != 303 or not session:
            raise RuntimeError(f"POST /ui/login: HTTP {answer.status_code}: {answer.text[:300]}")
        return f"ledger_session={session}"


def measure_pages(url: str, cookie: str, paths: list[str], budget_s: float) -> dict[str, Any]:
    """One keep-alive client asking for ``paths`` back to back (until ``budget_s`` has
    passed): each request's server time (Server-Timing) and client time, in ms; or the
    status of the first answer that is not 200."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    server_ms: list[float] = []
    client_ms: list[float] = []

    def get(path: str) -> tuple[int, float]:
        connection.request("GET", path, headers={"Cookie": cookie})
        response = connection.getresponse()
        response.read()
        timing = TIMING.search(response.getheader("Server-Timing") or "")
        if timing is None:
            raise RuntimeError(f"GET {path}: no Server-Timing header in the answer")
        return response.status, float(timing.group(1))

    for path in paths[:5]:  # warm the connection and the server's caches
        status, _ = get(path)
        if status != 200:
            return {"status": status, "path": path, "server_ms": [], "client_ms": []}
    gc.disable()  # the load generator's own pauses are not the server's latency
    try:
        deadline = time.perf_counter() + budget_s
        for path in paths:
            before = time.perf_counter()
            status, server = get(path)
            client_ms.append((time.perf_counter() - before) * 1000)
            server_ms.append(server)
            if status != 200:
                return {"status": status, "path": path, "server_ms": [], "client_ms": []}
            if before > deadline:
                break
    finally:
        gc.enable()
        connection.close()
    return {"status": 200, "path": "", "server_ms": server_ms, "client_ms": client_ms}


def pages_table() -> Table:
    return Table("store", "versions", "page", "requests", "server p50 ms", "server p99 ms",
                 "server max ms", "client p50 ms", "client p99 ms", "p99 target",
                 title="Web UI pages over HTTP, signed in (server time: its Server-Timing "
                 "header; client: the round trip)")  # fmt: skip


def add_page_row(table: Table, store: str, versions: str, page: str, found: dict[str, Any]) -> None:
    """One page's figures (or why there are none) as a row of ``pages_table()``."""
    goal = f"<= {TARGET_MS:g} ms"
    if found["status"] != 200:
        why = f"HTTP {found['status']}"  # the page is not served (at found["path"])
        table.add_row(store, versions, page, why, "", "", "", "", "", verdict(False, goal))
        return
    server, client = found["server_ms"], found["client_ms"]
    p99 = percentile(server, 99) or 0.0
    table.add_row(
        store, versions, page, f"{len(server):,}", f"{percentile(server, 50):.2f}",
        f"{p99:.2f}", f"{max(server):.1f}", f"{percentile(client, 50):.2f}",
        f"{percentile(client, 99):.2f}", verdict(p99 <= TARGET_MS, goal),
    )  # fmt: skip


def figures(store: str, versions: int, page: str, found: dict[str, Any]) -> dict[str, Any]:
    """One page's raw figures, for RESULTS.json."""
    server, client = found["server_ms"], found["client_ms"]
    return {
        "store": store, "versions": versions, "page": page, "status": found["status"],
        "requests": len(server), "server_p50_ms": percentile(server, 50),
        "server_p99_ms": percentile(server, 99), "server_max_ms": max(server, default=None),
        "client_p50_ms": percentile(client, 50), "client_p99_ms": percentile(client, 99),
    }  # fmt: skip
