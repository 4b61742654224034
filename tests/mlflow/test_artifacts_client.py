"""The real MLflow client's artifact repository against a real ``ledger serve``: it logs,
lists, downloads and deletes through the proxy, and loads a registered version's files
with pyfunc. And an upload streamed to a real uvicorn server is never whole in memory."""

from __future__ import annotations

import filecmp
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests

from ledger.ledger import Ledger
from tests.artifacts.test_verified_downloads import _uvicorn
from tests.conftest import StoreFactory
from tests.mlflow.support import ARTIFACTS, write_tree
from tests.server_support import serving

RUN_ROOT = "mlflow-artifacts:/0/5d0e7c3a/artifacts"
FILES = {
    "weights.bin": os.urandom(3 * 1024 * 1024 + 5),
    "empty.bin": b"",
    "MLmodel": b"flavors: {}\n",
    "sub/deeper/vocab.txt": b"a\nb\nc\n",
}


def _same_tree(left: Path, right: Path) -> bool:
    found = sorted(p.relative_to(right).as_posix() for p in right.rglob("*") if p.is_file())
    assert found == sorted(FILES)
    return all(filecmp.cmp(left / name, right / name, shallow=False) for name in FILES)


@pytest.fixture
def tokens(store: StoreFactory) -> dict[str, str]:
    with Ledger(store.settings()) as ledger:
        return {role: ledger.tokens.create(f"{role}-ci", role).secret
                for role in ("reader", "contributor")}  # fmt: skip


def test_the_mlflow_client_logs_lists_downloads_and_deletes(
    store: StoreFactory,
    tokens: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow.artifacts
    from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

    local = write_tree(tmp_path / "local", FILES)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["contributor"])
    with serving(store) as url:
        repo = MlflowArtifactsRepository(RUN_ROOT, tracking_uri=url)
        repo.log_artifacts(str(local), "model")
        assert [(f.path, f.is_dir) for f in repo.list_artifacts()] == [("model", True)]
        listed = {f.path: (f.is_dir, f.file_size) for f in repo.list_artifacts("model")}
        assert listed == {
            "model/MLmodel": (False, len(FILES["MLmodel"])),
            "model/empty.bin": (False, 0),
            "model/sub": (True, None),
            "model/weights.bin": (False, len(FILES["weights.bin"])),
        }
        assert repo.list_artifacts("model/nothing") == []

        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["reader"])
        (tmp_path / "fetched").mkdir()
        fetched = repo.download_artifacts("model", str(tmp_path / "fetched"))
        assert _same_tree(local, Path(fetched))
        one = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{RUN_ROOT}/model/weights.bin",
            dst_path=str(tmp_path / "one"),
            tracking_uri=url,
        )
        assert Path(one).read_bytes() == FILES["weights.bin"]
        with pytest.raises(requests.HTTPError, match="PERMISSION_DENIED"):
            repo.log_artifact(str(local / "MLmodel"), "model")

        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["contributor"])
        repo.delete_artifacts("model/sub")
        assert "model/sub" not in {f.path for f in repo.list_artifacts("model")}


def test_pyfunc_loads_a_registered_version_through_the_proxy(
    store: StoreFactory,
    tokens: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    features = np.random.default_rng(7).random((40, 3))
    model = LogisticRegression().fit(features, features[:, 0] > 0.5)
    mlflow.sklearn.save_model(model, str(tmp_path / "iris"))
    with Ledger(store.settings()) as ledger:
        ledger.models.register_version("iris", tmp_path / "iris", flavor="sklearn")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["reader"])
    with serving(store) as url:
        mlflow.set_tracking_uri(url)
        try:
            loaded = mlflow.pyfunc.load_model("mlflow-artifacts:/ledger/models/iris/1")
        finally:
            mlflow.set_tracking_uri(None)
    assert (loaded.predict(features) == model.predict(features)).all()


def _body(total: int, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    block = os.urandom(chunk)
    for _ in range(total // chunk):
        yield block


def test_an_upload_is_streamed_never_whole_in_memory(store: StoreFactory) -> None:
    settings = store.settings()
    with Ledger(settings) as ledger:
        token = ledger.tokens.create("uploader", "contributor").secret
    total = 64 * 1024 * 1024
    with _uvicorn(settings) as (base, _), httpx.Client(timeout=60) as client:
        tracemalloc.start()
        try:
            answer = client.put(
                f"{base}{ARTIFACTS}/0/big/artifacts/weights.bin",
                content=_body(total),
                headers={"Authorization": f"Bearer {token}"},
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert answer.status_code == 200, answer.text
        listed = client.get(
            f"{base}{ARTIFACTS}",
            params={"path": "0/big/artifacts"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert listed.json()["files"] == [{"path": "weights.bin", "is_dir": False, "file_size": total}]
    assert peak < total / 4, f"the upload held {peak:,} bytes at once"
