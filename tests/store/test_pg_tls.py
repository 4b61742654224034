"""LEDGER_STORE's sslmode against a real TLS server: a private PostgreSQL with ssl=on, a
certificate authority and server certificate made here, and a pg_hba.conf that takes TLS
connections only. Every connection the ledger makes (the event store's pool, the views'
pool, the relay's own connection holding its lock, its LISTEN) carries the parameters."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.bus.relay import Relay
from ledger.ledger import Ledger
from ledger.settings import Settings
from projections.views import Views
from tests.bus.test_relay_trust import stream_contents
from tests.bus_support import NATS_URL, delete_stream, in_background, wait_for
from tests.certificates import Authority
from tests.pg_instance import PgInstance, private_instance

LEDGER_BIN = Path(sys.executable).parent / "ledger"
# TLS connections only: a plain one is rejected by name (not merely unmatched).
PG_HBA = """\
local all all trust
hostssl all all 127.0.0.1/32 trust
hostnossl all all 127.0.0.1/32 reject
"""

# What a connection learns about itself: the name it gave, and whether it is TLS.
OWN_BACKEND = (
    "SELECT current_setting('application_name') AS application_name, ssl "
    "FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
)


def _write_for_server(path: Path, data: bytes, mode: int) -> None:
    """A file the server reads: owned by the user it runs as (postgres when we are root)."""
    path.write_bytes(data)
    path.chmod(mode)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


@dataclass
class TlsServer:
    instance: PgInstance
    ca: Path  # the authority that signed the server's certificate
    wrong_ca: Path  # another one

    def url(self, query: str) -> str:
        return f"{self.instance.url}?{query}"

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url("sslmode=require"), autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def tls_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """A private PostgreSQL serving TLS only, with a certificate for 127.0.0.1."""
    certs = tmp_path_factory.mktemp("certs")
    ca = Authority.create(certs / "ca")
    wrong_ca = Authority.create(certs / "other", "another CA")
    server_certificate = ca.issue("localhost")
    with private_instance() as instance:
        for issued, name, mode in [
            (server_certificate.key, "server.key", 0o600),
            (server_certificate.cert, "server.crt", 0o644),
        ]:
            _write_for_server(instance.data / name, issued.read_bytes(), mode)
        with (instance.data / "postgresql.conf").open("a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        (instance.data / "pg_hba.conf").write_text(PG_HBA)
        instance.stop()
        instance.start()
        server = TlsServer(instance, ca.cert, wrong_ca.cert)
        assert server.sql("SHOW ssl") == [("on",)], instance.server_log()
        yield server


@pytest.fixture
def schema(tls_pg: TlsServer) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    tls_pg.sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def ledger_cli(
    tls_pg: TlsServer, schema: str, home: Path, query: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`ledger ARGS...` as a user runs it, LEDGER_STORE carrying ``query``."""
    env = {
        **os.environ,
        "LEDGER_STORE": tls_pg.url(query),
        "LEDGER_PG_SCHEMA": schema,
        "LEDGER_HOME": str(home),
        "LEDGER_ACTOR": "tester",
        "LEDGER_EXECUTOR": "local",
        "LEDGER_LOG_LEVEL": "ERROR",
    }
    return subprocess.run(
        [LEDGER_BIN, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


# -- the tests ------------------------------------------------------------------------------


def test_sslmode_require_serves_commands_views_and_the_relay(
    tls_pg: TlsServer, schema: str, tmp_path: Path, model_dir: Path
) -> None:
    """Commands, the views and the relay (its lock, its LISTEN) on a TLS-only server; every
    backend they hold is a TLS one carrying the URL's application_name."""
    suffix = uuid.uuid4().hex[:10]
    application = f"ledger-tls-{suffix}"
    settings = Settings(
        store=tls_pg.url(f"sslmode=require&application_name={application}"), pg_schema=schema,
        home=tmp_path / ".ledger", actor="tester", executor="local",
        nats_url=NATS_URL, nats_stream=f"TLS_{suffix}", nats_subject_prefix=f"tls_{suffix}",
    )  # fmt: skip
    relay = Relay(settings)
    try:
        with Ledger(settings) as ledger, Views.open(settings) as views:
            ledger.models.register_version("iris", model_dir)
            ledger.models.register_version("iris", model_dir)
            head = ledger.event_count()
            views.updater.catch_up()
            assert [(m["name"], m["latest_version"]) for m in views.models()] == [("iris", 2)]
            with ledger.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
                assert conn.execute(OWN_BACKEND).fetchone() == {
                    "application_name": application, "ssl": True,
                }  # fmt: skip
            assert views.db.execute(OWN_BACKEND) == [(application, True)]
            with in_background(relay.run):
                wait_for(lambda: relay.status.active and relay.status.position == head, 30,
                         "the relay")  # fmt: skip
                backends = tls_pg.sql(
                    "SELECT a.application_name, s.ssl, a.query, "
                    "  EXISTS (SELECT 1 FROM pg_locks l "
                    "          WHERE l.pid = a.pid AND l.locktype = 'advisory') "
                    "FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                    "WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()"
                )
        assert [envelope["position"] for _, envelope in stream_contents(settings)] == list(
            range(1, head + 1)
        )
    finally:
        delete_stream(settings)
    # The server is this module's: every other backend is the ledger's, and each is TLS.
    assert {(app, ssl) for app, ssl, _, _ in backends} == {(application, True)}, backends
    assert len(backends) >= 4, backends  # event store, views, relay's lock, relay's LISTEN
    assert any(query.startswith("LISTEN") for _, _, query, _ in backends), backends
    assert any(locked for _, _, _, locked in backends), "no relay lock held"


def test_verify_full_with_the_servers_ca_works_from_the_cli(
    tls_pg: TlsServer, schema: str, tmp_path: Path, model_dir: Path
) -> None:
    query = f"sslmode=verify-full&sslrootcert={tls_pg.ca}"
    home = tmp_path / ".ledger"
    registered = ledger_cli(
        tls_pg, schema, home, query, "model", "register", "iris", str(model_dir)
    )
    assert registered.returncode == 0, registered
    listed = ledger_cli(tls_pg, schema, home, query, "model", "list")
    assert listed.returncode == 0 and "iris" in listed.stdout, listed
    verified = ledger_cli(tls_pg, schema, home, query, "verify")
    assert verified.returncode == 0 and verified.stdout.startswith("OK: "), verified


def test_refusals_are_one_clear_line(tls_pg: TlsServer, schema: str, tmp_path: Path) -> None:
    """A plain connection to a TLS-only server, a server certificate from another authority,
    and a parameter the ledger does not know: one line each, naming the cause."""
    home = tmp_path / ".ledger"
    port = tls_pg.instance.port
    plain = one_error_line(ledger_cli(tls_pg, schema, home, "sslmode=disable", "model", "list"))
    assert plain.startswith(
        "error: the event store is unavailable: cannot reach "
        f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable ("
    ), plain
    assert "pg_hba.conf rejects connection" in plain and "no encryption" in plain, plain

    untrusted = f"sslmode=verify-full&sslrootcert={tls_pg.wrong_ca}"
    wrong_ca = one_error_line(ledger_cli(tls_pg, schema, home, untrusted, "verify"))
    assert wrong_ca.startswith(
        "error: the event store is unavailable: cannot reach "
        f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full ("
    ), wrong_ca
    assert "certificate verify failed" in wrong_ca, wrong_ca
    assert str(tls_pg.wrong_ca) not in wrong_ca  # paths stay out of the description

    unknown = one_error_line(ledger_cli(tls_pg, schema, home, "foo=1", "verify"))
    assert unknown.startswith(
        "error: LEDGER_STORE: unknown connection parameter 'foo' in the query string "
        "(allowed: application_name, "
    ), unknown
