"""MLflow's model-version endpoints on the app in-process (both stores)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ledger.ledger import Ledger
from tests.conftest import Api
from tests.mlflow.support import (
    SKLEARN_MLMODEL,
    SKLEARN_SIGNATURE,
    call,
    create_model,
    error,
    ok,
    register,
    upload_ok,
)


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
    api: Api, tmp_path: Path
) -> None:
    """The files a run uploaded and its record become the next ledger version; a run dataset
    that is a ledger data asset version becomes its lineage, the others stay in the origin."""
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    with Ledger(api.settings) as ledger:
        train = ledger.assets.register_data("train", data)
    run = ok(call(api, "POST", "runs/create", experiment_id="0", start_time=1))["run"]["info"]
    run_id = run["run_id"]
    ok(call(api, "POST", "runs/log-batch", run_id=run_id, params=[{"key": "C", "value": "1"}],
            metrics=[{"key": "acc", "value": 0.9, "timestamp": 1, "step": 0}]))  # fmt: skip
    datasets = [{"dataset": {"name": name, "digest": digest, "source_type": "local",
                             "source": "{}", "schema": "", "profile": ""}, "tags": []}
                for name, digest in (("train", train.digest[:36]), ("web", "ab"))]  # fmt: skip
    ok(call(api, "POST", "runs/log-inputs", run_id=run_id, datasets=datasets))
    folder = f"0/{run_id}/artifacts/model"
    upload_ok(api, {f"{folder}/MLmodel": SKLEARN_MLMODEL.encode(),
                    f"{folder}/model.pkl": b"pickled model"})  # fmt: skip
    digest = hashlib.sha256(b"pickled model").hexdigest()
    source, link = f"runs:/{run_id}/model", f"http://runs/{run_id}"
    create_model(api, "iris")
    created = ok(call(
        api, "POST", "model-versions/create", name="iris", source=source, run_id=run_id,
        model_id="m-7", run_link=link, description="from mlflow",
        tags=[{"key": "k", "value": "v"}],
    ))["model_version"]  # fmt: skip
    assert (created["version"], created["source"], created["run_id"]) == ("1", source, run_id)
    assert (created["model_id"], created["run_link"]) == ("m-7", link)
    assert created["tags"] == [{"key": "k", "value": "v"}] and created["status"] == "READY"
    got = ok(call(api, "GET", "model-versions/get", name="iris", version="1"))["model_version"]
    assert got == created
    found = ok(call(api, "GET", "model-versions/search", filter=f"run_id = '{run_id}'"))
    assert [v["version"] for v in found["model_versions"]] == ["1"]

    ledger_view = api.client.get("/models/iris/versions/1", headers=api.auth("reader")).json()
    assert ledger_view["flavor"] == "sklearn" and ledger_view["metrics"] == {"acc": 0.9}
    assert ledger_view["signature"] == SKLEARN_SIGNATURE
    assert ledger_view["files"][1] == {"path": "model.pkl", "sha256": digest, "size": 13}
    assert ledger_view["lineage"] == {"data": [f"train:{train.version}"]}
    assert ledger_view["origin"] == {
        "system": "mlflow", "source": source, "run_id": run_id, "model_id": "m-7",
        "params": {"C": "1"}, "run_link": link,
        "datasets": [{"name": "web", "digest": "ab", "source_type": "local", "source": "{}"}],
    }  # fmt: skip
    audit = api.client.get("/audit?event_type=ModelVersion.Registered",
                           headers=api.auth("reader")).json()["items"]  # fmt: skip
    assert (audit[-1]["actor"], audit[-1]["reason"]) == ("contributor-bot", "from mlflow")
