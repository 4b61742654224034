"""Online endpoints: Ray Serve applications of ONNX models, through the HTTP API and Serve's
own proxy (both stores).

Real Ray and Ray Serve (the session's local instance), real ONNX Runtime, models made with
scikit-learn and converted with skl2onnx.
"""

from __future__ import annotations

import json
import pickle
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from ray import serve
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from executors.onnx_conversion import convert_model_version
from executors.serving.serve_app import app_name
from ledger.api import create_app
from ledger.domain.endpoint import Endpoint, Resources
from ledger.ledger import Ledger
from ledger.specs import EnvironmentSpec
from tests.conftest import Api, StoreFactory, assert_user_error, running_api, wait_for

SMALL: Resources = {"cpus": 0.2, "gpus": 0, "memory_mb": 256, "replicas": 1}
ROWS, _ = make_classification(n_samples=300, n_features=4, random_state=3)


def _onnx_model(ledger: Ledger, tmp_path: Path, name: str, estimator: Any) -> str:
    features, labels = make_classification(n_samples=300, n_features=4, random_state=3)
    directory = tmp_path / name
    directory.mkdir()
    (directory / "model.pkl").write_bytes(pickle.dumps(estimator.fit(features, labels)))
    source = ledger.models.register_version(name, directory, flavor="sklearn")
    return convert_model_version(ledger, source.ref, rows=100)[0].ref


@pytest.fixture
def shop(api: Api, tmp_path: Path, ray_started: None) -> Iterator[dict[str, str]]:
    """Endpoint shop: blue 90 %, green 10 %, shadow mirrored at 50 %. Its Serve application
    is deleted afterwards (the session's Ray outlives the test's store)."""
    ledger = Ledger(api.settings)
    models = {
        "blue": _onnx_model(ledger, tmp_path, "linear", LogisticRegression()),
        "green": _onnx_model(ledger, tmp_path, "tree", DecisionTreeClassifier(max_depth=3)),
        "shadow": _onnx_model(ledger, tmp_path, "deep", DecisionTreeClassifier()),
    }
    ledger.endpoints.create("shop", "online")
    for deployment, model in models.items():
        ledger.endpoints.deploy("shop", deployment, model, resources=SMALL)
    ledger.endpoints.set_traffic("shop", {"blue": 90, "green": 10})
    ledger.endpoints.set_mirror("shop", {"shadow": 50})
    ledger.close()
    yield models
    if serve.status().applications.get(app_name("shop")) is not None:
        serve.delete(app_name("shop"))


def _ingress_counts(kind: str) -> dict[str, int]:
    counts: dict[str, dict[str, int]] = (
        serve.get_app_handle(app_name("shop")).counts.remote().result()
    )
    return counts[kind]


def _score(api: Api, rows: Any, **headers: str) -> Any:
    return api.client.post(
        "/endpoints/shop/score", json={"inputs": rows}, headers=api.auth("reader") | headers
    )


def test_traffic_split_mirror_and_health(api: Api, shop: dict[str, str]) -> None:
    answered: Counter[str] = Counter()
    for i in range(2_000):
        response = _score(api, ROWS[i % 300 : i % 300 + 1].tolist())
        assert response.status_code == 200, response.text
        body = response.json()
        answered[body["deployment"]] += 1
        assert body["model"] == shop[body["deployment"]]
        assert body["outputs"]["label"] in ([0], [1])
    assert set(answered) == {"blue", "green"}  # the shadow never answers
    assert 7.0 <= 100 * answered["green"] / 2_000 <= 13.0, answered
    assert _ingress_counts("served") == answered  # one ingress replica answered them all
    # The copies are scored in the background: wait for the bulk of them to be answered.
    copies = lambda: _ingress_counts("mirrored").get("shadow", 0)  # noqa: E731
    wait_for(lambda: copies() >= 850, 60, "the mirrored copies")
    assert 850 <= copies() <= 1_150  # 50 % of 2,000
    assert not _ingress_counts("copy_failures"), _ingress_counts("last_copy_failure")

    endpoint = api.client.get("/endpoints/shop", headers=api.auth("reader")).json()
    for deployment in endpoint["deployments"].values():
        assert deployment["health"] == "healthy"
        assert "1 replica(s) on CPUExecutionProvider" in deployment["health_detail"]

    targeted = _score(api, ROWS[:3].tolist(), **{"X-Ledger-Deployment": "shadow"})
    assert (
        targeted.json()["deployment"] == "shadow" and len(targeted.json()["outputs"]["label"]) == 3
    )
    probabilities = np.asarray(targeted.json()["outputs"]["probabilities"])
    assert probabilities.shape == (3, 2) and np.allclose(probabilities.sum(axis=1), 1.0)


