"""The bus handlers of webhook delivery: one per subscription, and one for redeliveries.

Each has a ``prepare`` the bus runs before a batch's transaction: it sends the batch's
POSTs together (outside the transaction, which they must not hold open) and keeps each
result; the handler then records the final attempt (delivered, dead, gone) in the handled
transaction, exactly once, or asks for a retry after the schedule's delay.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from executors.webhooks.sender import Job, Result, Sender, Target
from ledger.bus.cloudevents import event_fields
from ledger.bus.events import BusEvent
from ledger.bus.handled import Delivery, Pending, RetryLater
from ledger.bus.log_reader import open_store
from ledger.domain.webhook import not_selected
from ledger.errors import InvalidInputError, LedgerError
from ledger.expressions import Expression, compile_expression
from ledger.logging import get_logger
from ledger.storage.decoding import EventDecoder
from ledger.storage.feed import read_event
from ledger.storage.webhook_tables import next_attempt, record_attempts

MAX_KEPT = 10_000  # results kept for events not handled yet
log = get_logger(__name__)


class PreparedDeliveries(ABC):
    """Sends in ``prepare``, records in ``__call__``; subclasses say what to send."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self._results: dict[str, Result] = {}

    @abstractmethod
    def jobs(self, pending: Sequence[Pending]) -> list[Job]:
        """What to send for these events (an event without a job is handled unsent)."""

    def prepare(self, pending: Sequence[Pending]) -> None:
        """Send what the events not handled yet call for (an event whose final result is
        kept already, from a batch the bus stopped short of, is not sent again)."""
        if len(self._results) > MAX_KEPT:
            self._results.clear()
        # A retry kept from a batch the bus stopped short of (the in-process bus stops at
        # an event to retry) is stale: that event is sent again now.
        for event_id in [i for i, r in self._results.items() if r.retry_in is not None]:
            del self._results[event_id]
        todo = [p for p in pending if p.event.id not in self._results]
        for p in todo:
            self._results[p.event.id] = Result(None)  # nothing to send, unless a job says so
        jobs = self.jobs(todo)
        for job, result in zip(jobs, self.sender.send_all(jobs), strict=True):
            self._results[job.pending.event.id] = result

    def __call__(self, delivery: Delivery) -> None:
        result = self._results.pop(delivery.event.id, None)
        if result is None:  # not prepared (cannot happen while one bus runs the consumer)
            raise RetryLater(1.0, "the delivery was not prepared")
        if result.retry_in is not None:
            raise RetryLater(result.retry_in, "the receiver did not take it")
        if result.attempt is not None:
            record_attempts(delivery.db, [result.attempt])


class WebhookDeliveries(PreparedDeliveries):
    """Delivers a subscription's events that pass its filter."""

    def __init__(self, sender: Sender, target: Target) -> None:
        super().__init__(sender)
        self.target = target
        self.filter: Expression | None = (
            compile_expression(target.filter) if target.filter else None
        )

    def jobs(self, pending: Sequence[Pending]) -> list[Job]:
        return [Job(self.target, p.event, p, p.attempt) for p in pending if self.selects(p.event)]

    def selects(self, event: BusEvent) -> bool:
        if self.filter is None:
            return True
        try:
            return bool(self.filter.evaluate(event_fields(event)))
        except InvalidInputError as error:  # e.g. comparing text with a number
            log.info("webhook filter cannot judge an event: not sent",
                     webhook=self.target.name, event_id=event.id, error=str(error))  # fmt: skip
            return False


class Redeliveries(PreparedDeliveries):
    """Sends the event a ``Webhook.RedeliveryRequested`` names to that webhook once more
    (same webhook-id; its attempts continue the delivery log's numbering)."""

    def __init__(self, sender: Sender, targets: Callable[[str], Target | None]) -> None:
        super().__init__(sender)
        self._target_of = targets  # aggregate id -> the webhook (None: deleted, unknown)
        self._db = open_store(sender.settings)
        self._decoder = EventDecoder()

    def close(self) -> None:
        self._db.close()

    def jobs(self, pending: Sequence[Pending]) -> list[Job]:
        jobs = []
        for request in pending:
            target = self._target_of(request.event.aggregate_id)
            if target is None:
                continue
            event_id = str(request.event.data.get("event_id", ""))
            try:
                event = BusEvent.from_envelope(read_event(self._db, self._decoder, event_id))
            except LedgerError as error:
                log.warning("cannot redeliver", webhook=target.name, event_id=event_id,
                            error=str(error))  # fmt: skip
                continue
            refusal = not_selected(target.events, target.filter, event)
            if refusal:
                log.warning("redelivery refused", webhook=target.name, event_id=event_id,
                            reason=refusal)  # fmt: skip
                continue
            attempt = next_attempt(self._db, target.name, event_id)
            jobs.append(Job(target, event, request, attempt))
        return jobs
