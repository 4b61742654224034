"""Environments, data assets, pipelines and jobs: versioning by content and job lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import InvalidInputError, NotFoundError, RuleViolationError
from ledger.ledger import Ledger
from ledger.specs import EnvironmentSpec
from tests.aggregate_state import asset_from_aggregate

DAG = {
    "parameters": {"lr": 0.01},
    "steps": [
        {"name": "prepare", "run": "steps:prepare", "outputs": ["table"]},
        {"name": "train", "command": "python train.py", "inputs": {"table": "prepare.table"}},
        {"name": "evaluate", "run": "steps:evaluate", "depends_on": ["train"]},
    ],
}


def test_identical_environment_spec_returns_the_existing_version(ledger: Ledger) -> None:
    spec = EnvironmentSpec(python="3.11", pip=["numpy==2.1.0"])
    first = ledger.assets.register_environment("cpu", spec, reason="base")
    again = ledger.assets.register_environment(
        "cpu", EnvironmentSpec(python="3.11", pip=["numpy==2.1.0"])
    )
    changed = ledger.assets.register_environment(
        "cpu", EnvironmentSpec(python="3.12", pip=["numpy"])
    )
    assert (first.ref, first.created) == ("cpu:1", True)
    assert (again.ref, again.created, again.digest) == ("cpu:1", False, first.digest)
    assert (changed.ref, changed.created) == ("cpu:2", True)
    assert ledger.assets.environment_version("cpu:1")["content"]["pip"] == ["numpy==2.1.0"]
    assert ledger.assets.environment_version("cpu")["version"] == 2


def test_data_asset_versions_carry_digest_and_profile(ledger: Ledger, tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("x,label\n1.5,a\n2.5,b\n,a\n")
    first = ledger.assets.register_data("rows", data, description="sample")
    assert ledger.assets.register_data("rows", data).ref == "rows:1"  # same content, same place
    data.write_text("x,label\n1.5,a\n")
    second = ledger.assets.register_data("rows", data)
    assert (first.ref, second.ref) == ("rows:1", "rows:2")
    assert first.digest != second.digest
    profile = ledger.assets.data_version("rows:1")["content"]["profile"]
    assert profile["rows"] == 3
    assert profile["columns"]["x"] == {
        "type": "double",
        "nulls": 1,
        "min": 1.5,
        "max": 2.5,
        "mean": 2.0,
    }
    with pytest.raises(InvalidInputError, match="unsupported"):
        bad = tmp_path / "notes.txt"
        bad.write_text("hello")
        ledger.assets.register_data("notes", bad)


def test_pipelines_are_versioned_dags_and_clones_leave_the_source_alone(ledger: Ledger) -> None:
    assert ledger.assets.register_pipeline("train", DAG).ref == "train:1"
    assert ledger.assets.register_pipeline("train", DAG).created is False
    clone = ledger.assets.clone_pipeline("train:1", "train-gpu", reason="gpu variant")
    assert clone.ref == "train-gpu:1"
    assert asset_from_aggregate(ledger, "pipeline", "train-gpu")["origin"] == "train:1"
    assert len(asset_from_aggregate(ledger, "pipeline", "train")["versions"]) == 1
    with pytest.raises(RuleViolationError, match="already exists"):
        ledger.assets.clone_pipeline("train", "train-gpu")
    a, b = {"name": "a", "run": "m:a"}, {"name": "b", "run": "m:b"}
    for spec, message in [
        ({"steps": []}, "at least 1 item"),
        ({"steps": [{**a, "depends_on": ["ghost"]}]}, "unknown step"),
        ({"steps": [{**a, "depends_on": ["b"]}, {**b, "depends_on": ["a"]}]}, "cycle"),
        ({"steps": [a, a]}, "defined twice"),
        ({"steps": [{"name": "a"}]}, "exactly one of `run` or `command`"),
        ({"steps": [{"name": "a", "run": "no-colon"}]}, "module:function"),
        ({"steps": [{**a, "inputs": {"x": "param:ghost"}}]}, "no parameter 'ghost'"),
        ({"steps": [{**a, "inputs": {"x": "b.out"}}, b]}, "has no output 'out'"),
        ({"steps": [{**a, "inputs": {"x": "nonsense"}}]}, "expected data:NAME"),
        ({"steps": [a], "surprise": 1}, "Extra inputs"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            ledger.assets.register_pipeline("broken", spec)


def test_job_lifecycle_and_snapshot(ledger: Ledger, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    ledger.assets.register_data("d", data)
    ledger.assets.register_environment("cpu", EnvironmentSpec())
    spec = {**DAG, "environment": "cpu"}
    spec["steps"] = [{**DAG["steps"][0], "inputs": {"raw": "data:d"}}, *DAG["steps"][1:]]
    ledger.assets.register_pipeline("train", spec)
    job = ledger.jobs.submit("train", parameters={"lr": 0.1}, executor="local")
    job_id = str(job.id)
    assert job.snapshot["data"] == ["d:1"]
    assert job.snapshot["environment"] == "cpu:1"
    assert (
        job.snapshot["environment_digest"] == ledger.assets.environment_version("cpu:1")["digest"]
    )
    assert job.snapshot["parameters"] == {"lr": 0.1}
    assert job.snapshot["resources"]["train"] == {"cpus": 1, "gpus": 0, "memory_mb": 0}
    with pytest.raises(InvalidInputError, match="unknown parameter"):
        ledger.jobs.submit("train", parameters={"learning_rate": 0.1})

    with pytest.raises(RuleViolationError, match="it is submitted"):
        ledger.job_runs.start_step(job_id, "prepare")
    ledger.job_runs.start(job_id, "local")
    ledger.job_runs.start_step(job_id, "prepare")
    ledger.job_runs.complete_step(job_id, "prepare", outputs={"table": "sha256:00"}, duration_s=0.5)
    with pytest.raises(RuleViolationError, match="already completed"):
        ledger.job_runs.start_step(job_id, "prepare")
    ledger.job_runs.start_step(job_id, "train")
    ledger.job_runs.start_step(job_id, "train")  # a retry: second attempt
    assert ledger.jobs.get(job_id).steps["train"]["attempt"] == 2
    ledger.job_runs.complete_step(job_id, "train", metrics={"loss": 0.2})
    finished = ledger.job_runs.succeed(job_id)
    assert finished.status == "succeeded"
    with pytest.raises(RuleViolationError, match="it is succeeded"):
        ledger.jobs.cancel(job_id)

    other = ledger.jobs.submit("train:1")
    assert ledger.jobs.cancel(str(other.id), reason="not needed").status == "cancelled"
    failing = ledger.jobs.submit("train:1")
    assert ledger.job_runs.fail(str(failing.id), "worker lost").error == "worker lost"

    events = [e.event for e in ledger.jobs.history(job_id)]
    assert events[0] == "Submitted" and events[-1] == "Succeeded"

    versions = ledger.models.register_version(
        "clf", tmp_path, lineage={"job": job_id, "pipeline": "train:1", "data": ["d:1"]}
    )
    assert versions.spec["lineage"]["job"] == job_id
    with pytest.raises(NotFoundError, match="does not exist"):
        ledger.jobs.get("00000000-0000-0000-0000-000000000000")
    with pytest.raises(InvalidInputError, match="invalid job id"):
        ledger.jobs.get("nope")
