"""Calling the ledger's MLflow endpoints in-process as MLflow's client does: GET fields in
the query string, the others in a JSON body."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Api

BASE = "/api/2.0/mlflow"


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


def error(response: httpx.Response, status: int, code: str) -> str:
    """The message of an MLflow error answer with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    return str(body["message"])


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
