"""`ledger import ...`: copy another system's registry into the ledger."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from ledger.cli.context import (
    AsJson,
    console,
    counted,
    err_console,
    open_ledger,
    open_views,
    print_json,
    progress_bar,
)
from ledger.mlflow_import import (
    MlflowRegistry,
    ModelPlan,
    ModelReport,
    RegistryImport,
    SourceModel,
    plan_model,
)

app = typer.Typer(help="Copy another system's registry into the ledger.", no_args_is_help=True)

COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TextColumn("{task.fields[unit]}"),
    TimeRemainingColumn(),
)


@app.command()
def mlflow(
    tracking_uri: Annotated[
        str,
        typer.Option(
            "--tracking-uri",
            envvar="MLFLOW_TRACKING_URI",
            help="MLflow tracking server (http://host:5000) or its database (sqlite:///mlflow.db)",
        ),
    ],
    models: Annotated[
        str, typer.Option("--models", help="Only models whose name matches: a glob (* ? [..]; %=*)")
    ] = "*",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be imported; write nothing")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Copy an MLflow model registry: models, versions under their MLflow numbers, tags,
    aliases, descriptions and files. Rerun it to resume or to catch up: it writes only
    what differs."""
    registry = MlflowRegistry(tracking_uri)
    sources = _read(registry, models)
    with open_views() as views:
        plans = [plan_model(source, views, registry.uri) for source in sources]
    if dry_run:
        _print_plans(plans, as_json)
        return
    to_register = sum(len(plan.to_register) for plan in plans)
    with open_ledger() as ledger, progress_bar(*COLUMNS) as progress:
        task = progress.add_task(f"importing from {registry.uri}", total=to_register, unit="")
        reports = RegistryImport(ledger, registry).run(
            plans,
            lambda ref: progress.update(task, advance=1, description=f"imported {ref}"),
        )
    _print_reports(reports, registry.uri, as_json)
    if any(report.refusal for report in reports):
        raise typer.Exit(1)


def _read(registry: MlflowRegistry, pattern: str) -> list[SourceModel]:
    names = registry.model_names(pattern)
    with progress_bar(*COLUMNS) as progress:
        task = progress.add_task(f"reading {registry.uri}", total=len(names), unit="models")
        found = []
        for name in names:
            found.append(registry.model(name))
            progress.advance(task)
    return found


def _print_plans(plans: list[ModelPlan], as_json: bool) -> None:
    rows: list[dict[str, Any]] = [
        {
            "model": plan.name,
            "action": "refuse" if plan.refusal else "update" if plan.ledger_model else "create",
            "register": plan.to_register,
            "deleted_in_mlflow": [n for n in plan.to_register if plan.is_gap(n)],
            "imported_before": sorted(plan.imported),
            "refusal": plan.refusal,
        }
        for plan in plans
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("model", "action", "to register", "of which deleted in MLflow", "imported before")
    for row in rows:
        table.add_row(
            str(row["model"]),
            str(row["action"]),
            _span(row["register"]),
            str(len(row["deleted_in_mlflow"])),
            str(len(row["imported_before"])),
        )
    console.print(table)
    for plan in plans:
        if plan.refusal:
            err_console.print(f"refused: {plan.refusal}", highlight=False, markup=False)


def _span(numbers: list[int]) -> str:
    if not numbers:
        return "-"
    return str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"


def _print_reports(reports: list[ModelReport], uri: str, as_json: bool) -> None:
    if as_json:
        print_json([asdict(report) for report in reports])
    else:
        for report in reports:
            if not report.refusal:
                console.print(_summary(report), highlight=False)
        written = sum(r.versions + r.gaps for r in reports)
        console.print(f"Imported {counted(written, 'version')} from MLflow {uri}", highlight=False)
    for report in reports:
        if report.refusal:
            err_console.print(f"refused: {report.refusal}", highlight=False, markup=False)


def _summary(report: ModelReport) -> str:
    if not report.wrote:
        return f"{report.name}: up to date"
    done = ["created"] if report.created else []
    if report.versions:
        done.append(f"{counted(report.versions, 'version')} registered")
    if report.gaps:
        done.append(f"{report.gaps} registered deleted (deleted in MLflow)")
    if report.deleted:
        done.append(f"{report.deleted} deleted (deleted in MLflow since)")
    if report.changes:
        done.append(f"{counted(report.changes, 'change')} to tags, aliases and descriptions")
    return f"{report.name}: {', '.join(done)}"
