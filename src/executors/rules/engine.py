"""The rule engine (run by `ledger automation`): a durable bus consumer that judges every
event against the enabled rules and acts for them, as ``rule:<name>``.

Exactly once per (rule, event): the bus files each event in the engine's inbox once
(``executors.rules.inbox``); judging is outside the bus's transaction, and every action
and record runs under a command id made of the rule and the event, so judging an event
again after a crash writes nothing twice. Approved approvals run their held actions
the same way, with command ids made of the approval's id.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson

from executors.rules import inbox
from executors.rules.firing import ENGINE_RECORDS, Firing, ViewsBehind
from ledger.bus import BusEvent, Delivery, open_bus
from ledger.bus.log_reader import open_store
from ledger.ledger import Ledger
from ledger.logging import get_logger
from ledger.outages import first_line, is_store_unavailable
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from projections.views import Views

CONSUMER = "rules"
ENGINE_ACTOR = "rule-engine"
log = get_logger(__name__)


class RuleEngine:
    """Judges the ledger's events against its rules; expires approvals that are due."""

    poll_interval_s = 0.1  # how often the inbox is read when idle
    expiry_interval_s = 30.0  # how often pending approvals past their time are expired
    batch = 100

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and judge until ``stop`` is set."""
        db = await asyncio.to_thread(open_store, self.settings)  # a new store is created
        try:
            await asyncio.to_thread(inbox.create_inbox, db)
        finally:
            db.close()
        halt = threading.Event()
        bus = open_bus(self.settings)
        bus.subscribe(CONSUMER, self._on_event, start="all")
        judging = asyncio.create_task(asyncio.to_thread(self._judge_loop, halt))
        log.info("rule engine started")
        try:
            await bus.run(stop)
        finally:
            halt.set()
            await judging
            log.info("rule engine stopped")

    def _on_event(self, delivery: Delivery) -> None:
        """File the event (in the bus's transaction: exactly once)."""
        event = delivery.event
        if event.subject in ENGINE_RECORDS:
            return  # never judged: no need to file it
        envelope = orjson.dumps(asdict(event)).decode()
        inbox.file_event(delivery.db, event, envelope)

    # -- judging, on a thread of its own ------------------------------------------------

    def _judge_loop(self, halt: threading.Event) -> None:
        ledger = Ledger(self.settings)
        views = Views.open(self.settings, catch_up=False)
        db = LedgerDatabase(self.settings)
        firing = Firing(ledger, views, self.settings.rule_max_chain)
        expired_at = 0.0
        try:
            while not halt.is_set():
                try:
                    if self._now() - expired_at >= self.expiry_interval_s:
                        expired_at = self._now()
                        self.expire_due(ledger, views)
                    if not self._judge_due(db, firing):
                        halt.wait(self.poll_interval_s)
                except Exception as error:
                    self._report(error)
                    halt.wait(1.0)
        finally:
            db.close()
            views.close()
            ledger.close()

    @staticmethod
    def _now() -> float:
        return datetime.now(UTC).timestamp()

    def _judge_due(self, db: LedgerDatabase, firing: Firing) -> int:
        """Judge the filed events that are due; how many were taken."""
        due = inbox.claim_due(db, self.batch)
        for event_id, envelope, attempts, last_error in due:
            event = BusEvent.from_envelope(orjson.loads(envelope))
            try:
                if attempts >= inbox.MAX_ATTEMPTS:
                    firing.give_up(event, last_error)
                else:
                    firing.judge(event)
            except Exception as error:
                # An outage or views still catching up is no fault of the event: not counted.
                counted = not (isinstance(error, ViewsBehind) or is_store_unavailable(error))
                attempts = inbox.retry_later(db, event_id, _describe(error), counted=counted)
                self._report(error, event_id=event_id, attempts=attempts)
                continue
            inbox.remove(db, event_id)
        return len(due)

    def expire_due(self, ledger: Ledger, views: Views) -> int:
        """Mark pending approvals past their time as expired; how many were."""
        views.updater.catch_up()
        now = datetime.now(UTC)
        expired = 0
        for approval in views.approvals("pending"):
            if datetime.fromisoformat(approval["expires_at"]) <= now:
                with ledger.on_behalf_of(ENGINE_ACTOR):
                    expired += ledger.approvals.expire(str(approval["id"]), now)
        return expired

    @staticmethod
    def _report(error: Exception, **fields: Any) -> None:
        if is_store_unavailable(error):
            log.warning("the event store is unavailable; judging later", error=first_line(error))
        else:
            log.warning("judging an event failed; trying again later", error=repr(error),
                        exc_info=True, **fields)  # fmt: skip


def _describe(error: Exception) -> str:
    """The error in one line, as a rule's history shows it."""
    return f"{type(error).__name__}: {first_line(error)}"
