"""`ledger projections ...`: where the read side stands, rebuilding it, and following the log."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated

import typer
from rich.table import Table

from ledger.cli.context import (
    EVENT_PROGRESS,
    AsJson,
    console,
    err_console,
    open_views,
    print_json,
    progress_bar,
)

app = typer.Typer(help="The read side: status, rebuild, and the runner.", no_args_is_help=True)


@app.command()
def status(as_json: AsJson = False) -> None:
    """Each projection's position and its lag behind the log (in events and seconds)."""
    with open_views(catch_up=False) as views:
        statuses = views.updater.status()
    if as_json:
        print_json([s.to_dict() for s in statuses])
        return
    table = Table("projection", "position", "head", "lag (events)", "lag (s)", "errors", "contents")
    for s in statuses:
        table.add_row(s.name, f"{s.position:,}", f"{s.head:,}", f"{s.lag_events:,}",
                      f"{s.lag_seconds:.1f}", f"{s.errors:,}", s.description)  # fmt: skip
    console.print(table)
    for s in statuses:
        if s.last_error is not None:
            last = s.last_error
            err_console.print(
                f"{s.name}: {s.errors:,} event(s) could not be stored and were passed; last "
                f"at position {last.position} ({last.event_type}): {last.error}",
                style="yellow", markup=False, highlight=False, soft_wrap=True,
            )  # fmt: skip


@app.command()
def rebuild(
    names: Annotated[
        list[str] | None, typer.Argument(help="Projections to rebuild (default: all)")
    ] = None,
) -> None:
    """Empty projections and replay the whole log into them."""
    with open_views(catch_up=False) as views:
        chosen = [p.name for p in views.updater.named(names or [])]
        with progress_bar(*EVENT_PROGRESS) as progress:
            task = progress.add_task(f"rebuilding {', '.join(chosen)}")

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            count = views.updater.rebuild(chosen if names else [], update)
    console.print(f"Rebuilt from {count:,} events")


@app.command()
def run(
    poll_interval: Annotated[
        float, typer.Option(help="Seconds between polls on SQLite (PostgreSQL: LISTEN/NOTIFY)")
    ] = 0.1,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per transaction")] = 5_000,
) -> None:
    """Keep the views up to date as events are written, until interrupted (Ctrl-C, SIGTERM)."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with open_views(catch_up=False) as views:
        views.updater.batch_size = batch_size
        err_console.print(
            f"following the log for {', '.join(views.updater.names)} "
            f"(position {min(views.updater.positions().values()):,}); Ctrl-C stops"
        )
        views.updater.follow(stop, poll_interval)
    err_console.print("stopped")
