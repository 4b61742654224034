"""The CLI's reads come from the views: search, audit, lineage, as-of, and `projections`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, assert_user_error


@pytest.fixture
def canary(cli: Cli, model_dir: Path) -> Cli:
    """iris:1 (champion) and iris:2 on endpoint `shop`, traffic moved 100/0 -> 0/100."""
    for _ in range(2):
        assert cli("model", "register", "iris", str(model_dir), "--tag", "team=cv").code == 0
    assert cli("model", "alias", "iris", "champion", "1").code == 0
    assert cli("endpoint", "create", "shop").code == 0
    assert cli("endpoint", "deploy", "shop", "blue", "iris:1").code == 0
    assert cli("endpoint", "deploy", "shop", "green", "iris:2").code == 0
    assert cli("endpoint", "traffic", "shop", "green=100", "--reason", "rollout").code == 0
    return cli


def test_search_pages_and_filters(canary: Cli) -> None:
    first = canary("model", "search", "--prefix", "ir", "--limit", "1", "--json").json()
    assert [i["ref"] for i in first["items"]] == ["iris:2"]  # type: ignore[index]
    token = first["next_token"]  # type: ignore[index]
    second = canary("model", "search", "--prefix", "ir", "--page", token, "--json").json()
    assert [i["ref"] for i in second["items"]] == ["iris:1"]  # type: ignore[index]
    found = canary("model", "search", "--tag", "team=cv", "--alias", "champion", "--json").json()
    assert [i["ref"] for i in found["items"]] == ["iris:1"]  # type: ignore[index]
    assert "more: --page" in canary("model", "search", "--limit", "1").out
    assert_user_error(canary("model", "search", "--page", "bogus"), "invalid page token")
    assert_user_error(canary("model", "search", "--since", "yesterday"), "not an ISO 8601 time")
    assert_user_error(canary("model", "search", "--flavor", "keras"), "unknown flavor 'keras'")
    assert_user_error(canary("model", "search", "--tag", "oops"), "expected key=value")


def test_audit_and_history(canary: Cli) -> None:
    rows = canary("audit", "--type", "TrafficChanged", "--json").json()
    reasons = [r["reason"] for r in rows["items"]]  # type: ignore[index]
    assert reasons == ["", "rollout"]
    by_entity = canary("audit", "--entity", "model_version:iris:2", "--json").json()
    assert {r["name"] for r in by_entity["items"]} == {"iris:2"}  # type: ignore[index]
    assert canary("audit", "--actor", "nobody", "--json").json()["items"] == []  # type: ignore[index]
    future = canary("audit", "--since", "2999-01-01T00:00:00Z", "--json").json()
    assert future["items"] == []  # type: ignore[index]
    assert "Endpoint.TrafficChanged" in canary("audit", "--entity", "endpoint:shop").out
    history = canary("history", "model", "iris", "--json").json()
    assert history[0]["event_type"] == "Model.Registered"  # type: ignore[index]
    assert_user_error(canary("audit", "--type", "Exploded"), "unknown event type")
    assert_user_error(canary("audit", "--entity", "planet:x"), "unknown entity kind 'planet'")
    assert_user_error(canary("history", "endpoint", "nowhere"), "no events for endpoint")


def test_lineage_and_as_of(canary: Cli) -> None:
    up = canary("lineage", "endpoint:shop", "--json").json()
    assert {n["node"] for n in up["nodes"]} >= {"model:iris:1", "model:iris:2"}  # type: ignore[index]
    down = canary("lineage", "model:iris:1", "--downstream", "--depth", "1", "--json").json()
    assert [n["node"] for n in down["nodes"]] == ["model:iris:1", "deployment:shop/blue"]  # type: ignore[index]
    assert "deployed_as" in canary("lineage", "endpoint:shop").out
    assert_user_error(canary("lineage", "model:nope:1"), "no lineage node 'model:nope:1'")

    rows: Any = canary("audit", "--type", "TrafficChanged", "--json").json()
    before = rows["items"][-1]["position"] - 1
    past = canary("as-of", str(before), "--endpoint", "shop", "--json").json()
    assert past["traffic"] == {"blue": 100}  # type: ignore[index]
    now = canary("as-of", "2999-01-01T00:00:00+00:00", "--json").json()
    assert now["endpoints"]["shop"]["traffic"] == {"green": 100}  # type: ignore[index]
    assert now["models"]["iris"]["aliases"] == {"champion": 1}  # type: ignore[index]
    table = canary("as-of", str(before))
    assert table.code == 0 and "blue" in table.out and "100%" in table.out
    assert_user_error(canary("as-of", "999999"), "position must be between 0 and")
    assert_user_error(canary("as-of", "next week"), "not an ISO 8601 time")
    assert_user_error(canary("as-of", "1", "--endpoint", "shop"), "did not exist at position 1")


def test_projections_status_and_rebuild(canary: Cli) -> None:
    assert canary("model", "list").code == 0  # reads bring the views up to date first
    status = canary("projections", "status", "--json").json()
    assert {s["name"] for s in status} == {  # type: ignore[union-attr]
        "registry",
        "endpoints",
        "lineage",
        "audit",
        "tokens",
        "jobs",
        "assets",
        "monitors",
        "webhooks",
        "rules",
        "tracked_artifacts",
        "mlflow",
    }
    assert all(s["lag_events"] == 0 for s in status)  # type: ignore[union-attr, index]
    assert canary("endpoint", "traffic", "shop", "blue=100").code == 0  # views not yet updated
    lagging = canary("projections", "status", "--json").json()
    assert all(s["lag_events"] == 1 and s["lag_seconds"] >= 0 for s in lagging)  # type: ignore[union-attr, index]
    assert "lag (events)" in canary("projections", "status").out
    rebuilt = canary("projections", "rebuild")
    assert rebuilt.code == 0 and "Rebuilt from" in rebuilt.out
    assert canary("projections", "rebuild", "audit").code == 0
    assert_user_error(canary("projections", "rebuild", "bogus"), "unknown projection bogus")
    listed = canary("endpoint", "list", "--json").json()
    assert listed[0]["traffic"] == {"blue": 100}  # type: ignore[index]


def test_reads_after_many_events_show_progress_while_catching_up(
    canary: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ledger.cli.context.LONG_CATCH_UP", 1)  # as if far behind
    listed = canary("model", "list", "--json")
    assert listed.code == 0 and listed.json()[0]["latest_version"] == 2  # type: ignore[index]
