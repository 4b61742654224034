"""`ledger rule ...`, `ledger approval ...`, `ledger approve` and `ledger reject`."""

from __future__ import annotations

from pathlib import Path

from executors.rules import inbox
from ledger.bus import BusEvent
from ledger.ledger import Ledger
from ledger.storage.database import LedgerDatabase
from tests.conftest import Cli, StoreFactory, assert_user_error
from tests.rules.support import EXAMPLE_RULES


def test_apply_list_show_disable_enable(cli: Cli, tmp_path: Path) -> None:
    applied = cli("rule", "apply", str(EXAMPLE_RULES))
    assert applied.code == 0, applied
    assert applied.out.split() == ["created", "evaluate-candidates", "created", "canary-if-better"]
    again = cli("rule", "apply", str(EXAMPLE_RULES))
    assert again.out.split() == [
        "unchanged",
        "evaluate-candidates",
        "unchanged",
        "canary-if-better",
    ]
    changed = tmp_path / "rules.yaml"
    changed.write_text(
        EXAMPLE_RULES.read_text().replace("blue: 90, green: 10", "blue: 80, green: 20")
    )
    assert cli("rule", "apply", str(changed)).out.split() == [
        "unchanged", "evaluate-candidates", "updated", "canary-if-better"
    ]  # fmt: skip

    listed = cli("rule", "list", "--json").json()
    assert [(r["name"], r["version"], r["enabled"]) for r in listed] == [  # type: ignore[index, union-attr]
        ("canary-if-better", 2, True),
        ("evaluate-candidates", 1, True),
    ]
    shown = cli("rule", "show", "canary-if-better")
    assert shown.code == 0 and "'on': ledger.job.succeeded" in shown.out
    assert "null" not in shown.out
    assert "green: 20" in shown.out and "no firings yet" in shown.out

    assert cli("rule", "disable", "canary-if-better", "--reason", "freeze").code == 0
    assert_user_error(cli("rule", "disable", "canary-if-better"), "is disabled already")
    assert "no" in cli("rule", "list").out
    assert cli("rule", "enable", "canary-if-better").code == 0
    assert cli("rule", "history", "canary-if-better").code == 0


def test_rule_errors(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: x\n  on: [unclosed\n")
    assert_user_error(cli("rule", "apply", str(bad)), "the rules file is not valid YAML")
    no_action = tmp_path / "empty.yaml"
    no_action.write_text("- name: x\n  on: ledger.job.succeeded\n  do: {}\n")
    assert_user_error(cli("rule", "apply", str(no_action)), "no action")
    assert_user_error(cli("rule", "apply", str(tmp_path / "missing.yaml")), "cannot read")
    assert_user_error(cli("rule", "show", "nope"), "rule 'nope' does not exist")
    assert_user_error(cli("rule", "disable", "nope"), "rule 'nope' does not exist")
    assert_user_error(cli("rule", "history", "nope"), "rule 'nope' does not exist")


def test_approvals(cli: Cli, store: StoreFactory) -> None:
    held = [{"action": "traffic", "endpoint": "shop", "weights": {"blue": 100}}]
    with Ledger(store.settings()) as ledger:
        first = ledger.approvals.request("canary", 1, "event-a/1", "deployer", held)
        second = ledger.approvals.request("canary", 1, "event-b/1", "deployer", held)
    listed = cli("approval", "list")
    assert (
        listed.code == 0 and first.short_id in listed.out and "traffic shop: blue=100" in listed.out
    )

    approved = cli("approve", first.short_id, "--reason", "ship it")
    assert approved.code == 0 and "Approved" in approved.out
    shown = cli("approval", "show", first.short_id, "--json").json()
    assert shown["state"] == "approved" and shown["decided_by"] == "tester"  # type: ignore[index, call-overload]
    assert shown["reason"] == "ship it"  # type: ignore[index, call-overload]
    assert_user_error(cli("reject", first.short_id, "--reason", "no"), "is approved already")
    assert cli("reject", second.short_id, "--reason", "not now").code == 0

    assert (
        "No" not in cli("approval", "list").out
        and first.short_id not in cli("approval", "list").out
    )
    everything = cli("approval", "list", "--all", "--json").json()
    assert {a["state"] for a in everything} == {"approved", "rejected"}  # type: ignore[index, union-attr]
    assert_user_error(cli("approve", "0123456789ab", "--reason", "x"), "does not exist")
    assert_user_error(cli("approval", "show", "zz"), "does not exist")
    missing_reason = cli("approve", second.short_id)
    assert missing_reason.code != 0 and "Traceback" not in missing_reason.err


ALIASES = """
- name: bomb
  on: ledger.model.tagged
  match: &a {x: [1, 2]}
  also: *a
  do: {webhook: w}
"""


def test_rule_files_that_would_exhaust_memory_or_the_stack(cli: Cli, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIASES)
    assert_user_error(cli("rule", "apply", str(bomb)), "anchors and aliases (& and *) are not")
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 1200 + "]" * 1200)
    assert_user_error(cli("rule", "apply", str(deep)), "nests lists and mappings too deeply")
    nested = tmp_path / "nested.yaml"
    nested.write_text(
        "- name: x\n  on: ledger.job.succeeded\n  do: {webhook: w}\n  match: "
        + "{a: " * 40
        + "1"
        + "}" * 40
        + "\n"
    )
    assert_user_error(cli("rule", "apply", str(nested)), "nests lists and mappings too deeply")
    large = tmp_path / "large.yaml"
    large.write_text("# " + "x" * (1024 * 1024) + "\n- name: x\n")
    assert_user_error(cli("rule", "apply", str(large)), "the rules file is too large")
    wide = tmp_path / "wide.yaml"
    wide.write_text(
        "- name: x\n  on: ledger.job.succeeded\n  do: {webhook: w}\n  match: {k: "
        + repr("v" * 70_000)
        + "}\n"
    )
    assert_user_error(cli("rule", "apply", str(wide)), "rule 'x' is too large")


def test_events_failing_to_be_judged_are_listed(cli: Cli, store: StoreFactory) -> None:
    assert "No event is failing." in cli("rule", "failed").out
    event = BusEvent(7, "agg/1", "ledger.model.tagged", "Model.Tagged", "agg", 1, "", "t", "",
                     "c", "", {})  # fmt: skip
    db = LedgerDatabase(store.settings())
    try:
        inbox.create_inbox(db)
        with db.transaction():
            inbox.file_event(db, event, "{}")
        inbox.retry_later(db, event.id, "ValueError: a bug")
    finally:
        db.close()
    listed = cli("rule", "failed", "--json").json()
    assert listed == [{"event_id": "agg/1", "attempts": 1, "error": "ValueError: a bug"}]
    assert "ValueError: a bug" in cli("rule", "failed").out
