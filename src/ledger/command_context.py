"""The context a command runs in: who it acts for, and the id of the running command."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Caller:
    """Who the commands in a block act for (set by the API, the worker...).

    ``command_id``: the id the caller gave this block (an HTTP Idempotency-Key); its
    commands get ``<command_id>/1``, ``/2``... so that a retried block finds them again.
    """

    actor: str
    correlation_id: str = ""
    causation_id: str = ""
    command_id: str = ""
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1), compare=False)

    def next_command_id(self) -> str:
        number = next(self._numbers)
        return f"{self.command_id}/{number}" if self.command_id else uuid.uuid4().hex


_caller: ContextVar[Caller | None] = ContextVar("ledger_caller", default=None)
# The id of the command running in this context (read by ``LedgerApplication.save``).
running_command_id: ContextVar[str] = ContextVar("ledger_command_id", default="")


def current_caller(default: Caller) -> Caller:
    """The caller of the enclosing ``acting_for`` block, else ``default``."""
    return _caller.get() or default


@contextmanager
def acting_for(caller: Caller) -> Iterator[None]:
    """Commands inside this block act for ``caller``."""
    token = _caller.set(caller)
    try:
        yield
    finally:
        _caller.reset(token)
