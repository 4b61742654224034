"""What every CLI command shares: the ledger it acts on, and how it prints."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ledger.application import Ledger
from ledger.core import HistoryEntry
from ledger.errors import InvalidInputError
from ledger.settings import Settings

console = Console()
err_console = Console(stderr=True)

Reason = Annotated[
    str, typer.Option("--reason", "-r", help="Why: recorded on every event this command writes")
]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of tables")
]


def load_settings(**overrides: Any) -> Settings:
    try:
        settings = Settings(**overrides)
        settings.store_location  # noqa: B018  (validates LEDGER_STORE now, not mid-command)
    except ValidationError as error:
        problems = "; ".join(
            f"LEDGER_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        raise InvalidInputError(f"invalid settings: {problems}") from None
    except ValueError as error:
        raise InvalidInputError(str(error)) from None
    return settings


@contextmanager
def open_ledger(**overrides: Any) -> Iterator[Ledger]:
    ledger = Ledger(load_settings(**overrides))
    try:
        yield ledger
    finally:
        ledger.close()


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


@contextmanager
def byte_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on stderr; yields the ``(done, total)`` callback."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def print_history(entries: list[HistoryEntry]) -> None:
    table = Table("time (UTC)", "entity", "event", "actor", "reason", "details")
    table.columns[0].no_wrap = table.columns[2].no_wrap = True
    for e in entries:
        details = ", ".join(
            f"{k}={json.dumps(v, separators=(',', ':'))}"
            for k, v in e.details.items()
            if k not in ("spec", "content")  # bulky: `model show` / `data show` present them
        )
        table.add_row(
            e.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            e.entity,
            e.event,
            e.actor,
            e.reason,
            details,
        )
    console.print(table)
