"""`ledger webhook ...` and its errors: clear messages and a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

from ledger.domain import EventMeta, Model, acting
from ledger.ledger import Ledger
from tests.bus_support import wait_for
from tests.conftest import Cli, StoreFactory, assert_user_error
from tests.webhooks.conftest import dispatching, outcomes
from tests.webhooks.receiver import receiving


def test_bad_input_is_refused_with_a_clear_message(cli: Cli, tmp_path: Path) -> None:
    create = ("webhook", "create", "hook")
    with_password = cli(*create, "http://user:pw@h/", "--events", "ledger.>")
    assert_user_error(with_password, "without user:password@")
    binary = tmp_path / "secret.bin"
    binary.write_bytes(b"\xff\xfe\x00secret")
    not_text = cli(*create, "http://h/", "--events", "ledger.>", "--secret-file", str(binary))
    assert_user_error(not_text, "not UTF-8 text")
    assert_user_error(cli(*create, "ftp://x", "--events", "ledger.>"), "bad webhook URL")
    assert_user_error(cli(*create, "not a url", "--events", "ledger.>"), "bad webhook URL")
    assert_user_error(cli(*create, "http://h/", "--events", "model.*"), "bad subject pattern")
    assert_user_error(cli(*create, "http://h/"), "at least one event pattern")
    bad_filter = cli(*create, "http://h/", "--events", "ledger.>", "--filter", "data.x ==")
    assert_user_error(bad_filter, "column")
    assert_user_error(cli("webhook", "show", "nope"), "webhook 'nope' does not exist")
    assert_user_error(cli("webhook", "deliveries", "nope"), "webhook 'nope' does not exist")
    assert_user_error(cli("webhook", "pause", "nope"), "nope")
    assert cli(*create, "http://h/", "--events", "ledger.>").code == 0
    assert_user_error(cli(*create, "http://h/", "--events", "ledger.>"), "already exists")
    assert_user_error(cli("webhook", "redeliver", "hook", "garbage"), "bad event id")
    missing = "2998b6fd-32ad-5e25-a2e0-d0bd22ca5bda/1"
    assert_user_error(cli("webhook", "redeliver", "hook", missing), "no event")
    too_big = missing.replace("/1", "/99999999999999999999999")
    assert_user_error(cli("webhook", "redeliver", "hook", too_big), "bad event id")
    assert cli("webhook", "delete", "hook").code == 0
    assert_user_error(cli(*create, "http://h/", "--events", "ledger.>"), "was deleted")


def test_create_list_show_pause_resume_and_a_ping(cli: Cli, tmp_path: object) -> None:
    with receiving() as receiver:
        created = cli("webhook", "create", "ops", receiver.url, "--events",
                      "ledger.model_version.*", "--events", "ledger.job.>", "--filter",
                      "data.tags.stage in [candidate]", "--description", "CI")  # fmt: skip
        assert created.code == 0, created
        assert "whsec_" in created.out
        listed = cli("webhook", "list", "--json").json()
        assert [(w["name"], w["state"], w["events"]) for w in listed] == [  # type: ignore[union-attr,index]
            ("ops", "active", ["ledger.model_version.*", "ledger.job.>"])
        ]
        pinged = cli("webhook", "test", "ops")
        assert pinged.code == 0 and "delivered" in pinged.out, pinged
        assert receiver.requests[0].headers["webhook-id"].startswith("ping-")
        shown = cli("webhook", "show", "ops")
        assert "data.tags.stage in [candidate]" in shown.out and "delivered" in shown.out
        assert cli("webhook", "pause", "ops").code == 0
        assert "paused (user)" in cli("webhook", "list").out
        assert_user_error(cli("webhook", "pause", "ops"), "paused already")
        assert cli("webhook", "resume", "ops").code == 0
        assert cli("webhook", "update", "ops", "--filter", "").code == 0
        assert cli("webhook", "show", "ops", "--json").json()["filter"] == ""  # type: ignore[index]
        receiver.answer(500)
        failed = cli("webhook", "test", "ops")
        assert failed.code == 1 and "dead" in failed.out
        assert cli("webhook", "deliveries", "ops", "--dead", "--json").json() == []


def test_dead_letters_are_listed_and_redelivered(cli: Cli, store: StoreFactory) -> None:
    settings = store.settings(webhook_retry_scale=0.01)
    with receiving() as receiver:
        receiver.answer(401)
        assert cli("webhook", "create", "ci", receiver.url, "--events", "ledger.model.*").code == 0
        with dispatching(settings, "ci"):
            with Ledger(settings) as ledger, acting(EventMeta("tester", "", "cli")):
                model = Model.register("iris")
                ledger.save(model)
            event_id = f"{model.id}/1"
            wait_for(lambda: outcomes(settings, "ci") == ["dead"], 30, "the dead letter")
            dead = cli("webhook", "deliveries", "ci", "--dead", "--json").json()
            assert [d["event_id"] for d in dead] == [event_id]  # type: ignore[union-attr,index]
            assert "401" in cli("webhook", "deliveries", "ci", "--dead").out
            receiver.answer(204)
            assert cli("webhook", "redeliver", "ci", event_id).code == 0
            wait_for(lambda: "delivered" in outcomes(settings, "ci"), 30, "the redelivery")
        assert cli("webhook", "deliveries", "ci", "--dead", "--json").json() == []
        rows = cli("webhook", "deliveries", "ci", "--limit", "1", "--json").json()
        assert [r["outcome"] for r in rows] == ["delivered"]  # type: ignore[union-attr,index]
