"""`ledger automation`: the process that reacts to the ledger's events with rules."""

from __future__ import annotations

import asyncio

from ledger.bus.jetstream import describe_nats_url
from ledger.cli.context import err_console, load_settings
from ledger.cli.events import run_until_signalled


def automation() -> None:
    """Run the rule engine (and approvals' expiry) until interrupted."""
    from executors.rules.engine import RuleEngine  # the CLI's other commands never load executors

    settings = load_settings()
    engines = [RuleEngine(settings)]
    err_console.print(
        f"Automation: rules; store {settings.store_location.describe()}, bus "
        f"{'NATS ' + describe_nats_url(settings.nats_url) if settings.nats_url else 'in-process'}"
    )

    async def run(stop: asyncio.Event) -> None:
        await asyncio.gather(*(engine.run(stop) for engine in engines))

    run_until_signalled(run)
