"""Poison values: refused at every door before anything is written; and an event a view
cannot store (already in an old log) is recorded as that view's error, not a blockage."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import ledger.application
from ledger.errors import InvalidInputError
from ledger.ledger import Ledger
from ledger.pipeline_spec import parse_pipeline_spec
from ledger.refs import check_alias, check_name
from ledger.validation import check_event_fields, check_value
from projections.catalog import all_read_models
from projections.view_errors import is_data_error
from projections.views import Views
from tests.conftest import Api, Cli, StoreFactory, running_api

SURROGATE = "\udcff"  # what Python makes of an undecodable byte in argv or a file name


# -- the validator itself -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "value", "message"),
    [
        ("reason", "why\x00not", "reason contains a NUL character"),
        ("reason", f"bad {SURROGATE}", "reason contains a lone surrogate"),
        ("tags", {"team": "a\x00"}, "tags['team'] contains a NUL character"),
        ("tags", {"te\x00am": "a"}, "key 'te\\x00am' of tags contains a NUL character"),
        ("signature", {"inputs": [1, 2**63]}, "signature['inputs'][1] is an integer outside"),
        ("signature", {"inputs": [-(2**63) - 1]}, "signature['inputs'][0] is an integer outside"),
        ("metrics", {"acc": float("nan")}, "metrics['acc'] is not a finite number"),
        ("metrics", {"acc": float("-inf")}, "metrics['acc'] is not a finite number"),
        ("spec", {"description": "\x00"}, "description contains a NUL character"),
        ("value", ("ok", ["\x00"]), "tag value[1][0] contains a NUL character"),
    ],
)
def test_the_validator_names_the_field(what: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        check_value(what, value)
    assert message in str(refused.value)


def test_values_the_stores_hold_pass() -> None:
    fine = {"a": ["text", "é ✓ 中", 2**63 - 1, -(2**63), 1.5, True, None, ("x", {"k": 0.0})]}
    check_value("spec", fine)


def test_every_field_of_an_event_is_checked_but_the_ledgers_own() -> None:
    class Event:
        def __init__(self, **fields: Any) -> None:
            vars(self).update(fields)

    check_event_fields(Event(originator_id=object(), originator_version=2**70, reason="ok"))
    with pytest.raises(InvalidInputError, match="actor contains a NUL"):
        check_event_fields(Event(originator_version=1, actor="bot\x00", reason="ok"))


def test_names_aliases_and_identifiers_refuse_a_trailing_newline() -> None:
    checks: list[tuple[Callable[[str], str], str]] = [
        (check_name, "sec\n"),
        (check_alias, "prod\n"),
        (check_name, "a\x00"),
    ]
    for check, text in checks:
        with pytest.raises(InvalidInputError):
            check(text)
    assert check_name("sec") == "sec"
    for step in [
        {"name": "train", "run": "train:main\n"},
        {"name": "train", "run": "train:main", "outputs": ["model\n"]},
        {"name": "train", "run": "train:main", "inputs": {"x": "prep.out\n"}},
    ]:
        with pytest.raises(InvalidInputError):
            parse_pipeline_spec({"steps": [step]})


# -- every door refuses, and writes nothing --------------------------------------------------

FILES = [("files", ("model.bin", b"weights"))]
PIPELINE = {"steps": [{"name": "train", "run": "train:main"}]}


def _json(body: dict[str, Any]) -> dict[str, Any]:
    """A raw JSON body (lone surrogates travel as the escapes JSON allows)."""
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


# (method, url, role, request kwargs): each carries one poison value in one kind of field.
POISONED_REQUESTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("POST", "/models/sec%0A/versions", "contributor", {"files": FILES}),
    ("POST", "/models/m/versions", "contributor", {"files": FILES, "data": {"description": "\0"}}),
    ("POST", "/models/m/versions", "contributor", {"files": FILES, "data": {"reason": "a\x00"}}),
    ("POST", "/models/m/versions", "contributor",
     {"files": FILES, "data": {"tags": json.dumps({"k": SURROGATE})}}),
    ("POST", "/models/m/versions", "contributor",
     {"files": FILES, "data": {"metrics": '{"acc": NaN}'}}),
    ("POST", "/models/m/versions", "contributor",
     {"files": FILES, "data": {"signature": json.dumps({"inputs": [{"shape": [2**64]}]})}}),
    ("POST", "/models/m/versions", "contributor",
     {"files": FILES, "data": {"signature": json.dumps({"inputs": ["x\x00"]})}}),
    ("PUT", "/models/m/tags", "contributor", _json({"tags": {"team": "a\x00b"}})),
    ("PUT", "/models/m/tags", "contributor", _json({"tags": {"te\x00am": "x"}})),
    ("PUT", "/models/m/tags", "contributor", _json({"tags": {SURROGATE: "x"}})),
    ("PUT", "/models/m/tags", "contributor", _json({"tags": {"team": "x"}, "reason": "r\x00"})),
    ("PUT", "/models/m/tags", "contributor", _json({"tags": {"team": "x"}, "reason": SURROGATE})),
    ("PUT", "/models/m/versions/1/tags", "contributor", _json({"tags": {"k": "\x00"}})),
    ("PUT", "/models/m/aliases/prod%0A", "contributor", _json({"version": 1})),
    ("PUT", "/models/m/aliases/prod", "contributor", _json({"version": 1, "reason": "\x00"})),
    ("POST", "/environments/py%0A/versions", "contributor", _json({"spec": {"pip": ["numpy"]}})),
    ("POST", "/environments/py/versions", "contributor", _json({"spec": {"pip": ["np\x00"]}})),
    ("POST", "/data/train%0A/versions", "contributor",
     {"files": {"file": ("train.csv", b"x,y\n1,2\n")}}),
    ("POST", "/data/train/versions", "contributor",
     {"files": {"file": ("train.csv", b"x,y\n1,2\n")}, "data": {"description": "\x00"}}),
    ("POST", "/pipelines/p%0A/versions", "contributor", _json({"spec": PIPELINE})),
    ("POST", "/pipelines/p/versions", "contributor",
     _json({"spec": {"steps": [{"name": "train", "command": "echo \x00"}]}})),
    ("POST", "/pipelines/p/versions", "contributor",
     _json({"spec": {**PIPELINE, "description": SURROGATE}})),
    ("POST", "/endpoints", "deployer", _json({"name": "shop\n"})),
    ("POST", "/endpoints", "deployer", _json({"name": "shop", "description": "\x00"})),
    ("POST", "/endpoints/live/deployments", "deployer",
     _json({"deployment": "blue\n", "model": "m:1"})),
    ("POST", "/endpoints/live/deployments", "deployer",
     _json({"deployment": "blue", "model": "m:1", "reason": SURROGATE})),
    ("PUT", "/endpoints/live/deployments/green/health", "deployer",
     _json({"status": "ok", "detail": "\x00"})),
    ("POST", "/tokens", "admin", _json({"name": "ci\n", "role": "reader"})),
    ("POST", "/tokens", "admin", _json({"name": "ci", "role": "reader", "reason": "\x00"})),
]  # fmt: skip


def test_the_api_refuses_poison_in_every_kind_of_field(store: StoreFactory) -> None:
    with running_api(store.settings()) as api:
        admin = api.auth("admin")
        created = api.client.post("/models/m/versions", files=FILES, headers=admin)
        assert created.status_code == 201, created.text
        api.client.post("/endpoints", json={"name": "live"}, headers=admin)
        deployed = api.client.post(
            "/endpoints/live/deployments", json={"deployment": "green", "model": "m:1"},
            headers=admin,
        )  # fmt: skip
        assert deployed.status_code == 201, deployed.text
        head = api.head()
        for method, url, role, request in POISONED_REQUESTS:
            kwargs = dict(request)
            extra = kwargs.pop("headers", {})
            response = api.client.request(method, url, headers=api.auth(role) | extra, **kwargs)
            assert response.status_code == 400, (method, url, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["detail"], response.text
            assert api.head() == head, (method, url)
        assert api.client.get("/health").json()["status"] == "ok"


def test_reads_of_names_the_store_cannot_take_are_client_errors(api: Api) -> None:
    """A NUL sent to PostgreSQL in a query is the request's fault: 4xx, never 500."""
    reader = api.auth("reader")
    for url in ["/models/a%00", "/models/a%00/versions/1", "/endpoints/e%00",
                "/audit?actor=a%00", "/history/model/a%00", "/lineage/model/a%00"]:  # fmt: skip
        response = api.client.get(url, headers=reader)
        assert response.status_code in (200, 400, 404), (url, response.text)
        if response.status_code != 200:  # (SQLite text holds a NUL: nothing matches it)
            assert response.headers["content-type"].startswith("application/problem+json")


