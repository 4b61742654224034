"""LEDGER_* settings: store URLs, defaults, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.cli.context import load_settings
from ledger.errors import InvalidInputError
from ledger.settings import Settings


def test_embedded_store_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGER_ACTOR")
    settings = Settings()
    assert settings.store_location.kind == "sqlite"
    assert settings.store_location.sqlite_path == Path(".ledger/ledger.db")
    assert settings.artifacts_dir == Path(".ledger/artifacts")
    assert settings.effective_actor  # the OS user


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/var/lib/ledger.db", Path("/var/lib/ledger.db")),
        ("data/ledger.db", Path("data/ledger.db")),
        ("sqlite:///var/lib/ledger.db", Path("/var/lib/ledger.db")),
        ("sqlite:///./here.db", Path("here.db")),
    ],
)
def test_sqlite_locations(url: str, path: Path) -> None:
    location = Settings(store=url).store_location
    assert (location.kind, location.sqlite_path) == ("sqlite", path)


def test_postgres_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_STORE", "postgresql://ana:p%40ss@db.internal:6543/registry")
    monkeypatch.setenv("LEDGER_PG_SCHEMA", "mlops")
    settings = Settings()
    location = settings.store_location
    assert (location.kind, location.pg_host, location.pg_port) == ("postgres", "db.internal", 6543)
    assert (location.pg_user, location.pg_password, location.pg_dbname) == (
        "ana",
        "p@ss",
        "registry",
    )
    assert settings.pg_schema == "mlops"
    assert "p@ss" not in location.describe()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"LEDGER_STORE": "mysql://db/x"}, "use a SQLite path or a postgresql:// URL"),
        ({"LEDGER_STORE": "postgresql://host"}, "expected postgresql://user"),
        ({"LEDGER_PG_SCHEMA": "drop table;"}, "LEDGER_PG_SCHEMA"),
        ({"LEDGER_LOG_FORMAT": "xml"}, "LEDGER_LOG_FORMAT"),
        ({"LEDGER_CACHE_SIZE": "-1"}, "LEDGER_CACHE_SIZE"),
        ({"LEDGER_SQLITE_SYNCHRONOUS": "off"}, "LEDGER_SQLITE_SYNCHRONOUS"),
    ],
)
def test_bad_settings_are_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(InvalidInputError, match=message):
        load_settings()
