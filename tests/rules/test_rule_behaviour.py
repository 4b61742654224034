"""What keeps rules safe: the loop guard and the chain limit, cooldowns, disabled rules,
and approvals that are rejected, expire, or meet an approver whose role is too low."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from executors.rules import firing, inbox
from executors.rules.engine import RuleEngine
from ledger.errors import PermissionDeniedError, RuleViolationError
from ledger.ledger import Ledger
from ledger.rule_spec import parse_rules
from ledger.settings import Settings
from tests.conftest import StoreFactory, wait_for
from tests.rules.support import (
    eventually,
    firings,
    head,
    judged_up_to,
    read,
    running,
    settle,
)

TAG_ON_TAG = """
- name: tag-on-tag
  on: ledger.model.tagged
  match: {model: watched}
  do: {set_tag: {model: watched, key: touched, value: "${event.id}"}}
"""


def _ledger_with(settings: Settings, rules: str, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir(exist_ok=True)
    (tmp_path / "m" / "w.bin").write_bytes(b"w")
    with Ledger(settings) as ledger:
        ledger.models.register_version("watched", tmp_path / "m")
        ledger.rules.apply(parse_rules(rules))


def _tag(settings: Settings, key: str = "stage", value: str = "x") -> None:
    with Ledger(settings) as ledger:
        ledger.models.set_tags("watched", {key: value})


def _tags(settings: Settings) -> dict[str, str]:
    return read(settings, lambda v: v.model("watched")["tags"])  # type: ignore[no-any-return]


def test_a_rule_does_not_retrigger_itself(store: StoreFactory, tmp_path: Path) -> None:
    settings = store.settings()
    _ledger_with(settings, TAG_ON_TAG, tmp_path)
    with running(RuleEngine(settings).run):
        _tag(settings)
        settle(settings)
    fired, skipped = (
        firings(settings, "tag-on-tag", "fired"),
        firings(settings, "tag-on-tag", "skipped"),
    )
    assert len(fired) == 1 and len(skipped) == 1
    assert skipped[0]["reason"] == "loop guard: triggered by the rule's own action"
    assert set(_tags(settings)) == {"stage", "touched"}


def test_rules_feeding_each_other_stop_at_the_chain_limit(
    store: StoreFactory, tmp_path: Path
) -> None:
    settings = store.settings(rule_max_chain=2)
    rules = TAG_ON_TAG + TAG_ON_TAG.replace("tag-on-tag", "echo").replace("touched", "echoed")
    _ledger_with(settings, rules, tmp_path)
    with running(RuleEngine(settings).run):
        _tag(settings)
        settle(settings)
    for rule in ("tag-on-tag", "echo"):
        assert len(firings(settings, rule, "fired")) == 2
        reasons = {f["reason"] for f in firings(settings, rule, "skipped")}
        assert any("LEDGER_RULE_MAX_CHAIN" in reason for reason in reasons), reasons


def test_cooldown_and_disabled_rules(store: StoreFactory, tmp_path: Path) -> None:
    settings = store.settings()
    rules = """
- name: note-stage
  on: ledger.model.tagged
  match: {model: watched, key: stage}
  cooldown: PT1H
  do: {set_tag: {model: watched, key: noted, value: "${event.data.value}"}}
