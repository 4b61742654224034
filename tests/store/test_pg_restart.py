"""PostgreSQL outages and starts, on a private server the tests stop and start.

`ledger serve` under a steady read/write load rides out `pg_ctl stop -m fast` and a
start two seconds later: 503 with Retry-After meanwhile, 2xx again within 5 s, never a
500, and every write answered 2xx is in the log exactly once. The worker and
`ledger projections run` carry on without a restart. Processes starting together
beside a writing server run no DDL that deadlocks with its view writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from ledger.ledger import Ledger
from ledger.settings import Settings
from ledger.storage import ensure_store
from ledger.storage.connections import POSTGRES_CHANNEL
from ledger.storage.database import LedgerDatabase
from projections.views import Views
from tests.conftest import assert_user_error, free_port, run_cli
from tests.executor_support import register, step, wait_until_finished, write_code
from tests.pg_instance import PgInstance

LEDGER = str(Path(sys.executable).parent / "ledger")
RECOVERY_S = 5.0


@dataclass
class PrivateStore:
    """A schema of its own on the private server (``env`` for processes, like StoreFactory)."""

    pg: PgInstance
    home: Path
    schema: str = field(default_factory=lambda: f"test_{uuid.uuid4().hex[:12]}")

    def env(self) -> dict[str, str]:
        return {
            "LEDGER_STORE": self.pg.url,
            "LEDGER_PG_SCHEMA": self.schema,
            "LEDGER_HOME": str(self.home),
            "LEDGER_ACTOR": "tester",
            "LEDGER_EXECUTOR": "local",
            "LEDGER_WORKER_LEASE_S": "2",
        }

    def settings(self) -> Settings:
        return Settings(
            store=self.pg.url, pg_schema=self.schema, home=self.home, actor="tester",
            executor="local", worker_lease_s=2,
        )  # fmt: skip

    def sql(self, statement: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {self.schema}")
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture
def pg_store(private_pg: PgInstance, tmp_path: Path) -> PrivateStore:
    return PrivateStore(private_pg, tmp_path / ".ledger")


@dataclass
class Answer:
    kind: str  # "read", "write" or "health"
    sent: float
    done: float
    status: int  # 0: no HTTP answer (connection refused or cut)
    retry_after: str | None = None
    body: str = ""


class Load:
    """A steady load on a server: one writer (each write retried with its Idempotency-Key
    until it is answered 2xx, as a careful client does), one reader, one health probe."""

    def __init__(self, url: str, token: str, model: str = "m") -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.model = model
        self.answers: list[Answer] = []
        self.written: list[str] = []  # markers of writes answered 2xx
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._write, daemon=True),
            threading.Thread(target=self._read, daemon=True),
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _call(
        self, client: httpx.Client, kind: str, method: str, path: str, **kw: object
    ) -> Answer:
        sent = time.monotonic()
        try:
            response = client.request(method, f"{self.url}{path}", **kw)  # type: ignore[arg-type]
            answer = Answer(kind, sent, time.monotonic(), response.status_code,
                            response.headers.get("Retry-After"), response.text[:300])  # fmt: skip
        except httpx.TransportError as error:
            answer = Answer(kind, sent, time.monotonic(), 0, body=repr(error))
        self.answers.append(answer)
        return answer

    def _write(self) -> None:
        with httpx.Client(headers=self.headers, timeout=30) as client:
            number = 0
            while not self._stop.is_set():
                marker, key = f"write-{number}", uuid.uuid4().hex
                give_up = time.monotonic() + 40
                while time.monotonic() < give_up:
                    answer = self._call(
                        client, "write", "POST", f"/models/{self.model}/versions",
                        files=[("files", ("w.bin", marker.encode()))],
                        data={"description": marker},
                        headers={"Idempotency-Key": key},
                    )  # fmt: skip
                    if 200 <= answer.status < 300:
                        self.written.append(marker)
                        break
                    if answer.status not in (0, 409, 503):
                        return  # a wrong answer: the test reports it
                    time.sleep(0.2)
                number += 1

    def _read(self) -> None:
        while not self.written and not self._stop.is_set():  # the model exists from then
            time.sleep(0.02)
        with httpx.Client(headers=self.headers, timeout=30) as client:
            while not self._stop.is_set():
                self._call(client, "read", "GET", f"/models/{self.model}/versions")
                self._call(client, "read", "GET", f"/models/{self.model}")
                self._call(client, "health", "GET", "/health")
                time.sleep(0.05)

    def wait_for_writes(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.written) < count:
            last = [a for a in self.answers if a.kind == "write"][-1:]
            assert self._threads[0].is_alive(), f"a write was answered {last}"
            assert time.monotonic() < deadline, f"only {len(self.written)} writes: {last}"
            time.sleep(0.05)

    def first_ok_after(self, kind: str, moment: float, timeout: float) -> float:
        """Seconds from ``moment`` to the first 2xx of ``kind`` sent after it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [a.done for a in list(self.answers)
                    if a.kind == kind and a.sent >= moment and 200 <= a.status < 300]  # fmt: skip
            if done:
                return min(done) - moment
            time.sleep(0.05)
        return float("inf")


