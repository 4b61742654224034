"""`ledger export` (the events and views as Parquet or DuckDB) and `ledger analytics init`
(stable SQL views on PostgreSQL), for BI tools and notebooks."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.cli.context import (
    EVENT_PROGRESS,
    AsJson,
    console,
    load_settings,
    open_views,
    print_json,
    progress_bar,
)
from ledger.errors import InvalidInputError
from projections.analytics.duckdb_export import export_duckdb
from projections.analytics.parquet_export import export_parquet
from projections.analytics.pg_views import create_analytics_schema
from projections.analytics.summary import ExportSummary

EXPORTERS = {"parquet": export_parquet, "duckdb": export_duckdb}

analytics_app = typer.Typer(
    help="SQL views for BI tools on a PostgreSQL store.", no_args_is_help=True
)


def export(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="parquet: a directory or a file://, s3://, az:// or gs:// URL; "
            "duckdb: the database file",
        ),
    ],
    export_format: Annotated[
        str, typer.Option("--format", help="parquet (datasets by date) or duckdb (one file)")
    ] = "parquet",
    since: Annotated[
        int | None,
        typer.Option(
            help="Export the events after this log position (default: after the last "
            "export's position at --to)"
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Export the events and every view for analysis: the new events since the last export
    to --to, and the views as they are now. A stopped export is resumed by running it again."""
    exporter = EXPORTERS.get(export_format)
    if exporter is None:
        raise InvalidInputError(
            f"unknown export format {export_format!r}: expected {' or '.join(EXPORTERS)}"
        )
    with open_views() as views, progress_bar(*EVENT_PROGRESS) as progress:
        task = progress.add_task(f"exporting to {to}")

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = exporter(views.db, to, since=since, on_progress=update)
    if as_json:
        print_json(summary.to_dict())
    else:
        _print_summary(summary)


def _print_summary(summary: ExportSummary) -> None:
    events = (
        f"{summary.events:,} events (positions {summary.since + 1:,} to {summary.position:,})"
        if summary.events
        else f"no new events (position {summary.position:,})"
    )
    console.print(
        f"Exported {events} and {summary.views} view tables (as of position "
        f"{summary.views_position:,}) to {summary.target} ({summary.format})",
        highlight=False,
        soft_wrap=True,
    )
    if summary.adopted:
        console.print(
            f"Kept {len(summary.adopted):,} part files a stopped export had written",
            highlight=False,
        )


@analytics_app.command("init")
def init(
    schema: Annotated[str, typer.Option(help="The schema to create the views in")] = "analytics",
    as_json: AsJson = False,
) -> None:
    """Create, or replace with this release's, the analytics views in --schema (PostgreSQL
    stores only): models, model_versions, deployments_over_time, traffic_changes, jobs,
    monitor_runs, each documented with COMMENTs. Safe to run again at any time."""
    settings = load_settings()
    with open_views(catch_up=False) as views:
        names = create_analytics_schema(views.db, schema, settings.pg_schema)
    if as_json:
        print_json({"schema": schema, "views": names})
    else:
        console.print(f"Analytics views in schema {schema}: {', '.join(names)}", highlight=False)
