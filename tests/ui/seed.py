"""A small, representative world for the UI's browser tests: something on every page.

Written through the ledger's commands, as users and workers would write it (no Ray: the job's
steps are recorded as a worker records them, and the monitor's windows as a worker judging
them would record them):

- data asset ``rows:1`` (a CSV profiled at registration) and environment ``cpu:1``;
- pipeline ``train:1``: prepare -> train -> evaluate, and one job of it, succeeded;
- model ``iris``: 3 versions with metrics accuracy and f1, tags (version 3's ``note`` is
  ``<script>alert(1)</script>``: pages must show it as text), alias ``champion`` -> 2, each
  version's lineage naming the data, environment, pipeline and job;
- online endpoint ``shop``: deployments blue (iris:1) and green (iris:2), traffic moved
  blue=100, then blue=90 green=10 (the canary), then green=100, each with a reason;
- monitor ``shop-drift`` on shop, three judged windows, the last two drifting: one open alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from ledger.domain.model import Lineage
from ledger.domain.monitor import ColumnResult
from ledger.ledger import Ledger
from ledger.specs import EnvironmentSpec
from tests.conftest import wait_for

SCRIPT_TAG = "<script>alert(1)</script>"
PIPELINE = {
    "description": "prepare the rows, train, evaluate",
    "environment": "cpu",
    "steps": [
        {"name": "prepare", "run": "steps:prepare", "inputs": {"raw": "data:rows"}},
        {"name": "train", "run": "steps:train", "depends_on": ["prepare"]},
        {"name": "evaluate", "run": "steps:evaluate", "depends_on": ["train"]},
    ],
}
VERSION_METRICS = [
    {"accuracy": 0.91, "f1": 0.89},
    {"accuracy": 0.95, "f1": 0.94},
    {"accuracy": 0.93, "f1": 0.92},
]


@dataclass(frozen=True)
class World:
    """What :func:`seed_world` made: names, refs and ids the tests look for."""

    model: str = "iris"
    versions: tuple[int, ...] = (1, 2, 3)
    alias: str = "champion"
    alias_version: int = 2
    script_tag_version: int = 3
    data: str = "rows:1"
    environment: str = "cpu:1"
    pipeline: str = "train:1"
    job_id: str = ""
    steps: tuple[str, ...] = ("prepare", "train", "evaluate")
    endpoint: str = "shop"
    deployments: tuple[str, ...] = ("blue", "green")
    traffic_reasons: tuple[str, ...] = ("first release", "canary: 10 % to green", "green is good")
    monitor: str = "shop-drift"
    before_canary: int = 0  # the log position just before the canary's traffic change
    head: int = 0  # the log position after everything

    @property
    def pages(self) -> dict[str, str]:
        """Every page of the UI contract (notes/ui_contract.md), by what it shows, and the
        models and endpoint pages as of before the canary (with the banner of the past)."""
        model = f"/ui/models/{self.model}"
        return {
            "sign-in": "/ui/login",
            "models": "/ui/models",
            "models-as-of": f"/ui/models?as_of={self.before_canary}",
            "model": model,
            "compare": f"{model}/compare?v=1&v=2&v=3",
            "version": f"{model}/versions/{self.alias_version}",
            "endpoints": "/ui/endpoints",
            "endpoint": f"/ui/endpoints/{self.endpoint}",
            "endpoint-as-of": f"/ui/endpoints/{self.endpoint}?as_of={self.before_canary}",
            "audit": "/ui/audit",
            "jobs": "/ui/jobs",
            "job": f"/ui/jobs/{self.job_id}",
            "monitors": "/ui/monitors",
            "monitor": f"/ui/monitors/{self.monitor}",
        }


def seed_world(ledger: Ledger) -> World:
    """Write the world into ``ledger``'s store (a fresh one: names are fixed)."""
    folder = ledger.settings.home / "seed"
    folder.mkdir(parents=True, exist_ok=True)
    ledger.assets.register_environment(
        "cpu", EnvironmentSpec(python="3.11", pip=["scikit-learn"]), reason="the CPU image"
    )
    rows = folder / "rows.csv"
    rows.write_text("x,label\n" + "".join(f"{i / 10},{'ab'[i % 2]}\n" for i in range(40)))
    ledger.assets.register_data("rows", rows, description="iris rows", reason="monthly export")
    ledger.assets.register_pipeline("train", PIPELINE, reason="the training pipeline")
    job_id = _finished_job(ledger)
    _iris(ledger, folder, job_id)
    before_canary = _shop(ledger)
    _monitor(ledger)
    return World(job_id=job_id, before_canary=before_canary, head=ledger.event_count())