@pytest.fixture
def spec_files(tmp_path: Path) -> dict[str, Path]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    env = tmp_path / "env.json"
    env.write_text(json.dumps({"name": "py", "pip": ["numpy\x00"]}))
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(
        json.dumps({"name": "p", "steps": [{"name": "t", "run": "t:main"}], "description": "\x00"})
    )
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,2\n")
    return {"model": model, "env": env, "pipeline": pipeline, "data": data}


def test_the_cli_refuses_poison_in_every_kind_of_field(
    cli: Cli, store: StoreFactory, spec_files: dict[str, Path]
) -> None:
    model, data = str(spec_files["model"]), str(spec_files["data"])
    assert cli("model", "register", "m", model).code == 0
    assert cli("endpoint", "create", "live").code == 0
    with Ledger(store.settings()) as app:
        head = app.event_count()
    poisoned = [
        ("model", "register", "sec\n", model),
        ("model", "register", "m", model, "--description", "a\x00"),
        ("model", "register", "m", model, "--tag", "team=a\x00"),
        ("model", "register", "m", model, "--tag", f"{SURROGATE}=x"),
        ("model", "register", "m", model, "--reason", SURROGATE),
        ("model", "tag", "m", "team=\x00"),
        ("model", "tag", "m:1", "stage=ok", "--reason", "\x00"),
        ("model", "alias", "m", "prod\n", "1"),
        ("env", "register", str(spec_files["env"])),
        ("data", "register", "train\n", data),
        ("data", "register", "train", data, "--description", SURROGATE),
        ("pipeline", "register", str(spec_files["pipeline"])),
        ("endpoint", "create", "shop\n"),
        ("endpoint", "create", "shop", "--description", "\x00"),
        ("endpoint", "deploy", "live", "blue\n", "m:1"),
        ("endpoint", "deploy", "live", "blue", "m:1", "--memory-mb", str(2**70)),
        ("token", "create", "--name", "ci\n", "--role", "reader"),
        ("token", "create", "--name", "ci", "--role", "reader", "--reason", "\x00"),
    ]
    for args in poisoned:
        result = cli(*args)
        assert result.code == 1, (args, result)
        # (a progress bar may have left an empty line before the message)
        assert result.err.lstrip().startswith("error: "), (args, result.err)
        assert "Traceback" not in result.err + result.out
    with Ledger(store.settings()) as app:
        assert app.event_count() == head


