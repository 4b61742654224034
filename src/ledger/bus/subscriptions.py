"""The publish/subscribe interface both buses share: durable subscriptions and tails.

Events enter a bus only by being appended to the ledger (there is no separate
publish call, so nothing is ever published that the ledger did not record).
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal

from ledger.bus.events import EVERYTHING, BusEvent, check_pattern, subject_matches
from ledger.bus.handled import Handler, Preparer
from ledger.errors import InvalidInputError
from ledger.settings import Settings

_CONSUMER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_BACKOFF = (1.0, 5.0, 30.0)
Start = Literal["all", "new"] | int


@dataclass(frozen=True)
class Subscription:
    """A durable consumer: its name, what it wants, and how failures are retried."""

    consumer: str
    handler: Handler
    subjects: tuple[str, ...] = (EVERYTHING,)
    max_deliver: int = 5  # attempts before the event is recorded as failed
    backoff: tuple[float, ...] = DEFAULT_BACKOFF  # seconds before attempt 2, 3, ...
    # where a new consumer starts in the log: at its beginning, its head, or right after
    # the given log position
    start: Start = "all"
    prepare: Preparer | None = None  # before each batch's transaction (HandledEvents.handle)

    def wants(self, subject: str, position: int | None = None) -> bool:
        """Whether the subscription takes an event of ``subject`` (at log ``position``:
        not one at or before a log position it starts after)."""
        if isinstance(self.start, int) and position is not None and position <= self.start:
            return False
        return any(subject_matches(pattern, subject) for pattern in self.subjects)

    def delay_after(self, attempt: int) -> float:
        """How long to wait before delivering again after failed attempt ``attempt``."""
        return self.backoff[min(attempt, len(self.backoff)) - 1] if self.backoff else 0.0


class EventBus(ABC):
    """Delivers the ledger's events to durable subscriptions, at least once, each handled
    exactly once (see ``ledger.bus.handled``), in log order while nothing fails."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.subscriptions: list[Subscription] = []

    def subscribe(
        self,
        consumer: str,
        handler: Handler,
        *,
        subjects: Sequence[str] = (EVERYTHING,),
        max_deliver: int = 5,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        start: Start = "all",
        prepare: Preparer | None = None,
    ) -> Subscription:
        """Add a durable subscription; it runs while ``run`` does and resumes where it
        left off when run again. A handler may raise ``RetryLater`` to choose the delay
        before its event's next attempt; ``prepare`` sees each batch's unhandled events
        before their transaction (``HandledEvents.handle``)."""
        if not _CONSUMER_NAME.fullmatch(consumer):
            raise InvalidInputError(
                f"bad consumer name {consumer!r}: use 1-64 letters, digits, '-' or '_'"
            )
        if any(s.consumer == consumer for s in self.subscriptions):
            raise InvalidInputError(f"consumer {consumer!r} is subscribed already")
        if isinstance(start, int) and start < 0:
            raise InvalidInputError(f"a consumer cannot start after log position {start}")
        if max_deliver < 1 or any(delay < 0 for delay in backoff):
            raise InvalidInputError("max_deliver must be at least 1 and backoff delays >= 0")
        subscription = Subscription(
            consumer,
            handler,
            tuple(check_pattern(s) for s in subjects) or (EVERYTHING,),
            max_deliver,
            tuple(backoff),
            start,
            prepare,
        )
        self.subscriptions.append(subscription)
        return subscription

    @abstractmethod
    async def run(self, stop: asyncio.Event) -> None:
        """Deliver events to every subscription until ``stop`` is set."""

    @abstractmethod
    def tail(
        self, stop: asyncio.Event, subjects: Sequence[str] = (), after: int | None = None
    ) -> AsyncGenerator[BusEvent, None]:
        """Events as they come (no durable state): after log position ``after``, or only
        new ones when it is None."""
