"""MLflow's model-version endpoints on the app in-process (both stores)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ledger.api.mlflow import model_versions
from ledger.api.mlflow.sources import ModelSource
from ledger.artifacts.paths import FileEntry
from ledger.ledger import Ledger
from tests.conftest import Api
from tests.mlflow.support import call, create_model, error, ok, register


def test_get_update_tag_and_delete_a_version(api: Api) -> None:
    create_model(api, "iris")
    register(api, "iris", description="first")
    got = ok(call(api, "GET", "model-versions/get", "reader", name="iris", version="1"))
    version = got["model_version"]
    assert (version["name"], version["version"], version["description"]) == ("iris", "1", "first")
    assert version["creation_timestamp"] == version["last_updated_timestamp"]
    assert (version["run_id"], version["model_id"], version["run_link"]) == ("", "", "")

    updated = ok(call(api, "PATCH", "model-versions/update", name="iris", version="1",
                      description="better"))["model_version"]  # fmt: skip
    assert updated["description"] == "better"
    head = api.head()
    same = ok(call(api, "PATCH", "model-versions/update", name="iris", version="1"))
    assert same["model_version"]["description"] == "better" and api.head() == head
    assert updated["last_updated_timestamp"] >= updated["creation_timestamp"]
    ok(call(api, "POST", "model-versions/set-tag", name="iris", version="1", key="k", value="v"))
    tagged = ok(call(api, "GET", "model-versions/get", name="iris", version=1))["model_version"]
    assert tagged["tags"] == [{"key": "k", "value": "v"}]
    ok(call(api, "DELETE", "model-versions/delete-tag", name="iris", version="1", key="k"))
    head = api.head()
    ok(call(api, "DELETE", "model-versions/delete-tag", name="iris", version="1", key="k"))
    assert api.head() == head

    uri = ok(call(api, "GET", "model-versions/get-download-uri", name="iris", version="1"))
    assert uri == {"artifact_uri": "mlflow-artifacts:/ledger/models/iris/1"}
    ok(call(api, "DELETE", "model-versions/delete", name="iris", version="1"))
    for method, path in (("GET", "model-versions/get"), ("DELETE", "model-versions/delete"),
                         ("GET", "model-versions/get-download-uri")):  # fmt: skip
        error(call(api, method, path, name="iris", version="1"), 404, "RESOURCE_DOES_NOT_EXIST")
    tag_deleted = call(api, "POST", "model-versions/set-tag", name="iris", version="1", key="k")
    error(tag_deleted, 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("version", ["0", "one", "-1", "1.5", "", "99999999999999999999"])
def test_a_bad_version_number_is_invalid(api: Api, version: str) -> None:
    create_model(api, "iris")
    got = call(api, "GET", "model-versions/get", "reader", name="iris", version=version)
    error(got, 400, "INVALID_PARAMETER_VALUE")


def test_stages_are_refused_for_aliases(api: Api) -> None:
    create_model(api, "iris")
    register(api, "iris")
    head = api.head()
    moved = call(api, "POST", "model-versions/transition-stage", name="iris", version="1",
                 stage="Production", archive_existing_versions=False)  # fmt: skip
    message = error(moved, 400, "INVALID_PARAMETER_VALUE")
    assert "stages are deprecated" in message and "set_registered_model_alias" in message
    reader = call(api, "POST", "model-versions/transition-stage", "reader", name="iris",
                  version="1", stage="Production")  # fmt: skip
    error(reader, 403, "PERMISSION_DENIED")
    assert api.head() == head


def test_create_model_version_refuses_what_it_cannot_register(api: Api) -> None:
    head = api.head()
    missing = call(api, "POST", "model-versions/create", name="nope", source="models:/m-1")
    error(missing, 404, "RESOURCE_DOES_NOT_EXIST")
    create_model(api, "iris")
    head = api.head()
    error(call(api, "POST", "model-versions/create", name="iris"), 400, "INVALID_PARAMETER_VALUE")
    reader = call(api, "POST", "model-versions/create", "reader", name="iris", source="s")
    error(reader, 403, "PERMISSION_DENIED")
    assert api.head() == head


def test_create_model_version_registers_the_sources_files_with_their_origin(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The files and run record behind an MLflow source (another module reads them from
    the tracking side) become the next ledger version; a run dataset that is a ledger data
    asset version becomes its lineage, the others stay in the origin."""
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    with Ledger(api.settings) as ledger:
        train = ledger.assets.register_data("train", data)
    api.client.app.state.services.sync_views()
    store = api.client.app.state.services.ledger.artifacts
    digest, size = store.put_stream(io.BytesIO(b"pickled model"))

    def resolve(services: object, source: str, run_id: str, model_id: str) -> ModelSource:
        assert (source, run_id, model_id) == ("models:/m-7", "r-1", "m-7")
        return ModelSource(
            files=[FileEntry(path="model.pkl", sha256=digest, size=size)],
            flavor="sklearn", signature={"inputs": "[]"}, run_id="r-1", model_id="m-7",
            metrics={"acc": 0.9}, params={"C": "1"},
            datasets=[{"name": "train", "digest": train.digest}, {"name": "web", "digest": "ab"}],
        )  # fmt: skip

    monkeypatch.setattr(model_versions, "resolve_source", resolve)
    create_model(api, "iris")
    created = ok(call(
        api, "POST", "model-versions/create", name="iris", source="models:/m-7", run_id="r-1",
        model_id="m-7", run_link="http://runs/r-1", description="from mlflow",
        tags=[{"key": "k", "value": "v"}],
    ))["model_version"]  # fmt: skip
    assert (created["version"], created["source"], created["run_id"]) == ("1", "models:/m-7", "r-1")
    assert (created["model_id"], created["run_link"]) == ("m-7", "http://runs/r-1")
    assert created["tags"] == [{"key": "k", "value": "v"}] and created["status"] == "READY"
    got = ok(call(api, "GET", "model-versions/get", name="iris", version="1"))["model_version"]
    assert got == created
    found = ok(call(api, "GET", "model-versions/search", filter="run_id = 'r-1'"))
    assert [v["version"] for v in found["model_versions"]] == ["1"]

    ledger_view = api.client.get("/models/iris/versions/1", headers=api.auth("reader")).json()
    assert ledger_view["flavor"] == "sklearn" and ledger_view["metrics"] == {"acc": 0.9}
    assert ledger_view["files"] == [{"path": "model.pkl", "sha256": digest, "size": size}]
    assert ledger_view["lineage"] == {"data": [f"train:{train.version}"]}
    assert ledger_view["origin"] == {
        "system": "mlflow", "source": "models:/m-7", "run_id": "r-1", "model_id": "m-7",
        "params": {"C": "1"}, "run_link": "http://runs/r-1",
        "datasets": [{"name": "web", "digest": "ab"}],
    }  # fmt: skip
    audit = api.client.get("/audit?event_type=ModelVersion.Registered",
                           headers=api.auth("reader")).json()["items"]  # fmt: skip
    assert (audit[-1]["actor"], audit[-1]["reason"]) == ("contributor-bot", "from mlflow")
