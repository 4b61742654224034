"""Group commit: the saves that arrive while a commit is in flight share the next one.

Each save (one command's events and its command id) waits in a queue. When no commit is
in flight, the save commits at once, alone: a lone command waits for nothing. Saves
that arrive while a commit is in flight queue behind it; the first of them to get its
turn takes up to ``max_batch`` queued saves and writes them in one transaction, each
in a savepoint of its own (a save that conflicts rolls back alone and its caller gets
the IntegrityError), under one lock of the events table and one WAL flush. Every caller
is answered only after that shared commit.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent

from ledger.storage.commands import CommandStamp

# What a batch write gives each save: its positions, or the error that refused it alone.
Outcome = Sequence[int] | Exception
DEFAULT_MAX_BATCH = 64
# Keys of the eventsourcing environment the factories read (from Settings, see
# ledger.storage.eventsourcing_env).
MAX_BATCH_KEY = "GROUP_COMMIT_MAX_BATCH"
MAX_WAIT_KEY = "GROUP_COMMIT_WAIT_S"


@dataclass(eq=False)
class PendingSave:
    """One command's events waiting for a commit, and what came of them."""

    events: Sequence[StoredEvent]
    command: CommandStamp | None
    outcome: Outcome | BaseException | None = None
    done: bool = False

    def result(self) -> Sequence[int]:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        assert self.outcome is not None
        return self.outcome


# Writes the saves in one transaction; one outcome per save, in order. Raises when the
# transaction failed as a whole (nothing of it committed, or, for a connection lost
# during COMMIT, unknown).
WriteBatch = Callable[[Sequence[PendingSave]], list[Outcome]]


class GroupCommitter:
    """Coalesces the concurrent saves of one process into shared transactions.

    ``max_wait_s``: how long a batch that formed behind a commit in flight waits for
    more saves to fill it up to ``max_batch`` (0, the default: it takes what has queued).
    A save that finds no commit in flight never waits.
    """

    def __init__(
        self, write: WriteBatch, *, max_batch: int = DEFAULT_MAX_BATCH, max_wait_s: float = 0.0
    ) -> None:
        self._write = write
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._lock = threading.Lock()
        self._turn = threading.Condition(self._lock)  # a commit ended
        self._arrived = threading.Condition(self._lock)  # a save queued
        self._queue: deque[PendingSave] = deque()
        self._committing = False

    def save(self, events: Sequence[StoredEvent], command: CommandStamp | None) -> Sequence[int]:
        """Commit ``events`` (with ``command``'s id), alone or with others; their positions."""
        pending = PendingSave(events, command)
        with self._lock:
            behind_a_commit = self._committing
            self._queue.append(pending)
            self._arrived.notify()
            while not pending.done:
                if self._committing:
                    self._turn.wait()
                    continue
                self._committing = True
                batch: list[PendingSave] = []
                try:
                    batch = self._take_batch(behind_a_commit)
                    self._lock.release()
                    try:
                        self._commit(batch)
                    finally:
                        self._lock.acquire()
                finally:
                    self._committing = False
                    self._answer_the_rest(batch)
                    self._turn.notify_all()
        return pending.result()

    def _take_batch(self, behind_a_commit: bool) -> list[PendingSave]:
        """The oldest queued saves, up to ``max_batch``; called holding the lock."""
        if behind_a_commit and self.max_wait_s > 0:
            deadline = time.monotonic() + self.max_wait_s
            while len(self._queue) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.wait(left)
        count = min(len(self._queue), self.max_batch)
        return [self._queue.popleft() for _ in range(count)]

    def _commit(self, batch: list[PendingSave]) -> None:
        """Write ``batch``, then answer each of its saves."""
        outcomes: list[Outcome | BaseException]
        try:
            outcomes = list(self._write(batch))
        except (InterfaceError, OperationalError) as error:
            # The store could not be reached (or the answer to COMMIT was lost): every
            # caller learns it and resends, finding its command id if the batch landed.
            outcomes = [error] if len(batch) == 1 else [_own_copy(error) for _ in batch]
        except Exception as error:
            # A save the store refuses (not a conflict) fails its whole transaction, which
            # wrote nothing: each save of the batch is written alone, so only it is refused.
            outcomes = [error] if len(batch) == 1 else [self._write_alone(p) for p in batch]
        except BaseException as error:
            outcomes = [error for _ in batch]
        for pending, outcome in zip(batch, outcomes, strict=True):
            pending.outcome, pending.done = outcome, True

    @staticmethod
    def _answer_the_rest(batch: list[PendingSave]) -> None:
        """No caller waits forever: a save the commit left unanswered (a bug) fails."""
        for pending in batch:
            if not pending.done:
                pending.outcome = RuntimeError("the group commit ended without an answer")
                pending.done = True

    def _write_alone(self, pending: PendingSave) -> Outcome:
        try:
            return self._write([pending])[0]
        except Exception as error:
            return error


def configure_group_commit(writer: GroupCommitter, env: Any) -> None:
    """Batch size and wait from the eventsourcing environment ``env``."""
    writer.max_batch = max(1, int(env.get(MAX_BATCH_KEY) or DEFAULT_MAX_BATCH))
    writer.max_wait_s = max(0.0, float(env.get(MAX_WAIT_KEY) or 0))


def _own_copy(error: Exception) -> Exception:
    """A copy of ``error`` for one caller: callers raise in their own threads, and one
    shared exception object would collect all their tracebacks."""
    try:
        return copy.copy(error)
    except Exception:
        return error
