"""The mark of `ledger gc`: every kind of event that references stored content keeps it, and
content no longer referenced (a replaced or deleted MLflow artifact) goes."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

import ledger.domain as domain
from ledger.domain.base import LedgerAggregate
from ledger.garbage.references import READ, data_key
from ledger.ledger import Ledger
from tests.gc_support import DAY, blob_keys, collect, keys, orphan

ROWS = b"x,y,label\n1.0,2.0,a\n3.0,4.0,b\n5.0,6.0,a\n"
PIPELINE = {"steps": [{"name": "prepare", "run": "steps:prepare", "outputs": ["table", "folder"]}]}
# Events whose fields look like references to stored content, but are not.
NOT_STORED_CONTENT = {
    "Environment.VersionRegistered",  # a spec: packages, image, variables
    "Experiment.Created",  # an artifact location: files come as TrackedArtifact.Uploaded
    "Run.Created",  # the same
    "LoggedModel.Created",  # the same
    "Job.StepFailed",  # its log is in the logs folder, not the artifact store
    "Rule.Applied",  # a rule's spec
}


def _job_outputs(ledger: Ledger, code: Path) -> None:
    """A job step whose outputs are a file and a directory (a manifest listing a file)."""
    (code / "steps.py").write_text("def prepare(ctx):\n    pass\n")
    ledger.assets.register_pipeline("prep", PIPELINE, code_dir=code)
    table = orphan(ledger, b"step output table")
    inner = orphan(ledger, b"a file of the output folder")
    manifest = json.dumps([{"path": "part-0", "sha256": inner, "size": 27}]).encode()
    job = str(ledger.jobs.submit("prep", executor="local").id)
    ledger.job_runs.start(job, "local")
    ledger.job_runs.start_step(job, "prepare")
    outputs = {"table": f"sha256:{table}", "folder": f"tree:sha256:{orphan(ledger, manifest)}"}
    ledger.job_runs.complete_step(job, "prepare", outputs=outputs)


def _endpoints(ledger: Ledger, model_dir: Path, tmp_path: Path) -> None:
    """A batch job's output, and ground truth recorded for an online endpoint."""
    ledger.models.register_version("clf", model_dir, flavor="sklearn")
    ledger.endpoints.create("nightly", "batch")
    ledger.endpoints.deploy("nightly", "main", "clf:1")
    ledger.endpoints.set_traffic("nightly", {"main": 100})
    (tmp_path / "rows.csv").write_bytes(ROWS)
    scored = str(ledger.batch_jobs.invoke("nightly", tmp_path / "rows.csv").id)
    ledger.batch_jobs.start(scored, "w1", may_take=lambda job: True)
    output = orphan(ledger, b"predictions")
    ledger.batch_jobs.complete(scored, "w1", 3, 1.0, 0.5, output)
    ledger.endpoints.create("shop", "online")
    (tmp_path / "labels.csv").write_text("correlation_id,label\nc1,a\nc2,b\n")
    ledger.endpoints.record_ground_truth("shop", tmp_path / "labels.csv")


def _tracked(ledger: Ledger) -> set[str]:
    """MLflow artifacts: one replaced, one deleted; the digests they no longer hold."""
    replaced = ledger.tracked_artifacts.upload("runs/1/model.txt", io.BytesIO(b"first try"))
    ledger.tracked_artifacts.upload("runs/1/model.txt", io.BytesIO(b"second try"))
    deleted = ledger.tracked_artifacts.upload("runs/1/notes.txt", io.BytesIO(b"scratch"))
    ledger.tracked_artifacts.delete(["runs/1/notes.txt"])
    return {replaced.sha256, deleted.sha256}


def test_every_kind_of_reference_keeps_its_content(
    ledger_on_stores: Ledger, model_dir: Path, tmp_path: Path
) -> None:
    ledger = ledger_on_stores
    ledger.models.register_version("iris", model_dir)
    uploaded = ledger.assets.register_data_upload("rows", io.BytesIO(ROWS), "rows.csv")
    (tmp_path / "local.csv").write_bytes(ROWS.replace(b"a\n", b"c\n"))
    ledger.assets.register_data("local", tmp_path / "local.csv")  # its sketch is a blob
    code = tmp_path / "code"
    code.mkdir()
    _job_outputs(ledger, code)
    _endpoints(ledger, model_dir, tmp_path)
    unreferenced = _tracked(ledger) | {orphan(ledger, b"refused")}
    before, data = blob_keys(ledger), keys(ledger, "data/")
    assert data == {data_key(ledger.assets.data_version(uploaded.ref)["content"]["uri"])}

    report = collect(ledger, ahead=DAY)
    assert before - blob_keys(ledger) == unreferenced
    assert report.removed["blobs"].count == len(unreferenced) == 3
    assert keys(ledger, "data/") == data


@pytest.mark.parametrize(
    ("uri", "key"),
    [
        (f"file:///srv/artifacts/data/{'a' * 64}/rows.csv", f"data/{'a' * 64}/rows.csv"),
        (f"s3://bucket/prefix/data/{'b' * 64}/my%20rows.csv", f"data/{'b' * 64}/my rows.csv"),
        ("file:///home/me/rows.csv", None),
        (f"file:///srv/data/{'c' * 63}/rows.csv", None),
    ],
)
def test_data_uris_name_their_store_key(uri: str, key: str | None) -> None:
    assert data_key(uri) == key


def test_every_event_that_may_reference_stored_content_is_read() -> None:
    """A new event carrying digests, URIs or files must be read by the mark, or be listed
    here as not referencing the artifact store: else its content would be collected."""
    looks_stored = re.compile(r"digest|sha256|uri|files|outputs|spec|content|sketch|location")
    unread = set()
    for name in domain.__all__:
        aggregate = getattr(domain, name)
        if not (isinstance(aggregate, type) and issubclass(aggregate, LedgerAggregate)):
            continue
        for event in vars(aggregate).values():
            if not (isinstance(event, type) and issubclass(event, LedgerAggregate.Event)):
                continue
            fields = set().union(*(vars(cls).get("__annotations__", {}) for cls in event.__mro__))
            if any(looks_stored.search(f) for f in fields) and not issubclass(event, READ):
                unread.add(event.__qualname__)
    assert unread == NOT_STORED_CONTENT
