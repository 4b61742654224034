"""LEDGER_<NAME>_FILE: settings read from files (Docker secrets), and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.cli.context import load_settings
from ledger.errors import InvalidInputError


def test_a_secret_file_gives_the_setting_its_content(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "db").write_text("p@ss word\n")  # as `echo` writes it: the line break goes
    (tmp_path / "nats").write_text("relay-secret")
    monkeypatch.setenv("LEDGER_STORE", "postgresql://ledger@postgres:5432/ledger")
    monkeypatch.setenv("LEDGER_STORE_PASSWORD_FILE", str(tmp_path / "db"))
    monkeypatch.setenv("LEDGER_NATS_PASSWORD_FILE", str(tmp_path / "nats"))
    settings = load_settings()
    assert settings.store_location.pg_password == "p@ss word"
    assert settings.nats_password is not None
    assert settings.nats_password.get_secret_value() == "relay-secret"
    assert "p@ss" not in settings.store_location.describe() and "p@ss" not in repr(settings)


def test_a_password_in_the_url_wins_over_the_password_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGER_STORE", "postgresql://ledger:in-url@postgres/ledger")
    monkeypatch.setenv("LEDGER_STORE_PASSWORD", "setting")
    assert load_settings().store_location.pg_password == "in-url"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"LEDGER_NATS_TOKEN_FILE": "/nonexistent/token"},
            "LEDGER_NATS_TOKEN_FILE=/nonexistent/token: cannot read it (No such file",
        ),
        (
            {"LEDGER_NATS_TOKEN_FILE": "SELF", "LEDGER_NATS_TOKEN": "t"},
            "set LEDGER_NATS_TOKEN or LEDGER_NATS_TOKEN_FILE, not both",
        ),
        ({"LEDGER_API_PORT_FILE": "SELF"}, "LEDGER_API_PORT"),  # the content is validated
    ],
)
def test_bad_secret_files_are_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str], message: str
) -> None:
    (tmp_path / "secret").write_text("not a number\n")
    for name, value in variables.items():
        monkeypatch.setenv(name, str(tmp_path / "secret") if value == "SELF" else value)
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")):
        load_settings()
