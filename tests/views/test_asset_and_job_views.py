"""The assets and jobs views answer what the aggregates hold, following the log or rebuilt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import InvalidInputError, NotFoundError
from ledger.ledger import Ledger
from ledger.specs import EnvironmentSpec
from ledger.summaries import job_summary
from projections.views import Views
from tests.aggregate_state import asset_from_aggregate, batch_job_from_aggregate

DAG = {
    "environment": "cpu",
    "steps": [
        {"name": "prepare", "run": "steps:prepare", "inputs": {"raw": "data:rows"}},
        {"name": "train", "run": "steps:train", "depends_on": ["prepare"]},
    ],
}
ASSETS = [("environment", "cpu"), ("data", "rows"), ("pipeline", "train"), ("pipeline", "copy")]


@pytest.fixture
def views(ledger: Ledger) -> Iterator[Views]:
    opened = Views.open(ledger.settings)
    yield opened
    opened.close()


def _assets(ledger: Ledger, tmp_path: Path) -> None:
    ledger.assets.register_environment("cpu", EnvironmentSpec(python="3.11"))
    ledger.assets.register_environment("cpu", EnvironmentSpec(python="3.12", pip=["numpy"]))
    data = tmp_path / "rows.csv"
    data.write_text("x,label\n1.5,a\n2.5,b\n")
    ledger.assets.register_data("rows", data, description="sample")
    ledger.assets.register_pipeline("train", DAG)
    ledger.assets.clone_pipeline("train:1", "copy", reason="a variant")


def _jobs(ledger: Ledger, model_dir: Path, tmp_path: Path) -> list[str]:
    """Jobs in every state: succeeded after a retry and a failed step, cancelled, cancelling,
    failed; a batch job scored, and one that failed."""
    done = str(ledger.jobs.submit("train", parameters={}, executor="local").id)
    runs = ledger.job_runs
    runs.start(done, "local", worker="w1")
    runs.start_step(done, "prepare", worker="w1")
    runs.complete_step(done, "prepare", outputs={"table": "sha256:00"}, duration_s=0.5)
    runs.start_step(done, "train", worker="w1")
    runs.fail_step(done, "train", 1, "out of memory", duration_s=1.25, will_retry=True)
    runs.take_over(done, "w2", may_take=lambda job: True)
    runs.start_step(done, "train", worker="w2")
    runs.complete_step(done, "train", metrics={"loss": 0.2}, worker="w2")
    runs.succeed(done, worker="w2")
    cancelled = str(ledger.jobs.submit("train:1").id)
    ledger.jobs.cancel(cancelled, reason="not needed")
    cancelling = str(ledger.jobs.rerun(done).id)
    runs.start(cancelling, "ray")
    ledger.jobs.cancel(cancelling)
    failed = str(ledger.jobs.submit("copy").id)
    runs.fail(failed, "worker lost")

    ledger.models.register_version("clf", model_dir, flavor="sklearn")
    ledger.endpoints.create("nightly", "batch")
    ledger.endpoints.deploy("nightly", "main", "clf:1")
    ledger.endpoints.set_traffic("nightly", {"main": 100})
    scored, broken = (
        str(ledger.batch_jobs.invoke("nightly", tmp_path / "rows.csv", mini_batch_size=1).id)
        for _ in range(2)
    )
    ledger.batch_jobs.start(scored, "w1", may_take=lambda job: True)
    ledger.batch_jobs.progress(scored, "w1", 1)
    ledger.batch_jobs.complete(scored, "w1", 2, 1.5, 0.25, "ab" * 32)
    ledger.batch_jobs.start(broken, "w1", may_take=lambda job: True)
    ledger.batch_jobs.fail(broken, "replica died", "w1")
    return [done, cancelled, cancelling, failed, scored, broken]


def _answers(views: Views, job_ids: list[str]) -> dict[str, Any]:
    views.updater.catch_up()
    return {
        "assets": [views.asset(kind, name) for kind, name in ASSETS],
        "versions": [
            views.asset_version("environment", "cpu"),
            views.asset_version("data", "rows:1"),
        ],
        "jobs": [views.batch_job(job_id) or views.job(job_id) for job_id in job_ids],
        "list": views.jobs(limit=100),
    }


def test_asset_and_job_views_match_the_aggregates_and_a_rebuild(
    ledger: Ledger, views: Views, model_dir: Path, tmp_path: Path
) -> None:
    _assets(ledger, tmp_path)
    job_ids = _jobs(ledger, model_dir, tmp_path)
    answers = _answers(views, job_ids)

    assert answers["assets"] == [asset_from_aggregate(ledger, kind, name) for kind, name in ASSETS]
    cpu = views.asset("environment", "cpu")
    assert [v["content"]["python"] for v in cpu["versions"]] == ["3.11", "3.12"]
    assert views.asset("pipeline", "copy")["origin"] == "train:1"
    assert answers["versions"] == [cpu["versions"][1], views.asset("data", "rows")["versions"][0]]
    pipeline_jobs, batch_jobs = job_ids[:4], job_ids[4:]
    for job_id, shown in zip(pipeline_jobs, answers["jobs"][:4], strict=True):
        assert shown == job_summary(ledger.jobs.get(job_id))
    for job_id, shown in zip(batch_jobs, answers["jobs"][4:], strict=True):
        assert shown == batch_job_from_aggregate(ledger, job_id)
    done = answers["jobs"][0]
    assert list(done["steps"]) == ["prepare", "train"]
    assert done["steps"]["train"]["attempt"] == 2 and done["steps"]["train"]["failures"] == 1
    assert [job["status"] for job in answers["jobs"]] == [
        "succeeded", "cancelled", "cancelling", "failed", "succeeded", "failed"
    ]  # fmt: skip
    listed = {job["id"]: job for job in answers["list"]}
    assert {job_id: listed[job_id]["updated_at"] for job_id in job_ids} == {
        job["id"]: job["updated_at"] for job in answers["jobs"]
    }

    assert views.updater.rebuild() == ledger.event_count()
    assert _answers(views, job_ids) == answers
    views.updater.rebuild(["assets", "jobs"])
    assert _answers(views, job_ids) == answers


def test_asset_and_job_views_refuse_what_does_not_exist(
    ledger: Ledger, views: Views, tmp_path: Path
) -> None:
    _assets(ledger, tmp_path)
    views.updater.catch_up()
    with pytest.raises(NotFoundError, match="data asset 'ghost' does not exist"):
        views.asset("data", "ghost")
    with pytest.raises(NotFoundError, match="environment cpu:3 does not exist"):
        views.asset_version("environment", "cpu:3")
    with pytest.raises(NotFoundError, match="pipeline 'ghost' does not exist"):
        views.asset_version("pipeline", "ghost:1")
    with pytest.raises(InvalidInputError, match="invalid job id"):
        views.job("not-a-uuid")
    job_id = str(ledger.jobs.submit("train").id)
    with pytest.raises(NotFoundError, match="does not exist"):
        views.job(job_id)  # not in the views until they catch up
    views.updater.catch_up()
    assert views.job(job_id)["status"] == "submitted" and views.batch_job(job_id) is None
