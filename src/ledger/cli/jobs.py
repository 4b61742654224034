"""`ledger job ...`: submit, follow and manage pipeline jobs (batch jobs show here too)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.artifacts.store import ArtifactStore
from ledger.cli.batch_jobs import batch_job, follow_batch_job, print_batch_job, write_batch_output
from ledger.cli.context import (
    WATCH_INTERVAL_S,
    AsJson,
    Reason,
    console,
    err_console,
    load_settings,
    open_ledger,
    open_views,
    print_json,
    styled_status,
)
from ledger.domain.job import FINAL_STATUSES
from ledger.errors import InvalidInputError
from ledger.job_logs import StepLog, step_logs
from ledger.refs import parse_pairs
from ledger.summaries import job_summary
from projections.views import Views

JobView = dict[str, Any]  # a pipeline job as Views.job shows it

job_app = typer.Typer(help="Submit, follow and manage pipeline jobs.", no_args_is_help=True)


def parse_parameters(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values read as YAML scalars, so 100 is a number and true a bool."""
    parameters: dict[str, Any] = {}
    for key, text in parse_pairs(items, "parameter").items():
        try:
            parameters[key] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            parameters[key] = text
    return parameters


@job_app.command("submit")
def submit_job(
    pipeline: Annotated[str, typer.Argument(help="Pipeline NAME[:VERSION]")],
    param: Annotated[
        list[str], typer.Option("--param", "-p", help="key=value, overriding the default")
    ] = [],  # noqa: B006
    executor: Annotated[
        str, typer.Option(help="Executor to run on (default: LEDGER_EXECUTOR)")
    ] = "",
    wait: Annotated[bool, typer.Option(help="Follow the job until it ends")] = False,
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """Submit a run of a pipeline; a worker (`ledger worker`) picks it up."""
    with open_ledger() as ledger:
        job = ledger.jobs.submit(
            pipeline, parameters=parse_parameters(param), executor=executor, reason=reason
        )
    if as_json and not wait:
        print_json(job_summary(job))
        return
    where = f"{job.pipeline_ref} on {job.snapshot['executor']}"
    (err_console if as_json else console).print(f"Submitted job [bold]{job.id}[/] ({where})")
    if wait:
        with open_views() as views:
            _follow(views, str(job.id), as_json)


@job_app.command("rerun")
def rerun_job(
    job_id: Annotated[str, typer.Argument(help="The job to repeat")],
    wait: Annotated[bool, typer.Option(help="Follow the job until it ends")] = False,
    reason: Reason = "",
) -> None:
    """Submit a job again with the same snapshot: code, data, parameters and compute."""
    with open_ledger() as ledger:
        job = ledger.jobs.rerun(job_id, reason=reason)
    console.print(f"Submitted job [bold]{job.id}[/], a rerun of {job_id}")
    if wait:
        with open_views() as views:
            _follow(views, str(job.id), as_json=False)


@job_app.command("show")
def show_job(
    job_id: str,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow it until it ends")] = False,
    as_json: AsJson = False,
) -> None:
    """Show a job: snapshot, steps with attempts, outputs and metrics."""
    with open_views() as views:
        batch = views.batch_job(job_id)
        if batch is not None:
            if watch:
                batch = follow_batch_job(views, job_id, quiet=as_json)
            if as_json:
                print_json(batch)
            elif not watch:
                print_batch_job(batch)
            return
        if watch:
            _follow(views, job_id, as_json)
            return
        job = views.job(job_id)
    if as_json:
        print_json(job)
    else:
        _print_job(job)


@job_app.command("list")
def list_jobs(
    status: Annotated[str, typer.Option(help="Only jobs in this state")] = "",
    pipeline: Annotated[str, typer.Option(help="Only jobs of this pipeline NAME[:VERSION]")] = "",
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000)] = 50,
    as_json: AsJson = False,
) -> None:
    """List jobs, newest first."""
    with open_views() as views:
        jobs = views.jobs(status=status, pipeline=pipeline, limit=limit)
    if as_json:
        print_json(jobs)
        return
    table = Table("id", "pipeline", "status", "steps", "executor", "submitted", "by")
    for job in jobs:
        table.add_row(
            job["id"],
            job["pipeline"],
            styled_status(job["status"]),
            f"{job['steps_done']}/{job['steps_total']}",
            job["executor"],
            job["submitted_at"][:19],
            job["submitted_by"],
        )
    console.print(table)


@job_app.command("logs")
def job_logs(
    job_id: str,
    step: Annotated[str, typer.Option(help="Only this step")] = "",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the job ends")
    ] = False,
) -> None:
    """Print the logs of a job's steps, every attempt."""
    with open_views() as views:
        job = views.job(job_id)
        if step and step not in _step_names(views, job["pipeline"]):
            raise InvalidInputError(f"pipeline {job['pipeline']} has no step {step!r}")
        logs_dir = load_settings().logs_dir
        printed: dict[Path, int] = {}
        while True:
            for log in step_logs(logs_dir, job["id"], step):
                _print_new(log, printed)
            if not follow or job["status"] in FINAL_STATUSES:
                break
            time.sleep(WATCH_INTERVAL_S)
            job = _fresh_job(views, job_id)
    if not printed:
        err_console.print(f"no logs yet for job {job_id}" + (f" step {step}" if step else ""))


