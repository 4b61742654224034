"""Executors reaching the artifact store by URL: Ray pipeline steps, batch jobs on Ray Data
and Ray Serve replicas read and write an object store, with no volume shared with the
ledger (its local artifact directory stays empty).

Real Ray and Ray Serve (the session's local instance, whose workers have the servers'
endpoints and credentials in their environment and nothing else), moto's S3 server and
Azurite. The local store is covered by test_executors, test_batch_scoring, test_serving.
"""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pyarrow as pa
import pytest
from pyarrow import parquet
from ray import serve
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from executors.onnx_conversion import convert_model_version
from executors.serving.serve_app import app_name
from executors.worker import Worker
from ledger.artifacts.store import ArtifactStore, blob_key
from ledger.domain.endpoint import Resources
from ledger.ledger import Ledger
from ledger.settings import Settings
from tests.conftest import Cli, StoreFactory, running_api, wait_for

OBJECT_STORES = pytest.mark.parametrize("artifact_location", ["s3", "az"], indirect=True)
# Serve tests are slow: on SQLite only (the replicas never touch the event store).
ON_SQLITE = pytest.mark.parametrize("store", ["sqlite"], indirect=True)
ONE_REPLICA: Resources = {"cpus": 0.5, "gpus": 0, "memory_mb": 256, "replicas": 1}
FEATURES, LABELS = make_classification(n_samples=300, n_features=4, random_state=3)

STEPS = """
from pathlib import Path


def produce(ctx):
    table = ctx.output("table")
    (table / "part").mkdir(parents=True)
    (table / "part" / "a.txt").write_text(ctx.params["word"])
    (table / "b.txt").write_text("b")
    ctx.output("note").write_text("note")


def consume(ctx):
    table, note = Path(ctx.inputs["table"]), Path(ctx.inputs["note"])
    text = "|".join([(table / "part" / "a.txt").read_text(), (table / "b.txt").read_text(),
                     note.read_text()])
    model = ctx.work_dir / "model"
    model.mkdir()
    (model / "joined.txt").write_text(text)
    ctx.register_model("joined", model)
    return {"length": len(text)}
"""
RELAY = {
    "parameters": {"word": "far"},
    "steps": [
        {"name": "produce", "run": "remote_steps:produce", "outputs": ["table", "note"]},
        {
            "name": "consume",
            "run": "remote_steps:consume",
            "inputs": {"table": "produce.table", "note": "produce.note"},
        },
    ],
}


def _code(directory: Path) -> Path:
    """The steps' code, unique to the test: a step finds it in no cache, only in the store."""
    directory.mkdir()
    (directory / "remote_steps.py").write_text(f"# {uuid.uuid4().hex}\n{STEPS}")
    return directory


def _stored_digests(location: str) -> set[str]:
    return {o.key.rsplit("/", 1)[1] for o in ArtifactStore(location).blobs.listing("sha256/")}


def _assert_no_local_artifacts(settings: Settings) -> None:
    """Nothing went through a local artifact directory: the executors used the store."""
    local = settings.home / "artifacts"
    assert not [path for path in local.rglob("*") if path.is_file()], local


def _run(settings: Settings, job_id: str) -> str:
    worker = Worker(settings)
    try:
        return worker.run_job(job_id)
    finally:
        worker.close()


@OBJECT_STORES
def test_ray_steps_hand_outputs_to_the_next_step_through_the_object_store(
    store: StoreFactory, artifact_location: str, ray_started: None, tmp_path: Path
) -> None:
    settings = store.settings(executor="ray", artifacts=artifact_location)
    with Ledger(settings) as ledger:
        ledger.assets.register_pipeline("relay", RELAY, code_dir=_code(tmp_path / "code"))
        job_id = str(ledger.jobs.submit("relay").id)
        assert _run(settings, job_id) == "succeeded", ledger.jobs.get(job_id).error
        job = ledger.jobs.get(job_id)
        (model_ref,) = job.steps["consume"]["models"]
        ledger.models.download_version(model_ref, tmp_path / "model")
    assert job.executor == "ray" and job.steps["consume"]["metrics"] == {"length": 10}
    assert (tmp_path / "model" / "joined.txt").read_text() == "far|b|note"
    table, note = job.steps["produce"]["outputs"]["table"], job.steps["produce"]["outputs"]["note"]
    assert table.startswith("tree:sha256:") and note.startswith("sha256:")
    # The outputs (a directory's manifest, a file) were written by the step to the store.
    assert {table.rsplit(":", 1)[1], note.rsplit(":", 1)[1]} <= _stored_digests(artifact_location)
    _assert_no_local_artifacts(settings)


