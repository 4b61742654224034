"""`ledger token ...`: create, list and revoke the API tokens `ledger serve` accepts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ledger.cli.context import (
    AsJson,
    Reason,
    console,
    err_console,
    open_ledger,
    open_views,
    print_json,
)
from ledger.domain.token import ROLES
from projections.tokens import list_tokens

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


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
