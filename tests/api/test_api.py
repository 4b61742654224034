"""The HTTP API against the real app (httpx), on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path
from typing import Any

from ledger.api.idempotency import ABANDONED_AFTER_S
from ledger.domain.approval import approval_id
from ledger.domain.webhook import webhook_id
from ledger.ledger import Ledger
from tests.conftest import Api, StoreFactory, running_api, wait_for


def now_us() -> int:
    return int(time.time() * 1e6)


ROLES = ("reader", "contributor", "deployer", "admin")
MATRIX_RULE = """
- name: tag-it
  on: ledger.model.tagged
  do: {set_tag: {model: m, key: seen, value: "yes"}}
"""
# Approvals held for a contributor, requested before the matrix runs (short ids).
HELD = [approval_id("tag-it", f"matrix-{n}/1").hex[:12] for n in (1, 2)]


def _upload(model_dir: Path) -> list[tuple[str, tuple[str, bytes]]]:
    return [
        ("files", (str(path.relative_to(model_dir)), path.read_bytes()))
        for path in sorted(model_dir.rglob("*"))
        if path.is_file()
    ]


def _register(api: Api, name: str = "iris", **fields: str) -> dict[str, Any]:
    response = api.client.post(
        f"/models/{name}/versions",
        files=[("files", ("model.bin", b"weights"))],
        data=fields,
        headers=api.auth("contributor"),
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# Every write route: (method, path template, needed role, request kwargs). Listed in an
# order where each succeeds when called with the right role.
WRITES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "POST",
        "/models/{name}/versions",
        "contributor",
        {"url": "/models/m/versions", "files": [("files", ("a.bin", b"1"))]},
    ),
    (
        "PUT",
        "/models/{name}/tags",
        "contributor",
        {"url": "/models/m/tags", "json": {"tags": {"team": "x"}}},
    ),
    ("DELETE", "/models/{name}/tags/{key}", "contributor", {"url": "/models/m/tags/team"}),
    (
        "PUT",
        "/models/{name}/versions/{version}/tags",
        "contributor",
        {"url": "/models/m/versions/2/tags", "json": {"tags": {"stage": "dev"}}},
    ),
    (
        "DELETE",
        "/models/{name}/versions/{version}/tags/{key}",
        "contributor",
        {"url": "/models/m/versions/2/tags/stage"},
    ),
    (
        "PUT",
        "/models/{name}/aliases/{alias}",
        "contributor",
        {"url": "/models/m/aliases/prod", "json": {"version": 1}},
    ),
    ("DELETE", "/models/{name}/aliases/{alias}", "contributor", {"url": "/models/m/aliases/prod"}),
    (
        "POST",
        "/models/{name}/versions/{version}/archive",
        "contributor",
        {"url": "/models/m/versions/2/archive"},
    ),
    (
        "POST",
        "/models/{name}/versions/{version}/restore",
        "contributor",
        {"url": "/models/m/versions/2/restore"},
    ),
    ("DELETE", "/models/{name}/versions/{version}", "contributor", {"url": "/models/m/versions/2"}),
    (
        "POST",
        "/environments/{name}/versions",
        "contributor",
        {"url": "/environments/py/versions", "json": {"spec": {"pip": ["numpy"]}}},
    ),
    (
        "POST",
        "/data/{name}/versions",
        "contributor",
        {"url": "/data/train/versions", "files": {"file": ("train.csv", b"x,y\n1,2\n3,4\n")}},
    ),
    (
        "POST",
        "/data/{name}/versions/{version}/profile",
        "contributor",
        {"url": "/data/train/versions/1/profile"},
    ),
    (
        "POST",
        "/pipelines/{name}/versions",
        "contributor",
        {
            "url": "/pipelines/p/versions",
            "json": {"spec": {"steps": [{"name": "train", "run": "train:main"}]}},
        },
    ),
    (
        "POST",
        "/pipelines/{name}/clone",
        "contributor",
        {"url": "/pipelines/p2/clone", "json": {"source": "p:1"}},
    ),
    ("POST", "/jobs", "contributor", {"url": "/jobs", "json": {"pipeline": "p"}}),
    ("POST", "/jobs/{job_id}/rerun", "contributor", {"url": "/jobs/{job}/rerun"}),
    ("POST", "/jobs/{job_id}/cancel", "contributor", {"url": "/jobs/{job}/cancel"}),
    ("POST", "/endpoints", "deployer", {"url": "/endpoints", "json": {"name": "shop"}}),
    (
        "POST",
        "/endpoints/{name}/deployments",
        "deployer",
        {"url": "/endpoints/shop/deployments", "json": {"deployment": "blue", "model": "m:1"}},
    ),
    (
        "PUT",
        "/endpoints/{name}/traffic",
        "deployer",
        {"url": "/endpoints/shop/traffic", "json": {"weights": {"blue": 100}}},
    ),
    (
        "PUT",
        "/endpoints/{name}/deployments/{deployment}/health",
        "deployer",
        {"url": "/endpoints/shop/deployments/blue/health", "json": {"status": "healthy"}},
    ),
    (
        "PUT",
        "/endpoints/{name}/deployments/{deployment}/collection",
        "deployer",
        {"url": "/endpoints/shop/deployments/blue/collection", "json": {"sampling_rate": 0.5}},
    ),
    (
        "POST",
        "/monitors",
        "deployer",
        {
            "url": "/monitors",
            "json": {"name": "watch", "endpoint": "shop", "reference": "training"},
        },
    ),
    ("DELETE", "/monitors/{name}", "deployer", {"url": "/monitors/watch"}),
    (
        "POST",
        "/rules",
        "deployer",
        {"url": "/rules", "json": {"yaml": MATRIX_RULE}},
    ),
    ("POST", "/rules/{name}/disable", "deployer", {"url": "/rules/tag-it/disable"}),
    ("POST", "/rules/{name}/enable", "deployer", {"url": "/rules/tag-it/enable"}),
    (
        "POST",
        "/approvals/{approval_id}/approve",
        "contributor",
        {"url": f"/approvals/{HELD[0]}/approve", "json": {"reason": "ok"}},
    ),
    (
        "POST",
        "/approvals/{approval_id}/reject",
        "contributor",
        {"url": f"/approvals/{HELD[1]}/reject", "json": {"reason": "no"}},
    ),
    (
        "PUT",
        "/endpoints/{name}/mirror",
        "deployer",
        {"url": "/endpoints/shop/mirror", "json": {"weights": {}}},
    ),
    (
        "DELETE",
        "/endpoints/{name}/deployments/{deployment}",
        "deployer",
        {"url": "/endpoints/shop/deployments/blue"},
    ),
    ("DELETE", "/endpoints/{name}", "deployer", {"url": "/endpoints/shop"}),
    (
        "POST",
        "/webhooks",
        "admin",
        {
            "url": "/webhooks",
            "json": {"name": "hook", "url": "http://127.0.0.1:9/", "events": ["ledger.>"]},
        },
    ),
    ("PATCH", "/webhooks/{name}", "admin", {"url": "/webhooks/hook", "json": {"filter": "true"}}),
    ("POST", "/webhooks/{name}/pause", "deployer", {"url": "/webhooks/hook/pause", "json": {}}),
    ("POST", "/webhooks/{name}/resume", "deployer", {"url": "/webhooks/hook/resume", "json": {}}),
    ("POST", "/webhooks/{name}/test", "deployer", {"url": "/webhooks/hook/test"}),
    (
        "POST",
        "/webhooks/{name}/redeliver",
        "deployer",
        {"url": "/webhooks/hook/redeliver", "json": {"event_id": f"{webhook_id('hook')}/1"}},
    ),
    ("DELETE", "/webhooks/{name}", "admin", {"url": "/webhooks/hook"}),
    ("POST", "/tokens", "admin", {"url": "/tokens", "json": {"name": "ci", "role": "reader"}}),
    ("DELETE", "/tokens/{name}", "admin", {"url": "/tokens/ci"}),
    ("POST", "/gc", "admin", {"url": "/gc", "json": {"dry_run": True}}),
]


SCORING = ("POST", "/endpoints/{name}/score")  # writes nothing: tested in test_serving.py


def _write_routes(api: Api) -> set[tuple[str, str]]:
    paths = api.client.get("/openapi.json").json()["paths"]
    routes = {(m.upper(), path) for path, ops in paths.items() for m in ops if m != "get"}
    return routes - {SCORING}


def test_authorization_matrix(api: Api) -> None:
    """Anonymous 401, a role too low 403, the right role 2xx, on every write route."""
    assert {(m, p.split("#")[0]) for m, p, _, _ in WRITES} == _write_routes(api)
    with Ledger(api.settings) as ledger:
        for n in (1, 2):
            ledger.approvals.request("tag-it", 1, f"matrix-{n}/1", "contributor", [])
    start = api.head()  # the fixture's tokens and the approvals were made before
    _register(api, "m")  # versions 1 and 2 exist before the matrix runs
    job = ""
    for method, template, role, kwargs in WRITES:
        kwargs = dict(kwargs)
        kwargs["url"] = kwargs["url"].replace("{job}", job)
        head = api.head()
        anonymous = api.client.request(method, **kwargs)
        assert anonymous.status_code == 401, (template, anonymous.text)
        assert anonymous.headers["content-type"] == "application/problem+json"
        too_low = ROLES[ROLES.index(role) - 1]
        refused = api.client.request(method, headers=api.auth(too_low), **kwargs)
        assert refused.status_code == 403, (template, refused.text)
        assert too_low in refused.json()["detail"]
        assert api.head() == head, f"a refused {method} {template} wrote events"
        allowed = api.client.request(method, headers=api.auth(role), **kwargs)
        assert allowed.status_code < 300, (template, allowed.text)
        if template == "/jobs":
            job = allowed.json()["id"]
    # Every write was recorded as done by the token's holder, never by anyone else.
    actors = {e["actor"] for e in _all_events(api, after=start)}
    assert actors == {"contributor-bot", "deployer-bot", "admin-bot"}


def _all_events(api: Api, after: int = 0) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        batch = api.client.get(f"/events?after={after}&limit=1000", headers=api.auth("reader"))
        items = batch.json()["items"]
        if not items:
            return events
        events += items
        after = batch.json()["last_position"]


def test_the_actor_is_the_token_never_the_request(api: Api) -> None:
    start = api.head()
    version = _register(api, "iris", actor="mallory", created_by="mallory")
    assert version["created_by"] == "contributor-bot"
    claimed = api.client.put(
        "/models/iris/tags",
        json={"tags": {"a": "b"}, "actor": "mallory"},
        headers=api.auth("contributor"),
    )
    assert claimed.status_code == 422 and "actor" in claimed.json()["detail"]
    spoofed = api.client.put(
        "/models/iris/tags",
        json={"tags": {"a": "b"}},
        headers={**api.auth("contributor"), "X-Actor": "mallory", "X-User": "mallory"},
    )
    assert spoofed.status_code == 204
    assert {e["actor"] for e in _all_events(api, after=start)} == {"contributor-bot"}


def test_upload_and_download_are_byte_identical(api: Api, model_dir: Path) -> None:
    created = api.client.post(
        "/models/bert/versions",
        files=_upload(model_dir),
        data={"flavor": "pytorch", "tags": '{"stage": "dev"}', "metrics": '{"f1": 0.9}'},
        headers=api.auth("contributor"),
    )
    assert created.status_code == 201, created.text
    version = created.json()
    originals = {
        str(p.relative_to(model_dir)): p.read_bytes() for p in model_dir.rglob("*") if p.is_file()
    }
    assert {f["path"] for f in version["files"]} == set(originals) and len(originals) == 3
    assert version["tags"] == {"stage": "dev"} and version["metrics"] == {"f1": 0.9}
    reader = api.auth("reader")
    for path, content in originals.items():
        got = api.client.get(f"/models/bert/versions/1/files/{path}", headers=reader)
        assert got.status_code == 200 and got.content == content, path
    archive = api.client.get("/models/bert/versions/1/download", headers=reader)
    assert archive.status_code == 200
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        assert zipped.testzip() is None
        assert {name: zipped.read(name) for name in zipped.namelist()} == originals
    missing = api.client.get("/models/bert/versions/1/files/nope.bin", headers=reader)
    assert missing.status_code == 404 and "nope.bin" in missing.json()["detail"]


def test_reads_see_writes_and_follow_other_writers(api: Api, store: StoreFactory) -> None:
    _register(api, "iris", tags='{"team": "vision"}')
    reader = api.auth("reader")
    assert api.client.get("/models/iris", headers=reader).json()["latest_version"] == 1
    found = api.client.get("/search/versions?tag=team=vision", headers=reader).json()
    assert [item["ref"] for item in found["items"]] == ["iris:1"]
    # Another process writes straight to the store: the follower brings it to the views.
    from ledger.ledger import Ledger

    with Ledger(store.settings()) as other:
        other.models.set_tags("iris:1", {"stage": "prod"})

    def tags() -> Any:
        return api.client.get("/models/iris/versions/1", headers=reader).json()["tags"]

    wait_for(lambda: tags().get("stage") == "prod", 30, "the follower")
    assert tags() == {"team": "vision", "stage": "prod"}


def test_queries_history_lineage_and_as_of(api: Api) -> None:
    _register(api, "iris")
    head = api.head()
    _register(api, "iris")
    writer = api.auth("contributor")
    api.client.put("/models/iris/aliases/prod", json={"version": 2, "reason": "better"},
                   headers=writer)  # fmt: skip
    reader = api.auth("reader")
    by_alias = api.client.get("/models/iris/aliases/prod", headers=reader).json()
    assert by_alias["ref"] == "iris:2" and by_alias["aliases"] == ["prod"]
    history = api.client.get("/history/model/iris", headers=reader).json()["items"]
    assert [e["event_type"] for e in history][-1] == "Model.AliasSet"
    assert history[-1]["reason"] == "better"
    audit = api.client.get("/audit?event_type=AliasSet", headers=reader).json()["items"]
    assert len(audit) == 1 and audit[0]["actor"] == "contributor-bot"
    past = api.client.get(f"/as-of?position={head}&model=iris", headers=reader).json()
    assert list(past["versions"]) == ["1"] and past["aliases"] == {}
    lineage = api.client.get("/lineage/model:iris:2", headers=reader)
    assert lineage.status_code == 200 and lineage.json()["root"] == "model:iris:2"
    status = api.client.get("/projections", headers=reader).json()
    assert {p["name"] for p in status} >= {"registry", "audit", "tokens"}
    assert all(p["lag_events"] == 0 for p in status)


BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("GET", "/models/nope", {}, 404, "model 'nope' does not exist"),
    ("GET", "/models/iris/versions/7", {}, 404, "iris:7 does not exist"),
    ("GET", "/search/versions?tag=novalue", {}, 400, "expected key=value"),
    ("GET", "/search/versions?page_token=garbage", {}, 400, "invalid page token"),
    ("GET", "/audit?entity=planet:x", {}, 400, "unknown entity kind"),
    ("GET", "/as-of", {}, 400, "time or a log position"),
    ("GET", "/models/iris/versions/x", {}, 422, "version"),
    ("PUT", "/models/iris/aliases/prod", {"json": {"version": 0}}, 422, "version"),
    ("PUT", "/models/iris/aliases/latest", {"json": {"version": 1}}, 400, "reserved"),
    ("PUT", "/models/iris/tags", {"content": b"{not json"}, 422, "JSON"),
    (
        "POST",
        "/models/bad name/versions",
        {"files": [("files", ("a", b"1"))]},
        400,
        "invalid model name",
    ),
    ("POST", "/models/iris/versions", {"files": [("files", ("../up.bin", b"1"))]}, 400, "'..'"),
    (
        "POST",
        "/models/iris/versions",
        {"files": [("files", ("a", b"1"))], "data": {"metrics": "[1]"}},
        400,
        "JSON object",
    ),
    ("POST", "/models/iris/versions", {"data": {"flavor": "onnx"}}, 422, "files"),
    ("PUT", "/endpoints/shop/traffic", {"json": {"weights": {"blue": 50}}}, 400, "100"),
    ("DELETE", "/models/iris/versions/1", {}, 409, "used by deployment"),
    ("POST", "/endpoints", {"json": {"name": "shop"}}, 409, "already exists"),
    ("DELETE", "/endpoints/shop", {}, 409, "deployments"),
    ("DELETE", "/endpoints/shop/deployments/blue", {}, 409, "shift its traffic"),
    (
        "PUT",
        "/endpoints/shop/deployments/blue/collection",
        {"json": {"sampling_rate": 1.5}},
        422,
        "sampling_rate",
    ),
    (
        "PUT",
        "/endpoints/shop/deployments/ghost/collection",
        {"json": {"sampling_rate": 0.5}},
        400,
        "no deployment 'ghost'",
    ),
    (
        "POST",
        "/endpoints/shop/deployments",
        {"json": {"deployment": "red", "model": "iris:1", "sampling_rate": -0.1}},
        422,
        "sampling_rate",
    ),
    ("POST", "/jobs", {"json": {"pipeline": "ghost"}}, 404, "ghost"),
    ("GET", "/jobs/not-a-uuid", {}, 400, "invalid job id"),
]


def test_bad_input_gets_a_clear_problem_and_writes_nothing(api: Api) -> None:
    _register(api, "iris")
    admin = api.auth("admin")
    api.client.post("/endpoints", json={"name": "shop"}, headers=admin)
    for deployment in ("blue", "green"):
        body = {"deployment": deployment, "model": "iris:1"}
        api.client.post("/endpoints/shop/deployments", json=body, headers=admin)
    api.client.put("/endpoints/shop/traffic", json={"weights": {"blue": 100}}, headers=admin)
    head = api.head()
    for method, url, kwargs, status, fragment in BAD_REQUESTS:
        headers = dict(admin)
        if "content" in kwargs:
            headers["content-type"] = "application/json"
        response = api.client.request(method, url, headers=headers, **kwargs)
        assert response.status_code == status, (method, url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == status and fragment in problem["detail"], problem
        assert api.head() == head, f"{method} {url} wrote events"


def test_uploads_over_the_limit_get_413(store: StoreFactory) -> None:
    with running_api(store.settings(api_max_upload_mb=1)) as api:
        head = api.head()
        big = [("files", ("big.bin", b"x" * (2 * 1024 * 1024)))]
        response = api.client.post("/models/big/versions", files=big,
                                   headers=api.auth("contributor"))  # fmt: skip
        assert response.status_code == 413, response.text
        assert "LEDGER_API_MAX_UPLOAD_MB" in response.json()["detail"]

        def chunked() -> Any:  # no Content-Length: the limit applies while reading
            yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="a"\r\n\r\n'
            for _ in range(40):
                yield b"y" * 65536
            yield b"\r\n--b--\r\n"

        streamed = api.client.post(
            "/models/big/versions",
            content=chunked(),
            headers={**api.auth("contributor"), "content-type": "multipart/form-data; boundary=b"},
        )
        assert streamed.status_code == 413, streamed.text
        assert api.head() == head


def test_a_deployments_sampling_rate_is_set_on_deploy_changed_and_shown(api: Api) -> None:
    _register(api, "iris")
    deployer = api.auth("deployer")
    api.client.post("/endpoints", json={"name": "shop"}, headers=deployer)
    body = {"deployment": "blue", "model": "iris:1", "sampling_rate": 0.1}
    deployed = api.client.post("/endpoints/shop/deployments", json=body, headers=deployer)
    assert deployed.status_code == 201, deployed.text
    assert deployed.json()["deployments"]["blue"]["sampling_rate"] == 0.1
    url = "/endpoints/shop/deployments/blue/collection"
    headers = deployer | {"Idempotency-Key": "collect-blue"}
    changed = api.client.put(url, json={"sampling_rate": 1, "reason": "watch"}, headers=headers)
    assert (
        changed.status_code == 200 and changed.json()["deployments"]["blue"]["sampling_rate"] == 1
    )
    head = api.head()
    again = api.client.put(url, json={"sampling_rate": 1, "reason": "watch"}, headers=headers)
    assert again.json() == changed.json() and api.head() == head
    shown = api.client.get("/endpoints/shop", headers=api.auth("reader")).json()
    assert shown["deployments"]["blue"]["sampling_rate"] == 1.0
    refused = api.client.put(url, json={"sampling_rate": 0.5}, headers=api.auth("reader"))
    assert refused.status_code == 403


def test_idempotency_key_retry_writes_nothing_new(api: Api) -> None:
    headers = {**api.auth("contributor"), "Idempotency-Key": "register-iris-once"}
    files = [("files", ("model.bin", b"weights"))]
    first = api.client.post("/models/iris/versions", files=files, headers=headers)
    assert first.status_code == 201
    head = api.head()
    retry = api.client.post("/models/iris/versions", files=files, headers=headers)
    assert retry.status_code == 201 and retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert api.head() == head
    assert api.client.get("/models/iris", headers=api.auth("reader")).json()["latest_version"] == 1
    other_body = api.client.post("/models/iris/versions", files=[("files", ("x", b"other"))],
                                 headers=headers)  # fmt: skip
    assert other_body.status_code == 422 and "another request body" in other_body.json()["detail"]
    # The same key from another caller is another key.
    mine = {**api.auth("admin"), "Idempotency-Key": "register-iris-once"}
    assert api.client.post("/models/iris/versions", files=files, headers=mine).status_code == 201
    assert api.client.get("/models/iris", headers=api.auth("reader")).json()["latest_version"] == 2
    # A refused write is answered the same way again.
    bad = {**api.auth("contributor"), "Idempotency-Key": "k2"}
    for _ in range(2):
        refused = api.client.delete("/models/iris/versions/9", headers=bad)
        assert refused.status_code == 404


def test_an_idempotency_key_still_running_is_409_and_one_abandoned_is_taken_again(
    api: Api, store: StoreFactory
) -> None:
    """A claim whose request has not answered refuses a retry (409) until it is old enough
    to be abandoned (its server died): then the retry takes the key and runs."""
    table = "ledger_api_idempotency"
    key = {"Idempotency-Key": "claimed"}

    def tag(name: str) -> Any:
        headers = {**api.auth("contributor"), **key}
        return api.client.put(f"/models/{name}/tags", json={"tags": {"a": "1"}}, headers=headers)

    _register(api, "iris")
    assert tag("iris").status_code == 204
    store.sql(f"UPDATE {table} SET status = 0, fingerprint = '', created_us = ?", (now_us(),))
    running = tag("iris")
    assert running.status_code == 409 and "still running" in running.json()["detail"]
    abandoned = now_us() - (ABANDONED_AFTER_S + 1) * 1_000_000
    store.sql(f"UPDATE {table} SET created_us = ?", (abandoned,))
    assert tag("iris").status_code == 204
    replayed = tag("iris")
    assert replayed.status_code == 204 and replayed.headers["idempotent-replayed"] == "true"


def test_health_and_metrics(api: Api) -> None:
    _register(api, "iris")
    api.client.get("/models/iris", headers=api.auth("reader"))
    health = api.client.get("/health").json()
    assert health["status"] == "ok" and health["store"]["reachable"] is True
    assert health["projections"]["lag_events"] == 0 and "bus" in health
    text = api.client.get("/metrics", headers=api.auth("reader")).text
    assert (
        'ledger_http_requests_total{method="GET",route="/models/{name}",status="200"} 1.0' in text
    )
    assert 'ledger_http_request_duration_seconds_bucket{le="0.003",method="GET"' in text
    assert f"ledger_events_appended {float(api.head())}" in text
    assert 'ledger_projection_lag_events{projection="registry"} 0.0' in text


def test_every_response_tells_the_server_time(api: Api) -> None:
    """`Server-Timing: app;dur=<ms>`: on answers, refusals and UI pages alike."""
    answers = [
        api.client.get("/health"),
        api.client.get("/models/ghost", headers=api.auth("reader")),
        api.client.get("/models"),
        api.client.get("/ui/login"),
    ]
    assert [answer.status_code for answer in answers] == [200, 404, 401, 200]
    for answer in answers:
        timing = re.fullmatch(r"app;dur=(\d+\.\d{3})", answer.headers["server-timing"])
        assert timing and 0 < float(timing.group(1)) < 60_000, answer.headers


def test_docs_are_served_from_this_server_and_counted_by_path(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(url.startswith("/") for url in assets), assets  # no CDN
    for url in assets:
        assert api.client.get(url).status_code == 200, url
    assert api.client.get("/openapi.json").status_code == 200
    api.client.get("/no/such/route")
    text = api.client.get("/metrics", headers=api.auth("reader")).text
    for route in ("/docs", "/openapi.json", "/docs/assets"):
        assert f'route="{route}",status="200"' in text, route
    assert 'route="unmatched",status="404"' in text


def test_revoked_tokens_and_anonymous_reads(store: StoreFactory) -> None:
    with running_api(store.settings(api_anonymous_reads=True)) as api:
        assert api.client.get("/models").status_code == 200
        assert api.client.post("/endpoints", json={"name": "e"}).status_code == 401
        bad = api.client.get("/models", headers={"Authorization": "Bearer llt_forged"})
        assert bad.status_code == 401 and "unknown or revoked" in bad.json()["detail"]
        admin = api.auth("admin")
        issued = api.client.post("/tokens", json={"name": "ci", "role": "deployer"}, headers=admin)
        ci = {"Authorization": f"Bearer {issued.json()['token']}"}
        assert api.client.post("/endpoints", json={"name": "e"}, headers=ci).status_code == 201
        listed = api.client.get("/tokens", headers=admin).json()
        assert {t["name"]: t["role"] for t in listed}["ci"] == "deployer"
        assert "token" not in listed[0] and "token_hash" not in listed[0]
        assert api.client.delete("/tokens/ci", headers=admin).status_code == 204
        assert api.client.get("/endpoints", headers=ci).status_code == 401


def test_a_revoke_applied_by_another_process_is_refused_once_the_cache_expires(
    api: Api, store: StoreFactory
) -> None:
    from ledger.ledger import Ledger
    from projections.updater import ViewUpdater

    reader = api.auth("reader")
    assert api.client.get("/models", headers=reader).status_code == 200  # cached as valid
    services = api.client.app.state.services
    with services.follower.lock:  # this server's follower stands still throughout
        with Ledger(store.settings()) as other:
            other.tokens.revoke("reader-bot")
        updater = ViewUpdater(store.settings())
        updater.catch_up()  # another process brings the views up to the revoke
        updater.close()
        # Refused once the cached answer expires (TOKEN_CACHE_S; how soon is not this
        # test's business): the server reads the views, not only its own follower.
        wait_for(
            lambda: api.client.get("/models", headers=reader).status_code == 401,
            30,
            "the revoked token to be refused",
        )
