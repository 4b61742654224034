"""`ledger automation`: the process that reacts to the ledger's events outside it: webhook
deliveries (and rules), until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio

from ledger.bus.jetstream import describe_nats_url
from ledger.cli.context import err_console, load_settings
from ledger.cli.events import run_until_signalled


def automation() -> None:
    """Deliver webhooks (and run rules) until interrupted."""
    from executors.webhooks.dispatcher import WebhookDispatcher  # only this command loads it

    settings = load_settings()
    dispatcher = WebhookDispatcher(settings)
    bus = f"NATS {describe_nats_url(settings.nats_url)}" if settings.nats_url else "in-process"
    err_console.print(
        f"Automation: webhooks, store {settings.store_location.describe()}, bus {bus}"
    )

    async def run(stop: asyncio.Event) -> None:
        await asyncio.gather(dispatcher.run(stop))

    run_until_signalled(run)
