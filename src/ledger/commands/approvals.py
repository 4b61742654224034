"""Approvals: a rule's actions held for a role; approving, rejecting and expiring them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.application import LedgerApplication
from ledger.domain.approval import Approval, approval_id
from ledger.domain.token import check_role, role_allows
from ledger.errors import InvalidInputError, PermissionDeniedError


def _now() -> datetime:
    return datetime.now(UTC)


class ApprovalCommands:
    """Commands for approvals (reads and short ids go through the approvals view)."""

    def __init__(self, application: LedgerApplication) -> None:
        self._app = application

    def request(
        self,
        rule: str,
        rule_version: int,
        event_id: str,
        role: str,
        actions: list[dict[str, Any]],
        *,
        reason: str = "",
    ) -> Approval:
        """Hold ``actions`` until a principal whose role allows ``role`` approves them; they
        expire after ``Settings.approval_ttl_s``. Requesting it again returns the first."""
        check_role(role)
        expires_at = _now() + timedelta(seconds=self._app.settings.approval_ttl_s)

        def command() -> Approval:
            existing = self._app.find(Approval, approval_id(rule, event_id))
            if existing is not None:
                return existing
            approval = Approval.request(rule, rule_version, event_id, role, actions, expires_at)
            self._app.save(approval)
            return approval

        return self._app.execute(reason, command)

    def get(self, full_id: str) -> Approval:
        return self._app.load(Approval, _uuid(full_id), f"approval {full_id}")

    def approve(self, full_id: str, *, role: str, reason: str = "") -> Approval:
        """Approve as a principal holding ``role``; the rule engine then runs the actions."""
        return self._app.change(
            lambda: self._allowed(full_id, role), lambda a: a.approve(_now()), reason
        )

    def reject(self, full_id: str, *, role: str, reason: str = "") -> Approval:
        """Reject: the held actions never run."""
        return self._app.change(
            lambda: self._allowed(full_id, role), lambda a: a.reject(_now()), reason
        )

    def expire(self, full_id: str, now: datetime | None = None) -> bool:
        """Mark the approval expired if it is pending past its time; whether it was."""

        def command() -> bool:
            approval = self.get(full_id)
            if not approval.expire(now or _now()):
                return False
            self._app.save(approval)
            return True

        return self._app.execute("pending past its expiry time", command)

    def _allowed(self, full_id: str, role: str) -> Approval:
        approval = self.get(full_id)
        if not role_allows(role, check_role(approval.role)):
            raise PermissionDeniedError(
                f"approval {approval.short_id} needs role {approval.role} or higher; "
                f"the acting principal has role {role}"
            )
        return approval


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInputError(f"bad approval id {text!r}") from None