def test_python_callers_are_refused_too(ledger: Ledger, tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"w")
    ledger.models.register_version("m", tmp_path)
    head = ledger.event_count()
    with pytest.raises(InvalidInputError, match="tag value contains a NUL"):
        ledger.models.set_tags("m", {"team": "a\x00"})
    with (
        pytest.raises(InvalidInputError, match="actor contains a lone surrogate"),
        ledger.on_behalf_of(f"bot{SURROGATE}"),
    ):
        ledger.models.set_tags("m", {"team": "a"})
    with pytest.raises(InvalidInputError, match="invalid model name"):
        ledger.models.register_version("sec\n", tmp_path)
    assert ledger.event_count() == head
    ledger.models.set_tags("m", {"team": "a"})  # the refused commands left nothing behind
    assert ledger.event_count() == head + 1


# -- a poison event already in the log ---------------------------------------------------------


@pytest.fixture
def poisoned_log(
    store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[int]:
    """A log with poison events written past the validator, as older releases wrote them:
    a NUL in a tag value and a reason (PostgreSQL text cannot hold it) and a NaN in a
    deployment's resources (the stored JSON cannot be parsed), between ordinary events.
    Yields the number of views that must report an error."""
    (tmp_path / "w.bin").write_bytes(b"w")
    with Ledger(store.settings()) as app:
        for name in ("a", "b", "c"):
            app.models.register_version(name, tmp_path)
        app.endpoints.create("live")
        with monkeypatch.context() as unchecked:
            unchecked.setattr(ledger.application, "check_event_fields", lambda event: None)
            app.models.set_tags("a", {"team": "x\x00y"}, reason="why\x00")
            resources: Any = {"cpus": float("nan"), "gpus": 0, "memory_mb": 1, "replicas": 1}
            app.endpoints.deploy("live", "blue", "a:1", resources=resources)
        app.models.register_version("after", tmp_path)
        app.models.set_tags("after", {"stage": "later"})
    # the NaN breaks every view; the NUL only the registry's and audit's on PostgreSQL
    yield len(all_read_models())


def _views_see_the_later_events(views: Views) -> None:
    names = {row[0] for row in views.db.execute("SELECT name FROM ledger_view_models")}
    assert {"a", "b", "c", "after"} <= names
    tags = views.db.execute("SELECT value FROM ledger_view_model_tags WHERE key = 'stage'")
    assert tags == [("later",)]


def test_a_view_passes_an_event_it_cannot_store_and_reports_it(
    store: StoreFactory, poisoned_log: int, cli: Cli
) -> None:
    views = Views.open(store.settings())
    try:
        _views_see_the_later_events(views)
        statuses = views.updater.status()
        assert all(s.lag_events == 0 for s in statuses)
        assert sum(1 for s in statuses if s.errors) == poisoned_log
        registry = next(s for s in statuses if s.name == "registry")
        assert registry.errors == (2 if store.kind == "postgres" else 1)
        assert registry.last_error is not None
        assert registry.last_error.event_type == "Endpoint.DeploymentCreated"
    finally:
        views.close()
    shown = cli("projections", "status")
    assert shown.code == 0 and "could not be stored" in shown.err, shown
    as_json = cli("projections", "status", "--json").json()
    assert isinstance(as_json, list)
    assert all(row["errors"] >= 1 and row["last_error"]["error"] for row in as_json)
    rebuilt = cli("projections", "rebuild")
    assert rebuilt.code == 0, rebuilt
    after = cli("projections", "status", "--json").json()
    assert isinstance(after, list)
    assert [row["errors"] for row in after] == [row["errors"] for row in as_json]
    views = Views.open(store.settings())
    try:
        _views_see_the_later_events(views)
    finally:
        views.close()


def test_health_is_degraded_and_metrics_count_view_errors(
    store: StoreFactory, poisoned_log: int
) -> None:
    with running_api(store.settings()) as api:
        health = api.client.get("/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded"
        assert len(body["projections"]["errors"]) == poisoned_log
        metrics = api.client.get("/metrics", headers=api.auth("reader")).text
        assert 'ledger_projection_errors{projection="registry"}' in metrics
        found = api.client.get("/models/after", headers=api.auth("reader"))
        assert found.status_code == 200, found.text
        # Writes after the poison go on, and their reads see them.
        tagged = api.client.put(
            "/models/after/tags", json={"tags": {"k": "v"}}, headers=api.auth("contributor")
        )
        assert tagged.status_code == 204, tagged.text
        version = api.client.get("/models/after", headers=api.auth("reader")).json()
        assert version["tags"] == {"stage": "later", "k": "v"}


def test_outages_are_not_data_errors() -> None:
    assert is_data_error(psycopg.DataError("text fields cannot contain NUL"))
    assert is_data_error(sqlite3.IntegrityError("NOT NULL constraint failed"))
    assert is_data_error(OverflowError("Python int too large to convert to SQLite INTEGER"))
    assert not is_data_error(psycopg.OperationalError("server closed the connection"))
    assert not is_data_error(sqlite3.OperationalError("database is locked"))
    assert not is_data_error(RuntimeError("a bug"))


def test_a_store_outage_while_applying_propagates(
    store: StoreFactory, poisoned_log: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller retries later: an outage is never recorded as a view error."""
    from projections.updater import ViewUpdater

    updater = ViewUpdater(store.settings())
    try:
        outage = psycopg.OperationalError if store.kind == "postgres" else sqlite3.OperationalError

        def down(*args: Any, **kwargs: Any) -> Any:
            raise outage("the store went away")

        with monkeypatch.context() as patched, pytest.raises(outage):
            patched.setattr(updater.db, "read_events", down)
            updater.catch_up()
        assert all(s.errors == 0 for s in updater.status())
        updater.catch_up()
        assert sum(1 for s in updater.status() if s.errors) == poisoned_log
    finally:
        updater.close()
