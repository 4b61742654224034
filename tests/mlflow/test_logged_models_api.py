"""MLflow 3's logged model endpoints on the real app (in process), on SQLite and PostgreSQL:
the sequence ``log_model`` sends, searches, and errors in MLflow's format."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.mlflow.test_tracking_api import call, events, refused

MODELS = "/logged-models"


def test_the_requests_of_log_model_in_a_run(api: Api) -> None:
    """What ``mlflow.sklearn.log_model(..., registered_model_name=...)`` sends inside a run
    (checked against ``mlflow server`` through a logging proxy), up to the registry."""
    start = api.head()
    run_id = call(api, "POST", "/runs/create", json={"experiment_id": "0"})["run"]["info"]["run_id"]
    client_tags = [{"key": "mlflow.user", "value": "root"},
                   {"key": "mlflow.source.name", "value": "train.py"}]  # fmt: skip
    created = call(api, "POST", MODELS, json={
        "experiment_id": "0", "name": "model", "source_run_id": run_id,
        "params": [{"key": "C", "value": "1.0"}], "tags": client_tags,
    })["model"]  # fmt: skip
    info = created["info"]
    model_id = info["model_id"]
    assert info == {
        "model_id": model_id, "experiment_id": "0", "name": "model",
        "creation_timestamp_ms": info["creation_timestamp_ms"],
        "last_updated_timestamp_ms": info["creation_timestamp_ms"],
        "artifact_uri": f"mlflow-artifacts:/0/models/{model_id}/artifacts",
        "status": "LOGGED_MODEL_PENDING", "model_type": "", "source_run_id": run_id,
        "tags": client_tags,
    }  # fmt: skip
    assert created["data"] == {"params": [{"key": "C", "value": "1.0"}], "metrics": []}
    call(api, "POST", "/runs/outputs",
         json={"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]})  # fmt: skip
    call(api, "POST", "/runs/log-batch", json={"run_id": run_id, "metrics": [
        {"key": "acc", "value": 0.9, "timestamp": 5, "step": 0, "model_id": model_id,
         "run_id": run_id},
    ]})  # fmt: skip
    pending = call(api, "GET", f"{MODELS}/{model_id}", "reader")["model"]
    assert pending["data"]["metrics"] == [
        {"key": "acc", "value": 0.9, "timestamp": 5, "step": 0, "model_id": model_id,
         "run_id": run_id},
    ]  # fmt: skip
    ready = call(api, "PATCH", f"{MODELS}/{model_id}",
                 json={"model_id": model_id, "status": "LOGGED_MODEL_READY"})["model"]  # fmt: skip
    assert ready["info"]["status"] == "LOGGED_MODEL_READY"
    assert ready["info"]["last_updated_timestamp_ms"] >= info["creation_timestamp_ms"]
    versions = '[{"name": "iris", "version": 1}]'
    call(api, "PATCH", f"{MODELS}/{model_id}/tags",
         json={"tags": [{"key": "mlflow.modelVersions", "value": versions}]})  # fmt: skip
    run = call(api, "GET", "/runs/get", "reader", params={"run_id": run_id})["run"]
    assert run["outputs"] == {"model_outputs": [{"model_id": model_id, "step": 0}]}
    got = call(api, "GET", f"{MODELS}/{model_id}", "reader")["model"]["info"]
    assert {"key": "mlflow.modelVersions", "value": versions} in got["tags"]
    assert {e["actor"] for e in events(api, start)} == {"contributor-bot"}


def test_log_model_without_a_run_and_a_failed_upload(api: Api) -> None:
    created = call(api, "POST", MODELS, json={"experiment_id": "0", "name": "model"})["model"]
    model_id = created["info"]["model_id"]
    assert created["info"]["source_run_id"] == ""
    failed = call(api, "PATCH", f"{MODELS}/{model_id}", json={"status": 3})["model"]
    assert failed["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"
    call(api, "POST", f"{MODELS}/{model_id}/params",
         json={"params": [{"key": "alpha", "value": "0.1"}]})  # fmt: skip
    got = call(api, "GET", f"{MODELS}/{model_id}", "reader")["model"]
    assert got["data"]["params"] == [{"key": "alpha", "value": "0.1"}]


def test_logged_models_are_searched_tagged_and_deleted(api: Api) -> None:
    ids = []
    for name in ("alpha", "beta"):
        model = call(api, "POST", MODELS, json={
            "experiment_id": "0", "name": name, "tags": [{"key": "kind", "value": name}],
        })["model"]  # fmt: skip
        ids.append(model["info"]["model_id"])

    def search(**body: Any) -> list[str]:
        found = call(api, "POST", f"{MODELS}/search", "reader",
                     json={"experiment_ids": ["0"], **body})  # fmt: skip
        return [m["info"]["name"] for m in found["models"]]

    assert sorted(search()) == ["alpha", "beta"]
    assert search(filter="tags.kind = 'beta'") == ["beta"]
    assert search(filter="name LIKE 'al%'") == ["alpha"]
    assert search(order_by=[{"field_name": "name", "ascending": False}]) == ["beta", "alpha"]
    call(api, "DELETE", f"{MODELS}/{ids[0]}/tags/kind")
    assert search(filter="tags.kind = 'alpha'") == []
    call(api, "DELETE", f"{MODELS}/{ids[0]}")
    assert search() == ["beta"]
    refused(api, "GET", f"{MODELS}/{ids[0]}", 404, "RESOURCE_DOES_NOT_EXIST")


def test_logged_model_errors_in_mlflows_format(api: Api) -> None:
    model_id = call(api, "POST", MODELS, json={"experiment_id": "0", "name": "m"})["model"]["info"][
        "model_id"
    ]
    missing = (404, "RESOURCE_DOES_NOT_EXIST")
    assert "logged model 'm-nope' does not exist" in refused(
        api, "GET", f"{MODELS}/m-nope", *missing
    )
    refused(api, "PATCH", f"{MODELS}/m-nope", *missing, json={"status": "LOGGED_MODEL_READY"})
    refused(api, "DELETE", f"{MODELS}/{model_id}/tags/none", *missing)
    refused(api, "POST", MODELS, *missing, json={"experiment_id": "0", "source_run_id": "f00"})
    refused(api, "POST", MODELS, *missing, json={"experiment_id": "42"})
    invalid = (400, "INVALID_PARAMETER_VALUE")
    for body, fragment in [
        ({"experiment_id": "0", "name": "a.b"}, "invalid logged model name"),
        ({"experiment_id": "0", "tags": [{"key": "k", "value": "\x00"}]}, "NUL"),
        ({"name": "x"}, "experiment_id: Field required"),
    ]:
        message = refused(api, "POST", MODELS, *invalid, json=body)
        assert fragment in message, message
    refused(api, "PATCH", f"{MODELS}/{model_id}", *invalid,
            json={"status": "LOGGED_MODEL_PENDING"})  # fmt: skip
    refused(api, "GET", f"{MODELS}/m-%00", *invalid)
    assert "by dataset" in refused(
        api, "POST", f"{MODELS}/search", *invalid, headers=api.auth("reader"),
        json={"experiment_ids": ["0"], "datasets": [{"dataset_name": "d"}]},
    )  # fmt: skip
    assert "by metrics" in refused(
        api, "POST", f"{MODELS}/search", *invalid, headers=api.auth("reader"),
        json={"experiment_ids": ["0"], "filter": "metrics.acc > 1"},
    )  # fmt: skip
    refused(api, "PATCH", f"{MODELS}/{model_id}", 403, "PERMISSION_DENIED",
            headers=api.auth("reader"), json={"status": "LOGGED_MODEL_READY"})  # fmt: skip
