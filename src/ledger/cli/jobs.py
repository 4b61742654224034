"""`ledger pipeline ...`, `ledger job ...` and `ledger worker`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.artifacts import FileEntry
from ledger.bus.jetstream import describe_nats_url
from ledger.cli.context import (
    AsJson,
    Reason,
    console,
    err_console,
    load_settings,
    open_ledger,
    open_views,
    print_json,
    report_registered,
)
from ledger.domain.batch_job import BatchJob
from ledger.domain.job import Job
from ledger.errors import InvalidInputError
from ledger.ledger import Ledger
from ledger.refs import parse_pairs
from ledger.specs import read_named_spec
from ledger.summaries import asset_summary, batch_job_summary, job_summary

pipeline_app = typer.Typer(help="Register, clone and inspect pipelines.", no_args_is_help=True)
job_app = typer.Typer(help="Submit, follow and manage pipeline jobs.", no_args_is_help=True)

WATCH_INTERVAL_S = 0.25
STATUS_STYLE = {
    "submitted": "white",
    "running": "cyan",
    "cancelling": "yellow",
    "succeeded": "green",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
}


# -- pipelines ------------------------------------------------------------------------------


@pipeline_app.command("register")
def register_pipeline(
    file: Annotated[Path, typer.Argument(help="YAML/JSON pipeline spec (see the README)")],
    name: Annotated[str, typer.Option(help="Name (default: the spec's `name`)")] = "",
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """Register a pipeline spec and its code; an identical one keeps its version."""
    pipeline_name, spec = read_named_spec(file, name)
    code = spec.pop("code", None)
    if code is not None and not isinstance(code, str):
        raise InvalidInputError(f"{file}: `code` must be a directory path")
    code_dir = (file.parent / code).resolve() if code else None
    with open_ledger() as ledger:
        result = ledger.assets.register_pipeline(
            pipeline_name, spec, code_dir=code_dir, reason=reason
        )
    report_registered("pipeline", result, as_json)


@pipeline_app.command("clone")
def clone_pipeline(
    source: Annotated[str, typer.Argument(help="Pipeline NAME[:VERSION] to copy")],
    new_name: Annotated[str, typer.Argument(help="Name of the new pipeline")],
    reason: Reason = "",
) -> None:
    """Start a new pipeline from a version of another; the source is untouched."""
    with open_ledger() as ledger:
        result = ledger.assets.clone_pipeline(source, new_name, reason=reason)
    console.print(f"Cloned {source} into pipeline [bold]{result.ref}[/]")


@pipeline_app.command("show")
def show_pipeline(name: str, as_json: AsJson = False) -> None:
    """Show a pipeline's versions and the steps of the latest."""
    with open_ledger() as ledger:
        summary = asset_summary(ledger.assets.get_pipeline(name))
    if as_json:
        print_json(summary)
        return
    origin = f" (cloned from {summary['origin']})" if summary["origin"] else ""
    console.print(f"pipeline [bold]{name}[/]{origin}")
    versions = Table("version", "digest", "code", "steps")
    for v in summary["versions"]:
        code = v["content"].get("code") or {}
        versions.add_row(
            str(v["version"]),
            v["digest"][:16],
            (code.get("git_commit") or code.get("digest", "")[:16]) if code else "",
            " ".join(step["name"] for step in v["content"]["steps"]),
        )
    console.print(versions)
    steps = Table("step", "runs", "inputs", "outputs", "after", "cpus", "gpus", "retries")
    for step in summary["versions"][-1]["content"]["steps"]:
        command = step["command"]
        steps.add_row(
            step["name"],
            step["run"] or (command if isinstance(command, str) else " ".join(command)),
            ", ".join(f"{k}={v}" for k, v in step["inputs"].items()),
            ", ".join(step["outputs"]),
            ", ".join(step["depends_on"]),
            f"{step['resources']['cpus']:g}",
            f"{step['resources']['gpus']:g}",
            str(step["retries"]),
        )
    console.print(steps)


# -- jobs --------------------------------------------------------------------------------------


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
            _follow(ledger, str(job.id), as_json)


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
            _follow(ledger, str(job.id), as_json=False)


@job_app.command("show")
def show_job(
    job_id: str,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow it until it ends")] = False,
    as_json: AsJson = False,
) -> None:
    """Show a job: snapshot, steps with attempts, outputs and metrics."""
    with open_ledger() as ledger:
        batch = ledger.batch_jobs.find(job_id)
        if batch is not None:
            if watch:
                batch = follow_batch_job(ledger, job_id, quiet=as_json)
            if as_json:
                print_json(batch_job_summary(batch))
            elif not watch:
                _print_batch_job(batch)
            return
        if watch:
            _follow(ledger, job_id, as_json)
            return
        job = ledger.jobs.get(job_id)
    if as_json:
        print_json(job_summary(job))
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
            _styled(job["status"]),
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
    with open_ledger() as ledger:
        job = ledger.jobs.get(job_id)
        if step and step not in ledger.assets.pipeline_step_names(job.pipeline_ref):
            raise InvalidInputError(f"pipeline {job.pipeline_ref} has no step {step!r}")
        directory = ledger.settings.logs_dir / "jobs" / str(job.id)
        printed: dict[Path, int] = {}
        while True:
            for path in sorted(directory.glob(f"{step or '*'}.*.log"), key=_log_order):
                _print_new(path, printed)
            if not follow or job.finished:
                break
            time.sleep(WATCH_INTERVAL_S)
            job = ledger.jobs.get(job_id)
    if not printed:
        err_console.print(f"no logs yet for job {job_id}" + (f" step {step}" if step else ""))


