"""`WebhookDispatcher`: delivers events to every active webhook over the bus, one durable
consumer per webhook, and redeliveries on request; follows the webhooks view and starts
the bus again with the new set when webhooks are created, changed, paused or deleted."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from executors.webhooks.handlers import Redeliveries, WebhookDeliveries
from executors.webhooks.schedule import MAX_ATTEMPTS
from executors.webhooks.sender import Sender, Target
from ledger.bus import EventBus, open_bus
from ledger.bus.jetstream import Connection
from ledger.bus.running import keep_running, stopped
from ledger.domain.webhook import webhook_id
from ledger.errors import InvalidInputError, NotFoundError
from ledger.logging import get_logger
from ledger.settings import Settings
from ledger.storage.webhook_tables import read_secret
from projections.views import Views

REDELIVERIES = "webhook-redeliveries"
REDELIVERY_SUBJECT = "ledger.webhook.redelivery_requested"
WATCH_INTERVAL_S = 1.0
log = get_logger(__name__)


def consumer_name(webhook_id: str) -> str:
    """The durable consumer of a webhook: ``webhook-`` and 24 hex digits of its id."""
    return "webhook-" + webhook_id.replace("-", "")[:24]


class WebhookDispatcher:
    """Runs webhook deliveries until stopped (``ledger automation``)."""

    def __init__(self, settings: Settings, *, watch_interval_s: float = WATCH_INTERVAL_S) -> None:
        self.settings = settings
        self.watch_interval_s = watch_interval_s
        self.active: tuple[Target, ...] = ()  # what the running bus delivers to
        self._consumers_deleted: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        # A store outage (a PostgreSQL restart) is waited out: views and sender reopen.
        await keep_running("webhook dispatcher", lambda: self._run_once(stop), stop)

    async def _run_once(self, stop: asyncio.Event) -> None:
        views = await asyncio.to_thread(Views.open, self.settings, catch_up=False)
        try:
            sender = await asyncio.to_thread(Sender, self.settings)
            try:
                while not stop.is_set():
                    webhooks = await asyncio.to_thread(self._webhooks, views)
                    await self._delete_consumers(webhooks)
                    self.active = self._targets(views, webhooks)
                    await self._deliver(views, sender, webhooks, stop)
            finally:
                await asyncio.to_thread(sender.close)
        finally:
            await asyncio.to_thread(views.close)

    async def _deliver(
        self, views: Views, sender: Sender, webhooks: list[dict[str, Any]], stop: asyncio.Event
    ) -> None:
        """Run the bus for the webhooks now active until they change or ``stop``."""
        by_id = {t.id: t for t in self._targets(views, webhooks, with_paused=True)}
        redeliveries = Redeliveries(sender, by_id.get)
        try:
            bus = self._bus(sender, redeliveries)
            halt = asyncio.Event()
            running = asyncio.create_task(bus.run(halt))
            log.info("delivering to webhooks", webhooks=[t.name for t in self.active])
            try:
                while not stop.is_set() and not running.done():
                    await stopped(stop, self.watch_interval_s)
                    if await asyncio.to_thread(self._webhooks, views) != webhooks:
                        break
            finally:
                halt.set()
                await running  # a misconfigured bus ends the dispatcher
        finally:
            redeliveries.close()

    def _bus(self, sender: Sender, redeliveries: Redeliveries) -> EventBus:
        bus = open_bus(self.settings)
        for target in self.active:
            try:
                deliveries = WebhookDeliveries(sender, target)
            except InvalidInputError as error:  # a filter this version cannot read
                log.error("webhook not delivered to", webhook=target.name, error=str(error))
                continue
            bus.subscribe(
                consumer_name(target.id),
                deliveries,
                subjects=target.events,
                max_deliver=MAX_ATTEMPTS,
                start=target.start,
                prepare=deliveries.prepare,
            )
        bus.subscribe(
            REDELIVERIES,
            redeliveries,
            subjects=[REDELIVERY_SUBJECT],
            max_deliver=MAX_ATTEMPTS,
            start="all",
            prepare=redeliveries.prepare,
        )
        return bus

    def _webhooks(self, views: Views) -> list[dict[str, Any]]:
        """Every webhook in the view, deleted ones too, with the view brought up to date."""
        views.updater.catch_up()
        return views.webhooks(deleted=True)

    def _targets(
        self, views: Views, webhooks: list[dict[str, Any]], *, with_paused: bool = False
    ) -> tuple[Target, ...]:
        states = ("active", "paused") if with_paused else ("active",)
        targets = []
        for webhook in webhooks:
            if webhook["state"] not in states:
                continue
            try:
                secret = read_secret(views.db, webhook["name"], webhook["secret_fingerprint"])
            except NotFoundError as error:
                log.error("webhook not delivered to", webhook=webhook["name"], error=str(error))
                continue
            targets.append(Target(
                webhook["name"], str(webhook_id(webhook["name"])), webhook["url"],
                tuple(webhook["events"]),
                webhook["filter"], secret, webhook["secret_fingerprint"],
                webhook["created_position"],
            ))  # fmt: skip
        return tuple(targets)

    async def _delete_consumers(self, webhooks: list[dict[str, Any]]) -> None:
        """On NATS, remove the durable consumers of deleted webhooks (once each)."""
        gone = {
            consumer_name(str(webhook_id(w["name"]))) for w in webhooks if w["state"] == "deleted"
        }
        gone -= self._consumers_deleted
        if not self.settings.nats_url or not gone:
            return
        connection = Connection(self.settings, name="ledger-webhooks")
        try:
            js = await connection.open()
            assert js is not None  # without a stop event, open() fails instead
        except Exception as error:  # NATS away: try again on the next change
            log.warning("cannot delete webhook consumers now", error=str(error))
            return
        try:
            for consumer in sorted(gone):
                with contextlib.suppress(Exception):  # never created, or deleted already
                    await js.delete_consumer(self.settings.nats_stream, consumer)
                self._consumers_deleted.add(consumer)
        finally:
            await connection.close()
