"""Rules: declarative reactions to the ledger's events, versioned like pipelines.

Each ``Applied`` is a new version of the rule's spec (``RuleSpec.model_dump(mode="json")``);
every time the rule engine judges an event against the rule it records ``Fired`` (with
what it did, or the approval it asked for) or ``Skipped`` (with why), acting as
``rule:<name>`` with the triggering event as causation.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.domain.base import LedgerAggregate, aggregate_id
from ledger.errors import RuleViolationError


def rule_id(name: str) -> UUID:
    return aggregate_id("rule", name)


def rule_actor(name: str) -> str:
    """The actor a rule's own effects are recorded as."""
    return f"rule:{name}"


class Rule(LedgerAggregate):
    """A named rule: its spec versions, whether it is enabled, and its firing counts."""

    def __init__(self) -> None:
        self.name = ""
        self.spec_version = 0  # (`version` is the aggregate's own)
        self.spec: dict[str, Any] = {}
        self.enabled = True
        self.fired = 0
        self.skipped = 0
        self.last_fired_at = ""  # ISO 8601, UTC

    class Event(LedgerAggregate.Event):
        pass

    class Created(Event, LedgerAggregate.Created):
        name: str

        def apply(self, rule: Rule) -> None:
            rule.name = self.name

    class Applied(Event):
        version: int
        spec: dict[str, Any]

        def apply(self, rule: Rule) -> None:
            rule.spec_version = self.version
            rule.spec = dict(self.spec)

    class Disabled(Event):
        def apply(self, rule: Rule) -> None:
            rule.enabled = False

    class Enabled(Event):
        def apply(self, rule: Rule) -> None:
            rule.enabled = True

    class Fired(Event):
        event_id: str
        subject: str
        actions: list[str]  # a summary of each action taken (or held for approval)
        approval_id: str  # "" when the actions ran at once

        def apply(self, rule: Rule) -> None:
            rule.fired += 1
            rule.last_fired_at = self.timestamp.isoformat()

    class Skipped(Event):
        """Why the rule did not act is the event's ``reason``."""

        event_id: str
        subject: str

        def apply(self, rule: Rule) -> None:
            rule.skipped += 1

    @classmethod
    def create(cls, name: str) -> Rule:
        return cls._create(cls.Created, id=rule_id(name), name=name)

    def apply_spec(self, spec: dict[str, Any]) -> bool:
        """Record ``spec`` as the next version; False (nothing recorded) when unchanged."""
        if spec == self.spec:
            return False
        was = self.spec.get("enabled", True)
        self.trigger_event(self.Applied, version=self.spec_version + 1, spec=spec)
        wanted = spec.get("enabled", True)
        # The file's `enabled` counts when it changes; `ledger rule disable` otherwise stays.
        if wanted != was and wanted != self.enabled:
            self.trigger_event(self.Enabled if wanted else self.Disabled)
        return True

    def disable(self) -> None:
        if not self.enabled:
            raise RuleViolationError(f"rule {self.name!r} is disabled already")
        self.trigger_event(self.Disabled)

    def enable(self) -> None:
        if self.enabled:
            raise RuleViolationError(f"rule {self.name!r} is enabled already")
        self.trigger_event(self.Enabled)

    def record_fired(
        self, event_id: str, subject: str, actions: list[str], approval_id: str
    ) -> None:
        self.trigger_event(
            self.Fired, event_id=event_id, subject=subject, actions=actions, approval_id=approval_id
        )

    def record_skipped(self, event_id: str, subject: str) -> None:
        self.trigger_event(self.Skipped, event_id=event_id, subject=subject)