def _log_order(path: Path) -> tuple[float, str]:
    return path.stat().st_mtime, path.name


def _print_new(path: Path, printed: dict[Path, int]) -> None:
    with path.open("rb") as log:
        log.seek(printed.get(path, 0))
        text = log.read()
    if path not in printed:
        step, attempt = path.name.removesuffix(".log").rsplit(".", 1)
        console.print(f"[bold]── {step} (attempt {attempt}) ──[/]")
    printed[path] = printed.get(path, 0) + len(text)
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
    with open_ledger() as ledger:
        write_batch_output(ledger, ledger.batch_jobs.get(job_id), dest)


def write_batch_output(ledger: Ledger, job: BatchJob, dest: Path) -> None:
    if job.status != "succeeded":
        raise InvalidInputError(f"batch job {job.id} is {job.status}: it has no output")
    entry = FileEntry(path=dest.name, sha256=job.output_digest, size=0)
    ledger.artifacts.materialize([entry], dest.parent)
    console.print(f"Wrote {job.rows_done:,} predictions to {dest}")


def follow_batch_job(ledger: Ledger, job_id: str, *, quiet: bool = False) -> BatchJob:
    """Show the rows scored until the batch job ends; exit 1 unless it succeeded."""
    job = ledger.batch_jobs.get(job_id)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("rows {task.fields[state]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=not err_console.is_terminal) as bar:
        task = bar.add_task(f"batch job {job_id[:8]}", total=job.rows, state=job.status)
        while True:
            bar.update(task, completed=job.rows_done, state=job.status)
            if job.finished:
                break
            time.sleep(WATCH_INTERVAL_S)
            job = ledger.batch_jobs.get(job_id)
    if not quiet:
        _print_batch_job(job)
    if job.status != "succeeded":
        raise typer.Exit(1)
    return job


def _print_batch_job(job: BatchJob) -> None:
    console.print(
        f"batch job [bold]{job.id}[/]  {job.endpoint}/{job.deployment} ({job.model})  "
        f"{_styled(job.status)}"
    )
    if job.error:
        console.print(f"[red]error:[/] {job.error}")
    console.print(f"  input: {job.input_uri} (sha256:{job.input_digest[:16]}…)")
    console.print(
        f"  rows: {job.rows_done:,} of {job.rows:,}, mini-batches of {job.mini_batch_size:,}"
    )
    if job.output_digest:
        console.print(
            f"  output: sha256:{job.output_digest} in {job.duration_s:.2f} s "
            f"({job.scoring_s:.2f} s scoring)"
        )


def _styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _print_job(job: Job) -> None:
    snapshot = job.snapshot
    console.print(f"job [bold]{job.id}[/]  {job.pipeline_ref}  {_styled(job.status)}")
    if job.error:
        console.print(f"[red]error:[/] {job.error}")
    details = {
        "executor": job.executor or snapshot["executor"],
        "worker": job.worker,
        "parameters": snapshot["parameters"],
        "data": ", ".join(snapshot["data"]),
        "environment": snapshot["environment"],
        "code": f"{snapshot['code_digest'][:16]} {snapshot['git_commit']}".strip(),
        "rerun of": job.rerun_of,
    }
    for key, value in details.items():
        if value:
            console.print(f"  {key}: {value}")
    table = Table("step", "status", "attempt", "duration", "outputs", "metrics", "models")
    for name, step in job.steps.items():
        table.add_row(
            name,
            _styled(step["status"]) + (f" ({step['error']})" if step["status"] == "failed" else ""),
            str(step["attempt"]),
            f"{step['duration_s']:.2f} s" if step["duration_s"] else "",
            "\n".join(f"{k}: {v[:24]}…" for k, v in step["outputs"].items()),
            ", ".join(f"{k}={v:.4g}" for k, v in step["metrics"].items()),
            ", ".join(step["models"]),
        )
    console.print(table)


def _follow(ledger: Ledger, job_id: str, as_json: bool) -> None:
    """Show live progress until the job ends; exit 1 unless it succeeded."""
    job = ledger.jobs.get(job_id)
    steps = ledger.assets.pipeline_step_names(job.pipeline_ref)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=not err_console.is_terminal) as progress:
        overall = progress.add_task(f"job {job_id[:8]}", total=len(steps), state=job.status)
        rows = {name: progress.add_task(f"  {name}", total=1, state="waiting") for name in steps}
        while True:
            for name, state in job.steps.items():
                if name in rows:
                    label = f"{state['status']} (attempt {state['attempt']})"
                    done = 1 if state["status"] == "completed" else 0
                    progress.update(rows[name], completed=done, state=label)
            completed = sum(1 for s in job.steps.values() if s["status"] == "completed")
            waiting = (
                " (waiting for a worker: `ledger worker`)" if job.status == "submitted" else ""
            )
            progress.update(overall, completed=completed, state=job.status + waiting)
            if job.finished:
                break
            time.sleep(WATCH_INTERVAL_S)
            job = ledger.jobs.get(job_id)
    if as_json:
        print_json(job_summary(job))
    else:
        _print_job(job)
    if job.status != "succeeded":
        raise typer.Exit(1)


def worker() -> None:
    """Run pipeline jobs: hear JobSubmitted on the bus and run each on its executor."""
    from executors.worker import Worker  # the CLI's other commands never load executors
    from ledger.cli.events import run_until_signalled

    settings = load_settings()
    instance = Worker(settings)
    err_console.print(
        f"Worker {instance.id}: executor {settings.executor}, store "
        f"{settings.store_location.describe()}, bus "
        f"{'NATS ' + describe_nats_url(settings.nats_url) if settings.nats_url else 'in-process'}"
    )
    run_until_signalled(instance.run)