def test_servers_share_one_application_and_serves_proxy_answers_the_same(
    api: Api, shop: dict[str, str]
) -> None:
    """A second API server on the same ledger scores through the same Serve application:
    no replica is added or restarted. Serve's own HTTP proxy answers as the API does."""
    rows = ROWS[:3].tolist()
    green = {"X-Ledger-Deployment": "green"}
    first = _score(api, rows, **green)
    assert first.status_code == 200, first.text
    replicas = _replica_ids(shop)
    with TestClient(create_app(api.settings)) as second:
        again = second.post(
            "/endpoints/shop/score", json={"inputs": rows}, headers=api.auth("reader") | green
        )
    assert again.status_code == 200 and again.json() == first.json()
    assert _replica_ids(shop) == replicas
    deployments = serve.status().applications[app_name("shop")].deployments
    assert {name: dict(d.replica_states) for name, d in deployments.items()} == {
        name: {"RUNNING": 1} for name in ("_ingress", *shop)
    }

    proxy = f"http://127.0.0.1:{api.settings.serve_port}/endpoints/shop/score"
    through_serve = httpx.post(proxy, json={"inputs": rows}, headers=green, timeout=30)
    assert through_serve.status_code == 200 and through_serve.json() == first.json()
    ghost = httpx.post(proxy, json={"inputs": rows}, headers={"X-Ledger-Deployment": "ghost"})
    assert ghost.status_code == 404 and "no deployment 'ghost'" in ghost.json()["detail"]
    shape = httpx.post(proxy, json={"inputs": [[1.0, 2.0]]}, headers=green, timeout=30)
    assert shape.status_code == 400 and "shape [1, 2]" in shape.json()["detail"]
    not_json = httpx.post(proxy, content=b"[[1, 2", headers=green)
    assert not_json.status_code == 400 and '{"inputs"' in not_json.json()["detail"]


def _replica_ids(deployments: dict[str, str]) -> dict[str, str]:
    """The replica serving each deployment (one each)."""
    return {
        name: serve.get_deployment_handle(name, app_name("shop"))
        .describe.remote()
        .result()["replica"]
        for name in deployments
    }


def test_scoring_errors(api: Api, shop: dict[str, str], tmp_path: Path) -> None:
    wrong_shape = _score(api, [[1.0, 2.0]])
    assert wrong_shape.status_code == 400 and "shape [1, 2]" in wrong_shape.json()["detail"]
    not_numbers = _score(api, [["a", "b", "c", "d"]])
    assert not_numbers.status_code == 400
    ghost = _score(api, ROWS[:1].tolist(), **{"X-Ledger-Deployment": "ghost"})
    assert ghost.status_code == 404
    missing = api.client.post("/endpoints/nowhere/score", json={"inputs": [[1, 2, 3, 4]]},
                              headers=api.auth("reader"))  # fmt: skip
    assert missing.status_code == 404
    anonymous = api.client.post("/endpoints/shop/score", json={"inputs": [[1, 2, 3, 4]]})
    assert anonymous.status_code == 401

    ledger = Ledger(api.settings)
    pickled = tmp_path / "raw"
    pickled.mkdir()
    (pickled / "model.pkl").write_bytes(b"not onnx")
    ledger.models.register_version("raw", pickled, flavor="sklearn")
    ledger.endpoints.deploy("shop", "raw", "raw:1", resources=SMALL)
    ledger.close()
    unservable = _once_routed(api, "raw")
    assert unservable.status_code == 503
    assert "convert it with `ledger model convert raw:1 --to onnx`" in unservable.json()["detail"]
    wait_for(lambda: _health(api, "raw") == "unhealthy", 30, "the views to follow the log")


