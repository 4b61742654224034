"""`ledger model delete|rename|describe`: what changes a model's name, existence or words.

The commands join `ledger model` (``models.app``); importing this module adds them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.cli.context import Reason, console, counted, open_ledger
from ledger.cli.models import app
from ledger.errors import InvalidInputError


@app.command()
def delete(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION or NAME@ALIAS; NAME with --all")],
    whole_model: Annotated[
        bool, typer.Option("--all", help="Delete the model NAME and every version of it")
    ] = False,
    reason: Reason = "",
) -> None:
    """Delete a version, or with --all the model (refused while a version is deployed);
    its history stays in the ledger, and a deleted model's name can be created again."""
    with open_ledger() as ledger:
        if whole_model:
            if ":" in ref or "@" in ref:
                raise InvalidInputError(f"--all deletes a whole model: give its NAME, not {ref}")
            versions = ledger.models.get(ref).latest_version
            ledger.models.delete_model(ref, reason=reason)
            console.print(f"Deleted model {ref} ({counted(versions, 'version')} numbered so far)")
            return
        if ":" not in ref and "@" not in ref:
            raise InvalidInputError(
                f"say which version to delete ({ref}:VERSION), or delete the model with --all"
            )
        version = ledger.models.delete_version(ref, reason=reason)
    console.print(f"Deleted {version.ref}")


@app.command()
def rename(
    name: str,
    new_name: Annotated[str, typer.Argument(help="A name no model has ever had")],
    reason: Reason = "",
) -> None:
    """Move a model, its versions (same numbers), tags and aliases to NEW_NAME (refused
    while a version is deployed); the old name's history stays, pointing at the new one."""
    with open_ledger() as ledger:
        ledger.models.rename_model(name, new_name, reason=reason)
    console.print(f"Renamed {name} to {new_name}")


@app.command()
def describe(
    ref: Annotated[str, typer.Argument(help="NAME, or NAME:VERSION / NAME@ALIAS")],
    description: str,
    reason: Reason = "",
) -> None:
    """Change the description of a model or of one of its versions."""
    with open_ledger() as ledger:
        ledger.models.describe(ref, description, reason=reason)
    console.print(f"Described {ref}")
