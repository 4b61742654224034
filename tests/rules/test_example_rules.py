"""The issue's two example rules end to end: a candidate is evaluated, a better one is
canaried after a deployer approves, a worse one is skipped with the reason, and
delivering every event again fires nothing twice."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ledger.ledger import Ledger
from ledger.settings import Settings
from ledger.storage.side_tables import BUS_CURSORS, HANDLED_EVENTS
from tests.bus_support import with_jetstream
from tests.conftest import StoreFactory
from tests.rules.support import (
    MODEL,
    Shop,
    engine_and_worker,
    eventually,
    firings,
    head,
    judged_up_to,
    read,
    running,
)


def _pending(settings: Settings) -> list[dict[str, object]]:
    return eventually(settings, lambda v: v.approvals("pending"), "a pending approval")  # type: ignore[no-any-return]


def _canary_then_worse(settings: Settings, shop: Shop) -> None:
    """v2 (better) ends as green at 10 % after approval; v3 (worse) is skipped."""
    with Ledger(settings) as ledger:
        shop.register(ledger, 0.95)
    [approval] = _pending(settings)
    assert approval["role"] == "deployer" and approval["rule"] == "canary-if-better"
    jobs = read(settings, lambda v: v.jobs(pipeline="evaluate"))
    assert [j["status"] for j in jobs] == ["succeeded"]
    with Ledger(settings) as ledger, ledger.on_behalf_of("release-manager"):
        ledger.approvals.approve(str(uuid.UUID(str(approval["id"]))), role="deployer",
                                 reason="better than the champion")  # fmt: skip
    endpoint = eventually(
        settings,
        lambda v: (e := v.endpoint("shop"))["traffic"] == {"blue": 90, "green": 10} and e,
        "the canary",
    )
    green = endpoint["deployments"]["green"]
    assert (green["model"], green["version"], green["deployed_by"]) == (
        MODEL,
        2,
        "rule:canary-if-better",
    )
    decided = read(settings, lambda v: v.approval(str(approval["short_id"])))
    assert decided["state"] == "approved" and decided["decided_by"] == "release-manager"
    assert decided["reason"] == "better than the champion"

    with Ledger(settings) as ledger:
        shop.register(ledger, 0.5)
    skipped = eventually(
        settings, lambda v: firings_of(v, "canary-if-better", "skipped"), "the worse one skipped"
    )
    assert skipped[0]["reason"].startswith("when is false: metrics.accuracy=0.5 >= ")
    assert "alias('iris-classifier', 'champion').metrics.accuracy=0.9" in skipped[0]["reason"]


def firings_of(views, rule: str, outcome: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [f for f in views.rule_firings(rule, limit=1000) if f["outcome"] == outcome]


def _counts(settings: Settings) -> tuple[int, int, int, int]:
    """Fired records of each rule, evaluate jobs, approvals."""
    return (
        len(firings(settings, "evaluate-candidates", "fired")),
        len(firings(settings, "canary-if-better", "fired")),
        len(read(settings, lambda v: v.jobs(pipeline="evaluate"))),
        len(read(settings, lambda v: v.approvals())),
    )


def test_example_rules_end_to_end_and_replayed_on_the_local_bus(
    store: StoreFactory, tmp_path: Path
) -> None:
    settings = store.settings(serve_from_worker=False)
    shop = Shop(settings, tmp_path)
    with Ledger(settings) as ledger:
        shop.set_up(ledger)
    with running(*engine_and_worker(settings)):
        _canary_then_worse(settings, shop)
        evaluated = lambda v: len(v.jobs(pipeline="evaluate", status="succeeded")) == 2  # noqa: E731
        eventually(settings, evaluated, "v3 evaluated")
    before = _counts(settings)
    # canary-if-better fired twice: asking for the approval, then running what it held.
    assert before == (2, 2, 2, 1)
    # Every event delivered again, as if the handled records were lost: judged again.
    store.sql(f"DELETE FROM {HANDLED_EVENTS} WHERE consumer = 'rules'")
    store.sql(f"UPDATE {BUS_CURSORS} SET position = 0 WHERE consumer = 'rules'")
    reached = head(settings)
    with running(*engine_and_worker(settings)):
        eventually(settings, lambda v: judged_up_to(settings, reached), "the replay judged")
    assert _counts(settings) == before


def test_example_rules_on_nats_replayed_from_position_1(
    nats_store: StoreFactory, tmp_path: Path
) -> None:
    from ledger.bus.relay import Relay

    if nats_store.kind != "postgres":
        pytest.skip("the NATS run is on PostgreSQL (the local bus covers SQLite)")
    settings = nats_store.settings(serve_from_worker=False)
    shop = Shop(settings, tmp_path)
    with Ledger(settings) as ledger:
        shop.set_up(ledger)
    with running(Relay(settings).run, *engine_and_worker(settings)):
        _canary_then_worse(settings, shop)
    before = _counts(settings)
    # `ledger relay --from 1`, and the consumer created again with its records lost.
    store_sql = nats_store.sql
    store_sql(f"DELETE FROM {HANDLED_EVENTS} WHERE consumer = 'rules'")
    with_jetstream(
        settings.nats_url or "",
        lambda js: js.delete_consumer(settings.nats_stream, "rules"),
    )
    reached = head(settings)
    with running(Relay(settings, start_after=0).run, *engine_and_worker(settings)):
        eventually(settings, lambda v: judged_up_to(settings, reached), "the replay judged")
    assert _counts(settings) == before