def _once_routed(api: Api, deployment: str) -> Any:
    """The answer of ``deployment`` once the router knows it (404 until it looks again)."""
    answers: list[Any] = []

    def routed() -> bool:
        answers.append(_score(api, ROWS[:1].tolist(), **{"X-Ledger-Deployment": deployment}))
        return bool(answers[-1].status_code != 404)

    wait_for(routed, 60, f"the endpoint to route to {deployment}")
    return answers[-1]


def _health(api: Api, deployment: str) -> str:
    endpoint = api.client.get("/endpoints/shop", headers=api.auth("reader")).json()
    return str(endpoint["deployments"][deployment]["health"])


def test_switching_blue_to_green_under_load_loses_no_request(
    api: Api, shop: dict[str, str]
) -> None:
    statuses: Counter[int] = Counter()
    answered_by: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            response = _score(api, ROWS[:2].tolist())
            statuses[response.status_code] += 1
            if response.status_code == 200:
                answered_by.append(response.json()["deployment"])

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    ledger = Ledger(api.settings)
    router = api.client.app.state.services.serve_endpoints()
    try:
        wait_for(lambda: len(answered_by) >= 50, 60, "the replicas to answer")
        ledger.endpoints.set_traffic("shop", {"green": 100}, reason="switch")
        wait_for(lambda: answered_by[-20:] == ["green"] * 20, 60, "green to take the traffic")
        ledger.endpoints.set_mirror("shop", {})
        ledger.endpoints.undeploy("shop", "blue", reason="retired")
        retired = ledger.endpoints.undeploy("shop", "shadow", reason="retired").version
        wait_for(lambda: router.applied_version("shop") == retired, 60, "Serve to retire them")
        answered = len(answered_by)  # then requests go on, on the new table
        wait_for(lambda: len(answered_by) >= answered + 20, 60, "requests after the retirement")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        ledger.close()
    assert set(statuses) == {200}, statuses
    assert statuses[200] > 100
    assert answered_by[answered:] == ["green"] * (len(answered_by) - answered)
    assert "blue" in answered_by[:50]


def test_score_from_the_cli(api: Api, shop: dict[str, str], cli: Any) -> None:
    rows = ROWS[:2].tolist()
    result = cli("endpoint", "score", "shop", "--input", json.dumps(rows), "--json")
    assert result.code == 0, result.err
    assert result.json()["deployment"] in ("blue", "green")
    targeted = cli("endpoint", "score", "shop", "-i", json.dumps(rows), "--deployment", "shadow")
    assert targeted.code == 0 and "answered by shadow (deep:2)" in targeted.out
    assert_user_error(cli("endpoint", "score", "shop", "-i", "[[1, 2"), "--input is not JSON")
    assert_user_error(cli("endpoint", "score", "shop", "-i", "[[1, 2]]"), "has shape [1, 2]")


def test_a_gpu_deployment_without_a_gpu_falls_back_to_cpu_and_says_so(
    api: Api, shop: dict[str, str]
) -> None:
    """This machine has no GPU (the CUDA path is for a GPU machine: see the README)."""
    ledger = Ledger(api.settings)
    ledger.endpoints.deploy("shop", "gpu", shop["blue"], resources={**SMALL, "gpus": 1})
    ledger.close()
    answered = _once_routed(api, "gpu")
    assert answered.status_code == 200, answered.text
    wait_for(lambda: "running on CPU" in _detail(api, "gpu"), 30, "the health report")
    assert "CUDA provider is not available" in _detail(api, "gpu")


def _detail(api: Api, deployment: str) -> str:
    endpoint = api.client.get("/endpoints/shop", headers=api.auth("reader")).json()
    return str(endpoint["deployments"][deployment]["health_detail"])