def wait_until_served(url: str, head: int) -> None:
    """Wait until the server at ``url`` reads views that hold the log up to ``head`` (writes
    made by another process reach its views within moments)."""

    def caught_up() -> bool:
        health = httpx.get(f"{url}/health", timeout=10).json()
        return bool(health["store"]["head"] >= head and health["projections"]["lag_events"] == 0)

    wait_for(caught_up, 30, f"the server's views to reach position {head}")


def _finished_job(ledger: Ledger) -> str:
    """A job of train:1 run step by step to success, as a worker records it."""
    job_id = str(ledger.jobs.submit("train:1", parameters={}, reason="nightly training").id)
    runs = ledger.job_runs
    runs.start(job_id, "local", worker="worker-1")
    for step, seconds in (("prepare", 0.4), ("train", 2.5), ("evaluate", 0.7)):
        runs.start_step(job_id, step, worker="worker-1")
        metrics = {"loss": 0.12} if step == "train" else {}
        runs.complete_step(job_id, step, metrics=metrics, duration_s=seconds, worker="worker-1")
    runs.succeed(job_id, worker="worker-1")
    return job_id


def _iris(ledger: Ledger, folder: Path, job_id: str) -> None:
    """Model iris, three versions with lineage, tags (one of them a script), an alias."""
    lineage: Lineage = {
        "job": job_id,
        "data": ["rows:1"],
        "environment": "cpu:1",
        "pipeline": "train:1",
    }
    for number, metrics in enumerate(VERSION_METRICS, start=1):
        files = folder / f"iris-{number}"
        (files / "sub").mkdir(parents=True, exist_ok=True)
        (files / "model.json").write_text(f'{{"weights": [{number}, 0.5]}}')
        (files / "sub" / "vocab.txt").write_text("setosa\nversicolor\nvirginica\n")
        tags = {"team": "vision", "stage": "prod" if number == 2 else "dev"}
        if number == 3:
            tags["note"] = SCRIPT_TAG
        ledger.models.register_version(
            "iris",
            files,
            flavor="sklearn",
            tags=tags,
            metrics=metrics,
            description=f"iris classifier, run {number}",
            signature={"inputs": [{"name": "x", "type": "double"}]},
            lineage=lineage,
            reason=f"training run {number}",
        )
    ledger.models.set_tags("iris", {"owner": "ml-team"}, reason="who to ask")
    ledger.models.set_alias("iris", "champion", 2, reason="best accuracy")


def _shop(ledger: Ledger) -> int:
    """Endpoint shop: blue then green, the traffic moved in steps; the position before the
    canary."""
    ledger.endpoints.create("shop", description="the web shop's classifier", reason="launch")
    ledger.endpoints.deploy("shop", "blue", "iris:1", environment="cpu", reason="first release")
    ledger.endpoints.set_traffic("shop", {"blue": 100}, reason="first release")
    ledger.endpoints.deploy("shop", "green", "iris:2", environment="cpu", reason="retrained")
    ledger.endpoints.report_health("shop", "blue", "healthy", "2/2 replicas")
    ledger.endpoints.report_health("shop", "green", "healthy", "2/2 replicas")
    before_canary = ledger.event_count()
    ledger.endpoints.set_traffic("shop", {"blue": 90, "green": 10}, reason="canary: 10 % to green")
    ledger.endpoints.set_traffic("shop", {"green": 100}, reason="green is good")
    return before_canary


def _result(column: str, value: float) -> ColumnResult:
    verdict = "drift" if value > 0.1 else "no_drift"
    return {"signal": "data_drift", "column": column, "metric": "wasserstein",
            "value": value, "threshold": 0.1, "verdict": verdict, "samples": 500}  # fmt: skip


def _monitor(ledger: Ledger) -> None:
    """Monitor shop-drift: three hourly windows, x drifting from the second on (an alert)."""
    ledger.monitors.create(
        "shop-drift",
        endpoint="shop",
        reference="data:rows:1",
        thresholds={"x": {"metric": "wasserstein", "value": 0.1}},
        features=["x"],
        reason="watch the shop's inputs",
    )
    for hour, value in enumerate((0.02, 0.18, 0.25)):
        drifting = ["x"] if value > 0.1 else []
        ledger.monitors.record_window(
            "shop-drift",
            window_start=f"2026-12-01T{hour:02}:00:00+00:00",
            window_end=f"2026-12-01T{hour + 1:02}:00:00+00:00",
            rows=500,
            results=[_result("x", value)],
            drift_shares={"data_drift": 1.0 if drifting else 0.0},
            breaches={"data_drift": drifting},
        )
