"""Rules: applying a rules file (a new version only where a spec changed), disabling and
enabling a rule, and recording each firing or skip the rule engine decides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ledger.application import LedgerApplication
from ledger.domain.rule import Rule, rule_id
from ledger.errors import InvalidInputError
from ledger.refs import check_name

if TYPE_CHECKING:
    from ledger.rule_spec import RuleSpec


@dataclass(frozen=True)
class AppliedRules:
    """Which rules a rules file created, gave a new version, or left as they were."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


class RuleCommands:
    """Commands for rules (reads go through the rules view)."""

    def __init__(self, application: LedgerApplication) -> None:
        self._app = application

    def apply(self, specs: Sequence[RuleSpec], *, reason: str = "") -> AppliedRules:
        """Record each spec as its rule's next version, all in one transaction; a rule whose
        spec did not change gets no new version."""
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise InvalidInputError("a rules file names each rule once")
        for name in names:
            check_name(name, "rule name")

        def command() -> AppliedRules:
            result = AppliedRules()
            changed = []
            for spec in specs:
                rule = self._app.find(Rule, rule_id(spec.name), for_update=True)
                created = rule is None
                rule = rule or Rule.create(spec.name)
                if rule.apply_spec(spec.model_dump(mode="json")):
                    (result.created if created else result.updated).append(spec.name)
                    changed.append(rule)
                else:
                    result.unchanged.append(spec.name)
            if changed:
                self._app.save(*changed)
            return result

        return self._app.execute(reason, command)

    def get(self, name: str) -> Rule:
        """The rule (inside commands)."""
        return self._app.load(Rule, rule_id(name), f"rule {name!r}")

    def disable(self, name: str, *, reason: str = "") -> Rule:
        return self._app.change(lambda: self.get(name), Rule.disable, reason)

    def enable(self, name: str, *, reason: str = "") -> Rule:
        return self._app.change(lambda: self.get(name), Rule.enable, reason)

    def record_fired(
        self, name: str, event_id: str, subject: str, actions: list[str], approval_id: str = ""
    ) -> Rule:
        """The rule acted on ``event_id`` (or asked for approval ``approval_id``)."""
        return self._app.change(
            lambda: self.get(name),
            lambda rule: rule.record_fired(event_id, subject, actions, approval_id),
            "",
        )

    def record_skipped(self, name: str, event_id: str, subject: str, reason: str) -> Rule:
        """The rule matched ``event_id`` but did not act; ``reason`` says why."""
        return self._app.change(
            lambda: self.get(name), lambda rule: rule.record_skipped(event_id, subject), reason
        )
