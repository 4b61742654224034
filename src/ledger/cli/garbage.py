"""`ledger gc`: remove from the artifact store what no live event references."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.cli.context import (
    AsJson,
    Reason,
    console,
    err_console,
    open_ledger,
    print_json,
    progress_bar,
)
from ledger.domain.monitor import parse_duration
from ledger.garbage.report import GcReport

OlderThan = Annotated[
    str,
    typer.Option(
        "--older-than",
        help="Grace period, ISO 8601 (PT1H, P7D): leave alone what was stored more recently, "
        "and empty the trash of what went into it earlier (default LEDGER_GC_GRACE, P1D)",
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print what would go; change and record nothing")
]


def gc(older_than: OlderThan = "", dry_run: DryRun = False, reason: Reason = "",
       as_json: AsJson = False) -> None:  # fmt: skip
    """Remove blobs and data no live event references (after the grace period, through a
    trash), staged uploads left behind and collected requests past their retention; record
    the run as an event (`ledger audit --entity gc`)."""
    grace = parse_duration(older_than, "--older-than") if older_than else None
    with open_ledger() as ledger, _progress() as on_progress:
        report = ledger.gc.collect(
            older_than=grace, dry_run=dry_run, on_progress=on_progress, reason=reason
        )
    if as_json:
        print_json(report.to_dict())
    else:
        print_report(report)
    if report.failed:
        err_console.print(f"{report.failed:,} object(s) could not be handled: see the log")
        raise typer.Exit(1)


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int | None], None]]:
    """A transient bar on stderr: listing (a count), then each stage's objects."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with progress_bar(*columns) as progress:
        task = progress.add_task("listing the artifact store", total=None)

        def update(stage: str, done: int, total: int | None) -> None:
            progress.update(task, description=stage, completed=done, total=total)

        yield update


def print_report(report: GcReport) -> None:
    """A table per kind: what went (or would go), what left the trash, what came back."""
    verb = "would remove" if report.dry_run else "removed"
    table = Table("kind", verb, "bytes", "purged from trash", "bytes freed", "restored",
                  box=box.SIMPLE_HEAD)  # fmt: skip
    for kind, removed in report.removed.items():
        purged = report.purged.get(kind)
        restored = report.restored.get(kind)
        table.add_row(
            kind,
            f"{removed.count:,}",
            f"{removed.bytes:,}",
            f"{purged.count:,}" if purged else "-",
            f"{purged.bytes:,}" if purged else f"{removed.bytes:,}",
            f"{restored.count:,}" if restored else "-",
        )
    console.print(table)
    kept = report.kept
    freed = "would free" if report.dry_run else "freed"
    console.print(
        f"{freed} {report.freed_bytes:,} bytes; kept {kept.count:,} unreferenced object(s) "
        f"({kept.bytes:,} bytes) younger than the grace period"
        + ("; nothing was changed or recorded (dry run)" if report.dry_run else "")
    )