def _token(store: PrivateStore, role: str = "contributor") -> str:
    with Ledger(store.settings()) as ledger:
        return ledger.tokens.create(f"{role}-bot", role).secret


def _restart(pg: PgInstance, down_s: float = 2.0) -> tuple[float, float]:
    """Stop the server (fast: clients are cut off), wait, start it; (stopped, started)."""
    pg.stop("fast")
    stopped = time.monotonic()
    time.sleep(down_s)
    pg.start()
    return stopped, time.monotonic()


def test_the_api_rides_out_a_postgres_restart(pg_store: PrivateStore, tmp_path: Path) -> None:
    token = _token(pg_store)
    log = tmp_path / "server.log"
    with _serving(pg_store, log) as url, Load(url, token) as load:
        load.wait_for_writes(3)
        # Down long enough for the reader to reach /health while it is: its first read of
        # the outage may wait LEDGER_STORE_WAIT_S (2 s) for a connection.
        stopped, started = _restart(pg_store.pg, down_s=4.0)
        read_after = load.first_ok_after("read", started, RECOVERY_S + 5)
        write_after = load.first_ok_after("write", started, RECOVERY_S + 5)
        if write_after == float("inf"):
            late = [a for a in load.answers if a.kind == "write" and a.sent >= stopped]
            raise AssertionError(f"{late[-5:]}\n{log.read_text()[-4000:]}")
        load.wait_for_writes(len(load.written) + 3)
    answers = load.answers
    failures = [a for a in answers if a.status >= 500 and a.status != 503]
    assert not failures, failures[:3]
    wrong = [a for a in answers if a.status not in (0, 200, 201, 409, 503)]
    assert not wrong, wrong[:3]
    during = [a for a in answers if stopped <= a.done <= started]
    unavailable = [a for a in during if a.status == 503]
    assert unavailable, f"no 503 while the database was down: {during[:5]}"
    without_retry_after = [a for a in answers if a.status == 503 and not a.retry_after]
    assert not without_retry_after, without_retry_after[:3]
    health_down = [a for a in during if a.kind == "health" and a.status == 503]
    assert health_down and all('"reachable":false' in a.body for a in health_down)
    assert read_after <= RECOVERY_S, f"reads came back after {read_after:.1f} s"
    assert write_after <= RECOVERY_S, f"writes came back after {write_after:.1f} s"
    views = Views.open(pg_store.settings())
    try:
        versions = views.versions("m", limit=100_000)
    finally:
        views.close()
    markers = Counter(v["description"] for v in versions)
    assert all(markers[marker] == 1 for marker in load.written), markers.most_common(3)
    assert sorted(v["version"] for v in versions) == list(range(1, len(versions) + 1))


