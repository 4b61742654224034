"""The ledger on a real two-node Ray cluster: a head and a second node started on this
machine as separate `ray start --block` processes, each with ports and a temp dir of its
own. The pytest process keeps its own local Ray (other tests'), so the ledger joins the
cluster through `ledger worker` subprocesses (LEDGER_RAY_ADDRESS); this process only
writes and reads the store (both stores) and looks at the cluster through short
`python -c` drivers.

Never `ray stop` here: it stops every Ray on the machine. Each node is stopped by killing
the process group it was started in.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime
import pyarrow as pa
import pytest
from pyarrow import parquet
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from executors.onnx_conversion import convert_model_version
from executors.serving.serve_app import app_name
from ledger.domain.endpoint import Resources
from ledger.ledger import Ledger
from tests.conftest import StoreFactory, free_port, wait_for
from tests.executor_support import events, register, wait_until_finished
from tests.paths import SRC

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
NODE_CPUS = 2

# Where each step ran, and whether that node is the second one (it alone has `second`).
WHERE_MODULE = """
import time
from pathlib import Path

import ray


def where(ctx):
    node = ray.get_runtime_context().get_node_id()
    (here,) = [n for n in ray.nodes() if n["NodeID"] == node]
    # Both steps must run at once (each takes a whole node's CPUs): wait for the other.
    meeting = Path(ctx.params["marker_dir"])
    (meeting / ctx.step).write_text(node)
    deadline = time.time() + 60
    while len(list(meeting.iterdir())) < 2:
        if time.time() > deadline:
            raise TimeoutError("the other step did not run alongside this one")
        time.sleep(0.05)
    ctx.output("out").write_text(node)
    return {"second": here["Resources"].get("second", 0.0)}
"""

# Alive Serve replicas of one application, with the node each runs on; then the
# application is deleted (it would otherwise hold the cluster's CPUs after the test).
REPLICAS_THEN_DELETE = """
import json, sys
import ray
from ray import serve
from ray._private.state import state

