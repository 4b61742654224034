"""libpq parameters in LEDGER_STORE's query string: which are taken, where they go (every
connection the ledger makes), and clear refusals. tests/store/test_pg_tls.py connects."""

from __future__ import annotations

import pytest
from eventsourcing.utils import Environment
from psycopg.conninfo import conninfo_to_dict

from ledger.cli.context import load_settings
from ledger.errors import InvalidInputError
from ledger.settings import Settings
from ledger.storage import APPLICATION_NAME, eventsourcing_env
from ledger.storage.connections import connect_kwargs, shared_pool
from ledger.storage.postgres import ChainedPostgresFactory
from tests.conftest import PG_URL, Result, run_cli

URL = (
    "postgresql://ana:s3cret@db.example:5433/ledger?sslmode=verify-full"
    "&sslrootcert=/run/secrets/pg%20ca.pem&application_name=ledger-api&connect_timeout=12"
    "&options=-c%20statement_timeout%3D5000&keepalives_idle=30&target_session_attrs=read-write"
)
TAKEN = {
    "sslmode": "verify-full",
    "sslrootcert": "/run/secrets/pg ca.pem",
    "application_name": "ledger-api",
    "connect_timeout": "12",
    "options": "-c statement_timeout=5000",
    "keepalives_idle": "30",
    "target_session_attrs": "read-write",
}


def test_query_parameters_reach_the_ledgers_connections() -> None:
    settings = Settings(store=URL)
    assert settings.store_location.pg_parameters == TAKEN
    kwargs = connect_kwargs(settings)
    assert kwargs == {
        "host": "db.example", "port": 5433, "user": "ana", "password": "s3cret",
        "dbname": "ledger", **TAKEN, "autocommit": True,
    }  # fmt: skip
    env = eventsourcing_env(settings)
    assert env["POSTGRES_CONNECT_TIMEOUT"] == "12"
    # eventsourcing's own pool: CREATE_TABLE=n, so the factory connects to nothing here.
    factory = ChainedPostgresFactory(Environment(APPLICATION_NAME, env | {"CREATE_TABLE": "n"}))
    try:
        assert conninfo_to_dict(factory.datastore.pool.conninfo) == TAKEN
        assert factory.datastore.pool.kwargs is not None
        assert factory.datastore.pool.kwargs["host"] == "db.example"
    finally:
        factory.close()


def test_without_a_query_the_connect_timeout_is_five_seconds() -> None:
    settings = Settings(store="postgresql://ana@db.example/ledger")
    assert settings.store_location.pg_parameters == {}
    assert connect_kwargs(settings)["connect_timeout"] == "5"
    env = eventsourcing_env(settings)
    assert env["POSTGRES_CONNECT_TIMEOUT"] == "5"
    assert conninfo_to_dict(env["LEDGER_POSTGRES_CONNINFO"]) == {"connect_timeout": "5"}
    # connect_timeout=0 (libpq waits forever) leaves eventsourcing's pool wait at 5 s
    forever = Settings(store="postgresql://ana@db.example/ledger?connect_timeout=0")
    assert eventsourcing_env(forever)["POSTGRES_CONNECT_TIMEOUT"] == "5"


def test_the_description_shows_the_sslmode_but_no_secret_nor_path() -> None:
    described = Settings(store=URL).store_location.describe()
    assert described == "postgresql://ana@db.example:5433/ledger?sslmode=verify-full"


def test_pools_differ_by_parameters() -> None:
    """Two stores that differ only in a parameter never share the process's pool."""
    first = Settings(store=f"{PG_URL}?application_name=first")
    second = Settings(store=f"{PG_URL}?application_name=second")
    pools = [shared_pool(first), shared_pool(second), shared_pool(first)]
    try:
        assert pools[0] is pools[2] and pools[0] is not pools[1]
    finally:
        for pool in pools:
            pool.release()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("foo=1", "unknown connection parameter 'foo' in the query string (allowed: "),
        ("password=x", "unknown connection parameter 'password'"),
        ("host=/tmp", "unknown connection parameter 'host'"),
        ("sslmode=maybe", "sslmode='maybe' is not one of disable, allow, prefer, require"),
        ("sslmode=", "connection parameter 'sslmode' has no value"),
        ("sslmode=require&sslmode=disable", "'sslmode' is given twice"),
        ("connect_timeout=soon", "connect_timeout='soon' must be a whole number"),
        ("target_session_attrs=any-old", "target_session_attrs='any-old' is not one of"),
    ],
)
def test_bad_parameters_are_one_settings_error(
    monkeypatch: pytest.MonkeyPatch, query: str, message: str
) -> None:
    monkeypatch.setenv("LEDGER_STORE", f"postgresql://ana:s3cret@db.example/ledger?{query}")
    with pytest.raises(InvalidInputError, match=r"^LEDGER_STORE: ") as refused:
        load_settings()
    assert message in str(refused.value)
    assert "s3cret" not in str(refused.value) and "\n" not in str(refused.value)


def test_the_cli_prints_an_unknown_parameter_as_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEDGER_STORE", "postgresql://ana@db.example/ledger?foo=1")
    result: Result = run_cli(monkeypatch, capsys, "model", "list")
    assert result.code == 1
    assert result.err.startswith(
        "error: LEDGER_STORE: unknown connection parameter 'foo' in the query string"
    )
    assert len(result.err.strip().splitlines()) == 1, result.err
