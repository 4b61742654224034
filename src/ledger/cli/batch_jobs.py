"""Batch jobs on the command line: following one, showing it, writing its predictions.

`ledger endpoint score` submits them; `ledger job show` and `ledger job output` read them
from the jobs view.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.artifacts.paths import FileEntry
from ledger.artifacts.store import ArtifactStore
from ledger.cli.context import WATCH_INTERVAL_S, console, err_console, styled_status
from ledger.errors import InvalidInputError, NotFoundError
from projections.views import Views

BatchJobView = dict[str, Any]  # as Views.batch_job shows it
FINISHED = ("succeeded", "failed")


def batch_job(views: Views, job_id: str) -> BatchJobView:
    """The batch job with this id; NotFoundError when there is none."""
    job = views.batch_job(job_id)
    if job is None:
        raise NotFoundError(f"batch job {job_id} does not exist")
    return job


def write_batch_output(artifacts: ArtifactStore, job: BatchJobView, dest: Path) -> None:
    """Write a finished batch job's predictions (Parquet) to ``dest``."""
    if job["status"] != "succeeded":
        raise InvalidInputError(f"batch job {job['id']} is {job['status']}: it has no output")
    entry = FileEntry(path=dest.name, sha256=job["output_digest"], size=0)
    artifacts.materialize([entry], dest.parent)
    console.print(f"Wrote {job['rows_done']:,} predictions to {dest}")


def follow_batch_job(views: Views, job_id: str, *, quiet: bool = False) -> BatchJobView:
    """Show the rows scored until the batch job ends; exit 1 unless it succeeded."""
    job = batch_job(views, job_id)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("rows {task.fields[state]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err_console, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(f"batch job {job_id[:8]}", total=job["rows"], state=job["status"])
        while True:
            bar.update(task, completed=job["rows_done"], state=job["status"])
            if job["status"] in FINISHED:
                break
            time.sleep(WATCH_INTERVAL_S)
            views.updater.catch_up()
            job = batch_job(views, job_id)
    if not quiet:
        print_batch_job(job)
    if job["status"] != "succeeded":
        raise typer.Exit(1)
    return job


def print_batch_job(job: BatchJobView) -> None:
    """A batch job's state, input, progress and output, in a few lines."""
    console.print(
        f"batch job [bold]{job['id']}[/]  {job['endpoint']}/{job['deployment']} "
        f"({job['model']})  {styled_status(job['status'])}"
    )
    if job["error"]:
        console.print(f"[red]error:[/] {job['error']}")
    console.print(f"  input: {job['input_uri']} (sha256:{job['input_digest'][:16]}…)")
    console.print(
        f"  rows: {job['rows_done']:,} of {job['rows']:,}, "
        f"mini-batches of {job['mini_batch_size']:,}"
    )
    if job["output_digest"]:
        console.print(
            f"  output: sha256:{job['output_digest']} in {job['duration_s']:.2f} s "
            f"({job['scoring_s']:.2f} s scoring)"
        )
