"""The `ledger` command line: lifecycle commands, reads from the views, verify and the demo."""

from __future__ import annotations

import sys
from typing import Annotated

import psycopg
import typer
from eventsourcing.persistence import PersistenceError
from rich.progress import Progress

from ledger import __version__
from ledger.cli import (
    analytics,
    assets,
    audit,
    automation,
    endpoints,
    events,
    garbage,
    imports,
    jobs,
    model_names,  # noqa: F401  (adds `ledger model delete|rename|describe`)
    models,
    monitors,
    pipelines,
    projections,
    rules,
    serve,
    tokens,
    trust,
    webhooks,
    worker,
)
from ledger.cli.context import (
    AsJson,
    console,
    err_console,
    load_settings,
    open_ledger,
    print_json,
    progress_bar,
)
from ledger.cli.demo import run_demo
from ledger.cli.verify_artifacts import ArtifactsOption, check_artifacts, print_artifact_report
from ledger.errors import LedgerError
from ledger.logging import configure_logging
from ledger.outages import STORE_UNAVAILABLE
from ledger.storage.connections import why_unreachable
from ledger.summaries import verify_summary

app = typer.Typer(
    help="Lifecycle Ledger: MLOps lifecycle management as an event-sourced ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="model")
app.add_typer(assets.env_app, name="env")
app.add_typer(assets.data_app, name="data")
app.add_typer(pipelines.pipeline_app, name="pipeline")
app.add_typer(jobs.job_app, name="job")
app.add_typer(endpoints.app, name="endpoint")
app.add_typer(monitors.app, name="monitor")
app.add_typer(webhooks.app, name="webhook")
app.add_typer(rules.rule_app, name="rule")
app.add_typer(rules.approval_app, name="approval")
app.add_typer(projections.app, name="projections")
app.add_typer(tokens.token_app, name="token")
app.add_typer(events.app, name="events")
app.add_typer(trust.app, name="checkpoint")
app.add_typer(imports.app, name="import")
app.add_typer(analytics.analytics_app, name="analytics")
app.command()(serve.serve)
app.command()(events.relay)
app.command()(worker.worker)
app.command()(automation.automation)
app.command()(rules.approve)
app.command()(rules.reject)
app.command()(audit.history)
app.command("audit")(audit.audit)
app.command()(audit.lineage)
app.command("as-of")(audit.as_of)
app.command()(trust.prove)
app.command()(analytics.export)
app.command("gc")(garbage.gc)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"ledger {__version__}")
        raise typer.Exit()


@app.callback()
def _configure(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version"),
    ] = False,
) -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)


@app.command()
def verify(
    as_json: AsJson = False,
    artifacts: ArtifactsOption = False,
    checkpoints: trust.CheckpointsOption = "",
    public_key: trust.PublicKeyOption = None,
) -> None:
    """Recompute the hash chain over the whole log; exit 1 at the first tampered event
    (or, with --artifacts, at any damaged stored file)."""
    with open_ledger() as ledger:
        anchored = (
            trust.check_against_checkpoints(ledger, checkpoints, public_key)
            if checkpoints
            else None
        )
        total = ledger.event_count()
        with progress_bar(*Progress.get_default_columns()) as progress:
            task = progress.add_task("verifying the event log", total=total)
            report = ledger.verify(lambda done: progress.update(task, completed=done))
        stored = check_artifacts(ledger) if artifacts else None
    if as_json:
        summary = verify_summary(report)
        if stored is not None:
            summary["artifacts"] = stored.to_dict()
        if anchored is not None:
            summary["checkpoints"] = anchored.to_dict()
        print_json(summary)
    elif report.ok:
        console.print(f"OK: {report.count:,} events, chain head {report.head}")
    else:
        err_console.print(
            f"TAMPERED at log position {report.bad_position}: {report.problem} "
            f"({report.count:,} events verified before it)"
        )
    if stored is not None and not as_json:
        print_artifact_report(stored)
    if anchored is not None and not as_json:
        trust.print_checkpoints_report(anchored)
    if not report.ok or (stored is not None and not stored.ok):
        raise typer.Exit(1)
    if anchored is not None and not anchored.ok:
        raise typer.Exit(1)


@app.command()
def demo(
    home: Annotated[
        str, typer.Option(help="Directory for the demo's store (default: a new temp dir)")
    ] = "",
) -> None:
    """Walk through the lifecycle on a fresh embedded store (no servers needed)."""
    run_demo(home)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 1."""
    try:
        app()
    except LedgerError as error:
        err_console.print(
            f"error: {error}", highlight=False, soft_wrap=True, markup=False, emoji=False
        )
        sys.exit(1)
    except STORE_UNAVAILABLE as error:
        settings = load_settings()
        where, why = settings.store_location.describe(), why_unreachable(settings, error)
        _print_error(f"error: the event store is unavailable: cannot reach {where} ({why})")
        sys.exit(1)
    except (PersistenceError, psycopg.Error) as error:
        _print_error(f"error: event store failed: {error}".splitlines()[0])
        sys.exit(1)


def _print_error(message: str) -> None:
    err_console.print(message, highlight=False, soft_wrap=True, markup=False, emoji=False)
