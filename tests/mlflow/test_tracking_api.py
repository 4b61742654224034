"""MLflow's experiment and run endpoints on the real app (in process), on SQLite and
PostgreSQL: the JSON MLflow's client reads, its error format, and the audited events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

API = "/api/2.0/mlflow"


def call(api: Api, method: str, path: str, role: str = "contributor", **kwargs: Any) -> Any:
    """The JSON of a 200 answer (fails the test on any other status)."""
    response = api.client.request(method, API + path, headers=api.auth(role), **kwargs)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def refused(api: Api, method: str, path: str, status: int, code: str, **kwargs: Any) -> str:
    """An MLflow error, with nothing written; its message."""
    kwargs.setdefault("headers", api.auth("contributor"))
    head = api.head()
    response = api.client.request(method, API + path, **kwargs)
    assert response.status_code == status, (path, response.text)
    body = response.json()
    assert body["error_code"] == code, body
    assert api.head() == head, f"a refused {method} {path} wrote events"
    return str(body["message"])


def events(api: Api, after: int) -> list[dict[str, Any]]:
    answer = api.client.get(f"/events?after={after}&limit=1000", headers=api.auth("reader"))
    return list(answer.json()["items"])


def test_auth_roles_and_the_actor_on_every_event(api: Api) -> None:
    start = api.head()
    create = ("POST", "/experiments/create")
    assert "bearer token" in refused(api, *create, 401, "UNAUTHENTICATED", headers={},
                                     json={"name": "x"})  # fmt: skip
    message = refused(api, *create, 403, "PERMISSION_DENIED", headers=api.auth("reader"),
                      json={"name": "x"})  # fmt: skip
    assert "needs contributor" in message
    created = call(api, *create, json={"name": "x", "tags": [{"key": "a", "value": "b"}]})
    assert created == {"experiment_id": "1"}
    got = call(api, "GET", "/experiments/get", "reader", params={"experiment_id": "1"})
    assert got["experiment"]["tags"] == [{"key": "a", "value": "b"}]
    written = events(api, start)
    assert [e["type"] for e in written] == [  # the directory and the default, on first use
        "ExperimentDirectory.Created", "ExperimentDirectory.NameClaimed", "Experiment.Created",
        "Experiment.Created",
    ]  # fmt: skip
    assert {e["actor"] for e in written} == {"contributor-bot"}


def test_experiments_get_create_search_update_delete_restore_and_tags(api: Api) -> None:
    default = call(api, "GET", "/experiments/get", "reader", params={"experiment_id": "0"})
    assert default["experiment"] == {
        "experiment_id": "0", "name": "Default", "artifact_location": "mlflow-artifacts:/0",
        "lifecycle_stage": "active", "tags": [],
    }  # fmt: skip
    experiment_id = call(api, "POST", "/experiments/create", json={"name": "churn"})[
        "experiment_id"
    ]
    by_name = call(
        api, "GET", "/experiments/get-by-name", "reader", params={"experiment_name": "churn"}
    )["experiment"]
    assert by_name["experiment_id"] == experiment_id == "1"
    assert by_name["artifact_location"] == "mlflow-artifacts:/1"
    assert isinstance(by_name["creation_time"], int) and by_name["last_update_time"] >= 0
    call(api, "POST", "/experiments/update", json={"experiment_id": "1", "new_name": "churn2"})
    call(api, "POST", "/experiments/set-experiment-tag",
         json={"experiment_id": "1", "key": "team", "value": "ml"})  # fmt: skip
    call(api, "POST", "/experiments/delete", json={"experiment_id": "1"})
    searched = call(api, "POST", "/experiments/search", "reader", json={"view_type": "ALL"})
    assert sorted(e["name"] for e in searched["experiments"]) == ["Default", "churn2"]
    deleted = call(api, "GET", "/experiments/search", "reader", params={"view_type": "2"})
    assert [e["lifecycle_stage"] for e in deleted["experiments"]] == ["deleted"]
    paged = call(api, "POST", "/experiments/search", "reader",
                 json={"view_type": 3, "max_results": 1, "order_by": ["name ASC"]})  # fmt: skip
    assert [e["name"] for e in paged["experiments"]] == ["Default"]
    next_page = {"view_type": 3, "order_by": ["name"], "page_token": paged["next_page_token"]}
    rest = call(api, "POST", "/experiments/search", "reader", json=next_page)
    assert [e["name"] for e in rest["experiments"]] == ["churn2"]
    call(api, "POST", "/experiments/restore", json={"experiment_id": "1"})
    call(
        api,
        "POST",
        "/experiments/delete-experiment-tag",
        json={"experiment_id": "1", "key": "team"},
    )
    restored = call(api, "GET", "/experiments/get", "reader", params={"experiment_id": "1"})
    assert restored["experiment"]["lifecycle_stage"] == "active"
    assert restored["experiment"]["tags"] == []


def test_experiment_errors_in_mlflows_format(api: Api) -> None:
    call(api, "POST", "/experiments/create", json={"name": "churn"})
    assert "experiment '7' does not exist" in refused(
        api, "GET", "/experiments/get?experiment_id=7", 404, "RESOURCE_DOES_NOT_EXIST"
    )
    refused(api, "GET", "/experiments/get-by-name?experiment_name=nope", 404,
            "RESOURCE_DOES_NOT_EXIST")  # fmt: skip
    assert "is taken by experiment 1" in refused(
        api, "POST", "/experiments/create", 400, "RESOURCE_ALREADY_EXISTS", json={"name": "churn"}
    )
    assert "an experiment id is an integer" in refused(
        api, "GET", "/experiments/get?experiment_id=abc", 400, "INVALID_PARAMETER_VALUE"
    )
    for body, fragment in [
        ({}, "name: Field required"),
        ({"name": "a\x00b"}, "NUL"),
        ({"name": "   "}, "must not be empty"),
        ({"name": "x", "artifact_location": "s3://bucket/x"}, "not served by the ledger"),
        ({"name": "x", "tags": [{"key": "../a", "value": "b"}]}, "would resolve to"),
    ]:
        message = refused(api, "POST", "/experiments/create", 400, "INVALID_PARAMETER_VALUE",
                          json=body)  # fmt: skip
        assert fragment in message, message
    assert "NUL" in refused(
        api, "GET", "/experiments/get-by-name?experiment_name=a%00b", 400, "INVALID_PARAMETER_VALUE"
    )
    surrogate = b'{"name": "a\\ud800b"}'
    assert "surrogate" in refused(
        api, "POST", "/experiments/create", 400, "INVALID_PARAMETER_VALUE", content=surrogate,
        headers={**api.auth("contributor"), "Content-Type": "application/json"},
    )  # fmt: skip
    refused(api, "POST", "/experiments/search", 400, "INVALID_PARAMETER_VALUE",
            headers=api.auth("reader"), json={"filter": "name = 'x' OR name = 'y'"})  # fmt: skip


def _run(api: Api, **body: Any) -> dict[str, Any]:
    created = call(api, "POST", "/runs/create", json={"experiment_id": "0", **body})
    return dict(created["run"])


def test_a_run_is_created_logged_to_and_read_back(api: Api) -> None:
    run = _run(api, user_id="root", start_time="1000", tags=[{"key": "a", "value": "b"}])
    info = run["info"]
    run_id = info["run_id"]
    assert info == {
        "run_id": run_id, "run_uuid": run_id, "run_name": info["run_name"],
        "experiment_id": "0", "user_id": "root", "status": "RUNNING", "start_time": 1000,
        "artifact_uri": f"mlflow-artifacts:/0/{run_id}/artifacts", "lifecycle_stage": "active",
    }  # fmt: skip
    assert {"key": "mlflow.runName", "value": info["run_name"]} in run["data"]["tags"]
    ids = {"run_id": run_id, "run_uuid": run_id}
    call(api, "POST", "/runs/log-parameter", json={**ids, "key": "C", "value": "1.0"})
    call(api, "POST", "/runs/log-metric",
         json={**ids, "key": "acc", "value": 0.5, "timestamp": 5, "step": 0})  # fmt: skip
    call(api, "POST", "/runs/log-metric",
         json={**ids, "key": "loss", "value": "NaN", "timestamp": "6", "step": "1"})  # fmt: skip
    call(api, "POST", "/runs/set-tag", json={**ids, "key": "team", "value": "ml"})
    call(api, "POST", "/runs/log-batch", json={
        "run_id": run_id,
        "metrics": [{"key": "acc", "value": 0.9, "timestamp": 7, "step": 1},
                    {"key": "gain", "value": "Infinity", "timestamp": 7}],
        "params": [{"key": "solver", "value": "lbfgs"}],
        "tags": [{"key": "phase", "value": "train"}],
    })  # fmt: skip
    dataset = {"name": "iris", "digest": "2bf3ace3", "source_type": "code", "source": "{}",
               "schema": "{\"a\": 1}", "profile": "{}"}  # fmt: skip
    context = [{"key": "mlflow.data.context", "value": "training"}]
    call(api, "POST", "/runs/log-inputs",
         json={"run_id": run_id, "datasets": [{"tags": context, "dataset": dataset}]})  # fmt: skip
    call(api, "POST", "/runs/delete-tag", json={"run_id": run_id, "key": "a"})
    finished = call(api, "POST", "/runs/update",
                    json={**ids, "status": "FINISHED", "end_time": 9000})  # fmt: skip
    assert finished["run_info"]["status"] == "FINISHED"
    assert finished["run_info"]["end_time"] == 9000
    got = call(api, "GET", "/runs/get", "reader", params={"run_uuid": run_id})["run"]
    assert got["data"]["params"] == [
        {"key": "C", "value": "1.0"}, {"key": "solver", "value": "lbfgs"}
    ]  # fmt: skip
    assert got["data"]["metrics"] == [
        {"key": "acc", "value": 0.9, "timestamp": 7, "step": 1},
        {"key": "gain", "value": "Infinity", "timestamp": 7, "step": 0},
        {"key": "loss", "value": "NaN", "timestamp": 6, "step": 1},
    ]
    tags = {t["key"]: t["value"] for t in got["data"]["tags"]}
    assert tags["team"] == "ml" and tags["phase"] == "train" and "a" not in tags
    assert got["inputs"]["dataset_inputs"] == [{"tags": context, "dataset": dataset}]
    query = {"run_id": run_id, "metric_key": "acc", "max_results": 25000}
    history = call(api, "GET", "/metrics/get-history", "reader", params=query)
    assert [(m["value"], m["step"]) for m in history["metrics"]] == [(0.5, 0), (0.9, 1)]


def test_run_errors_in_mlflows_format(api: Api) -> None:
    run_id = _run(api)["info"]["run_id"]
    call(api, "POST", "/runs/log-parameter", json={"run_id": run_id, "key": "C", "value": "1"})
    log_param = ("POST", "/runs/log-parameter", 400, "INVALID_PARAMETER_VALUE")
    assert "write-once" in refused(api, *log_param, json={"run_id": run_id, "key": "C",
                                                          "value": "2"})  # fmt: skip
    assert "run_id" in refused(api, *log_param, json={"key": "C", "value": "2"})
    missing = ("RESOURCE_DOES_NOT_EXIST",)
    assert "run 'f00' does not exist" in refused(api, "GET", "/runs/get?run_id=f00", 404, *missing)
    refused(api, "POST", "/runs/log-metric", 404, *missing,
            json={"run_id": "f00", "key": "a", "value": 1, "timestamp": 1})  # fmt: skip
    refused(api, "GET", "/metrics/get-history?run_id=f00&metric_key=a", 404, *missing)
    bad = ("POST", "/runs/log-batch", 400, "INVALID_PARAMETER_VALUE")
    for body, fragment in [
        ({"metrics": [{"key": "a", "value": "high", "timestamp": 1}]}, "not a number"),
        ({"metrics": [{"key": "a", "value": True, "timestamp": 1}]}, "metric value is a number"),
        ({"metrics": [{"key": "a", "value": 1}]}, "timestamp: Field required"),
        ({"metrics": [{"key": "a", "value": 1, "timestamp": -1}]}, "must not be negative"),
        ({"metrics": [{"key": "a", "value": 1, "timestamp": 2**64}]}, "64-bit"),
        ({"params": [{"key": "x", "value": "a\x00"}]}, "NUL"),
        ({"tags": [{"key": "bad;key", "value": "v"}]}, "names may only contain"),
        ({"params": [{"key": f"p{n}", "value": "v"} for n in range(101)]}, "at most 100"),
    ]:
        message = refused(api, *bad, json={"run_id": run_id, **body})
        assert fragment in message, message
    refused(api, "POST", "/runs/update", 400, "INVALID_PARAMETER_VALUE",
            json={"run_id": run_id, "status": "DANCING"})  # fmt: skip
    refused(api, "POST", "/runs/delete-tag", 404, *missing, json={"run_id": run_id, "key": "x"})
    refused(api, "POST", "/runs/outputs", 404, *missing,
            json={"run_id": run_id, "models": [{"model_id": "m-0", "step": 0}]})  # fmt: skip
    refused(api, "POST", "/runs/create", 404, *missing, json={"experiment_id": "5"})
    call(api, "POST", "/runs/delete", json={"run_id": run_id})
    assert "is deleted" in refused(api, *log_param, json={"run_id": run_id, "key": "D",
                                                          "value": "1"})  # fmt: skip
    gone = call(api, "GET", "/runs/get", "reader", params={"run_id": run_id})
    assert gone["run"]["info"]["lifecycle_stage"] == "deleted"
    call(api, "POST", "/runs/restore", json={"run_id": run_id})
    refused(api, "POST", "/runs/log-model", 404, "ENDPOINT_NOT_FOUND",
            json={"run_id": run_id, "model_json": "{}"})  # fmt: skip


def test_runs_are_searched_by_filter_and_order(api: Api) -> None:
    for number, acc in enumerate([0.5, 0.9, 0.7]):
        run_id = _run(api, run_name=f"r{number}", start_time=1000 + number)["info"]["run_id"]
        call(api, "POST", "/runs/log-metric",
             json={"run_id": run_id, "key": "acc", "value": acc, "timestamp": 1})  # fmt: skip

    def names(**body: Any) -> list[str]:
        found = call(api, "POST", "/runs/search", "reader", json={"experiment_ids": ["0"], **body})
        return [run["info"]["run_name"] for run in found.get("runs", [])]

    assert names() == ["r2", "r1", "r0"]
    assert names(filter="metrics.acc >= 0.7", order_by=["metrics.acc ASC"]) == ["r2", "r1"]
    assert names(filter="attributes.run_name = 'r0'") == ["r0"]
    assert names(run_view_type="DELETED_ONLY") == []
    first = call(api, "POST", "/runs/search", "reader",
                 json={"experiment_ids": ["0"], "max_results": 2})  # fmt: skip
    assert len(first["runs"]) == 2 and first["next_page_token"]
    message = refused(api, "POST", "/runs/search", 400, "INVALID_PARAMETER_VALUE",
                      headers=api.auth("reader"),
                      json={"experiment_ids": ["0"], "filter": "datasets.name = 'x'"})  # fmt: skip
    assert "unknown entity 'datasets'" in message
    refused(api, "POST", "/runs/search", 400, "INVALID_PARAMETER_VALUE",
            headers=api.auth("reader"), json={"max_results": 50001})  # fmt: skip


@pytest.mark.parametrize("path", ["/runs/log-batch", "/runs/set-tag"])
def test_a_body_that_is_not_json_is_a_client_error(api: Api, path: str) -> None:
    refused(api, "POST", path, 400, "INVALID_PARAMETER_VALUE", content=b"{not json",
            headers={**api.auth("contributor"), "Content-Type": "application/json"})  # fmt: skip
