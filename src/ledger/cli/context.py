"""What every CLI command shares: the ledger it acts on, and how it prints."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ledger.bus.nats_auth import check_nats_credentials
from ledger.commands.assets import RegisteredVersion
from ledger.errors import InvalidInputError
from ledger.ledger import Ledger
from ledger.outages import check_store_credentials
from ledger.settings import Settings
from ledger.storage import ensure_store
from ledger.storage.timestamps import as_utc
from projections.views import Views

# Piped output is read by programs and people alike: a table keeps whole values instead of
# being cut to 80 columns (COLUMNS still sets a width).
PIPED_WIDTH = 10_000

console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:
    console.width = PIPED_WIDTH
err_console = Console(stderr=True)

WATCH_INTERVAL_S = 0.25  # between reads while following a job
STATUS_STYLE = {  # a job's or step's status -> its colour
    "submitted": "white",
    "running": "cyan",
    "cancelling": "yellow",
    "succeeded": "green",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
}
LONG_CATCH_UP = 20_000  # events: from this many on, reads show a progress bar first
EVENT_PROGRESS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TextColumn("events"),
    TimeRemainingColumn(),
)

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


def check_credentials(settings: Settings) -> None:
    """Stop a long-running service at once, in one line, when PostgreSQL or NATS refuses
    its credentials: it would otherwise wait forever for a store or bus that is up."""
    check_store_credentials(settings)
    check_nats_credentials(settings)


@contextmanager
def open_ledger(**overrides: Any) -> Iterator[Ledger]:
    ledger = Ledger(load_settings(**overrides))
    try:
        yield ledger
    finally:
        ledger.close()


@contextmanager
def open_views(*, catch_up: bool = True) -> Iterator[Views]:
    """The read side, brought up to every event written so far (``catch_up``)."""
    settings = load_settings()
    ensure_store(settings)  # a new store is created
    views = Views.open(settings, catch_up=False)
    try:
        if catch_up:
            _catch_up(views)
        yield views
    finally:
        views.close()


def progress_bar(*columns: str | ProgressColumn) -> Progress:
    """A transient progress bar on stderr, shown only on a terminal (piped, it would leave a
    blank line behind)."""
    return Progress(
        *columns, console=err_console, transient=True, disable=not err_console.is_terminal
    )


def _catch_up(views: Views) -> None:
    """Apply what the views have not seen yet, with a progress bar when that is a lot."""
    updater = views.updater
    if updater.head() - min(updater.positions().values()) < LONG_CATCH_UP:
        updater.catch_up()
        return
    with progress_bar(*EVENT_PROGRESS) as progress:
        task = progress.add_task("bringing the views up to date")
        updater.catch_up(lambda done, total: progress.update(task, completed=done, total=total))


def parse_moment(text: str, what: str = "time") -> datetime:
    """An ISO 8601 time; one without a timezone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"{what} {text!r} is not an ISO 8601 time (e.g. 2026-11-25T14:30:00Z)"
        ) from None
    return as_utc(moment)


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
    with progress_bar(*columns) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def report_registered(kind: str, result: RegisteredVersion, as_json: bool) -> None:
    """What registering an environment, data asset or pipeline did."""
    if as_json:
        print_json(
            {"kind": kind, "ref": result.ref, "digest": result.digest, "created": result.created}
        )
    elif result.created:
        console.print(f"Registered {kind} [bold]{result.ref}[/] (sha256:{result.digest[:16]}…)")
    else:
        console.print(f"Unchanged: {kind} [bold]{result.ref}[/] already has this content")


def format_details(details: dict[str, Any]) -> str:
    """An event's own fields on one line, ``key=json``, leaving out the bulky ones (`show`
    commands present those)."""
    return ", ".join(
        f"{key}={json.dumps(value, separators=(',', ':'), default=str)}"
        for key, value in details.items()
        if key not in ("spec", "content", "snapshot")
    )


def print_events(rows: list[dict[str, Any]]) -> None:
    """Audit rows as a table: position, time, event and entity, actor, reason, details."""
    table = Table("#", "time (UTC)", "event", "actor", "reason", "details", box=box.SIMPLE_HEAD)
    for column in table.columns[:3]:
        column.no_wrap = True
    table.columns[-1].overflow = "fold"
    table.columns[-1].min_width = 20
    for row in rows:
        details = format_details(row["details"])
        table.add_row(
            str(row["position"]),
            row["time"][:19].replace("T", "\n"),
            f"{row['event_type']}\n{row['name']}",
            row["actor"],
            row["reason"],
            details,
        )
    console.print(table)


def styled_status(status: str) -> str:
    """A job's or step's status, coloured by how it went."""
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def counted(number: int, noun: str) -> str:
    """``1 file``, ``2 files``, ``1,000 files``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
