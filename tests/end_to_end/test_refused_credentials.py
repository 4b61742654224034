"""Wrong credentials, as an operator mistypes them: `ledger serve`, `ledger relay` and
`ledger worker` each stop with one line naming what refused them and which setting to
check, for a wrong NATS password and for a wrong PostgreSQL password."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.bus_support import PrivateNats
from tests.conftest import free_port
from tests.paths import REPO
from tests.pg_instance import PgInstance, private_instance

LEDGER = shutil.which("ledger", path=os.path.dirname(sys.executable)) or "ledger"
NATS_PASSWORDS = {
    "LEDGER_NATS_RELAY_PASSWORD": "relay-pw",
    "LEDGER_NATS_SERVICE_PASSWORD": "svc-pw",
}
COMMANDS = {
    "serve": ["serve", "--port", "0"],
    "relay": ["relay"],
    "worker": ["worker"],
}


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateNats]:
    server = PrivateNats(
        tmp_path_factory.mktemp("nats"), REPO / "deploy" / "nats.conf", NATS_PASSWORDS
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgInstance]:
    with private_instance() as instance:
        instance.require_password("right-pw")
        _wait_until_password_required(instance)
        yield instance


def _wait_until_password_required(instance: PgInstance) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            psycopg.connect(instance.url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return
        assert time.monotonic() < deadline, "the server still trusts everyone"
        time.sleep(0.1)


def _run(command: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = (
        {key: value for key, value in os.environ.items() if not key.startswith("LEDGER_")}
        | {"LEDGER_HOME": str(tmp_path / "home"), "LEDGER_EXECUTOR": "local"}
        | env
    )
    return subprocess.run(
        [LEDGER, *COMMANDS[command]],
        env=environment, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_wrong_nats_password_is_one_line(
    command: str, nats_server: PrivateNats, postgres: PgInstance, tmp_path: Path
) -> None:
    user = "relay" if command == "relay" else "ledger"
    result = _run(
        command, tmp_path,
        LEDGER_STORE=postgres.url.replace("postgres@", "postgres:right-pw@"),
        LEDGER_NATS_URL=nats_server.url, LEDGER_NATS_USER=user, LEDGER_NATS_PASSWORD="wrong",
    )  # fmt: skip
    assert _error_lines(result) == [
        f"error: NATS at {nats_server.url} refuses the credentials (user '{user}'): nats: "
        "'Authorization Violation'; check LEDGER_NATS_USER and LEDGER_NATS_PASSWORD, "
        "LEDGER_NATS_TOKEN, LEDGER_NATS_NKEY_SEED or LEDGER_NATS_CREDS"
    ]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_wrong_postgres_password_is_one_line(
    command: str, nats_server: PrivateNats, postgres: PgInstance, tmp_path: Path
) -> None:
    password_file = tmp_path / "db_password"
    password_file.write_text("wrong-pw\n")
    user, role = ("relay", "RELAY") if command == "relay" else ("ledger", "SERVICE")
    result = _run(
        command, tmp_path,
        LEDGER_STORE=postgres.url, LEDGER_STORE_PASSWORD_FILE=str(password_file),
        LEDGER_NATS_URL=nats_server.url, LEDGER_NATS_USER=user,
        LEDGER_NATS_PASSWORD=NATS_PASSWORDS[f"LEDGER_NATS_{role}_PASSWORD"],
    )  # fmt: skip
    assert _error_lines(result) == [
        f"error: PostgreSQL at postgresql://postgres@127.0.0.1:{postgres.port}/postgres "
        'refuses the credentials: password authentication failed for user "postgres"; '
        "check the user and password in LEDGER_STORE, or LEDGER_STORE_PASSWORD"
    ]


def test_the_right_password_from_a_file_opens_the_store(
    postgres: PgInstance, tmp_path: Path
) -> None:
    password_file = tmp_path / "db_password"
    password_file.write_text("right-pw\n")
    result = subprocess.run(
        [LEDGER, "model", "list"],
        env={key: value for key, value in os.environ.items() if not key.startswith("LEDGER_")}
        | {
            "LEDGER_HOME": str(tmp_path / "home"),
            "LEDGER_STORE": postgres.url,
            "LEDGER_STORE_PASSWORD_FILE": str(password_file),
            "LEDGER_PG_SCHEMA": f"s{free_port()}",
        },
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_servers_that_are_down_are_left_to_the_services_to_wait_for(tmp_path: Path) -> None:
    """Only a refusal stops a service at start: PostgreSQL or NATS being down is an outage
    the services wait out, so the start check lets it pass."""
    from ledger.cli.context import check_credentials
    from ledger.settings import Settings

    closed = free_port()  # nothing listens there
    check_credentials(
        Settings(
            home=tmp_path,
            store=f"postgresql://postgres:pw@127.0.0.1:{closed}/postgres",
            nats_url=f"nats://127.0.0.1:{closed}",
            nats_user="ledger",
            nats_password="pw",
        )
    )