def test_a_running_worker_applies_endpoint_changes_to_serve_unasked(
    api: Api, shop: dict[str, str]
) -> None:
    """With a worker running, deployments start, change and go on Serve as the ledger
    changes, without a score request; their health is recorded; a deleted endpoint's
    application is deleted."""
    from executors.worker import Worker
    from tests.bus_support import in_background

    def deployments() -> dict[str, str]:
        application = serve.status().applications.get(app_name("shop"))
        return {} if application is None else {
            name: d.status for name, d in application.deployments.items()
        }  # fmt: skip

    ledger = Ledger(api.settings)
    try:
        # The session's Ray is the worker's and the API's: the worker serves from it.
        serving_worker = Worker(api.settings.model_copy(update={"serve_from_worker": True}))
        with in_background(serving_worker.run):
            everything = {name: "HEALTHY" for name in ("_ingress", *shop)}
            wait_for(lambda: deployments() == everything, 120, "the worker to start the replicas")
            wait_for(lambda: all(_health(api, name) == "healthy" for name in shop), 60,
                     "the worker to record their health")  # fmt: skip
            ledger.endpoints.set_traffic("shop", {"green": 100})
            ledger.endpoints.set_mirror("shop", {})
            for retired in ("blue", "shadow"):
                ledger.endpoints.undeploy("shop", retired)
            serving = {"_ingress": "HEALTHY", "green": "HEALTHY"}
            wait_for(lambda: deployments() == serving, 120, "the worker to retire blue and shadow")
            ledger.endpoints.undeploy("shop", "green")
            ledger.endpoints.delete("shop")
            wait_for(lambda: not deployments(), 120, "the worker to delete the application")
    finally:
        ledger.close()


def test_a_deployments_environment_is_its_replicas_runtime_env(
    api: Api, shop: dict[str, str]
) -> None:
    """An environment Ray can build (variables here) runs the replicas in it; one it cannot
    (another Python) leaves the deployment unhealthy with the reason, answering 503."""
    ledger = Ledger(api.settings)
    variables = ledger.assets.register_environment(
        "tuned", EnvironmentSpec(variables={"OMP_NUM_THREADS": "1"})
    )
    other_python = ledger.assets.register_environment("old", EnvironmentSpec(python="3.8"))
    ledger.endpoints.deploy("shop", "tuned", shop["blue"], environment=variables.ref,
                            resources=SMALL)  # fmt: skip
    ledger.endpoints.deploy("shop", "old", shop["blue"], environment=other_python.ref,
                            resources=SMALL)  # fmt: skip
    ledger.close()
    assert _once_routed(api, "tuned").status_code == 200
    refused = _once_routed(api, "old")
    assert refused.status_code == 503 and "Python 3.8" in refused.json()["detail"]
    wait_for(lambda: _health(api, "old") == "unhealthy", 30, "the views to follow the log")


def test_replicas_scale_with_the_load_and_back_recorded_as_health(
    store: StoreFactory, tmp_path: Path, ray_started: None
) -> None:
    """A deployment that may grow from 1 to 2 replicas grows under a burst and shrinks after
    it; the worker records each count as the deployment's health."""
    from executors.worker import Worker
    from tests.bus_support import in_background

    settings = store.settings(
        serve_upscale_delay_s=1.0, serve_downscale_delay_s=2.0, serve_from_worker=True
    )
    app = app_name("burst")

    def running() -> int:
        application = serve.status().applications.get(app)
        found = application.deployments.get("auto") if application else None
        return int(found.replica_states.get("RUNNING", 0)) if found else 0

    ledger = Ledger(settings)
    model = _onnx_model(ledger, tmp_path, "linear", LogisticRegression())
    ledger.endpoints.create("burst", "online")
    scaling: Resources = {**SMALL, "max_replicas": 2, "target_ongoing_requests": 0.1}
    ledger.endpoints.deploy("burst", "auto", model, resources=scaling)
    details: list[str] = []
    try:
        with running_api(settings) as api, in_background(Worker(settings).run):
            wait_for(lambda: running() == 1, 120, "the first replica")
            stop = threading.Event()

            def load() -> None:
                while not stop.is_set():
                    answer = api.client.post("/endpoints/burst/score", headers=api.auth("reader"),
                                             json={"inputs": ROWS[:50].tolist()})  # fmt: skip
                    assert answer.status_code == 200, answer.text

            threads = [threading.Thread(target=load) for _ in range(4)]
            for thread in threads:
                thread.start()
            try:
                wait_for(lambda: running() == 2, 120, "a second replica under the burst")
            finally:
                stop.set()
                for thread in threads:
                    thread.join()
            wait_for(lambda: running() == 1, 120, "one replica again after the burst")
            wait_for(lambda: _health_detail(ledger, "burst", "auto").startswith("1 replica"),
                     30, "the health to say so")  # fmt: skip
        endpoint_events = ledger.events_of(ledger.endpoints.get("burst").id)
        details = [e.detail for e in endpoint_events if isinstance(e, Endpoint.HealthReported)]
    finally:
        ledger.close()
        serve.delete(app)
    assert any(d.startswith("2 replica(s) on CPUExecutionProvider") for d in details), details
    assert details[-1].startswith("1 replica(s) on CPUExecutionProvider"), details


