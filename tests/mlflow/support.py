"""What the MLflow tests share: calling the MLflow endpoints in-process as MLflow's client
does (GET fields in the query string, the others in a JSON body), the artifact proxy's
routes and MLflow's error format."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from projections.views import Views
from tests.conftest import Api

BASE = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"

SKLEARN_MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
  sklearn:
    pickled_model: model.pkl
    serialization_format: cloudpickle
mlflow_version: 3.17.2
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
  params: null
"""
SKLEARN_SIGNATURE = {
    "inputs": [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}],
    "outputs": [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}],
}


def chunks(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    """``data`` sent as a stream of chunks (chunked transfer: no Content-Length)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def upload(api: Api, path: str, content: bytes | Iterable[bytes], role: str = "contributor") -> Any:
    return api.client.put(f"{ARTIFACTS}/{path}", content=content, headers=api.auth(role))


def upload_ok(api: Api, files: dict[str, bytes]) -> None:
    for path, content in files.items():
        answer = upload(api, path, content)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {}


def download(api: Api, path: str, role: str = "reader") -> Any:
    return api.client.get(f"{ARTIFACTS}/{path}", headers=api.auth(role))


def listing(api: Api, path: str | None = None) -> Any:
    params = {} if path is None else {"path": path}
    answer = api.client.get(ARTIFACTS, params=params, headers=api.auth("reader"))
    assert answer.status_code == 200, answer.text
    return answer.json()


def error(answer: httpx.Response, status: int, code: str) -> str:
    """The message of an MLflow error answer with this status and code."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    body = answer.json()
    assert body["error_code"] == code, body
    assert set(body) == {"error_code", "message"}, body
    return str(body["message"])


@contextmanager
def app_views(api: Api) -> Iterator[Views]:
    """The running app's views, brought up to the head of the log."""
    services = api.client.app.state.services
    services.sync_views()
    with services.pool.views() as views:
        yield views


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    return root


def call(
    api: Api,
    method: str,
    path: str,
    role: str | None = "contributor",
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> httpx.Response:
    """``method`` on ``/api/2.0/mlflow/<path>`` with ``fields``, as ``role`` (None: no token)."""
    sent = {**(api.auth(role) if role else {}), **(headers or {})}
    if method == "GET":
        return api.client.get(f"{BASE}/{path}", params=fields, headers=sent)
    return api.client.request(method, f"{BASE}/{path}", json=fields, headers=sent)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def register(api: Api, name: str, **fields: str) -> int:
    """A version registered through the ledger's own API (as the contributor); its number."""
    response = api.client.post(
        f"/models/{name}/versions",
        files=[("files", ("model.bin", b"weights"))],
        data=fields,
        headers=api.auth("contributor"),
    )
    assert response.status_code == 201, response.text
    return int(response.json()["version"])


def create_model(api: Api, name: str, **fields: Any) -> dict[str, Any]:
    return ok(call(api, "POST", "registered-models/create", name=name, **fields))[
        "registered_model"
    ]
