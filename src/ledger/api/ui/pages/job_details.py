"""What a pipeline job's page shows, read from the views and the step logs: the job, its
DAG coloured by the steps' states, a row per step, and the logs. The page and its live
stream (job_live.py) both draw from here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup

from ledger.api.ui.graphics.dag import DagStep, dag_svg
from ledger.domain.job import FINAL_STATUSES
from ledger.job_logs import step_logs
from projections.views import Views

# The most of each log the page shows (its end; `ledger job logs` prints it all).
LOG_TAIL_BYTES = 32 * 1024
LogsSeen = tuple[tuple[str, int], ...]
# A step's row before it ran (a run fills in what it recorded: ledger.domain.job.StepState).
NOT_RUN: dict[str, Any] = {
    "attempt": "",
    "duration_s": 0.0,
    "outputs": {},
    "metrics": {},
    "models": [],
    "error": "",
    "environment": "",
}


def step_state(job: dict[str, Any], spec: dict[str, Any]) -> tuple[str, str]:
    """A step's state on the DAG (pending, running, succeeded, failed, retrying, cancelled,
    skipped) and a note such as its attempt."""
    final = job["status"] in FINAL_STATUSES
    state = job["steps"].get(spec["name"])
    if state is None:
        return ("skipped" if final and job["status"] != "succeeded" else "pending"), ""
    attempt = int(state.get("attempt", 1))
    note = f"attempt {attempt}" if attempt > 1 else ""
    status = state["status"]
    if status == "completed":
        return "succeeded", note
    if status == "running":
        return ("cancelled" if final else "running"), note
    retries_left = int(spec.get("retries", 0)) - int(state.get("failures", 0)) >= 0
    return ("retrying" if not final and retries_left else "failed"), note


def job_dag(job: dict[str, Any], steps: list[dict[str, Any]]) -> Markup:
    """The job's pipeline as ``svg#job-dag``, each step in its state."""
    drawn = [
        DagStep(spec["name"], tuple(spec.get("depends_on", ())), *step_state(job, spec))
        for spec in steps
    ]
    done = sum(1 for step in drawn if step.state == "succeeded")
    title = (
        f"Pipeline {job['pipeline']}: {done} of {len(drawn)} steps succeeded; job {job['status']}"
    )
    return dag_svg(drawn, title)


def step_rows(job: dict[str, Any], steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A row per step of the pipeline, in the spec's order, with what its run recorded."""
    rows = []
    for spec in steps:
        state, _ = step_state(job, spec)
        recorded = job["steps"].get(spec["name"], {})
        rows.append({**NOT_RUN, **recorded, "name": spec["name"], "state": state})
    return rows


def read_logs(logs_dir: Path, job_id: str) -> list[dict[str, Any]]:
    """The end of each step attempt's log, in the order they were written."""
    logs = []
    for log in step_logs(logs_dir, job_id):
        text, cut = log.tail(LOG_TAIL_BYTES)
        logs.append({"heading": log.heading, "step": log.step, "attempt": log.attempt,
                     "text": text, "cut": cut})  # fmt: skip
    return logs


def logs_seen(logs_dir: Path, job_id: str) -> LogsSeen:
    """Which logs there are and how long each is (cheap: the live stream polls it)."""
    return tuple((log.path.name, log.size()) for log in step_logs(logs_dir, job_id))


def job_details(views: Views, job_id: str, logs_dir: Path) -> dict[str, Any]:
    """Everything the job page shows of pipeline job ``job_id``."""
    job = views.job(job_id)
    steps = views.asset_version("pipeline", job["pipeline"])["content"]["steps"]
    return {
        "job": job,
        "final": job["status"] in FINAL_STATUSES,
        "dag": job_dag(job, steps),
        "steps": step_rows(job, steps),
        "logs": read_logs(logs_dir, job["id"]),
        "logs_seen": logs_seen(logs_dir, job["id"]),
    }