def _health_detail(ledger: Ledger, endpoint: str, deployment: str) -> str:
    return str(ledger.endpoints.get(endpoint).deployments[deployment]["health_detail"])


def test_an_application_deleted_behind_the_ledgers_back_is_started_again(
    api: Api, shop: dict[str, str]
) -> None:
    assert _score(api, ROWS[:1].tolist()).status_code == 200
    serve.delete(app_name("shop"))
    answers: list[int] = []

    def answered() -> bool:
        answers.append(_score(api, ROWS[:1].tolist()).status_code)
        return answers[-1] == 200

    wait_for(answered, 120, "the endpoint to be started again")
    assert set(answers) <= {200, 503}, answers  # meanwhile: "try again", never a 500


# -- production data collection -------------------------------------------------------------


# Serve tests are slow: collection runs on SQLite only (the sampling rate's commands and
# views are tested on both stores; the replicas never touch the store).
ON_SQLITE = pytest.mark.parametrize("store", ["sqlite"], indirect=True)


@pytest.fixture
def watched(store: StoreFactory, tmp_path: Path, ray_started: None) -> Iterator[Api]:
    """Endpoint watch: one deployment, blue, taking all traffic and collecting nothing yet;
    replicas flush what they sample every 0.3 s."""
    settings = store.settings(collect_flush_s=0.3)
    with running_api(settings) as api:
        ledger = Ledger(settings)
        model = _onnx_model(ledger, tmp_path, "linear", LogisticRegression())
        ledger.endpoints.create("watch", "online")
        ledger.endpoints.deploy("watch", "blue", model, resources=SMALL)
        ledger.close()
        try:
            yield api
        finally:
            if serve.status().applications.get(app_name("watch")) is not None:
                serve.delete(app_name("watch"))


def _set_rate(api: Api, rate: float) -> None:
    """Change blue's sampling rate and wait until its replicas have it."""
    ledger = Ledger(api.settings)
    try:
        version = ledger.endpoints.set_sampling_rate("watch", "blue", rate).version
    finally:
        ledger.close()
    router = api.client.app.state.services.serve_endpoints()
    wait_for(lambda: _watch(api, ROWS[:1].tolist(), {}).status_code == 200
             and router.applied_version("watch") >= version
             and _described(api)["sampling_rate"] == f"{rate:g}", 60, "the new rate")  # fmt: skip


def _watch(api: Api, rows: Any, headers: dict[str, str]) -> Any:
    headers = api.auth("reader") | headers
    return api.client.post("/endpoints/watch/score", json={"inputs": rows}, headers=headers)


def _collected(api: Api) -> Any:
    """Every row blue's replicas wrote so far, as one table."""
    import pyarrow as pa

    from executors.monitoring.collector import blobs_of, collected_files, read_collected

    end = datetime.now(UTC) + timedelta(hours=1)
    blobs = blobs_of(api.settings.artifacts_location)
    keys = collected_files(blobs, "watch", "blue", end - timedelta(days=1), end)
    return pa.concat_tables([read_collected(blobs, key) for key in keys]) if keys else None


def _correlation_ids(api: Api) -> Counter[str]:
    table = _collected(api)
    return Counter() if table is None else Counter(table.column("correlation_id").to_pylist())


