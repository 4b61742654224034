"""MLflow's registered-model endpoints on the app in-process (both stores): their JSON,
their errors in MLflow's format, and every write as an audited ledger command."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.mlflow.support import call, create_model, error, ok, register

MODEL_KEYS = {
    "name", "creation_timestamp", "last_updated_timestamp", "user_id", "description",
    "latest_versions", "tags", "aliases",
}  # fmt: skip
VERSION_KEYS = {
    "name", "version", "creation_timestamp", "last_updated_timestamp", "user_id",
    "current_stage", "description", "source", "run_id", "status", "run_link", "tags",
    "aliases", "model_id",
}  # fmt: skip


def test_create_and_get_answer_mlflows_registered_model(api: Api) -> None:
    created = create_model(
        api, "iris", description="flowers", tags=[{"key": "team", "value": "ml"}]
    )
    assert set(created) == MODEL_KEYS
    assert created["name"] == "iris" and created["description"] == "flowers"
    assert created["tags"] == [{"key": "team", "value": "ml"}]
    assert created["user_id"] == "contributor-bot"
    assert created["latest_versions"] == [] and created["aliases"] == []
    assert isinstance(created["creation_timestamp"], int)
    assert created["last_updated_timestamp"] == created["creation_timestamp"]
    got = ok(call(api, "GET", "registered-models/get", "reader", name="iris"))
    assert got["registered_model"] == created

    register(api, "iris")
    register(api, "iris", description="second")
    model = ok(call(api, "GET", "registered-models/get", "reader", name="iris"))["registered_model"]
    [latest] = model["latest_versions"]
    assert set(latest) == VERSION_KEYS
    assert (latest["name"], latest["version"], latest["description"]) == ("iris", "2", "second")
    assert (latest["current_stage"], latest["status"]) == ("None", "READY")
    assert latest["source"] == "mlflow-artifacts:/ledger/models/iris/2"
    assert latest["user_id"] == "contributor-bot" and latest["aliases"] == []
    assert model["last_updated_timestamp"] >= latest["creation_timestamp"]
    assert model["last_updated_timestamp"] > model["creation_timestamp"]


def test_errors_are_mlflows_codes_and_write_nothing(api: Api) -> None:
    create_model(api, "iris")
    head = api.head()
    duplicate = call(api, "POST", "registered-models/create", name="iris")
    assert "already exists" in error(duplicate, 400, "RESOURCE_ALREADY_EXISTS")
    missing = call(api, "GET", "registered-models/get", "reader", name="nope")
    assert "'nope'" in error(missing, 404, "RESOURCE_DOES_NOT_EXIST")
    error(call(api, "GET", "registered-models/get", "reader"), 400, "INVALID_PARAMETER_VALUE")
    reader = call(api, "POST", "registered-models/create", "reader", name="x")
    assert "reader" in error(reader, 403, "PERMISSION_DENIED")
    error(call(api, "POST", "registered-models/create", None, name="x"), 401, "UNAUTHENTICATED")
    error(call(api, "POST", "registered-models/create", name="bad name"), 400,
          "INVALID_PARAMETER_VALUE")  # fmt: skip
    bad_tags = call(api, "POST", "registered-models/create", name="x", tags={"a": "b"})
    error(bad_tags, 400, "INVALID_PARAMETER_VALUE")
    not_json = api.client.post(
        "/api/2.0/mlflow/registered-models/create",
        content=b"{name",
        headers={**api.auth("contributor"), "Content-Type": "application/json"},
    )
    assert "not valid JSON" in error(not_json, 400, "INVALID_PARAMETER_VALUE")
    error(call(api, "PATCH", "registered-models/update", name="nope", description="x"), 404,
          "RESOURCE_DOES_NOT_EXIST")  # fmt: skip
    error(call(api, "POST", "registered-models/set-tag", name="nope", key="k", value="v"), 404,
          "RESOURCE_DOES_NOT_EXIST")  # fmt: skip
    unknown = call(api, "GET", "registered-models/list", "reader")
    error(unknown, 404, "ENDPOINT_NOT_FOUND")
    assert api.head() == head


def test_description_tags_and_aliases(api: Api) -> None:
    create_model(api, "iris", description="old")
    register(api, "iris")
    register(api, "iris")
    updated = ok(call(api, "PATCH", "registered-models/update", name="iris", description="new"))
    assert updated["registered_model"]["description"] == "new"

    ok(call(api, "POST", "registered-models/set-tag", name="iris", key="a.b c", value="1"))
    model = ok(call(api, "GET", "registered-models/get", "reader", name="iris"))
    assert model["registered_model"]["tags"] == [{"key": "a.b c", "value": "1"}]
    ok(call(api, "DELETE", "registered-models/delete-tag", name="iris", key="a.b c"))
    head = api.head()
    ok(call(api, "DELETE", "registered-models/delete-tag", name="iris", key="a.b c"))
    assert api.head() == head  # like MLflow: removing a missing tag changes nothing

    ok(call(api, "POST", "registered-models/alias", name="iris", alias="champ", version="1"))
    model = ok(call(api, "GET", "registered-models/get", "reader", name="iris"))
    assert model["registered_model"]["aliases"] == [{"alias": "champ", "version": "1"}]
    aliased = ok(call(api, "GET", "registered-models/alias", "reader", name="iris", alias="champ"))
    assert aliased["model_version"]["version"] == "1"
    assert aliased["model_version"]["aliases"] == ["champ"]
    missing = call(api, "POST", "registered-models/alias", name="iris", alias="x", version="9")
    error(missing, 404, "RESOURCE_DOES_NOT_EXIST")
    bad = call(api, "POST", "registered-models/alias", name="iris", alias="x", version="one")
    error(bad, 400, "INVALID_PARAMETER_VALUE")
    ok(call(api, "DELETE", "registered-models/alias", name="iris", alias="champ"))
    ok(call(api, "DELETE", "registered-models/alias", name="iris", alias="champ"))
    gone = call(api, "GET", "registered-models/alias", "reader", name="iris", alias="champ")
    error(gone, 404, "RESOURCE_DOES_NOT_EXIST")


def test_latest_versions_by_post_and_get_every_version_in_stage_none(api: Api) -> None:
    create_model(api, "iris")
    empty = ok(call(api, "POST", "registered-models/get-latest-versions", name="iris"))
    assert empty == {"model_versions": []}
    register(api, "iris")
    register(api, "iris")
    ok(call(api, "DELETE", "model-versions/delete", name="iris", version="2"))
    for stages in ([], ["None"], ["Production", "none"]):
        latest = ok(call(api, "POST", "registered-models/get-latest-versions", "reader",
                         name="iris", stages=stages))["model_versions"]  # fmt: skip
        assert [v["version"] for v in latest] == ["1"]
    by_get = ok(call(api, "GET", "registered-models/get-latest-versions", "reader",
                     name="iris", stages=["None", "Staging"]))  # fmt: skip
    assert [v["version"] for v in by_get["model_versions"]] == ["1"]
    staging = call(api, "POST", "registered-models/get-latest-versions", name="iris",
                   stages=["Staging"])  # fmt: skip
    assert ok(staging) == {"model_versions": []}
    missing = call(api, "POST", "registered-models/get-latest-versions", name="nope")
    error(missing, 404, "RESOURCE_DOES_NOT_EXIST")


def _deploy(api: Api, model_ref: str) -> None:
    deployer = api.auth("deployer")
    response = api.client.post("/endpoints", json={"name": "shop"}, headers=deployer)
    assert response.status_code == 201, response.text
    response = api.client.post(
        "/endpoints/shop/deployments",
        json={"deployment": "blue", "model": model_ref},
        headers=deployer,
    )
    assert response.status_code == 201, response.text


def test_rename_moves_versions_tags_and_aliases_and_keeps_both_histories(api: Api) -> None:
    create_model(api, "iris", description="flowers", tags=[{"key": "team", "value": "ml"}])
    for _ in range(3):
        register(api, "iris")
    ok(call(api, "DELETE", "model-versions/delete", name="iris", version="1"))
    ok(call(api, "POST", "model-versions/set-tag", name="iris", version="2", key="k", value="v"))
    ok(call(api, "POST", "registered-models/alias", name="iris", alias="champ", version="2"))

    renamed = ok(call(api, "POST", "registered-models/rename", name="iris", new_name="flora"))
    model = renamed["registered_model"]
    assert (model["name"], model["description"]) == ("flora", "flowers")
    assert model["tags"] == [{"key": "team", "value": "ml"}]
    assert model["aliases"] == [{"alias": "champ", "version": "2"}]
    assert [(v["name"], v["version"]) for v in model["latest_versions"]] == [("flora", "3")]
    gone = call(api, "GET", "registered-models/get", "reader", name="iris")
    error(gone, 404, "RESOURCE_DOES_NOT_EXIST")
    error(call(api, "GET", "model-versions/get", "reader", name="iris", version="2"), 404,
          "RESOURCE_DOES_NOT_EXIST")  # fmt: skip
    moved = ok(call(api, "GET", "model-versions/get", "reader", name="flora", version="2"))
    assert moved["model_version"]["tags"] == [{"key": "k", "value": "v"}]
    assert moved["model_version"]["aliases"] == ["champ"]
    error(call(api, "GET", "model-versions/get", "reader", name="flora", version="1"), 404,
          "RESOURCE_DOES_NOT_EXIST")  # fmt: skip
    assert register(api, "flora") == 4
    # The old name can be used again; its numbers continue (a version is never reused).
    create_model(api, "iris")
    assert register(api, "iris") == 4

    taken = call(api, "POST", "registered-models/rename", name="flora", new_name="iris")
    error(taken, 400, "RESOURCE_ALREADY_EXISTS")
    ok(call(api, "DELETE", "registered-models/delete", name="iris"))
    used = call(api, "POST", "registered-models/rename", name="flora", new_name="iris")
    assert "was used before" in error(used, 400, "INVALID_PARAMETER_VALUE")
    same = call(api, "POST", "registered-models/rename", name="flora", new_name="flora")
    error(same, 400, "INVALID_PARAMETER_VALUE")

    old = api.client.get("/audit?entity=model:iris&limit=1000", headers=api.auth("reader"))
    types = [e["event_type"] for e in old.json()["items"]]
    assert "Model.Renamed" in types and types.count("ModelVersion.Renamed") == 3
    assert types[-2:] == ["Model.Deleted", "ModelVersion.Deleted"]
    new = api.client.get("/audit?entity=model:flora&limit=1000", headers=api.auth("reader"))
    assert new.json()["items"][0]["event_type"] == "Model.RenamedFrom"


def test_a_deployed_version_holds_its_model_against_rename_and_delete(api: Api) -> None:
    create_model(api, "iris")
    register(api, "iris")
    register(api, "iris")
    _deploy(api, "iris:1")
    head = api.head()
    for path, fields in (
        ("registered-models/delete", {"name": "iris"}),
        ("model-versions/delete", {"name": "iris", "version": "1"}),
    ):
        refused = call(api, "DELETE", path, **fields)
        assert "deployment 'blue'" in error(refused, 409, "RESOURCE_CONFLICT")
    renamed = call(api, "POST", "registered-models/rename", name="iris", new_name="flora")
    error(renamed, 409, "RESOURCE_CONFLICT")
    assert api.head() == head
    assert len(ok(call(api, "GET", "registered-models/get", name="iris"))["registered_model"]
               ["latest_versions"]) == 1  # fmt: skip


def test_delete_ends_the_model_and_its_versions_and_the_name_starts_again(api: Api) -> None:
    create_model(api, "iris", tags=[{"key": "team", "value": "ml"}])
    register(api, "iris")
    register(api, "iris")
    ok(call(api, "POST", "registered-models/alias", name="iris", alias="champ", version="2"))
    ok(call(api, "DELETE", "registered-models/delete", name="iris"))
    error(call(api, "GET", "registered-models/get", name="iris"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(call(api, "GET", "model-versions/get", name="iris", version="2"), 404,
          "RESOURCE_DOES_NOT_EXIST")  # fmt: skip
    error(call(api, "DELETE", "registered-models/delete", name="iris"), 404,
          "RESOURCE_DOES_NOT_EXIST")  # fmt: skip
    listed = ok(call(api, "GET", "registered-models/search", "reader"))
    assert listed == {"registered_models": []}

    again = create_model(api, "iris")
    assert again["tags"] == [] and again["aliases"] == [] and again["latest_versions"] == []
    assert register(api, "iris") == 3
    versions = ok(call(api, "GET", "model-versions/search", filter="name = 'iris'"))
    assert [v["version"] for v in versions["model_versions"]] == ["3"]
    # The ledger's own history keeps every version, deleted ones included.
    history = api.client.get("/models/iris/versions?include_deleted=true",
                             headers=api.auth("reader")).json()  # fmt: skip
    assert [(v["version"], v["status"]) for v in history] == [
        (3, "ready"), (2, "deleted"), (1, "deleted"),
    ]  # fmt: skip


@pytest.mark.parametrize("header", [None, "retiring the old pipeline"])
def test_every_write_is_audited_with_the_tokens_name_and_a_reason(
    api: Api, header: str | None
) -> None:
    headers = {"X-Ledger-Reason": header} if header else {}
    writes = [
        ("POST", "registered-models/create", {"name": "iris", "description": "made by mlflow"},
         "Model.Registered", "made by mlflow"),
        ("PATCH", "registered-models/update", {"name": "iris", "description": "d"},
         "Model.DescriptionChanged", "MLflow: update_registered_model"),
        ("POST", "registered-models/set-tag", {"name": "iris", "key": "k", "value": "v"},
         "Model.Tagged", "MLflow: set_registered_model_tag"),
        ("DELETE", "registered-models/delete-tag", {"name": "iris", "key": "k"},
         "Model.Untagged", "MLflow: delete_registered_model_tag"),
        ("POST", "registered-models/alias", {"name": "iris", "alias": "a", "version": "1"},
         "Model.AliasSet", "MLflow: set_registered_model_alias"),
        ("DELETE", "registered-models/alias", {"name": "iris", "alias": "a"},
         "Model.AliasRemoved", "MLflow: delete_registered_model_alias"),
        ("POST", "model-versions/set-tag", {"name": "iris", "version": "1", "key": "k",
         "value": "v"}, "ModelVersion.Tagged", "MLflow: set_model_version_tag"),
        ("DELETE", "model-versions/delete-tag", {"name": "iris", "version": "1", "key": "k"},
         "ModelVersion.Untagged", "MLflow: delete_model_version_tag"),
        ("PATCH", "model-versions/update", {"name": "iris", "version": "1", "description": "x"},
         "ModelVersion.DescriptionChanged", "MLflow: update_model_version"),
        ("DELETE", "model-versions/delete", {"name": "iris", "version": "1"},
         "ModelVersion.Deleted", "MLflow: delete_model_version"),
        ("POST", "registered-models/rename", {"name": "iris", "new_name": "flora"},
         "Model.Renamed", "MLflow: rename_registered_model to flora"),
        ("DELETE", "registered-models/delete", {"name": "flora"},
         "Model.Deleted", "MLflow: delete_registered_model"),
    ]  # fmt: skip
    for method, path, fields, event_type, reason in writes:
        after = api.head()
        ok(call(api, method, path, headers=headers, **fields))
        if path == "registered-models/create":
            register(api, "iris")  # a version for the version calls (not audited here)
        audit = api.client.get(
            f"/audit?event_type={event_type}&after={after}", headers=api.auth("reader")
        ).json()["items"]
        assert audit, f"{path} wrote no {event_type}"
        assert audit[0]["actor"] == "contributor-bot", (path, audit[0])
        assert audit[0]["reason"] == (header or reason), (path, audit[0])
