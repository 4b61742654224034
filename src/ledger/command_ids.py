"""Command ids: saved with each command's events, so a retried command finds its first run.

A command whose id committed already is not run again for real: it is replayed on the
state it decided on the first time, writing nothing, to return the same result.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ledger.errors import RuleViolationError
from ledger.outages import STORE_UNAVAILABLE
from ledger.storage.commands import CommittedCommand

# While a committed command is replayed for its result: aggregate id -> the versions it
# had before and after the command.
_replaying: ContextVar[dict[uuid.UUID, tuple[int, int]] | None] = ContextVar(
    "ledger_replaying", default=None
)


class CommandAlreadyCommitted(Exception):
    """An earlier call with this command id committed: its result is returned instead."""

    def __init__(self, committed: CommittedCommand) -> None:
        super().__init__(f"command {committed.command_id} was already committed")
        self.committed = committed


def committed_now(recorder: Any, command_id: str) -> CommittedCommand | None:
    """The save that committed ``command_id``, or None."""
    committed: CommittedCommand | None = recorder.committed_command(command_id)
    return committed


def committed(recorder: Any, command_id: str, deadline: float) -> CommittedCommand | None:
    """The save that committed ``command_id``, asking until the store answers (or
    ``deadline``, a ``time.monotonic()`` instant, passes)."""
    for attempt in itertools.count(1):
        try:
            return committed_now(recorder, command_id)
        except STORE_UNAVAILABLE:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(1.0, 0.05 * 2**attempt))
    raise AssertionError("unreachable")


def versions_changed(events: Iterable[Any]) -> dict[uuid.UUID, tuple[int, int]]:
    """Aggregate id -> the versions it had before and after ``events``."""
    versions: dict[uuid.UUID, tuple[int, int]] = {}
    for event in events:
        aggregate_id = uuid.UUID(str(event.originator_id))
        before, after = versions.get(aggregate_id, (event.originator_version, 0))
        versions[aggregate_id] = (
            min(before, event.originator_version - 1),
            max(after, event.originator_version),
        )
    return versions


@contextmanager
def replaying(events: Iterable[Any]) -> Iterator[None]:
    """Inside this block, commands replay the committed ``events``: they read the state
    before them, and their saves write nothing (see ``check_replayed``)."""
    token = _replaying.set(versions_changed(events))
    try:
        yield
    finally:
        _replaying.reset(token)


def is_replaying() -> bool:
    return _replaying.get() is not None


def version_before_replay(aggregate_id: uuid.UUID) -> int | None:
    """While replaying: the version the aggregate had before the command (0: it did
    not exist yet). None when not replaying, or when the command did not change it."""
    versions = _replaying.get()
    if versions is None or aggregate_id not in versions:
        return None
    return versions[aggregate_id][0]


def check_replayed(aggregates: Iterable[Any]) -> None:
    """A replayed command must make the change that was committed under its id."""
    versions = _replaying.get() or {}
    saved = {aggregate.id: aggregate.version for aggregate in aggregates}
    if saved != {aggregate_id: after for aggregate_id, (_, after) in versions.items()}:
        raise RuleViolationError(
            "this command id (Idempotency-Key) was already used for another change"
        )
