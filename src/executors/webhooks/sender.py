"""One attempt at delivering an event to a webhook: the signed POST, what its answer
means (delivered, dead, gone, or a retry after how long), and its side effects that must
not wait for the handled transaction: a retried attempt's row in the delivery log, and
pausing a webhook whose receiver answered 410 Gone."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from executors.webhooks.message import signed_request
from executors.webhooks.outbound import Answer, GuardedClient
from executors.webhooks.schedule import outcome_of, parse_retry_after, retry_delay
from ledger.bus.events import BusEvent
from ledger.bus.handled import Pending
from ledger.errors import LedgerError
from ledger.ledger import Ledger
from ledger.logging import get_logger
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.webhook_tables import Attempt, create_webhook_tables, record_attempts

ACTOR = "webhook-delivery"
log = get_logger(__name__)


@dataclass(frozen=True)
class Target:
    """A webhook as deliveries see it (from the webhooks view and its secret)."""

    name: str
    id: str  # the aggregate id, as events carry it
    url: str
    events: tuple[str, ...]
    filter: str
    secret: str
    fingerprint: str
    start: int = 0  # the log position of its Created event: deliveries are of later events


@dataclass(frozen=True)
class Job:
    """Send ``event`` to ``target``: for the bus's ``pending`` event (the event itself, or
    a redelivery request), as attempt number ``attempt`` of the delivery log."""

    target: Target
    event: BusEvent
    pending: Pending
    attempt: int


@dataclass(frozen=True)
class Result:
    """A job's attempt to record (None: nothing was sent), and the delay before the next
    attempt when there is one (the attempt is then recorded already)."""

    attempt: Attempt | None
    retry_in: float | None = None


def age_s(event: BusEvent) -> float:
    return max(0.0, (datetime.now(UTC) - datetime.fromisoformat(event.time)).total_seconds())


class Sender:
    """Sends jobs, several at once, over one guarded HTTP client."""

    def __init__(self, settings: Settings, *, concurrency: int = 16) -> None:
        self.settings = settings
        self.client = GuardedClient(settings)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="webhook-post")
        self._ledger = Ledger(settings)
        self._log_db = LedgerDatabase(settings, dedicated=True)
        create_webhook_tables(self._log_db)
        self._log_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()
        self._log_db.close()
        self._ledger.close()

    def send_all(self, jobs: Sequence[Job]) -> list[Result]:
        """Each job's result, in order; the POSTs run concurrently."""
        if len(jobs) <= 1:
            return [self.send(job) for job in jobs]
        return list(self._pool.map(self.send, jobs))

    def send(self, job: Job) -> Result:
        body, headers = signed_request(job.event, job.target.secret, self.settings.event_source)
        answer = self.client.post(job.target.url, body, headers)
        outcome, retry_in, error = self._judge(job, answer)
        attempt = Attempt(job.target.name, job.event.id, job.attempt, answer.status,
                          answer.latency_ms, answer.head, error, outcome,
                          int(time.time() * 1e6))  # fmt: skip
        if outcome == "retrying":
            with self._log_lock:  # autocommitted: the retry rolls the handler's writes back
                record_attempts(self._log_db, [attempt])
        elif outcome == "gone":
            self._pause_gone(job)
        log.info("webhook attempt", webhook=job.target.name, event_id=job.event.id,
                 attempt=job.attempt, status=answer.status, outcome=outcome)  # fmt: skip
        return Result(attempt, retry_in)

    def _judge(self, job: Job, answer: Answer) -> tuple[str, float | None, str]:
        """(outcome, delay before the next attempt, error) of an answer."""
        error = answer.error or ("" if 200 <= answer.status < 300 else f"HTTP {answer.status}")
        if answer.refused:
            return "dead", None, error
        outcome = outcome_of(answer.status)
        if outcome != "retrying":
            return outcome, None, error
        delay = retry_delay(
            job.pending.attempt,
            age_s(job.pending.event),
            scale=self.settings.webhook_retry_scale,
            retry_after_s=parse_retry_after(answer.retry_after),
        )
        if delay is None or job.pending.last_attempt:
            return "dead", None, f"{error}; retries exhausted"
        return "retrying", delay, error

    def _pause_gone(self, job: Job) -> None:
        """The receiver answered 410 Gone: pause the subscription (once per event, even
        when this runs again after a crash)."""
        command_id = f"webhook-gone:{job.target.id}:{job.event.id}"
        try:
            with self._ledger.on_behalf_of(ACTOR, causation_id=job.event.id, command_id=command_id):
                self._ledger.webhooks.pause(
                    job.target.name, cause="gone", reason=f"{job.target.url} answered 410 Gone"
                )
        except LedgerError as error:  # paused or deleted meanwhile
            log.info("webhook not paused", webhook=job.target.name, error=str(error))
