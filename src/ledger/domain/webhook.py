"""Webhook subscriptions: where the ledger's events are sent, which ones, and their state.

The signing secret is never in an event (events are published and exported): only its
fingerprint is; the secret itself lives in a table of its own (``ledger.storage.webhook_tables``).
A deleted webhook's name is not reused: its history and delivery log keep it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit
from uuid import UUID

from ledger.bus.cloudevents import event_fields
from ledger.bus.events import BusEvent, check_pattern, subject_matches
from ledger.domain.base import LedgerAggregate, aggregate_id
from ledger.errors import InvalidInputError, RuleViolationError
from ledger.expressions import compile_expression

PauseCause = Literal["user", "gone"]
PAUSE_CAUSES = ("user", "gone")
MAX_URL = 2048


def webhook_id(name: str) -> UUID:
    return aggregate_id("webhook", name)


def secret_fingerprint(secret: str) -> str:
    """The first 16 hex digits of the secret's sha256: shows which secret signs, not it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host; InvalidInputError otherwise."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (ValueError on a bad port)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or len(url) > MAX_URL
        or any(c.isspace() for c in url)
    ):
        raise InvalidInputError(
            f"bad webhook URL {url!r}: give an absolute http:// or https:// URL, "
            "without user:password@"
        )
    return url


def check_events(events: list[str]) -> list[str]:
    if not events:
        raise InvalidInputError("a webhook needs at least one event pattern (--events)")
    return list(dict.fromkeys(check_pattern(pattern) for pattern in events))


def not_selected(events: Sequence[str], filter: str, event: BusEvent) -> str:
    """Why a webhook with these event patterns and filter is not sent ``event`` ("": it
    is): a redelivery sends nothing its subscription would not."""
    if not any(subject_matches(pattern, event.subject) for pattern in events):
        return f"its events ({', '.join(events)}) do not include {event.subject}"
    if not filter:
        return ""
    try:
        selected = bool(compile_expression(filter).evaluate(event_fields(event)))
    except InvalidInputError as error:
        return f"its filter cannot judge the event: {error}"
    return "" if selected else f"its filter {filter!r} does not select the event"


class Webhook(LedgerAggregate):
    """A subscription: the URL events are POSTed to, the subjects and filter that select
    them, and whether deliveries run (active), are held (paused) or ended (deleted)."""

    def __init__(self) -> None:
        self.name = ""
        self.url = ""
        self.events: list[str] = []
        self.filter = ""
        self.secret_fingerprint = ""
        self.description = ""
        self.paused = False
        self.pause_cause = ""
        self.deleted = False

    class Event(LedgerAggregate.Event):
        pass

    class Created(Event, LedgerAggregate.Created):
        name: str
        url: str
        events: list[str]
        filter: str
        secret_fingerprint: str
        description: str

        def apply(self, webhook: Webhook) -> None:
            webhook.name = self.name
            webhook.url = self.url
            webhook.events = list(self.events)
            webhook.filter = self.filter
            webhook.secret_fingerprint = self.secret_fingerprint
            webhook.description = self.description

    class Updated(Event):
        """The changed settings; a field left out (None) keeps its value."""

        url: str | None
        events: list[str] | None
        filter: str | None
        secret_fingerprint: str | None
        description: str | None

        def apply(self, webhook: Webhook) -> None:
            webhook.url = self.url if self.url is not None else webhook.url
            webhook.events = list(self.events) if self.events is not None else webhook.events
            webhook.filter = self.filter if self.filter is not None else webhook.filter
            if self.secret_fingerprint is not None:
                webhook.secret_fingerprint = self.secret_fingerprint
            if self.description is not None:
                webhook.description = self.description

    class Paused(Event):
        cause: str  # "user" | "gone" (the receiver answered 410 Gone)

        def apply(self, webhook: Webhook) -> None:
            webhook.paused = True
            webhook.pause_cause = self.cause

    class Resumed(Event):
        def apply(self, webhook: Webhook) -> None:
            webhook.paused = False
            webhook.pause_cause = ""

    class Deleted(Event):
        def apply(self, webhook: Webhook) -> None:
            webhook.deleted = True

    class RedeliveryRequested(Event):
        event_id: str  # the ledger event to send once more

        def apply(self, webhook: Webhook) -> None:
            pass

    @classmethod
    def create(
        cls,
        name: str,
        *,
        url: str,
        events: list[str],
        filter: str,
        secret_fingerprint: str,
        description: str,
    ) -> Webhook:
        return cls._create(
            cls.Created,
            id=webhook_id(name),
            name=name,
            url=check_url(url),
            events=check_events(events),
            filter=filter,
            secret_fingerprint=secret_fingerprint,
            description=description,
        )

    def update(
        self,
        *,
        url: str | None = None,
        events: list[str] | None = None,
        filter: str | None = None,
        secret_fingerprint: str | None = None,
        description: str | None = None,
    ) -> None:
        self._require_live()
        if all(v is None for v in (url, events, filter, secret_fingerprint, description)):
            raise InvalidInputError("nothing to update: give a URL, events, filter or secret")
        self.trigger_event(
            self.Updated,
            url=None if url is None else check_url(url),
            events=None if events is None else check_events(events),
            filter=filter,
            secret_fingerprint=secret_fingerprint,
            description=description,
        )

    def pause(self, cause: str = "user") -> None:
        self._require_live()
        if cause not in PAUSE_CAUSES:
            raise InvalidInputError(f"pause cause must be one of {', '.join(PAUSE_CAUSES)}")
        if self.paused:
            raise RuleViolationError(f"webhook {self.name!r} is paused already")
        self.trigger_event(self.Paused, cause=cause)

    def resume(self) -> None:
        self._require_live()
        if not self.paused:
            raise RuleViolationError(f"webhook {self.name!r} is not paused")
        self.trigger_event(self.Resumed)

    def delete(self) -> None:
        self._require_live()
        self.trigger_event(self.Deleted)

    def request_redelivery(self, event_id: str) -> None:
        self._require_live()
        self.trigger_event(self.RedeliveryRequested, event_id=event_id)

    @property
    def state(self) -> str:
        return "deleted" if self.deleted else "paused" if self.paused else "active"

    def _require_live(self) -> None:
        if self.deleted:
            raise RuleViolationError(f"webhook {self.name!r} is deleted")
