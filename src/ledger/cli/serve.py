"""`ledger serve` runs the HTTP API; `ledger token ...` manages the tokens it accepts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ledger.bus.jetstream import describe_nats_url
from ledger.cli.context import (
    AsJson,
    Reason,
    console,
    err_console,
    load_settings,
    open_ledger,
    open_views,
    print_json,
)
from ledger.domain.token import ROLES
from ledger.errors import InvalidInputError
from projections.tokens import list_tokens

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


def serve(
    host: Annotated[str, typer.Option(help="Address to bind (default LEDGER_API_HOST)")] = "",
    port: Annotated[int, typer.Option(help="Port (default LEDGER_API_PORT)")] = -1,
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
    host = host or settings.api_host
    port = settings.api_port if port < 0 else port
    if relay is None:
        relay = bool(settings.nats_url)
    elif relay and not settings.nats_url:
        raise InvalidInputError("--relay needs LEDGER_NATS_URL: there is no NATS to relay to")
    app = create_app(settings, relay=relay, host=host)  # refuses auth off beyond loopback
    nats = describe_nats_url(settings.nats_url)
    bus = f"relay to {settings.nats_stream} at {nats}" if relay else "no relay"
    err_console.print(
        f"Lifecycle Ledger API on http://{host}:{port} (docs: /docs), "
        f"store {settings.store_location.describe()}, "
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


@token_app.command("create")
def create_token(
    name: Annotated[str, typer.Option("--name", help="Who holds it: the actor of its writes")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}")],
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """Issue a token and print its secret (shown this once; only its hash is stored)."""
    with open_ledger() as ledger:
        issued = ledger.tokens.create(name, role, reason=reason)
    if as_json:
        print_json({"name": issued.name, "role": issued.role, "token": issued.secret})
        return
    err_console.print(f"Token for [bold]{issued.name}[/] ({issued.role}); store it now:")
    print(issued.secret)


@token_app.command("list")
def list_all(as_json: AsJson = False) -> None:
    """Every token: name, role, whether revoked, when and by whom issued."""
    with open_views() as views:
        tokens = list_tokens(views.db)
    if as_json:
        print_json(tokens)
        return
    table = Table("name", "role", "state", "issued", "by")
    for token in tokens:
        state = "revoked" if token["revoked"] else "active"
        table.add_row(
            token["name"], token["role"], state, token["issued_at"][:19], token["issued_by"]
        )
    console.print(table)


@token_app.command("revoke")
def revoke(name: str, reason: Reason = "") -> None:
    """Revoke a token: the API refuses it from the next request on."""
    with open_ledger() as ledger:
        ledger.tokens.revoke(name, reason=reason)
    console.print(f"Revoked token {name!r}")
