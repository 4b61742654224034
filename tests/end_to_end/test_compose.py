"""docker-compose.yml, read (no Docker engine runs here): services, ports, health checks,
and every LEDGER_* name it sets is a setting the ledger reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ledger.cli import app
from ledger.settings import Settings
from tests.paths import REPO

REPO = REPO
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's variables, ${NAME:-default} replaced by the default."""
    values = service.get("environment") or {}
    return {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in values.items()}


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def test_the_services_and_their_ports() -> None:
    assert set(SERVICES) == {
        "postgres", "nats", "ray-head", "ray-worker", "api", "relay", "worker", "automation"
    }  # fmt: skip
    assert "8000:8000" in SERVICES["api"]["ports"]
    assert "4222:4222" in SERVICES["nats"]["ports"]
    assert "5432:5432" in SERVICES["postgres"]["ports"]
    assert "-js" in SERVICES["nats"]["command"]  # JetStream, on a persistent volume
    assert any(v.startswith("nats-data:") for v in SERVICES["nats"]["volumes"])
    assert any(v.startswith("postgres-data:") for v in SERVICES["postgres"]["volumes"])


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
    known = {f"LEDGER_{field.upper()}" for field in Settings.model_fields}
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
