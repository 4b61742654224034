"""The commands under the rule engine: versioned rules, idempotent approvals and job
submissions under a command id."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.domain.approval import approval_id
from ledger.domain.rule import Rule, rule_id
from ledger.errors import InvalidInputError
from ledger.ledger import Ledger
from ledger.rule_spec import parse_rules
from projections.views import Views
from tests.conftest import StoreFactory
from tests.executor_support import register, step, write_code

RULES = """
- name: a
  on: ledger.job.succeeded
  do: {webhook: hook}
- name: b
  on: ledger.job.failed
  enabled: false
  do: {webhook: hook}
"""


def test_rules_are_versioned_only_when_their_spec_changes(ledger: Ledger) -> None:
    first = ledger.rules.apply(parse_rules(RULES))
    assert (first.created, first.updated, first.unchanged) == (["a", "b"], [], [])
    assert not ledger.find(Rule, rule_id("b")).enabled  # type: ignore[union-attr]
    changed = ledger.rules.apply(parse_rules(RULES.replace("hook}", "other}", 1)))
    assert (changed.created, changed.updated, changed.unchanged) == ([], ["a"], ["b"])
    a = ledger.rules.get("a")
    assert a.spec_version == 2 and a.spec["do"]["webhook"] == "other"
    ledger.rules.disable("a")
    ledger.rules.apply(parse_rules(RULES.replace("hook}", "third}", 1)))
    assert not ledger.rules.get("a").enabled  # a new version keeps `ledger rule disable`


def test_a_command_id_submits_one_job_and_requests_one_approval(
    ledger: Ledger, tmp_path: Path
) -> None:
    register(ledger, "p", write_code(tmp_path / "code"), [step("s", "write")])
    jobs, heads = [], []
    for _ in range(2):
        with ledger.on_behalf_of("rule:r", command_id="rule:r:event/1:1"):
            jobs.append(ledger.jobs.submit("p"))
        heads.append(ledger.event_count())
    assert jobs[0].id == jobs[1].id and heads[0] == heads[1]
    first = ledger.approvals.request("r", 1, "event/1", "deployer", [])
    head = ledger.event_count()
    again = ledger.approvals.request("r", 1, "event/1", "deployer", [{"action": "webhook"}])
    assert again.id == first.id and again.actions == [] and ledger.event_count() == head


def test_an_ambiguous_approval_prefix_is_refused(store: StoreFactory) -> None:
    seen: dict[str, str] = {}
    for n in range(100_000):  # two event ids whose approvals share their first 4 hex digits
        event = f"event-{n}/1"
        prefix = approval_id("canary", event).hex[:4]
        if prefix in seen:
            break
        seen[prefix] = event
    held = [{"action": "webhook", "name": "hook"}]
    with Ledger(store.settings()) as ledger:
        first = ledger.approvals.request("canary", 1, seen[prefix], "deployer", held)
        ledger.approvals.request("canary", 1, event, "deployer", held)
    views = Views.open(store.settings())
    try:
        with pytest.raises(InvalidInputError, match=f"approval '{prefix}' is ambiguous"):
            views.approval(prefix)
        assert views.approval(first.short_id)["id"].replace("-", "") == first.id.hex
    finally:
        views.close()
