"""`ledger automation` killed mid-retry and started again: no delivery is lost, the
receiver sees every event at least once, the ledger records each delivered once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from executors.webhooks.dispatcher import consumer_name
from ledger.bus.relay import Relay
from ledger.domain import EventMeta, Model, acting
from ledger.domain.webhook import webhook_id
from ledger.ledger import Ledger
from tests.bus_support import in_background, wait_for
from tests.conftest import StoreFactory
from tests.paths import REPO
from tests.webhooks.conftest import consumer_ready, log_of
from tests.webhooks.receiver import receiving

AUTOMATION = "from ledger.cli import main; main()"


def test_killing_the_delivery_process_mid_retry_loses_no_delivery(
    bus_store: StoreFactory,
) -> None:
    settings = bus_store.settings()
    env = {**os.environ, **bus_store.env(), "LEDGER_LOG_LEVEL": "ERROR",
           "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}  # fmt: skip

    def automation() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", AUTOMATION, "automation"],
            env=env,
            stderr=subprocess.DEVNULL,
        )

    relay = [Relay(settings).run] if settings.nats_url else []
    with receiving() as receiver, Ledger(settings) as ledger, in_background(*relay):
        receiver.answer(503)
        ledger.webhooks.create("durable", url=receiver.url, events=["ledger.model.registered"])
        consumer = consumer_name(str(webhook_id("durable")))
        first = automation()
        try:
            wait_for(lambda: consumer_ready(settings, consumer), 60, "the consumer")
            with acting(EventMeta("tester", "", "kill")):
                models = [Model.register(f"m{i}") for i in range(3)]
                ledger.save(*models)  # one commit: one batch of the bus
            ids = {f"{model.id}/1" for model in models}
            wait_for(
                lambda: ids <= set(receiver.ids()) and len(receiver.requests) > 3, 30, "a retry"
            )
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        failed_before = len(receiver.requests)
        receiver.answer(200)
        second = automation()
        try:
            wait_for(lambda: len(_delivered(settings)) >= 3, 60, "the deliveries")
            time.sleep(0.5)  # nothing more comes
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    assert failed_before > 3
    assert ids <= set(receiver.ids())
    assert Counter(_delivered(settings)) == dict.fromkeys(ids, 1)


def _delivered(settings: object) -> list[str]:
    rows = log_of(settings, "durable")  # type: ignore[arg-type]
    return [row["event_id"] for row in rows if row["outcome"] == "delivered"]
