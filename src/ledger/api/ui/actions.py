"""Writes made from the UI's forms: ledger commands as the signed-in user, with a reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Form, Request

from ledger.api.routes.common import run_command
from ledger.api.ui.access import UiUser
from ledger.errors import InvalidInputError
from ledger.ledger import Ledger

T = TypeVar("T")
ReasonField = Annotated[
    str, Form(max_length=2_000, description="Why: recorded on every event written")
]


def ui_command(
    request: Request, user: UiUser, reason: str, command: Callable[[Ledger, str], T]
) -> T:
    """Run ``command(ledger, reason)`` as ``user`` (the events' actor is their token's
    name); a UI write always says why, so a blank reason is refused before it runs."""
    reason = reason.strip()
    if not reason:
        raise InvalidInputError("a reason is required: say why you make this change")
    return run_command(request, user.principal, lambda ledger: command(ledger, reason))