@contextmanager
def _serving(store: PrivateStore, log: Path, port: int = 0) -> Iterator[str]:
    """`ledger serve` on a free port (its log in ``log``) until the block ends; its URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with _process(["serve", "--port", str(port)], store.env(), log) as server:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).is_success:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield url


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [LEDGER, *args], env={**os.environ, **env}, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_the_worker_runs_jobs_submitted_after_a_postgres_restart(
    pg_store: PrivateStore, tmp_path: Path
) -> None:
    code = write_code(tmp_path / "code")
    with Ledger(pg_store.settings()) as ledger:
        register(ledger, "quick", code, [step("only", "write", outputs=["out"])])
        before = str(ledger.jobs.submit("quick").id)
    with _process(["worker"], pg_store.env(), tmp_path / "worker.log") as worker:
        with Ledger(pg_store.settings()) as ledger:
            assert wait_until_finished(ledger, before, timeout=60).status == "succeeded"
        _restart(pg_store.pg)
        with Ledger(pg_store.settings()) as ledger:
            after = str(ledger.jobs.submit("quick").id)
            job = wait_until_finished(ledger, after, timeout=60)
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
    assert job.status == "succeeded", job.error
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


def _views_reach_head(store: PrivateStore, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            head = store.sql("SELECT max(notification_id) FROM ledger_events")[0][0]
            positions = store.sql("SELECT min(position) FROM ledger_view_positions")[0][0]
        except psycopg.errors.UndefinedTable:  # the runner has not created its tables yet
            positions, head = None, 0
        if head is not None and positions == head:
            return True
        time.sleep(0.1)
    return False


def test_projections_run_keeps_following_across_a_postgres_restart(
    pg_store: PrivateStore, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    ensure_store(pg_store.settings())
    log = tmp_path / "projections.log"
    with _process(["projections", "run"], pg_store.env(), log) as runner:
        with Ledger(pg_store.settings()) as ledger:
            ledger.models.register_version("m", model)
        assert _views_reach_head(pg_store, 60), log.read_text()[-2000:]
        _restart(pg_store.pg)
        with Ledger(pg_store.settings()) as ledger:
            ledger.models.register_version("m", model, description="after the restart")
        # A bound on a hang: how soon service comes back is the API test's claim.
        assert _views_reach_head(pg_store, 60), log.read_text()[-2000:]
        assert runner.poll() is None, log.read_text()[-2000:]
    assert "Traceback" not in log.read_text()


def test_processes_starting_together_beside_writes_neither_deadlock_nor_fail(
    pg_store: PrivateStore, tmp_path: Path
) -> None:
    token = _token(pg_store)
    env = pg_store.env()
    logs = [tmp_path / f"start-{n}.log" for n in range(3)]
    with _serving(pg_store, tmp_path / "server.log") as url, Load(url, token) as load:
        load.wait_for_writes(2)
        with (
            _process(["projections", "run"], env, logs[0]) as first,
            _process(["projections", "run"], env, logs[1]) as second,
            _serving(pg_store, logs[2]),
        ):
            try:
                load.wait_for_writes(len(load.written) + 3)
            except AssertionError as failed:
                deadlocks = [line for line in pg_store.pg.server_log().splitlines()
                             if "deadlock" in line]  # fmt: skip
                raise AssertionError(f"{failed}; PostgreSQL: {deadlocks[:3]}") from None
            for process, log in zip((first, second), logs[:2], strict=True):
                assert process.poll() is None, log.read_text()[-2000:]
    assert not [a for a in load.answers if a.status >= 500], "a request failed"
    assert "deadlock detected" not in pg_store.pg.server_log()
    for log in logs:
        assert "Traceback" not in log.read_text(), log.read_text()[-2000:]


def test_the_cli_says_the_store_is_down_while_it_restarts(
    pg_store: PrivateStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in pg_store.env().items():
        monkeypatch.setenv(key, value)
    assert run_cli(monkeypatch, capsys, "model", "list").code == 0
    pg_store.pg.stop("fast")
    try:
        for command in (["model", "list"], ["projections", "status"]):
            result = run_cli(monkeypatch, capsys, *command)
            assert_user_error(result, "the event store is unavailable")
            assert len(result.err.strip().splitlines()) == 1, result.err
    finally:
        pg_store.pg.start()


def test_view_connections_come_back_after_their_server_processes_are_killed(
    pg_store: PrivateStore,
) -> None:
    """What a restart does to each connection, without the restart: a read is retried on a
    fresh connection, the idle broken ones are dropped (so the next write gets a working
    one), and the LISTEN connection comes back by itself."""
    ensure_store(pg_store.settings())
    db = LedgerDatabase(pg_store.settings())
    try:
        with db.listener() as listener:
            db.create_tables("CREATE TABLE IF NOT EXISTS probe (n BIGINT PRIMARY KEY)")
            pids = [row[0] for row in pg_store.sql(
                "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )]  # fmt: skip
            pg_store.sql(f"SELECT pg_terminate_backend(pid) FROM unnest(ARRAY{pids}) AS pid")
            assert db.execute("SELECT 1") == [(1,)]  # a read: retried on a fresh connection
            with db.transaction():
                db.execute("INSERT INTO probe VALUES (1)")
            deadline = time.monotonic() + 30  # generous: bounds on a hang, not latency limits
            while listener.listening:
                assert time.monotonic() < deadline, "the lost connection went unnoticed"
                listener.wait(0.1)  # notices its connection is gone
            while not listener.listening:
                assert time.monotonic() < deadline, "the listener did not connect again"
                listener.wait(0.1)  # connects again
            pg_store.sql(f"NOTIFY {POSTGRES_CHANNEL}")
            started = time.monotonic()
            listener.wait(60)  # returns as soon as the notification arrives
            assert time.monotonic() - started < 50, "the notification did not arrive"
        assert db.execute("SELECT n FROM probe") == [(1,)]
    finally:
        db.close()


def test_mlflow_calls_while_the_store_is_down_are_a_retryable_503_in_mlflows_format(
    pg_store: PrivateStore, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {_token(pg_store)}"}
    base = "/api/2.0/mlflow/registered-models"
    with (
        _serving(pg_store, tmp_path / "server.log") as url,
        # A write waits out the store's reconnect window (about 40 s) before it answers 503.
        httpx.Client(base_url=url, headers=headers, timeout=90) as http,
    ):
        assert http.post(f"{base}/create", json={"name": "before"}).status_code == 200
        pg_store.pg.stop("fast")
        try:
            answers = [
                http.post(f"{base}/create", json={"name": "during"}),
                http.get(f"{base}/get", params={"name": "before"}),
            ]
        finally:
            pg_store.pg.start()
        for answer in answers:  # the MLflow client retries a 503, and reads the code
            assert answer.status_code == 503 and answer.headers["Retry-After"], answer.text
            assert answer.json()["error_code"] == "TEMPORARILY_UNAVAILABLE", answer.text
        deadline = time.monotonic() + RECOVERY_S * 2
        while (got := http.get(f"{base}/get", params={"name": "before"})).status_code != 200:
            assert time.monotonic() < deadline, got.text
            time.sleep(0.2)
        assert got.json()["registered_model"]["name"] == "before"
        assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_ui_pages_while_the_store_is_down_are_a_503_page_and_work_again_after(
    pg_store: PrivateStore, tmp_path: Path
) -> None:
    token = _token(pg_store)
    with (
        _serving(pg_store, tmp_path / "server.log") as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        form = http.get("/ui/login").text
        csrf = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed_in = http.post("/ui/login", data={"token": token, "csrf_token": csrf})
        assert signed_in.status_code == 303, signed_in.text
        assert http.get("/ui/models").status_code == 200
        pg_store.pg.stop("fast")
        try:
            down = http.get("/ui/models")
        finally:
            pg_store.pg.start()
        assert down.status_code == 503 and down.headers["Retry-After"], down.text
        assert "error: the event store is unavailable" in down.text
        assert "<h1>" in down.text  # a page a person reads, not a traceback
        deadline = time.monotonic() + RECOVERY_S * 2
        while (page := http.get("/ui/models")).status_code != 200:
            assert time.monotonic() < deadline, page.text
            time.sleep(0.2)
        assert "Traceback" not in (tmp_path / "server.log").read_text()
