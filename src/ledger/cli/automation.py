"""`ledger automation`: the process that reacts to the ledger's events outside it: webhook
deliveries and rules, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio

from ledger.bus.nats_auth import describe_nats_url
from ledger.cli.context import check_credentials, err_console, load_settings
from ledger.cli.events import run_until_signalled


def automation() -> None:
    """Deliver webhooks and run the rule engine (and approvals' expiry) until interrupted."""
    # The CLI's other commands never load executors.
    from executors.rules.engine import RuleEngine
    from executors.webhooks.dispatcher import WebhookDispatcher

    settings = load_settings()
    check_credentials(settings)  # wrong ones fail now, in one line
    engines: list[WebhookDispatcher | RuleEngine] = [
        WebhookDispatcher(settings),
        RuleEngine(settings),
    ]
    err_console.print(
        f"Automation: webhooks and rules; store {settings.store_location.describe()}, bus "
        f"{'NATS ' + describe_nats_url(settings.nats_url) if settings.nats_url else 'in-process'}"
    )

    async def run(stop: asyncio.Event) -> None:
        await asyncio.gather(*(engine.run(stop) for engine in engines))

    run_until_signalled(run)
