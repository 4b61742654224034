"""The store outlives the process: reopening gives identical state and full history."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import StoredEvent

from ledger.domain.base import EventMeta, acting
from ledger.domain.job import Job, JobSnapshot
from ledger.domain.model import ModelVersion, VersionSpec, model_version_id
from ledger.ledger import Ledger
from tests.aggregate_state import model_history, model_versions
from tests.conftest import StoreFactory
from tests.paths import REPO

DUMP_STATE = """
import json

from ledger.ledger import Ledger
from tests.store.test_persistence import _state
print(json.dumps(_state(Ledger())))
"""


def _state(ledger: Ledger) -> dict[str, Any]:
    """The model, its versions and the endpoint as the aggregates hold them."""
    return {
        "model": _fields(ledger.models.get("iris"), "name", "latest_version", "tags", "aliases"),
        "versions": [
            _fields(version, "ref", "status", "spec", "tags", "deployments")
            for version in model_versions(ledger, "iris")
        ],
        "endpoint": _fields(
            ledger.endpoints.get("web"), "kind", "deployments", "traffic", "mirror", "deleted"
        ),
        "history": [e.to_dict() for e in model_history(ledger, "iris")],
    }


def _fields(aggregate: Any, *names: str) -> dict[str, Any]:
    times = {"created_at": aggregate.created_on, "updated_at": aggregate.modified_on}
    return {name: getattr(aggregate, name) for name in names} | {
        key: moment.isoformat() for key, moment in times.items()
    }


def test_reopening_in_a_new_process_gives_identical_state(
    ledger: Ledger, store: StoreFactory, model_dir: Path
) -> None:
    ledger.models.register_version("iris", model_dir, tags={"stage": "dev"}, reason="first")
    ledger.models.register_version("iris", model_dir, metrics={"auc": 0.91}, reason="second")
    ledger.models.set_tags("iris:2", {"stage": "prod"}, reason="promote")
    ledger.models.set_alias("iris", "champion", 2)
    ledger.endpoints.create("web")
    ledger.endpoints.deploy("web", "blue", "iris@champion", reason="release")

    env = {**os.environ, **store.env()}
    result = subprocess.run(
        [sys.executable, "-c", DUMP_STATE],
        env=env,
        cwd=REPO,  # where `tests` imports from
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == json.loads(json.dumps(_state(ledger)))


def test_history_lists_every_event_in_order_with_actor_reason_and_time(
    ledger: Ledger, model_dir: Path
) -> None:
    ledger.models.register_version("iris", model_dir, reason="first")
    with ledger.on_behalf_of("ci-bot", correlation_id="req-42"):
        ledger.models.set_tags("iris:1", {"stage": "prod"}, reason="promote")
    ledger.models.set_alias("iris", "live", 1, reason="go live")

    history = model_history(ledger, "iris")
    assert [(e.entity, e.event, e.actor, e.reason) for e in history] == [
        ("model iris", "Registered", "tester", "first"),
        ("model iris", "VersionAdded", "tester", "first"),
        ("model iris:1", "Registered", "tester", "first"),
        ("model iris:1", "Tagged", "ci-bot", "promote"),
        ("model iris", "AliasSet", "tester", "go live"),
    ]
    times = [e.timestamp for e in history]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    assert history[3].correlation_id == "req-42"
    # One command, one correlation id across the events it wrote.
    assert len({e.correlation_id for e in history[:3]}) == 1


def test_an_event_stored_before_its_schema_gained_a_field_still_loads(
    ledger: Ledger, model_dir: Path
) -> None:
    """ModelVersion.Registered v1 had no `signature`; the upcaster fills it in."""
    with acting(EventMeta(actor="old-release")):
        spec: VersionSpec = {
            "files": [],
            "flavor": "custom",
            "signature": {},
            "tags": {},
            "metrics": {},
            "description": "from the old days",
            "lineage": {},
        }
        event = ModelVersion.register("legacy", 1, spec).collect_events()[0]
    stored = ledger.mapper.to_stored_event(event)
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["spec"]["signature"]  # exactly what a v1 writer stored
    v1_event = dataclasses.replace(stored, state=json.dumps(state).encode())
    ledger.recorder.insert_events([v1_event])

    loaded = ledger.repository.get(model_version_id("legacy", 1))
    assert isinstance(loaded, ModelVersion)
    assert loaded.spec["signature"] == {}
    assert loaded.spec["description"] == "from the old days"


def test_jobs_stored_before_workers_reruns_and_step_environments_still_load(
    ledger: Ledger, store: StoreFactory
) -> None:
    """Job events and aggregate snapshots of schema v1 are upcast when loaded."""
    snapshot: JobSnapshot = {
        "code_digest": "",
        "git_commit": "",
        "data": [],
        "environment": "",
        "environment_digest": "",
        "environments": {},
        "parameters": {},
        "executor": "local",
        "resources": {},
    }
    with acting(EventMeta(actor="old-release")):
        job = Job.submit(uuid4(), "p", 1, snapshot)
        job.start("local")
        job.start_step("train")
    v1_events = []
    for event in job.collect_events():
        stored = ledger.mapper.to_stored_event(event)
        state = json.loads(stored.state)
        if state.pop("class_version", 1) == 2:  # strip what v2 added
            state.pop("rerun_of", None)
            state.pop("worker", None)
            state.get("snapshot", {}).pop("environments", None)
            state.pop("environment", None)  # StepStarted's, v2
            state.pop("runtime_env", None)
        v1_events.append(dataclasses.replace(stored, state=json.dumps(state).encode()))
    ledger.recorder.insert_events(v1_events)

    loaded = Ledger(store.settings()).jobs.get(str(job.id))
    assert (loaded.worker, loaded.rerun_of, loaded.snapshot["environments"]) == ("", "", {})
    assert loaded.status == "running" and loaded.steps["train"]["attempt"] == 1
    assert (loaded.steps["train"]["environment"], loaded.steps["train"]["runtime_env"]) == ("", {})

    # An aggregate snapshot written by v1: no class_version, none of v2's attributes.
    taken = ledger.mapper.to_stored_event(Snapshot.take(loaded))
    state = json.loads(taken.state)
    aggregate = state["state"]
    assert aggregate.pop("class_version") == 3
    for name in ("worker", "rerun_of"):
        del aggregate[name]
    del aggregate["snapshot"]["environments"]
    for key in ("models", "error", "failures", "environment", "runtime_env"):
        del aggregate["steps"]["train"][key]
    aggregate["error"] = "read from the snapshot"  # tells the snapshot was used
    assert ledger.snapshots is not None
    ledger.snapshots.recorder.insert_events(
        [dataclasses.replace(taken, state=json.dumps(state).encode())]
    )
    from_snapshot = Ledger(store.settings()).jobs.get(str(job.id))
    assert from_snapshot.error == "read from the snapshot"
    assert from_snapshot.worker == "" and from_snapshot.steps["train"]["failures"] == 0


@pytest.mark.parametrize("store", ["postgres"], indirect=True)  # SQLite has no connection to lose
def test_a_dropped_postgres_connection_is_replaced(
    store: StoreFactory, ledger: Ledger, model_dir: Path
) -> None:
    ledger.models.register_version("iris", model_dir)
    killed = store.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE pid <> pg_backend_pid() AND query LIKE ?",
        (f"%{store.schema}%",),
    )
    assert killed, "the ledger's connection was found and terminated"
    assert ledger.models.register_version("iris", model_dir).number == 2
    assert ledger.verify().ok


def test_appends_take_any_version_number(ledger: Ledger) -> None:
    """Small and large numbers in one append (binary parameters must not narrow types)."""
    events = [StoredEvent(uuid4(), v, "x:y", b"{}") for v in (1, 40_000, 3_000_000_000)]
    positions = ledger.recorder.insert_events(events)
    assert positions is not None and len(positions) == 3
    stored = ledger.recorder.select_notifications(positions[0], 10)
    assert [n.originator_version for n in stored] == [1, 40_000, 3_000_000_000]
    assert ledger.verify().ok
