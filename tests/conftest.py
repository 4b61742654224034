"""Shared fixtures: every store-facing test runs on SQLite and on PostgreSQL.

PostgreSQL tests use the server at LEDGER_TEST_PG_URL (default: local, trust auth)
and a schema of their own, dropped afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from ledger.cli import main
from ledger.ledger import Ledger
from ledger.settings import Settings

if TYPE_CHECKING:
    from tests.object_stores import ObjectStoreServer
    from tests.pg_instance import PgInstance


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Wait until ``condition()`` holds; fail after ``timeout`` seconds (keep it generous:
    it bounds a hang, it is not a latency limit)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def free_port() -> int:
    """A TCP port nothing listens on (for servers a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Ray Serve's HTTP proxy, once per test session (Serve keeps the port it first started on).
SERVE_TEST_PORT = free_port()


# Logical CPUs of the session's Ray: more than the machine's two, so that tests needing
# two 1-CPU steps at once never wait behind a replica another test is still stopping.
RAY_TEST_CPUS = 4
PG_URL = os.environ.get("LEDGER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STORES = ["sqlite", "postgres"]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's LEDGER_* settings."""
    for key in list(os.environ):
        if key.startswith("LEDGER_") and key != "LEDGER_TEST_PG_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("LEDGER_ACTOR", "tester")


class StoreFactory:
    """Settings for a fresh store of one kind; PostgreSQL schemas are dropped at teardown."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.schema = f"test_{uuid.uuid4().hex[:12]}"

    def settings(self, **overrides: Any) -> Settings:
        # Jobs run on the local executor unless a test asks for Ray.
        values: dict[str, Any] = {
            "home": self.tmp_path / ".ledger",
            "actor": "tester",
            "executor": "local",
            "ray_num_cpus": RAY_TEST_CPUS,
            "serve_port": SERVE_TEST_PORT,
        }
        if self.kind == "postgres":
            values |= {"store": PG_URL, "pg_schema": self.schema}
        return Settings(**(values | overrides))

    def env(self) -> dict[str, str]:
        """The same store as LEDGER_* environment variables (for CLI and subprocess tests)."""
        env = {
            "LEDGER_HOME": str(self.tmp_path / ".ledger"),
            "LEDGER_ACTOR": "tester",
            "LEDGER_EXECUTOR": "local",
            "LEDGER_RAY_NUM_CPUS": str(RAY_TEST_CPUS),
            "LEDGER_SERVE_PORT": str(SERVE_TEST_PORT),
        }
        if self.kind == "postgres":
            env |= {"LEDGER_STORE": PG_URL, "LEDGER_PG_SCHEMA": self.schema}
        return env

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run raw SQL against the store (to tamper with it, or to inspect it)."""
        if self.kind == "postgres":
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"SET search_path TO {self.schema}")
                cursor = conn.execute(statement.replace("?", "%s"), params)
                return cursor.fetchall() if cursor.description else []
        import sqlite3

        with sqlite3.connect(self.tmp_path / ".ledger" / "ledger.db") as conn:
            rows = conn.execute(statement, params).fetchall()
            conn.commit()
            return rows

    @property
    def events_table(self) -> str:
        return "ledger_events" if self.kind == "postgres" else "stored_events"

    @property
    def position_column(self) -> str:
        return "notification_id" if self.kind == "postgres" else "rowid"

    @contextmanager
    def fresh(self) -> Iterator[Settings]:
        """Settings for a store of its own (one hypothesis example), removed afterwards."""
        home = Path(tempfile.mkdtemp(dir=self.tmp_path))
        schema = f"{self.schema}_{home.name[-8:].lower()}"
        try:
            yield self.settings(home=home, pg_schema=schema)
        finally:
            if self.kind == "postgres":
                self.sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            shutil.rmtree(home, ignore_errors=True)

    def drop(self) -> None:
        if self.kind == "postgres":
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = StoreFactory(request.param, tmp_path)
    yield factory
    factory.drop()


@pytest.fixture
def ledger(store: StoreFactory) -> Iterator[Ledger]:
    app = Ledger(store.settings())
    yield app
    app.close()


@pytest.fixture
def open_ledger(store: StoreFactory) -> Iterator[Callable[..., Ledger]]:
    """Open more ledgers on the same store (as other processes or writers would)."""
    opened: list[Ledger] = []

    def factory(**overrides: Any) -> Ledger:
        app = Ledger(store.settings(**overrides))
        opened.append(app)
        return app

    yield factory
    for app in opened:
        app.close()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A three-file model: binary weights, a config, and a file in a subfolder."""
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (root / "config.json").write_text('{"layers": 3}')
    (root / "sub" / "vocab.txt").write_text("a\nb\nc\n")
    return root


# -- the command line, in-process -------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


Cli = Callable[..., Result]


@pytest.fixture
def cli(
    store: StoreFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """Run `ledger ARGS...` in-process against the test store; return code and output."""
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Result:
        return run_cli(monkeypatch, capsys, *args)

    return run


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> Result:
    """Run `ledger ARGS...` in-process with the environment as it is; code and output."""
    monkeypatch.setattr(sys, "argv", ["ledger", *args])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def assert_user_error(result: Result, fragment: str) -> None:
    assert result.code == 1, result
    assert result.err.startswith("error: ") and fragment in result.err, result.err
    assert "Traceback" not in result.err + result.out


# -- the HTTP API, in-process -----------------------------------------------------------

ROLE_NAMES = ("reader", "contributor", "deployer", "admin")


@dataclass
class Api:
    """A client of the real app on the test store, and a token for each role."""

    client: Any  # fastapi.testclient.TestClient (an httpx client)
    tokens: dict[str, str]
    settings: Settings

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def head(self) -> int:
        """Events in the log: a refused request must leave it unchanged."""
        return int(self.client.get("/health").json()["store"]["head"])


@contextmanager
def running_api(settings: Settings, *, relay: bool = False) -> Iterator[Api]:
    from fastapi.testclient import TestClient

    from ledger.api import create_app

    with Ledger(settings) as ledger:
        tokens = {role: ledger.tokens.create(f"{role}-bot", role).secret for role in ROLE_NAMES}
    with TestClient(create_app(settings, relay=relay), raise_server_exceptions=False) as client:
        yield Api(client, tokens, settings)


@pytest.fixture
def api(store: StoreFactory) -> Iterator[Api]:
    with running_api(store.settings()) as running:
        yield running


@pytest.fixture
def nats_store(store: StoreFactory) -> Iterator[StoreFactory]:
    """The test store, publishing to a stream and subjects of the test's own on NATS."""
    from tests.bus_support import NATS_URL, delete_stream  # bus_support imports this module

    suffix = uuid.uuid4().hex[:10]
    overrides = {
        "nats_url": NATS_URL,
        "nats_stream": f"TEST_{suffix}",
        "nats_subject_prefix": f"test_{suffix}",
        "nats_ack_wait_s": 1.0,
    }
    store.settings = _with(store.settings, overrides)  # type: ignore[method-assign]
    store.env = _env_with(store.env, overrides)  # type: ignore[method-assign]
    yield store
    delete_stream(store.settings())


def _with(settings_of, overrides):  # type: ignore[no-untyped-def]
    return lambda **more: settings_of(**(overrides | more))


def _env_with(env_of, overrides):  # type: ignore[no-untyped-def]
    return lambda: env_of() | {f"LEDGER_{k.upper()}": str(v) for k, v in overrides.items()}


@contextmanager
def _session_env(env: dict[str, str]) -> Iterator[None]:
    """``env`` in os.environ until the block ends (for the whole session: Ray's workers
    start from the driver's environment)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def s3_server() -> Iterator[ObjectStoreServer]:
    """moto's S3 server for the session, its endpoint and credentials in the environment."""
    from tests.object_stores import moto_server

    with moto_server() as server, _session_env(server.env):
        yield server


@pytest.fixture(scope="session")
def azure_server() -> Iterator[ObjectStoreServer]:
    """Azurite for the session, its endpoint in the environment."""
    from tests.object_stores import azurite_server

    with azurite_server() as server, _session_env(server.env):
        yield server


ARTIFACT_STORES = ["local", "s3", "az"]


@pytest.fixture(params=ARTIFACT_STORES)
def artifact_location(request: pytest.FixtureRequest) -> str:
    """Where a test's artifacts go: "" (the default local directory), or a fresh bucket
    on the S3 server or container on Azurite, as a store URL."""
    if request.param == "local":
        return ""
    server = request.getfixturevalue("s3_server" if request.param == "s3" else "azure_server")
    location: str = server.new_location()
    return location


@pytest.fixture
def ledger_on_stores(store: StoreFactory, artifact_location: str) -> Iterator[Ledger]:
    """A ledger over each event store, with its artifacts in each artifact store (a local
    directory, a bucket on the S3 server, a container on Azurite)."""
    app = Ledger(store.settings(artifacts=artifact_location))
    yield app
    app.close()


@pytest.fixture(scope="session")
def ray_started(s3_server: ObjectStoreServer, azure_server: ObjectStoreServer) -> Iterator[None]:
    """One local Ray for the whole test session (starting it takes seconds), started after
    the object store servers so that its workers find them."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=RAY_TEST_CPUS, include_dashboard=False, log_to_driver=False)
    yield
    if "ray.serve" in sys.modules:  # Serve first: its handles' threads would start a new Ray
        from ray import serve

        serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def pg_instance() -> Iterator[PgInstance]:
    """One private PostgreSQL for the session's fault tests (initdb and a start take about
    a second); each test uses a schema of its own on it. The shared server is never touched."""
    from tests.pg_instance import private_instance  # pg_instance imports this module

    with private_instance() as instance:
        yield instance


@pytest.fixture
def private_pg(pg_instance: PgInstance) -> PgInstance:
    """The session's private PostgreSQL, running (a test that failed half way through a
    restart may have left it stopped)."""
    if not pg_instance.running():
        pg_instance.start()
    return pg_instance
