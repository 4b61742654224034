"""docker-compose.yml, read (no Docker engine runs here): services, ports, health checks,
secrets, and every LEDGER_* name it sets is a setting the ledger reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ledger.cli import app
from ledger.settings import Settings
from tests.paths import REPO

REPO = REPO
COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
PUBLIC = {"api"}  # the one service published on every interface
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY", "CREDS")


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's variables, ${NAME:-default} replaced by the default."""
    values = service.get("environment") or {}
    return {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in values.items()}


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def _published_on(port: str | dict[str, Any]) -> str:
    """The host address a port mapping binds: "" for every interface."""
    if isinstance(port, dict):
        return str(port.get("host_ip", ""))
    parts = str(port).rsplit(":", 2)
    return parts[0] if len(parts) == 3 else ""


def test_the_services_and_their_ports() -> None:
    assert set(SERVICES) == {
        "postgres", "nats", "ray-head", "ray-worker", "api", "relay", "worker", "automation",
        "postgres-debug", "nats-debug",
    }  # fmt: skip
    assert "8000:8000" in SERVICES["api"]["ports"]
    assert "-js" in _command(SERVICES["nats"])  # JetStream, on a persistent volume
    assert any(v.startswith("nats-data:") for v in SERVICES["nats"]["volumes"])
    assert any(v.startswith("postgres-data:") for v in SERVICES["postgres"]["volumes"])


def test_only_the_api_is_published_on_every_interface() -> None:
    for name, service in SERVICES.items():
        addresses = {_published_on(port) for port in service.get("ports") or []}
        if name in PUBLIC:
            continue
        assert addresses <= {"127.0.0.1"}, (name, service.get("ports"))
    # The loopback forwards of PostgreSQL and NATS run only when asked for.
    for name in ("postgres-debug", "nats-debug"):
        assert SERVICES[name]["profiles"] == ["debug"], name
    assert "--dashboard-host=127.0.0.1" in _command(SERVICES["ray-head"])


def test_no_secret_has_a_default() -> None:
    # ${NAME:-default} or ${NAME-default} for anything secret: a password nobody chose.
    for match in re.finditer(r"\$\{(\w+)(:?-)[^}]*\}", COMPOSE_TEXT):
        assert not any(word in match.group(1) for word in SECRET_WORDS), match.group(0)
    # A secret variable is never given inline: it names a file under /run/secrets.
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in SECRET_WORDS) and key != "RAY_AUTH_MODE":
                assert value is None or (key.endswith("_FILE") and value.startswith(
                    "/run/secrets/")), (name, key)  # fmt: skip
            if "://" in str(value):  # nor inside a URL
                assert urlsplit(str(value)).password is None, (name, key)
    # Every secret file is required: compose refuses to start without LEDGER_SECRETS.
    for name, secret in COMPOSE["secrets"].items():
        assert re.fullmatch(r"\$\{LEDGER_SECRETS:\?[^}]+\}/" + name, secret["file"]), name


def test_nats_requires_users_with_least_permissions() -> None:
    nats = SERVICES["nats"]
    assert "./deploy/nats.conf:/etc/nats/ledger.conf:ro" in nats["volumes"]
    assert "-c /etc/nats/ledger.conf" in _command(nats)
    assert set(nats["secrets"]) == {"nats_relay_password", "nats_service_password"}
    for name in ("api", "worker", "automation", "relay"):
        environment = SERVICES[name]["environment"]
        user = "relay" if name == "relay" else "ledger"
        assert environment["LEDGER_NATS_USER"] == user, name
        assert environment["LEDGER_NATS_PASSWORD_FILE"].endswith(
            "nats_relay_password" if user == "relay" else "nats_service_password"
        )
        assert environment["LEDGER_STORE_PASSWORD_FILE"] == "/run/secrets/db_password"
        assert set(SERVICES[name]["secrets"]) == {"db_password", Path(
            environment["LEDGER_NATS_PASSWORD_FILE"]).name}  # fmt: skip
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/secrets/db_password"
    )


def test_health_checks_and_start_order() -> None:
    for name in ("postgres", "nats", "ray-head", "api"):
        assert SERVICES[name]["healthcheck"]["test"], name
    for name, service in SERVICES.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition == {"condition": "service_healthy"}, name
            assert "healthcheck" in SERVICES[dependency], (name, dependency)


def test_ledger_services_run_ledger_commands_with_settings_the_ledger_reads() -> None:
    commands = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
    for name, expected in [
        ("api", "serve"), ("relay", "relay"), ("worker", "worker"), ("automation", "automation")
    ]:  # fmt: skip
        assert f"ledger {expected}" in _command(SERVICES[name]), name
        assert expected in commands
    known = {f"LEDGER_{field.upper()}{file}" for field in Settings.model_fields
             for file in ("", "_FILE")}  # fmt: skip
    for name, service in SERVICES.items():
        environment = _environment(service)
        unknown = [key for key in environment if key.startswith("LEDGER_") and key not in known]
        assert not unknown, (name, unknown)
        if name in ("api", "relay", "worker"):
            values = {k.removeprefix("LEDGER_").lower(): v for k, v in environment.items()
                      if k.startswith("LEDGER_")}  # fmt: skip
            settings = Settings(**values)
            assert settings.store_location.kind == "postgres"
            assert settings.store_location.pg_host == "postgres"
            assert settings.nats_url == "nats://nats:4222" and settings.executor == "ray"
            assert "ledger-data:/data" in service["volumes"]
            assert settings.artifacts_dir == Path("/data/artifacts")


def test_every_ray_node_and_driver_shares_the_data_volume_and_the_image() -> None:
    for name in ("ray-head", "ray-worker", "api", "worker"):
        assert "ledger-data:/data" in SERVICES[name]["volumes"], name
        assert SERVICES[name]["image"] == "lifecycle-ledger:latest", name
    for name in ("api", "worker"):
        assert "ray start --address=ray-head:6379" in _command(SERVICES[name])
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "\nFROM python:3.11" in dockerfile and 'pip install ".[examples]"' in dockerfile
