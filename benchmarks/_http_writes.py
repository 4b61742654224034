"""Writes over HTTP for the benchmarks: registering a version with a small file and tagging
it, against `ledger serve` and against `mlflow server` (its REST API), from client threads.

Each client is a keep-alive ``http.client`` connection of its own, writing to a model of
its own, so that clients never conflict on one model's version counter. A registration
is one request to the ledger (multipart: the file and the form) and two to MLflow, whose
registry keeps no files: the file goes to its artifact proxy (``mlflow-artifacts``), then
``model-versions/create`` records its URI.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

SMALL_FILE = bytes(range(256)) * 4  # 1 KiB, the same for every registration
BOUNDARY = "bench-boundary-7d1c"
WRITES = ("registration", "tag PUT")


@dataclass(frozen=True)
class Call:
    """One HTTP request and the status it must answer with."""

    method: str
    path: str
    body: bytes = b""
    content_type: str = ""
    status: int = 200


def multipart(filename: str, content: bytes) -> bytes:
    """A multipart/form-data body holding one file field, ``files``."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return head.encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def json_call(method: str, path: str, body: object, status: int = 200) -> Call:
    return Call(method, path, json.dumps(body).encode(), "application/json", status)


Context = dict[str, str]  # what a client's setup made (MLflow: its run)


def registration(system: str, model: str, number: int, context: Context) -> list[Call]:
    """The requests that register version ``number`` of ``model`` with the small file."""
    if system == "ledger":
        body = multipart("weights.bin", SMALL_FILE)
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
        return [Call("POST", f"/models/{model}/versions", body, content_type, 201)]
    # As MLflow's client registers a logged model: the file into the run's artifacts, then
    # a version whose source is that directory of the run.
    directory = f"{context['artifacts']}/model-{number}"
    upload = Call(
        "PUT",
        f"/api/2.0/mlflow-artifacts/artifacts/{directory}/weights.bin",
        SMALL_FILE,
        "application/octet-stream",
    )
    version = {"name": model, "source": f"{ARTIFACTS_SCHEME}{directory}", "run_id": context["run"]}
    return [upload, json_call("POST", "/api/2.0/mlflow/model-versions/create", version)]


def tag_put(system: str, model: str, number: int, context: Context) -> list[Call]:
    """Set one tag on version ``number`` of ``model``."""
    if system == "ledger":
        body = {"tags": {"checked": f"run-{number}"}}
        return [json_call("PUT", f"/models/{model}/versions/{number}/tags", body, 204)]
    body = {"name": model, "version": str(number), "key": "checked", "value": f"run-{number}"}
    return [json_call("POST", "/api/2.0/mlflow/model-versions/set-tag", body)]


def health(system: str, model: str, number: int, context: Context) -> list[Call]:
    return [Call("GET", "/health")]


OPERATIONS = {"registration": registration, "tag PUT": tag_put, "GET /health": health}
ARTIFACTS_SCHEME = "mlflow-artifacts:/"


def set_up(system: str, connection: http.client.HTTPConnection, token: str, model: str) -> Context:
    """Once per client before it registers: MLflow needs the model, and a run (in an
    experiment of its own, stored through the artifact proxy) to hold the files."""
    if system == "ledger":
        return {}
    api = "/api/2.0/mlflow"
    send(connection, token, json_call("POST", f"{api}/registered-models/create", {"name": model}))
    experiment = send(
        connection, token, json_call("POST", f"{api}/experiments/create", {"name": model})
    )["experiment_id"]
    run = send(
        connection, token, json_call("POST", f"{api}/runs/create", {"experiment_id": experiment})
    )["run"]["info"]
    artifacts = run["artifact_uri"]
    if not artifacts.startswith(ARTIFACTS_SCHEME):
        raise RuntimeError(f"MLflow stores the run's files at {artifacts}, not its proxy")
    return {"run": run["run_id"], "artifacts": artifacts.removeprefix(ARTIFACTS_SCHEME)}


def client_models(prefix: str, clients: int) -> list[str]:
    return [f"{prefix}-{index}" for index in range(clients)]


@dataclass
class Load:
    """What ``run_clients`` measured: per-operation ms, operations/s, and the fewest
    operations any one client completed (a client stops early when the budget is spent)."""

    latencies_ms: list[float]
    rate: float
    fewest: int


def run_clients(
    url: str, token: str, system: str, operation: str, models: list[str], count: int,
    versions: int = 0, budget_s: float = 60.0,
) -> Load:  # fmt: skip
    """One client per model, ``count`` operations in all, timed from a common start.

    Client ``i`` runs its k-th operation on ``models[i]`` with number k + 1 (registrations:
    the version it registers), or, given ``versions``, on version k % versions + 1 (tags:
    the versions it registered before). A client stops early once ``budget_s`` has passed,
    so a slow system is measured on fewer operations instead of for hours.
    """
    import gc

    gc.disable()  # the load generator's own pauses are not the server's latency
    build = OPERATIONS[operation]
    per_client = max(1, count // len(models))
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    spans: list[tuple[float, float, int]] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_line = threading.Barrier(len(models))

    def client(model: str) -> None:
        mine: list[float] = []
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            context = (
                set_up(system, connection, token, model) if operation == "registration" else {}
            )
            start_line.wait(timeout=120)
            started = time.perf_counter()
            deadline = started + budget_s
            for k in range(per_client):
                number = k % versions + 1 if versions else k + 1
                before = time.perf_counter()
                for call in build(system, model, number, context):
                    send(connection, token, call)
                mine.append((time.perf_counter() - before) * 1000)
                if before > deadline:
                    break
            with lock:
                latencies.extend(mine)
                spans.append((started, time.perf_counter(), len(mine)))
        except Exception as exc:
            start_line.abort()
            with lock:
                errors.append(f"{system} {operation} ({model}): {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(model,)) for model in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gc.enable()
    if errors:
        raise RuntimeError(errors[0])
    elapsed = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
    return Load(latencies, len(latencies) / elapsed, min(done for _, _, done in spans))


def send(connection: http.client.HTTPConnection, token: str, call: Call) -> Any:
    """Send ``call``; its JSON answer (None when it has no body), or an error."""
    headers = {"Authorization": f"Bearer {token}"}
    if call.content_type:
        headers["Content-Type"] = call.content_type
    connection.request(call.method, call.path, body=call.body or None, headers=headers)
    response = connection.getresponse()
    body = response.read()
    if response.status != call.status:
        raise RuntimeError(f"{call.method} {call.path}: HTTP {response.status}: {body[:300]!r}")
    is_json = response.getheader("Content-Type", "").startswith("application/json")
    return json.loads(body) if body and is_json else None
