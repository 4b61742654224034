"""What an MLflow model ``source`` registers (``resolve_source``), for sources the proxy
holds: ``mlflow-artifacts:/`` folders in each spelling the client may send, registered
versions, and the sources refused (INVALID_PARAMETER_VALUE naming them). Runs and logged
models are in test_sources_tracking.py."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ledger.api.mlflow.errors import INVALID_PARAMETER_VALUE, MlflowError, answer_error
from ledger.api.mlflow.sources import ModelSource, resolve_source
from ledger.artifacts.paths import FileEntry
from ledger.artifacts.store import ArtifactStore
from ledger.errors import IntegrityViolationError
from ledger.ledger import Ledger
from tests.conftest import Api
from tests.mlflow.support import SKLEARN_MLMODEL, SKLEARN_SIGNATURE, upload_ok, write_tree

RUN = "0/9a8b7c/artifacts"
MODEL = {
    "MLmodel": SKLEARN_MLMODEL.encode(),
    "model.pkl": os.urandom(4000),
    "requirements.txt": b"scikit-learn\n",
    "sub/extra.json": b"{}",
}


def _entries(files: dict[str, bytes]) -> list[FileEntry]:
    return [
        FileEntry(path, hashlib.sha256(data).hexdigest(), len(data))
        for path, data in sorted(files.items())
    ]


def _resolve(api: Api, source: str, run_id: str = "", model_id: str = "") -> ModelSource:
    return resolve_source(api.client.app.state.services, source, run_id, model_id)


def _refused(api: Api, source: str) -> str:
    with pytest.raises(MlflowError) as refused:
        _resolve(api, source)
    assert refused.value.code == INVALID_PARAMETER_VALUE, refused.value.message
    assert source[:60] in refused.value.message
    return refused.value.message


def _blobs(api: Api) -> int:
    return sum(1 for p in (api.settings.artifacts_dir / "sha256").rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "source",
    [
        f"mlflow-artifacts:/{RUN}/model",
        f"mlflow-artifacts:/{RUN}/model/",
        f"mlflow-artifacts://127.0.0.1:5000/{RUN}/model",
        f"http://ledger.example:8080/api/2.0/mlflow-artifacts/artifacts/{RUN}/model",
        f"https://ledger.example/team/api/2.0/mlflow-artifacts/artifacts/{RUN}/model",
    ],
)
def test_an_uploaded_folder_with_an_mlmodel_file(api: Api, source: str) -> None:
    upload_ok(api, {f"{RUN}/model/{path}": data for path, data in MODEL.items()})
    upload_ok(api, {f"{RUN}/model-other/x": b"not part of it"})
    blobs = _blobs(api)
    found = _resolve(api, source)
    assert found.files == _entries(MODEL)
    assert found.flavor == "sklearn"
    assert found.signature == SKLEARN_SIGNATURE
    assert (found.run_id, found.model_id, found.metrics, found.params) == ("", "", {}, {})
    assert found.artifact_path == f"{RUN}/model"
    assert _blobs(api) == blobs  # the stored blobs are the version's files: no copy


@pytest.mark.parametrize(
    ("flavors", "flavor"),
    [
        ("  python_function: {}\n  onnx: {onnx_version: 1.17.0}\n", "onnx"),
        ("  python_function: {}\n  pytorch: {pytorch_version: 2.3.0}\n", "pytorch"),
        ("  python_function: {loader_module: my_loader}\n", "custom"),
    ],
)
def test_the_flavor_comes_from_the_mlmodel_file(api: Api, flavors: str, flavor: str) -> None:
    upload_ok(api, {f"{RUN}/m/MLmodel": f"flavors:\n{flavors}".encode(), f"{RUN}/m/w": b"w"})
    found = _resolve(api, f"mlflow-artifacts:/{RUN}/m")
    assert (found.flavor, found.signature) == (flavor, {})


def test_a_folder_without_an_mlmodel_file_is_custom(api: Api) -> None:
    upload_ok(api, {f"{RUN}/weights/a.bin": b"a", f"{RUN}/weights/b.bin": b"b"})
    found = _resolve(api, f"mlflow-artifacts:/{RUN}/weights")
    assert found.files == _entries({"a.bin": b"a", "b.bin": b"b"})
    assert (found.flavor, found.signature) == ("custom", {})


def test_a_single_file_source_is_that_file(api: Api) -> None:
    upload_ok(api, {f"{RUN}/model.onnx": b"onnx bytes"})
    found = _resolve(api, f"mlflow-artifacts:/{RUN}/model.onnx")
    assert found.files == _entries({"model.onnx": b"onnx bytes"})


@pytest.mark.parametrize(
    ("mlmodel", "fragment"),
    [
        (b"flavors: [unclosed\n", "not YAML"),
        (b"- a list\n", "not a YAML mapping"),
        (b"flavors: {}\nsignature:\n  inputs: '[{not json'\n", "not JSON"),
    ],
)
def test_an_unreadable_mlmodel_file_is_refused(api: Api, mlmodel: bytes, fragment: str) -> None:
    upload_ok(api, {f"{RUN}/bad/MLmodel": mlmodel})
    assert fragment in _refused(api, f"mlflow-artifacts:/{RUN}/bad")


@pytest.mark.parametrize(
    "source",
    [
        "s3://bucket/models/iris",
        "file:///tmp/model",
        "/tmp/model",
        "",
        f"mlflow-artifacts:/{RUN}/nothing-here",
        "mlflow-artifacts:/",
        "mlflow-artifacts:/0/%2e%2e/%2e%2e/etc",
        "http://ledger.example/api/2.0/mlflow/runs/get",
        "models:/iris/7",
        "models:/iris@nobody",
    ],
)
def test_a_source_this_server_does_not_hold_is_refused(api: Api, source: str) -> None:
    upload_ok(api, {f"{RUN}/model/MLmodel": SKLEARN_MLMODEL.encode()})
    _refused(api, source)


def test_a_registered_version_is_a_source_too(api: Api, tmp_path: Path) -> None:
    files = {"model.onnx": os.urandom(300), "MLmodel": b"flavors: {onnx: {}}\n"}
    with Ledger(api.settings) as ledger:
        ledger.models.register_version(
            "iris",
            write_tree(tmp_path / "v1", files),
            flavor="onnx",
            signature={"inputs": [{"name": "x"}]},
            metrics={"acc": 0.9},
        )
        ledger.models.set_alias("iris", "champion", 1)
    api.client.app.state.services.sync_views()  # written by another process
    for source in (
        "models:/iris/1",
        "models:/iris@champion",
        "mlflow-artifacts:/ledger/models/iris/1",
    ):
        found = _resolve(api, source)
        assert found.files == _entries(files)
        assert (found.flavor, found.signature) == ("onnx", {"inputs": [{"name": "x"}]})
        assert found.metrics == {"acc": 0.9}
        assert found.artifact_path == "ledger/models/iris/1"
    with Ledger(api.settings) as ledger:
        ledger.models.delete_version("iris:1")
    api.client.app.state.services.sync_views()
    assert "deleted" in _refused(api, "models:/iris/1")


def test_a_damaged_mlmodel_file_is_data_loss(api: Api) -> None:
    upload_ok(api, {f"{RUN}/model/MLmodel": SKLEARN_MLMODEL.encode()})
    digest = hashlib.sha256(SKLEARN_MLMODEL.encode()).hexdigest()
    blob = ArtifactStore(api.settings.artifacts_dir).blob_path(digest)
    blob.chmod(0o644)
    blob.write_bytes(SKLEARN_MLMODEL.encode().replace(b"sklearn", b"sklearm"))
    with pytest.raises(IntegrityViolationError, match="hashes to") as damaged:
        _resolve(api, f"mlflow-artifacts:/{RUN}/model")
    answer = answer_error(None, damaged.value)  # type: ignore[arg-type]
    assert answer.status_code == 500 and b'"DATA_LOSS"' in answer.body
