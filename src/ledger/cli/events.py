"""`ledger relay` publishes the log to NATS; `ledger events ...` reads the event stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from rich.table import Table

from ledger.bus import BusEvent, open_bus
from ledger.bus.cloudevents import to_cloudevent
from ledger.bus.handled import failed_events
from ledger.bus.nats_auth import describe_nats_url
from ledger.bus.relay import Relay
from ledger.cli.context import (
    AsJson,
    check_credentials,
    console,
    err_console,
    format_details,
    load_settings,
    open_views,
    print_json,
    progress_bar,
)
from ledger.errors import InvalidInputError

app = typer.Typer(help="Follow the ledger's events as they are published.", no_args_is_help=True)

FromPosition = Annotated[
    int | None,
    typer.Option("--from", min=0, help="Start at this log position (default: new events only)"),
]


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)``; SIGINT or SIGTERM sets ``stop`` for a clean shutdown."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    asyncio.run(runner())


def relay(
    from_position: Annotated[
        int | None,
        typer.Option(
            "--from", min=0, help="Publish the log again from this position (default: resume)"
        ),
    ] = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Delete the stream with its consumers, then publish the whole log into it "
            "afresh (after a database restore)",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm --reset without asking")] = False,
) -> None:
    """Publish every event of the ledger to NATS JetStream until interrupted."""
    settings = load_settings()
    if not settings.nats_url:
        raise InvalidInputError("LEDGER_NATS_URL is not set: there is no NATS to relay to")
    check_credentials(settings)  # before asking to confirm a reset
    if reset:
        _confirm_reset(settings.nats_stream, from_position, yes)
    start_after = None if from_position is None else max(from_position - 1, 0)
    publisher = Relay(settings, start_after=start_after, reset=reset)
    err_console.print(
        f"Relaying {settings.store_location.describe()} to JetStream stream "
        f"{settings.nats_stream} at {describe_nats_url(settings.nats_url)}"
        + (" (reset: publishing the whole log afresh)" if reset else "")
    )
    run_until_signalled(_showing_progress(publisher) if err_console.is_terminal else publisher.run)


def _confirm_reset(stream: str, from_position: int | None, yes: bool) -> None:
    """``--reset`` deletes what consumers have not read yet: it is asked for explicitly."""
    if from_position is not None:
        raise InvalidInputError("--reset publishes the whole log: it takes no --from")
    if yes:
        return
    question = (
        f"--reset deletes JetStream stream {stream} with its consumers and publishes the "
        "whole log into it afresh"
    )
    if not sys.stdin.isatty():
        raise InvalidInputError(f"{question}: add --yes to confirm")
    if not typer.confirm(f"{question}. Go on?", err=True):
        raise typer.Exit(1)


def _showing_progress(publisher: Relay) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The relay, with a live line on the terminal: published of the log, and its state."""

    async def run(stop: asyncio.Event) -> None:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events  {task.fields[state]}"),
        )
        with progress_bar(*columns) as progress:
            line = progress.add_task("published", total=None, state="connecting")
            relaying = asyncio.ensure_future(publisher.run(stop))
            while not relaying.done():
                status = publisher.status
                state = "standing by: another relay publishes"
                if status.active:
                    state = "connected" if status.connected else "NATS unreachable, retrying"
                head = max(status.head, status.position)
                progress.update(line, completed=status.position, total=head or None, state=state)
                await asyncio.wait({relaying}, timeout=0.5)
            relaying.result()

    return run


@app.command()
def tail(
    subject: Annotated[
        list[str] | None,
        typer.Option(
            "--subject", "-s", help="Only these subjects, e.g. 'ledger.model_version.*' (repeat)"
        ),
    ] = None,
    from_position: FromPosition = None,
    count: Annotated[
        int, typer.Option("--count", "-n", min=0, help="Stop after this many events (0: never)")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON envelope per line")] = False,
    cloudevents: Annotated[
        bool, typer.Option("--cloudevents", help="One CloudEvents 1.0 JSON event per line")
    ] = False,
) -> None:
    """Print events live, from NATS when LEDGER_NATS_URL is set, else from the log."""
    settings = load_settings()
    source = settings.event_source if cloudevents else ""
    bus = open_bus(settings)
    after = None if from_position is None else max(from_position - 1, 0)

    async def follow(stop: asyncio.Event) -> None:
        printed = 0
        async with contextlib.aclosing(bus.tail(stop, subject or (), after)) as events:
            async for event in events:
                _print_event(event, as_json, source)
                printed += 1
                if printed == count:
                    return

    run_until_signalled(follow)


def _print_event(event: BusEvent, as_json: bool, cloudevent_source: str) -> None:
    if as_json or cloudevent_source:
        printed = to_cloudevent(event, cloudevent_source) if cloudevent_source else asdict(event)
        sys.stdout.write(json.dumps(printed, separators=(",", ":")) + "\n")
        sys.stdout.flush()
        return
    console.print(
        f"[dim]{event.position:>8}  {event.time[:23]}[/]  [bold]{event.subject}[/]  "
        f"{escape(event.actor)}  {escape(format_details(event.data))}",
        soft_wrap=True,
    )


@app.command()
def failed(
    consumer: Annotated[str, typer.Option(help="Only this consumer's")] = "",
    as_json: AsJson = False,
) -> None:
    """Events whose handler failed on every attempt (recorded, no longer retried)."""
    with open_views(catch_up=False) as views:
        rows = failed_events(views.db, consumer)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No failed events.")
        return
    table = Table("consumer", "event", "position", "error")
    for row in rows:
        table.add_row(*(str(row[key]) for key in ("consumer", "event_id", "position", "error")))
    console.print(table)
