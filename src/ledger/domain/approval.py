"""Approvals: a rule's actions held until someone with a role says yes.

An approval is identified by its rule and the triggering event
(``aggregate_id("approval", rule, event_id)``) and shown to users as the first 12 hex
digits of that id. Who approved or rejected, and why, are the events' actor and reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from ledger.domain.base import LedgerAggregate, aggregate_id
from ledger.domain.token import ROLES
from ledger.errors import InvalidInputError, RuleViolationError

SHORT_ID = 12  # hex digits of the id users see


def approval_id(rule: str, event_id: str) -> UUID:
    return aggregate_id("approval", rule, event_id)


def short_id(full: UUID | str) -> str:
    return UUID(str(full)).hex[:SHORT_ID]


class Approval(LedgerAggregate):
    """Actions a rule wants to run, pending until approved, rejected or expired."""

    def __init__(self) -> None:
        self.rule = ""
        self.rule_version = 0
        self.event_id = ""
        self.role = ""
        self.actions: list[dict[str, Any]] = []
        self.expires_at = ""  # ISO 8601, UTC
        self.state = "pending"

    class Event(LedgerAggregate.Event):
        pass

    class Requested(Event, LedgerAggregate.Created):
        rule: str
        rule_version: int
        event_id: str
        role: str
        actions: list[dict[str, Any]]  # rendered: what runs once approved
        expires_at: str

        def apply(self, approval: Approval) -> None:
            approval.rule = self.rule
            approval.rule_version = self.rule_version
            approval.event_id = self.event_id
            approval.role = self.role
            approval.actions = list(self.actions)
            approval.expires_at = self.expires_at

    class Approved(Event):
        def apply(self, approval: Approval) -> None:
            approval.state = "approved"

    class Rejected(Event):
        def apply(self, approval: Approval) -> None:
            approval.state = "rejected"

    class Expired(Event):
        def apply(self, approval: Approval) -> None:
            approval.state = "expired"

    @classmethod
    def request(
        cls,
        rule: str,
        rule_version: int,
        event_id: str,
        role: str,
        actions: list[dict[str, Any]],
        expires_at: datetime,
    ) -> Approval:
        if role not in ROLES:
            raise InvalidInputError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        return cls._create(
            cls.Requested,
            id=approval_id(rule, event_id),
            rule=rule,
            rule_version=rule_version,
            event_id=event_id,
            role=role,
            actions=actions,
            expires_at=expires_at.astimezone(UTC).isoformat(),
        )

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    def is_due(self, now: datetime) -> bool:
        return self.state == "pending" and datetime.fromisoformat(self.expires_at) <= now

    def _decide(self, now: datetime) -> None:
        if self.state != "pending":
            raise RuleViolationError(f"approval {self.short_id} is {self.state} already")
        if self.is_due(now):
            raise RuleViolationError(
                f"approval {self.short_id} expired at {self.expires_at}: nothing will run"
            )

    def approve(self, now: datetime) -> None:
        self._decide(now)
        self.trigger_event(self.Approved)

    def reject(self, now: datetime) -> None:
        self._decide(now)
        self.trigger_event(self.Rejected)

    def expire(self, now: datetime) -> bool:
        """Mark it expired when it is due; False when it is not."""
        if not self.is_due(now):
            return False
        self.trigger_event(self.Expired)
        return True
