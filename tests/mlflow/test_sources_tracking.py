"""Sources made by MLflow's tracking (``runs:/<run>/<path>`` and ``models:/m-<id>``): the
real client logs a run and a model to a real ``ledger serve``; ``resolve_source`` then
finds the files the client uploaded and the run's latest metrics, parameters and inputs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ledger.api.mlflow.errors import RESOURCE_DOES_NOT_EXIST, MlflowError
from ledger.api.mlflow.sources import ModelSource, resolve_source
from ledger.api.services import ApiServices
from ledger.artifacts.paths import FileEntry
from ledger.errors import NotFoundError
from ledger.ledger import Ledger
from tests.conftest import StoreFactory
from tests.server_support import serving

FEATURES = np.random.default_rng(3).random((40, 3))
LABELS = (FEATURES[:, 0] > 0.5).astype(int)


def _model() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(FEATURES, LABELS)


def _entries(root: Path) -> list[FileEntry]:
    return [
        FileEntry(p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest(),
                  p.stat().st_size)
        for p in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix())
        if p.is_file()
    ]  # fmt: skip


@pytest.fixture
def tracking(store: StoreFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real `ledger serve` the MLflow client logs to, as a contributor."""
    import mlflow

    with Ledger(store.settings()) as ledger:
        token = ledger.tokens.create("trainer", "contributor").secret
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with serving(store) as url:
        mlflow.set_tracking_uri(url)
        try:
            yield url
        finally:
            mlflow.set_tracking_uri(None)


def _resolve(store: StoreFactory, source: str, run_id: str = "", model_id: str = "") -> ModelSource:
    """``resolve_source`` in an app of this process on the store the server wrote."""
    services = ApiServices(store.settings())
    try:
        services.sync_views()
        return resolve_source(services, source, run_id, model_id)
    finally:
        services.close()


def test_a_runs_source_is_the_runs_artifacts_with_its_record(
    store: StoreFactory, tracking: str, tmp_path: Path
) -> None:
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.entities import Dataset, DatasetInput, Metric, Param
    from mlflow.models import infer_signature

    client = MlflowClient(tracking)
    run = client.create_run(client.create_experiment("iris-training"))
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric("acc", 0.7, 1000, 0), Metric("acc", 0.93, 2000, 1),
                 Metric("loss", 0.2, 1000, 0)],
        params=[Param("C", "0.5")],
    )  # fmt: skip
    dataset = Dataset("iris", "d1g35t", "s3", '{"uri": "s3://bucket/iris.csv"}')
    client.log_inputs(run_id, [DatasetInput(dataset)])
    model_dir = tmp_path / "model"
    signature = infer_signature(FEATURES, LABELS)
    mlflow.sklearn.save_model(_model(), str(model_dir), signature=signature)
    client.log_artifacts(run_id, str(model_dir), "model")

    for source, given_run in [
        (f"runs:/{run_id}/model", ""),
        (f"{client.get_run(run_id).info.artifact_uri}/model", run_id),
    ]:
        found = _resolve(store, source, given_run)
        assert found.files == _entries(model_dir)
        assert found.flavor == "sklearn"
        assert found.signature["inputs"][0]["tensor-spec"]["shape"] == [-1, 3]
        assert found.run_id == run_id
        assert found.metrics == {"acc": 0.93, "loss": 0.2}
        assert found.params == {"C": "0.5"}
        assert found.datasets == [
            {"name": "iris", "digest": "d1g35t", "source_type": "s3",
             "source": '{"uri": "s3://bucket/iris.csv"}'}
        ]  # fmt: skip

    with pytest.raises(NotFoundError):
        _resolve(store, "runs:/0123456789abcdef0123456789abcdef/model")


def test_a_logged_model_source_is_its_artifact_location_and_its_run(
    store: StoreFactory, tracking: str
) -> None:
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    with mlflow.start_run() as run:
        mlflow.log_param("C", "0.5")
        mlflow.log_metric("acc", 0.9)
        info = mlflow.sklearn.log_model(
            _model(), name="model", signature=infer_signature(FEATURES, LABELS)
        )
    model_id = info.model_id
    assert model_id.startswith("m-")

    for given in (model_id, ""):
        found = _resolve(store, f"models:/{model_id}", "", given)
        assert "MLmodel" in {f.path for f in found.files}
        assert found.flavor == "sklearn"
        assert found.signature["outputs"][0]["tensor-spec"]["dtype"] == "int64"
        assert (found.model_id, found.run_id) == (model_id, run.info.run_id)
        assert (found.metrics, found.params) == ({"acc": 0.9}, {"C": "0.5"})

    with pytest.raises((NotFoundError, MlflowError)) as unknown:
        _resolve(store, "models:/m-00000000000000000000000000000000")
    if isinstance(unknown.value, MlflowError):
        assert unknown.value.code == RESOURCE_DOES_NOT_EXIST