def _print_new(log: StepLog, printed: dict[Path, int]) -> None:
    text = log.read(printed.get(log.path, 0))
    if log.path not in printed:
        console.print(f"[bold]── {log.heading} ──[/]")
    printed[log.path] = printed.get(log.path, 0) + len(text)
    if text:
        console.out(text.decode(errors="replace"), end="", highlight=False)


@job_app.command("cancel")
def cancel_job(job_id: str, reason: Reason = "") -> None:
    """Cancel a job; a running one is stopped by its worker."""
    with open_ledger() as ledger:
        job = ledger.jobs.cancel(job_id, reason=reason)
    if job.status == "cancelled":
        console.print(f"Cancelled job {job_id}")
    else:
        console.print(f"Asked the worker to stop job {job_id} (now {job.status})")


@job_app.command("output")
def job_output(
    job_id: str,
    dest: Annotated[Path, typer.Argument(help="File to write the predictions to (Parquet)")],
) -> None:
    """Write a finished batch job's predictions, in input order."""
    with open_views() as views:
        job = batch_job(views, job_id)
    write_batch_output(ArtifactStore.from_settings(load_settings()), job, dest)


def _step_names(views: Views, pipeline_ref: str) -> list[str]:
    content = views.asset_version("pipeline", pipeline_ref)["content"]
    return [step["name"] for step in content["steps"]]


def _fresh_job(views: Views, job_id: str) -> JobView:
    """The job as the views show it once they include every event written so far."""
    views.updater.catch_up()
    return views.job(job_id)


def _print_job(job: JobView) -> None:
    snapshot = job["snapshot"]
    console.print(f"job [bold]{job['id']}[/]  {job['pipeline']}  {styled_status(job['status'])}")
    if job["error"]:
        console.print(f"[red]error:[/] {job['error']}")
    details = {
        "executor": job["executor"] or snapshot["executor"],
        "worker": job["worker"],
        "parameters": snapshot["parameters"],
        "data": ", ".join(snapshot["data"]),
        "environment": snapshot["environment"],
        "code": f"{snapshot['code_digest'][:16]} {snapshot['git_commit']}".strip(),
        "rerun of": job["rerun_of"],
    }
    for key, value in details.items():
        if value:
            console.print(f"  {key}: {value}")
    table = Table(
        "step", "status", "attempt", "duration", "outputs", "metrics", "models", "environment"
    )
    for name, step in job["steps"].items():
        table.add_row(
            name,
            styled_status(step["status"])
            + (f" ({step['error']})" if step["status"] == "failed" else ""),
            str(step["attempt"]),
            f"{step['duration_s']:.2f} s" if step["duration_s"] else "",
            "\n".join(f"{k}: {v[:24]}…" for k, v in step["outputs"].items()),
            ", ".join(f"{k}={v:.4g}" for k, v in step["metrics"].items()),
            ", ".join(step["models"]),
            _step_environment(step),
        )
    console.print(table)


def _step_environment(step: dict[str, Any]) -> str:
    """NAME:VERSION, and the packages of the Ray runtime env it was built as (if any)."""
    runtime_env = step.get("runtime_env") or {}  # absent from views of older ledgers
    packages = ", ".join(runtime_env.get("pip", []))
    return str(step.get("environment", "")) + (f"\npip: {packages}" if packages else "")


def _follow(views: Views, job_id: str, as_json: bool) -> None:
    """Show live progress until the job ends; exit 1 unless it succeeded."""
    job = views.job(job_id)
    steps = _step_names(views, job["pipeline"])
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, disable=not err_console.is_terminal) as progress:
        overall = progress.add_task(f"job {job_id[:8]}", total=len(steps), state=job["status"])
        rows = {name: progress.add_task(f"  {name}", total=1, state="waiting") for name in steps}
        while True:
            for name, state in job["steps"].items():
                if name in rows:
                    label = f"{state['status']} (attempt {state['attempt']})"
                    done = 1 if state["status"] == "completed" else 0
                    progress.update(rows[name], completed=done, state=label)
            completed = sum(1 for s in job["steps"].values() if s["status"] == "completed")
            waiting = (
                " (waiting for a worker: `ledger worker`)" if job["status"] == "submitted" else ""
            )
            progress.update(overall, completed=completed, state=job["status"] + waiting)
            if job["status"] in FINAL_STATUSES:
                break
            time.sleep(WATCH_INTERVAL_S)
            job = _fresh_job(views, job_id)
    if as_json:
        print_json(job)
    else:
        _print_job(job)
    if job["status"] != "succeeded":
        raise typer.Exit(1)