"""
    _ledger_with(settings, rules, tmp_path)
    with running(RuleEngine(settings).run):
        _tag(settings, "stage", "one")
        settle(settings)
        _tag(settings, "stage", "two")
        settle(settings)
        assert _tags(settings)["noted"] == "one"
        [skipped] = firings(settings, "note-stage", "skipped")
        assert skipped["reason"].startswith("cooldown: fired ")
        with Ledger(settings) as ledger:
            ledger.rules.disable("note-stage", reason="quiet")
        _tag(settings, "stage", "three")
        settle(settings)
    assert len(firings(settings, "note-stage")) == 2  # nothing recorded while disabled
    assert not read(settings, lambda v: v.rule("note-stage"))["enabled"]


def test_a_when_that_cannot_be_judged_is_skipped_with_the_error(
    store: StoreFactory, tmp_path: Path
) -> None:
    settings = store.settings()
    rules = TAG_ON_TAG.replace("  do:", '  when: "tags.stage > 3"\n  do:')
    _ledger_with(settings, rules, tmp_path)
    with running(RuleEngine(settings).run):
        _tag(settings, "stage", "x")
        settle(settings)
    [skipped] = firings(settings, "tag-on-tag")
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"].startswith("when could not be evaluated: ")


HELD = TAG_ON_TAG.replace(
    'value: "${event.id}"}}', 'value: "${event.id}"}, require_approval: deployer}'
)


def _pending_id(settings: Settings) -> str:
    [approval] = eventually(settings, lambda v: v.approvals("pending"), "a pending approval")
    return str(uuid.UUID(str(approval["id"])))


def test_rejected_approval_runs_nothing_and_a_low_role_is_refused(
    store: StoreFactory, tmp_path: Path
) -> None:
    settings = store.settings()
    _ledger_with(settings, HELD, tmp_path)
    with running(RuleEngine(settings).run):
        _tag(settings)
        approval = _pending_id(settings)
        with Ledger(settings) as ledger:
            with pytest.raises(PermissionDeniedError, match="needs role deployer or higher; "
                               "the acting principal has role contributor"):  # fmt: skip
                ledger.approvals.approve(approval, role="contributor", reason="mine")
            with ledger.on_behalf_of("boss"):
                ledger.approvals.reject(approval, role="admin", reason="not now")
        settle(settings)
    assert "touched" not in _tags(settings)
    decided = read(settings, lambda v: v.approval(approval[:8]))
    assert (decided["state"], decided["decided_by"], decided["reason"]) == (
        "rejected", "boss", "not now"
    )  # fmt: skip
    [fired] = firings(settings, "tag-on-tag", "fired")  # the request only
    assert fired["approval_id"] == uuid.UUID(approval).hex[:12]


def test_an_expired_approval_runs_nothing(store: StoreFactory, tmp_path: Path) -> None:
    settings = store.settings(approval_ttl_s=0.5)
    _ledger_with(settings, HELD, tmp_path)
    engine = RuleEngine(settings)
    engine.expiry_interval_s = 0.2
    with running(engine.run):
        _tag(settings)
        approval = _pending_id(settings)
        eventually(settings, lambda v: v.approval(approval)["state"] == "expired", "expiry")
        with Ledger(settings) as ledger, pytest.raises(RuleViolationError, match="is expired"):
            ledger.approvals.approve(approval, role="admin", reason="too late")
        settle(settings)
    assert "touched" not in _tags(settings)
    assert read(settings, lambda v: v.approval(approval))["decided_by"] == "rule-engine"


def _quiet(settings: Settings, timeout: float) -> int:
    """Wait until the engine judged everything and the log stopped growing; its head."""
    last = [-1]

    def still() -> bool:
        reached = head(settings)
        done = judged_up_to(settings, reached) and reached == last[0]
        last[0] = reached
        time.sleep(0.3)
        return done

    wait_for(still, timeout, "the log to stop growing")
    return last[0]


def test_rules_on_every_event_do_not_judge_their_own_records(
    store: StoreFactory, tmp_path: Path
) -> None:
    settings = store.settings(rule_max_chain=3)
    rules = """
- name: ping
  on: "ledger.>"
  do: {set_tag: {model: watched, key: ping, value: "${event.id}"}}
- name: pong
  on: "ledger.>"
  do: {set_tag: {model: watched, key: pong, value: "${event.id}"}}
"""
    _ledger_with(settings, rules, tmp_path)
    start = head(settings)
    with running(RuleEngine(settings).run):
        _tag(settings)
        end = _quiet(settings, 20)
    # The log stopped growing: each rule fires at most LEDGER_RULE_MAX_CHAIN times in a
    # correlation, and the engine's records of its judging are never judged themselves.
    assert end - start < 100, end - start
    for rule in ("ping", "pong"):
        judged = firings(settings, rule)
        assert not {f["subject"] for f in judged} & {"ledger.rule.fired", "ledger.rule.skipped"}
        for correlation in {f["correlation_id"] for f in judged}:
            fired = [f for f in judged if f["correlation_id"] == correlation]
            assert sum(f["outcome"] == "fired" for f in fired) <= 3


ALIAS_FROM_TAG = """
- name: alias-from-tag
  on: ledger.model.tagged
  match: {model: watched}
  do: {set_alias: {model: watched, alias: champ, version: "${event.data.value}"}}
"""


def test_a_version_that_is_not_a_number_is_skipped(store: StoreFactory, tmp_path: Path) -> None:
    settings = store.settings()
    _ledger_with(settings, ALIAS_FROM_TAG, tmp_path)
    with running(RuleEngine(settings).run):
        _tag(settings, "stage", "abc")
        settle(settings)
    [skipped] = firings(settings, "alias-from-tag")
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"] == (
        "cannot prepare the actions: set_alias: version 'abc' is not a version number"
    )


def test_an_event_failing_every_attempt_is_recorded_as_skipped(
    store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> str:
        raise ValueError("a bug in an action")

    monkeypatch.setattr(inbox, "MAX_ATTEMPTS", 2)
    monkeypatch.setattr(firing, "perform", broken)  # an error that is no LedgerError
    settings = store.settings()
    _ledger_with(settings, ALIAS_FROM_TAG, tmp_path)
    with running(RuleEngine(settings).run):
        _tag(settings, "stage", "1")
        settle(settings)  # the event leaves the inbox
    [skipped] = firings(settings, "alias-from-tag")
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"] == (
        "judging the event failed for good: ValueError: a bug in an action"
    )
