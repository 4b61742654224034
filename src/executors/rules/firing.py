"""Firing rules: judging one event against every rule it concerns, acting or recording
why not, and running an approval's held actions once it is approved.

Command ids (``rule:<name>:<event id>:<n>`` for the n-th action, ``...:record`` for the
outcome, ``approval:<id>:<n>`` for held actions) make each write happen once however
many times an event is judged.
"""

from __future__ import annotations

from typing import Any

from executors.rules.actions import perform
from executors.rules.context import rule_context
from executors.rules.judging import guard, judge_when, rule_functions
from ledger import command_ids
from ledger.bus import BusEvent, subject_matches
from ledger.domain.approval import short_id
from ledger.domain.rule import rule_actor
from ledger.errors import LedgerError
from ledger.ledger import Ledger
from ledger.logging import get_logger
from ledger.rule_actions import Action, plan_actions, summary
from ledger.rule_spec import RuleSpec, match_fields, render
from projections.views import Views

APPROVED = "ledger.approval.approved"
# The engine's own records: never judged, or a rule on ``ledger.>`` would judge the record
# of its judging, and so on without end.
ENGINE_RECORDS = frozenset({"ledger.rule.fired", "ledger.rule.skipped"})
log = get_logger(__name__)


def correlation(event: BusEvent) -> str:
    """The correlation a rule's actions on ``event`` carry (the event's own id when it has
    none), so the chain limit counts every firing a first event leads to."""
    return event.correlation_id or event.id


class ViewsBehind(RuntimeError):
    """The views have not reached the event yet (another process rebuilds them)."""


class Firing:
    """Judges events against the rules, reading through ``views``, acting through ``ledger``."""

    def __init__(self, ledger: Ledger, views: Views, max_chain: int) -> None:
        self.ledger = ledger
        self.views = views
        self.max_chain = max_chain
        self.functions = rule_functions(views)

    def judge(self, event: BusEvent) -> None:
        """Act on ``event`` for each enabled rule that wants it (and for its approval)."""
        if event.subject in ENGINE_RECORDS:
            return
        self._catch_up(event.position)
        if event.subject == APPROVED:
            self._run_approved(event)
        rules = self._concerned(event)
        if not rules:
            return
        context = rule_context(event, self.views)
        for rule in rules:
            self._catch_up(event.position)  # the firings recorded for earlier rules
            self._judge_rule(rule, event, context)

    def _concerned(self, event: BusEvent) -> list[dict[str, Any]]:
        return [
            rule
            for rule in self.views.rules()
            if rule["enabled"]
            and event.position > rule["since_position"]  # a rule judges what comes after it
            and subject_matches(rule["spec"]["on"], event.subject)
        ]

    def give_up(self, event: BusEvent, error: str) -> None:
        """Record, for each rule ``event`` concerns (and for its approval), that judging it
        failed for good with ``error``: visible in the rules' history, not lost."""
        if event.subject in ENGINE_RECORDS:
            return
        self.views.updater.catch_up()
        why = f"judging the event failed for good: {error}"
        if event.subject == APPROVED:
            approval = self.views.approval(short_id(event.aggregate_id))
            base = f"approval:{approval['id']}"
            if not self._committed(f"{base}:record"):
                self._record(approval["rule"], event, base, skipped=why)
        for rule in self._concerned(event):
            name = str(rule["spec"]["name"])
            base = f"rule:{name}:{event.id}"
            if not self._committed(f"{base}:record"):
                self._record(name, event, base, skipped=why)

    def _catch_up(self, position: int) -> None:
        updater = self.views.updater
        updater.catch_up()
        if min(updater.positions().values()) < position:
            raise ViewsBehind(f"the views have not reached position {position} yet")

    def _committed(self, command_id: str) -> bool:
        return command_ids.committed_now(self.ledger.recorder, f"{command_id}/1") is not None

    def _judge_rule(self, rule: dict[str, Any], event: BusEvent, context: dict[str, Any]) -> None:
        spec = RuleSpec.model_validate(rule["spec"])
        base = f"rule:{spec.name}:{event.id}"
        if self._committed(f"{base}:record"):
            return  # judged before
        acted = self._committed(f"{base}:1")  # an engine acted, and died before recording
        if not acted:
            if match_fields(spec.match, context) is not None:
                return  # not an event this rule is about: nothing to record
            why = guard(spec, rule, event, self.views, self.max_chain)
            why = why or judge_when(spec, context, self.functions)
            if why:
                self._record(spec.name, event, base, skipped=why)
                return
        try:
            do = render(spec.do.model_dump(mode="json", exclude_none=True), context)
            actions = plan_actions(do, context)
        except LedgerError as error:
            self._record(spec.name, event, base, skipped=f"cannot prepare the actions: {error}")
            return
        role = do.get("require_approval")
        if role:
            with self._acting(spec.name, event, f"{base}:1"):
                approval = self.ledger.approvals.request(
                    spec.name, int(rule["version"]), event.id, str(role), actions,
                    reason=f"rule {spec.name} asks a {role} to approve",
                )  # fmt: skip
            held = [f"held for approval by a {role}: {summary(a)}" for a in actions]
            self._record(spec.name, event, base, fired=held, approval_id=str(approval.id))
            return
        self._act(spec.name, event, base, actions, base)

    def _act(
        self, rule: str, event: BusEvent, base: str, actions: list[Action], ids: str,
        approval_id: str = "",
    ) -> None:  # fmt: skip
        """Run ``actions`` (command ids ``<ids>:<n>``) and record the outcome under ``base``."""
        done: list[str] = []
        for number, action in enumerate(actions, 1):
            try:
                with self._acting(rule, event, f"{ids}:{number}"):
                    done.append(perform(self.ledger, action, event.id))
            except LedgerError as error:
                failed = f"action {number} ({summary(action)}) failed: {error}"
                after = f" (done before it: {'; '.join(done)})" if done else ""
                self._record(rule, event, base, skipped=failed + after, approval_id=approval_id)
                return
        self._record(rule, event, base, fired=done, approval_id=approval_id)

    def _run_approved(self, event: BusEvent) -> None:
        """Run the actions an approval held, as its rule, caused by the approval."""
        approval = self.views.approval(short_id(event.aggregate_id))
        base = f"approval:{approval['id']}"
        if self._committed(f"{base}:record"):
            return
        self._act(approval["rule"], event, base, approval["actions"], base, str(approval["id"]))

    def _acting(self, rule: str, event: BusEvent, command_id: str) -> Any:
        return self.ledger.on_behalf_of(
            rule_actor(rule),
            correlation_id=correlation(event),
            causation_id=event.id,
            command_id=command_id,
        )

    def _record(
        self, rule: str, event: BusEvent, base: str, *, fired: list[str] | None = None,
        skipped: str = "", approval_id: str = "",
    ) -> None:  # fmt: skip
        with self._acting(rule, event, f"{base}:record"):
            if fired is not None:
                self.ledger.rules.record_fired(rule, event.id, event.subject, fired, approval_id)
            else:
                self.ledger.rules.record_skipped(rule, event.id, event.subject, skipped)
        log.info("rule judged an event", rule=rule, event_id=event.id,
                 outcome="fired" if fired is not None else "skipped", reason=skipped)  # fmt: skip