ray.init(address=sys.argv[1], log_to_driver=False)
second = {n["NodeID"] for n in ray.nodes() if n["Alive"] and "second" in n["Resources"]}
replicas = [
    {"name": a["Name"], "second": a["Address"]["NodeID"] in second}
    for a in state.actor_table(None).values()
    if a["State"] == "ALIVE" and a["Name"].startswith(f"SERVE_REPLICA::{sys.argv[2]}#")
]
serve.delete(sys.argv[2])
print(json.dumps(replicas))
"""


def _ray_ports(base: int) -> list[str]:
    """The ports one node listens on besides the GCS's, all its own (two nodes on one
    host would otherwise fight over Ray's fixed defaults); workers take ports from a
    range of 100 starting at ``base``."""
    named = [
        "node-manager-port",
        "object-manager-port",
        "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port",
        "runtime-env-agent-port",
        "metrics-export-port",
    ]
    ports = [f"--{name}={free_port()}" for name in named]
    return [*ports, f"--min-worker-port={base}", f"--max-worker-port={base + 99}"]


@dataclass
class Cluster:
    """A head and a second node, each a `ray start --block` in a process group of its own."""

    root: Path
    port: int = field(default_factory=free_port)
    serve_port: int = field(default_factory=free_port)
    # Ray 2.60 turns token authentication on for `ray start`: a token of the test's own,
    # given to every process that joins (never the user's ~/.ray/auth_token).
    token: str = field(default_factory=lambda: os.urandom(16).hex())
    # Worker port ranges above Ray's default (10002-19999, other Rays' on this machine) and
    # below Linux's ephemeral ports (free_port's).
    worker_ports: int = field(default_factory=lambda: random.randrange(20_000, 30_000, 200))
    nodes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment of the nodes, and so of every Ray worker process on them."""
        path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
        return os.environ | {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "PYTHONPATH": path,
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def start_head(self) -> None:
        head = ["--head", f"--port={self.port}", "--include-dashboard=false"]
        self._start("head", [*head, f"--ray-client-server-port={free_port()}"], self.worker_ports)

    def start_second(self) -> None:
        self._start("second", [f"--address={self.address}", '--resources={"second": 1}'],
                    self.worker_ports + 100)  # fmt: skip

    def _start(self, name: str, args: list[str], worker_ports: int) -> None:
        temp_dir = self.root / name
        log = self.root / f"{name}.log"
        with log.open("wb") as out:
            self.nodes[name] = subprocess.Popen(
                [str(BIN / "ray"), "start", "--block", f"--num-cpus={NODE_CPUS}",
                 f"--temp-dir={temp_dir}", "--object-store-memory=300000000",
                 *args, *_ray_ports(worker_ports)],
                env=self.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        process = self.nodes[name]

        def started() -> bool:
            assert process.poll() is None, log.read_text()[-3000:]
            return "Ray runtime started" in log.read_text()

        wait_for(started, 120, f"the {name} node")

    def kill(self, name: str) -> None:
        """SIGKILL the node's whole process group (raylet, its workers, the GCS on the head)."""
        process = self.nodes.pop(name)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

    def stop(self) -> None:
        for name in list(self.nodes)[::-1]:
            self.kill(name)

    def driver(self, script: str, *args: str) -> str:
        """Run ``script`` as a Python driver on the cluster; its output."""
        result = subprocess.run(
            [sys.executable, "-c", script, self.address, *args],
            env=self.env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Not under pytest's tmp dir: Ray's Unix socket paths must stay short.
    root = Path(tempfile.mkdtemp(prefix="ledger-ray-"))
    running = Cluster(root)
    try:
        running.start_head()
        running.start_second()
        yield running
    finally:
        running.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def two_nodes(cluster: Cluster) -> Cluster:
    """The cluster with both nodes up (an earlier test may have killed the second)."""
    if cluster.nodes.get("second") is None or cluster.nodes["second"].poll() is not None:
        cluster.nodes.pop("second", None)
        cluster.start_second()
    return cluster


@contextmanager
def ledger_worker(cluster: Cluster, store: StoreFactory, log: Path) -> Iterator[None]:
    """`ledger worker` on the cluster, stopped (SIGTERM, then SIGKILL) afterwards."""
    env = cluster.env() | store.env() | {
        "LEDGER_EXECUTOR": "ray",
        "LEDGER_RAY_ADDRESS": cluster.address,
        "LEDGER_SERVE_PORT": str(cluster.serve_port),
        "LEDGER_LOG_LEVEL": "INFO",
    }  # fmt: skip
    with log.open("wb") as out:
        worker = subprocess.Popen([str(BIN / "ledger"), "worker"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        yield
    finally:
        worker.terminate()
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def _onnx_model(ledger: Ledger, tmp_path: Path) -> str:
    features, labels = make_classification(n_samples=300, n_features=4, random_state=3)
    directory = tmp_path / "clf"
    directory.mkdir()
    (directory / "model.pkl").write_bytes(pickle.dumps(LogisticRegression().fit(features, labels)))
    ledger.models.register_version("clf", directory, flavor="sklearn")
    return convert_model_version(ledger, "clf:1", rows=100)[0].ref


def test_two_steps_at_once_run_on_both_nodes(
    two_nodes: Cluster, store: StoreFactory, tmp_path: Path
) -> None:
    """Each step takes a whole node's CPUs and waits for the other: they can only both
    succeed on different nodes, one of them the second."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "where_steps.py").write_text(WHERE_MODULE)
    (tmp_path / "meeting").mkdir()
    ledger = Ledger(store.settings(executor="ray"))  # a job runs on the executor it names
    steps = [
        {"name": name, "run": "where_steps:where", "outputs": ["out"],
         "resources": {"cpus": NODE_CPUS}}
        for name in ("left", "right")
    ]  # fmt: skip
    register(ledger, "spread", code, steps, marker_dir=str(tmp_path / "meeting"))
    job_id = str(ledger.jobs.submit("spread").id)
    with ledger_worker(two_nodes, store, tmp_path / "worker.log"):
        job = wait_until_finished(ledger, job_id, timeout=180)
    assert job.status == "succeeded", (job.error, (tmp_path / "worker.log").read_text()[-3000:])
    nodes = {
        name: ledger.artifacts.blob_path(step["outputs"]["out"].removeprefix("sha256:")).read_text()
        for name, step in job.steps.items()
    }
    assert len(set(nodes.values())) == 2, nodes
    assert sorted(step["metrics"]["second"] for step in job.steps.values()) == [0.0, 1.0]
    assert {e["step"] for e in events(ledger, job_id, "StepCompleted")} == {"left", "right"}
    ledger.close()


# 1.5 CPUs each: two replicas never fit on one 2-CPU node, so Serve must use both.
SPREAD: Resources = {"cpus": 1.5, "gpus": 0, "memory_mb": 256, "replicas": 2}


def test_two_replicas_of_an_online_deployment_spread_over_both_nodes(
    two_nodes: Cluster, store: StoreFactory, tmp_path: Path
) -> None:
    ledger = Ledger(store.settings())
    model = _onnx_model(ledger, tmp_path)
    ledger.endpoints.create("web", "online")
    ledger.endpoints.deploy("web", "main", model, resources=SPREAD)
    ledger.endpoints.set_traffic("web", {"main": 100})
    rows, _ = make_classification(n_samples=8, n_features=4, random_state=3)
    proxy = f"http://127.0.0.1:{two_nodes.serve_port}/endpoints/web/score"
    placed: list[dict[str, Any]] = []
    with ledger_worker(two_nodes, store, tmp_path / "worker.log"):
        try:
            detail = lambda: ledger.endpoints.get("web").deployments["main"]["health_detail"]  # noqa: E731
            wait_for(lambda: "2 replica(s)" in detail(), 180, "two running replicas")
            answers = [httpx.post(proxy, json={"inputs": rows.tolist()}, timeout=30)
                       for _ in range(20)]  # fmt: skip
        finally:
            placed = json.loads(two_nodes.driver(REPLICAS_THEN_DELETE, app_name("web")))
    assert all(a.status_code == 200 for a in answers), answers[0].text
    body = answers[0].json()
    assert (body["deployment"], body["model"]) == ("main", model)
    assert len(body["outputs"]["label"]) == 8
    main = [r for r in placed if "#main#" in r["name"]]
    assert sorted(r["second"] for r in main) == [False, True], placed
    ledger.close()


BATCH_ROWS = 1_200_000  # long enough (about 10 s) that the kill lands while work remains
REPLICA: Resources = {"cpus": 1, "gpus": 0, "memory_mb": 256, "replicas": 2}


def test_a_batch_job_survives_the_second_node_killed_mid_job(
    two_nodes: Cluster, store: StoreFactory, tmp_path: Path
) -> None:
    ledger = Ledger(store.settings())
    model = _onnx_model(ledger, tmp_path)
    ledger.endpoints.create("nightly", "batch")
    ledger.endpoints.deploy("nightly", "main", model, resources=REPLICA)
    ledger.endpoints.set_traffic("nightly", {"main": 100})
    values = np.random.default_rng(7).standard_normal((BATCH_ROWS, 4)).astype(np.float32)
    source = tmp_path / "rows.parquet"
    parquet.write_table(pa.table({f"x{j}": values[:, j] for j in range(4)}), source,
                        row_group_size=10_000)  # fmt: skip
    job_id = str(ledger.batch_jobs.invoke("nightly", source, mini_batch_size=2_000).id)
    with ledger_worker(two_nodes, store, tmp_path / "worker.log"):
        progressed = lambda: ledger.batch_jobs.get(job_id).rows_done > 0  # noqa: E731
        wait_for(progressed, 120, "the batch job's first rows")
        killed_at = ledger.batch_jobs.get(job_id)
        two_nodes.kill("second")
        wait_for(lambda: ledger.batch_jobs.get(job_id).finished, 180, "the batch job")
    job = ledger.batch_jobs.get(job_id)
    assert killed_at.status == "running" and killed_at.rows_done < BATCH_ROWS, killed_at
    log = (tmp_path / "worker.log").read_text()
    assert job.status == "succeeded", (job.error, log[-3000:])
    # The kill hit the job: Ray retried its tasks that ran on the lost node, or rebuilt the
    # objects they had made there (Ray logs one or the other, depending on the moment).
    recovered = ("will be retried", "Attempting to recover")
    assert any(sign in log for sign in recovered), log[-3000:]
    ledger.models.download_version(model, tmp_path / "onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
    labels, probabilities = session.run(None, {"X": values})
    expected = np.column_stack([labels, probabilities])
    table = parquet.read_table(ledger.artifacts.blob_path(job.output_digest))
    columns = ["label", *(f"probabilities_{j}" for j in range(probabilities.shape[1]))]
    written = np.column_stack([table.column(c).to_numpy() for c in columns])
    # Exactly once: the same rows, none lost and none twice (compared as sorted rows).
    assert written.shape == expected.shape
    np.testing.assert_array_equal(_sorted_rows(written), _sorted_rows(expected))
    # In input order: a mini-batch retried after the node's loss is written in its place.
    moved = _moved_batches(written, expected, 2_000)
    assert not moved, f"mini-batch -> the later position it was written at: {moved}"
    np.testing.assert_array_equal(written, expected)
    ledger.close()


def _sorted_rows(rows: np.ndarray) -> np.ndarray:
    return rows[np.lexsort(rows.T[::-1])]


def _moved_batches(written: np.ndarray, expected: np.ndarray, size: int) -> dict[int, int]:
    """Mini-batches of ``expected`` (by index) written after later ones: index -> where."""
    where = {expected[i : i + size].tobytes(): i // size for i in range(0, len(expected), size)}
    found = [where.get(written[i : i + size].tobytes(), -1) for i in range(0, len(written), size)]
    return {batch: at for at, batch in enumerate(found) if batch < at}
