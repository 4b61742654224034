"""`ledger serve`: run the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.bus.nats_auth import describe_nats_url
from ledger.cli.context import (
    check_credentials,
    err_console,
    load_settings,
)
from ledger.errors import InvalidInputError


def serve(
    host: Annotated[str, typer.Option(help="Address to bind (default LEDGER_API_HOST)")] = "",
    port: Annotated[int | None, typer.Option(help="Port (default LEDGER_API_PORT)")] = None,
    relay: Annotated[
        bool | None,
        typer.Option(
            "--relay/--no-relay",
            help="Also publish the log to NATS (default: when LEDGER_NATS_URL is set)",
        ),
    ] = None,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs) until interrupted."""
    import uvicorn

    from ledger.api import create_app

    settings = load_settings()
    check_credentials(settings)  # wrong ones fail now, in one line
    host = host or settings.api_host
    port = settings.api_port if port is None else port
    if relay is None:
        relay = bool(settings.nats_url)
    elif relay and not settings.nats_url:
        raise InvalidInputError("--relay needs LEDGER_NATS_URL: there is no NATS to relay to")
    app = create_app(settings, relay=relay, host=host)  # refuses auth off beyond loopback
    nats = describe_nats_url(settings.nats_url)
    bus = f"relay to {settings.nats_stream} at {nats}" if relay else "no relay"
    err_console.print(
        f"Lifecycle Ledger API on http://{host}:{port} (docs: /docs), "
        f"store {settings.store_location.describe()}, artifacts {settings.artifacts_location}, "
        f"auth {'on' if settings.api_auth else 'OFF'}, {bus}"
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,  # open event streams would otherwise hold a stop forever
    )
