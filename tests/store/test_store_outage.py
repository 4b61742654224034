"""A store outage as the API and the CLI see it, without stopping a server: the views
cannot catch up after a commit, the Idempotency-Key table is unreachable, the CLI meets
a lost connection. Never a 500, a traceback, or a committed write reported as failed."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import PoolTimeout

from ledger.api.idempotency import Idempotency
from projections.updater import ViewUpdater
from tests.conftest import Api, Cli


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError(
            "consuming input failed: server closed the connection unexpectedly\n"
            "\tThis probably means the server terminated abnormally"
        ),
        PoolTimeout("couldn't get a connection after 2.00 sec"),
    ],
    ids=["connection-lost", "pool-timeout"],
)
def test_the_cli_reports_a_lost_store_in_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def lost(*args: object, **kwargs: object) -> int:
        raise error

    monkeypatch.setattr(ViewUpdater, "catch_up", lost)
    result = cli("model", "list")
    # Only the CLI's own lines: a server another test left in this process may log its
    # follower's retries through the patched view updater meanwhile.
    own = [line for line in result.err.strip().splitlines() if not line.startswith("{")]
    assert result.code == 1 and "Traceback" not in result.err, result
    assert len(own) == 1 and own[0].startswith("error: the event store is unavailable"), own


def _register(api: Api, name: str, key: str) -> httpx.Response:
    return api.client.post(  # type: ignore[no-any-return]
        f"/models/{name}/versions",
        files=[("files", ("w.bin", key.encode()))],
        headers={**api.auth("contributor"), "Idempotency-Key": key},
    )


def test_a_write_whose_views_cannot_catch_up_is_answered_as_committed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store went away right after the commit: the registration is answered from the
    command (it never waits for the views), and a read after it, which would wait for the
    views to include it, is answered from them as they are, marked as behind the write;
    the views catch up once the store is back."""
    services = api.client.app.state.services
    catch_up = ViewUpdater.catch_up

    def store_gone(updater: ViewUpdater, *args: Any, **kwargs: Any) -> int:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ViewUpdater, "catch_up", store_gone)
    response = _register(api, "lagging", "k1")
    assert response.status_code == 201, response.text
    assert response.json()["version"] == 1
    behind = api.client.get("/models", headers=api.auth("reader"))
    assert behind.status_code == 200 and behind.headers["X-Ledger-Views-Lag"] == "true"
    monkeypatch.setattr(ViewUpdater, "catch_up", catch_up)
    services.sync_views()
    found = api.client.get("/models/lagging", headers=api.auth("reader"))
    assert found.status_code == 200 and "X-Ledger-Views-Lag" not in found.headers
    replay = _register(api, "lagging", "k1")
    assert replay.status_code == 201 and replay.json()["version"] == 1
    assert "X-Ledger-Views-Lag" not in _register(api, "lagging", "k2").headers


def test_idempotency_keys_never_turn_a_committed_write_into_a_failure(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key's record cannot be written after the command committed (the store went
    away): the answer stands, and the record is written once the store is back."""
    execute = Idempotency._execute
    lost = {"armed": True}

    def failing_update(self: Idempotency, statement: str, *params: object) -> list[Any]:
        if statement.startswith("UPDATE") and lost["armed"]:
            lost["armed"] = False
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return execute(self, statement, *params)

    monkeypatch.setattr(Idempotency, "_execute", failing_update)
    first = _register(api, "kept", "once")
    assert first.status_code == 201, first.text
    assert not lost["armed"]
    retry = _register(api, "kept", "once")  # the deferred record is written first
    assert retry.status_code == 201 and retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json()["version"] == first.json()["version"] == 1


def test_a_store_outage_in_the_idempotency_check_is_a_503(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(self: Idempotency, key: str) -> None:
        raise PoolTimeout("couldn't get a connection after 2.00 sec")

    monkeypatch.setattr(Idempotency, "_claim", unavailable)
    response = _register(api, "nothing", "k")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "the event store is unavailable" in response.json()["detail"]


def test_an_endpoint_written_ahead_of_its_views_is_answered_from_the_command(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def store_gone(updater: ViewUpdater, *args: Any, **kwargs: Any) -> int:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ViewUpdater, "catch_up", store_gone)
    response = api.client.post(
        "/endpoints", json={"name": "ep", "kind": "online"}, headers=api.auth("deployer")
    )
    assert response.status_code == 201, response.text
    assert response.headers["X-Ledger-Views-Lag"] == "true"
    assert response.json()["name"] == "ep" and response.json()["deployments"] == {}