@ON_SQLITE
def test_collect_every_request_through_the_api_and_serves_proxy_exactly_once(
    watched: Api,
) -> None:
    """At rate 1 each request's rows (by correlation id) are written once, with blue's
    model, the features sent and the outputs answered."""
    api = watched
    _set_rate(api, 1.0)
    sent: dict[str, tuple[list[list[float]], dict[str, Any]]] = {}
    proxy = f"http://127.0.0.1:{api.settings.serve_port}/endpoints/watch/score"
    for i in range(300):
        rows = ROWS[i : i + (3 if i % 7 == 0 else 1)].tolist()
        # The caller's X-Correlation-ID, else a new one (on Serve's proxy, its request
        # id): either way the answer carries it, for ground truth to be joined by.
        given = {"X-Correlation-ID": f"req-{i}"} if i % 2 else {}
        if i % 3:
            answer = _watch(api, rows, given)
        else:  # Serve's proxy
            answer = httpx.post(proxy, json={"inputs": rows}, headers=given, timeout=30)
            assert given or answer.headers["X-Correlation-ID"] == answer.headers["x-request-id"]
        assert answer.status_code == 200, answer.text
        correlation_id = answer.headers["X-Correlation-ID"]
        assert correlation_id == given.get("X-Correlation-ID", correlation_id)
        sent[correlation_id] = (rows, answer.json())

    def all_written() -> bool:
        return set(sent) <= set(_correlation_ids(api))

    wait_for(all_written, 60, "the replicas to flush what they sampled")
    table = _collected(api)
    collected = {cid: [] for cid in sent}  # type: dict[str, list[dict[str, Any]]]
    for row in table.to_pylist():
        if row["correlation_id"] in collected:
            collected[row["correlation_id"]].append(row)
    for correlation_id, (rows, answer) in sent.items():
        written = collected[correlation_id]
        assert len(written) == len(rows), correlation_id  # once: no row twice, none lost
        assert {row["model"] for row in written} == {answer["model"]}
        for row, features, label, probabilities in zip(
            written, rows, answer["outputs"]["label"], answer["outputs"]["probabilities"],
            strict=True,
        ):  # fmt: skip
            assert [row[f"x{j}"] for j in range(4)] == np.float32(features).tolist()
            assert row["label"] == label
            assert [row["probabilities_0"], row["probabilities_1"]] == probabilities
            assert row["event_time"].tzinfo is not None
    assert table.column_names[:7] == ["correlation_id", "event_time", "model",
                                      "x0", "x1", "x2", "x3"]  # fmt: skip


@ON_SQLITE
def test_collect_rate_changes_live_without_restarting_replicas_or_dropping_requests(
    watched: Api,
) -> None:
    """At 0 nothing is written; at 0.5 about half the requests are; the changes reach the
    running replica (the same one throughout) while requests go on being answered."""
    api = watched
    statuses: Counter[int] = Counter()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            statuses[_watch(api, ROWS[:2].tolist(), {"X-Correlation-ID": "load"}).status_code] += 1

    for i in range(50):
        assert _watch(api, ROWS[:1].tolist(), {"X-Correlation-ID": f"off-{i}"}).status_code == 200
    replica = _replica_of(api)
    background = threading.Thread(target=load)
    background.start()
    try:
        time.sleep(1.0)  # three flushes
        assert _collected(api) is None  # rate 0: no file at all
        _set_rate(api, 0.5)
        for i in range(400):
            assert (
                _watch(api, ROWS[:1].tolist(), {"X-Correlation-ID": f"half-{i}"}).status_code == 200
            )
        _set_rate(api, 0.0)
        time.sleep(1.0)  # what the replica sampled is flushed by now
        written = _correlation_ids(api)
        after_off = sum(written.values())
        time.sleep(1.0)
        assert sum(_correlation_ids(api).values()) == after_off  # nothing more at rate 0
    finally:
        stop.set()
        background.join()
    half = sum(1 for cid in written if cid.startswith("half-"))
    assert 140 <= half <= 260, half  # Binomial(400, 0.5): 6 standard deviations
    assert not any(cid.startswith("off-") for cid in written)
    assert set(statuses) == {200} and statuses[200] > 10, statuses
    assert _replica_of(api) == replica  # reconfigured in place, never restarted


def _described(api: Api) -> dict[str, str]:
    described: dict[str, str] = (
        serve.get_deployment_handle("blue", app_name("watch")).describe.remote().result()
    )
    return described


def _replica_of(api: Api) -> str:
    return _described(api)["replica"]