@OBJECT_STORES
def test_a_ray_step_whose_code_is_gone_from_the_store_fails_naming_the_blob(
    store: StoreFactory, artifact_location: str, ray_started: None, tmp_path: Path
) -> None:
    settings = store.settings(executor="ray", artifacts=artifact_location)
    with Ledger(settings) as ledger:
        pipeline = ledger.assets.register_pipeline(
            "relay", RELAY, code_dir=_code(tmp_path / "code")
        )
        (code_file,) = ledger.assets.pipeline_version(pipeline.ref)["content"]["code"]["files"]
        ledger.artifacts.blobs.delete(blob_key(code_file["sha256"]))
        job_id = str(ledger.jobs.submit("relay").id)
        assert _run(settings, job_id) == "failed"
        job = ledger.jobs.get(job_id)
    missing = f"no blob with sha256 {code_file['sha256']} in {artifact_location}"
    assert missing in job.steps["produce"]["error"], job.steps["produce"]
    assert "Traceback" not in job.error


def _onnx_model(ledger: Ledger, tmp_path: Path) -> str:
    directory = tmp_path / "sklearn"
    directory.mkdir()
    (directory / "model.pkl").write_bytes(pickle.dumps(LogisticRegression().fit(FEATURES, LABELS)))
    source = ledger.models.register_version("linear", directory, flavor="sklearn")
    return convert_model_version(ledger, source.ref, rows=100)[0].ref


def _direct(ledger: Ledger, model: str, tmp_path: Path, rows: np.ndarray) -> list[Any]:
    """ONNX Runtime's own outputs for ``rows`` (the model read back from the store)."""
    ledger.models.download_version(model, tmp_path / "onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
    return list(session.run(None, {"X": rows.astype(np.float32)}))


@OBJECT_STORES
def test_a_batch_job_scores_with_the_model_from_the_object_store_and_keeps_its_output_there(
    store: StoreFactory,
    artifact_location: str,
    ray_started: None,
    tmp_path: Path,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = store.settings(artifacts=artifact_location)
    rows = np.random.default_rng(7).standard_normal((2_000, 4)).astype(np.float32)
    parquet.write_table(pa.table({f"x{j}": rows[:, j] for j in range(4)}), tmp_path / "in.parquet")
    with Ledger(settings) as ledger:
        model = _onnx_model(ledger, tmp_path)
        ledger.endpoints.create("nightly", "batch")
        ledger.endpoints.deploy("nightly", "main", model, resources=ONE_REPLICA)
        ledger.endpoints.set_traffic("nightly", {"main": 100})
        invoked = ledger.batch_jobs.invoke("nightly", tmp_path / "in.parquet", mini_batch_size=500)
        job_id = str(invoked.id)
        assert _run(settings, job_id) == "succeeded", ledger.batch_jobs.get(job_id).error
        digest = ledger.batch_jobs.get(job_id).output_digest
        labels, probabilities = _direct(ledger, model, tmp_path, rows)
    assert digest in _stored_digests(artifact_location)

    # `ledger job output` reads the predictions from the store the environment names.
    monkeypatch.setenv("LEDGER_ARTIFACTS", artifact_location)
    written = cli("job", "output", job_id, str(tmp_path / "out" / "predictions.parquet"))
    assert written.code == 0, written.err
    predictions = parquet.read_table(tmp_path / "out" / "predictions.parquet")
    np.testing.assert_array_equal(predictions.column("label").to_numpy(), labels)
    for j in range(probabilities.shape[1]):
        column = predictions.column(f"probabilities_{j}").to_numpy()
        np.testing.assert_array_equal(column, probabilities[:, j])
    _assert_no_local_artifacts(settings)


@ON_SQLITE
@OBJECT_STORES
def test_an_online_deployments_replica_loads_its_model_from_the_object_store(
    store: StoreFactory, artifact_location: str, ray_started: None, tmp_path: Path
) -> None:
    settings = store.settings(artifacts=artifact_location)
    with running_api(settings) as api:
        with Ledger(settings) as ledger:
            model = _onnx_model(ledger, tmp_path)
            ledger.endpoints.create("faraway", "online")
            ledger.endpoints.deploy("faraway", "blue", model, resources=ONE_REPLICA)
            ledger.endpoints.set_traffic("faraway", {"blue": 100})
            labels, probabilities = _direct(ledger, model, tmp_path, FEATURES[:5])
        try:
            response = api.client.post(
                "/endpoints/faraway/score",
                json={"inputs": FEATURES[:5].tolist()},
                headers=api.auth("reader"),
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["deployment"], body["model"]) == ("blue", model)
            assert body["outputs"]["label"] == labels.tolist()
            np.testing.assert_allclose(body["outputs"]["probabilities"], probabilities, rtol=1e-6)

            def healthy() -> bool:
                endpoint = api.client.get("/endpoints/faraway", headers=api.auth("reader"))
                return bool(endpoint.json()["deployments"]["blue"]["health"] == "healthy")

            wait_for(healthy, 60, "the deployment's health")
        finally:
            if serve.status().applications.get(app_name("faraway")) is not None:
                serve.delete(app_name("faraway"))
    _assert_no_local_artifacts(settings)
