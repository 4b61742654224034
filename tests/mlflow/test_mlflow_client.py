"""The unmodified MLflow client, pointed at a server only by its tracking URI and token.

One scenario runs three ways: against a real `mlflow server` (which shows the scenario itself
is right) and against `ledger serve` on each store, where every write it makes must then show
in `ledger audit` under the token's name, and `ledger verify` must pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from ledger.ledger import Ledger
from tests.conftest import PG_URL, Cli, StoreFactory
from tests.mlflow_support import mlflow_database, mlflow_server
from tests.server_support import serving

TOKEN_NAME = "mlflow-bot"
# Stages are deprecated, and with them get_latest_versions; MLflow 3 still calls it.
pytestmark = pytest.mark.filterwarnings("ignore:.*get_latest_versions.*:FutureWarning")


# -- the client, pointed at one server ----------------------------------------------------


@pytest.fixture
def point_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Point the MLflow client at a server URL with a token ("" for none), as a user would;
    a server that answers wrongly fails the test at once instead of being retried."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.setenv(variable, "")  # restored (or removed) after the test

    def point(url: str, token: str) -> None:
        if token:
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
        else:
            monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
        mlflow.set_tracking_uri(url)
        mlflow.set_registry_uri(url)

    yield point
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    mlflow.set_registry_uri(None)  # type: ignore[arg-type]


# -- where each write lands in the ledger's log ----------------------------------------------


@dataclass
class Writes:
    """The log positions each write of the scenario spans, and the ledger events it must
    have written there (against `mlflow server` there is no log: ``head`` is None)."""

    head: Callable[[], int] | None = None
    spans: list[tuple[str, int, int, set[str]]] = field(default_factory=list)

    @contextmanager
    def write(self, label: str, *event_types: str) -> Iterator[None]:
        before = self.head() if self.head else 0
        yield
        if self.head:
            self.spans.append((label, before, self.head(), set(event_types)))


# -- the scenario -------------------------------------------------------------------------------


@dataclass
class Models:
    """Two classifiers of iris that disagree on some rows, so a load of the wrong version
    cannot pass for the right one."""

    features: Any
    labels: Any
    first: LogisticRegression
    second: LogisticRegression

    @classmethod
    def train(cls) -> Models:
        features, labels = load_iris(return_X_y=True)
        first = LogisticRegression(C=1.0, max_iter=1000).fit(features, labels)
        second = LogisticRegression(C=0.01, max_iter=1000).fit(features, labels)
        assert not np.array_equal(first.predict(features), second.predict(features))
        return cls(features, labels, first, second)


def scenario(name: str, writes: Writes, downloads: Path) -> None:
    """The issue's scenario, from logging two versions to the errors, through ``mlflow``."""
    client = MlflowClient()
    models = Models.train()
    run_ids = log_two_versions(client, name, models, writes)
    tag_alias_and_search(client, name, writes)
    describe(client, name, writes)
    assert [v.run_id for v in versions_of(client, name)] == run_ids
    load_and_predict(name, models, downloads)
    delete_and_refuse(client, name, writes)


def log_two_versions(client: MlflowClient, name: str, models: Models, writes: Writes) -> list[str]:
    experiment = client.create_experiment(f"scenario-{uuid.uuid4().hex[:8]}")
    run_ids = []
    for number, (model, events) in enumerate(
        [
            (models.first, ("Model.Registered", "Model.VersionAdded", "ModelVersion.Registered")),
            (models.second, ("Model.VersionAdded", "ModelVersion.Registered")),
        ],
        start=1,
    ):
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_param("C", model.C)
            mlflow.log_metric("accuracy", model.score(models.features, models.labels))
            signature = infer_signature(models.features, model.predict(models.features))
            with writes.write(f"log_model version {number}", *events):
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    registered_model_name=name,
                    signature=signature,
                    pip_requirements=["scikit-learn"],  # no inference in a subprocess
                )
        assert info.registered_model_version == str(number)
        run_ids.append(run.info.run_id)
    return run_ids


def tag_alias_and_search(client: MlflowClient, name: str, writes: Writes) -> None:
    with writes.write("version tag", "ModelVersion.Tagged"):
        client.set_model_version_tag(name, "1", "validated", "yes")
    with writes.write("model tag", "Model.Tagged"):
        client.set_registered_model_tag(name, "team", "vision")
    with writes.write("alias", "Model.AliasSet"):
        client.set_registered_model_alias(name, "champion", "2")

    assert client.get_model_version_by_alias(name, "champion").version == "2"
    model = client.get_registered_model(name)
    assert (model.tags, model.aliases) == ({"team": "vision"}, {"champion": "2"})
    assert client.get_model_version(name, "2").aliases == ["champion"]
    assert client.get_model_version(name, "1").tags["validated"] == "yes"

    def model_names(filter_string: str) -> list[str]:
        return [m.name for m in client.search_registered_models(filter_string)]

    assert model_names(f"name = '{name}'") == [name]
    assert model_names(f"name LIKE '{name[:-4]}%'") == [name]
    assert model_names(f"name = '{name}' and tag.team = 'vision'") == [name]
    assert model_names(f"name = '{name}' and tag.team = 'audio'") == []
    assert sorted(v.version for v in versions_of(client, name)) == ["1", "2"]
    tagged = client.search_model_versions(f"name = '{name}' and tag.validated = 'yes'")
    assert [v.version for v in tagged] == ["1"]
    first = client.search_model_versions(f"name = '{name}'", max_results=1)
    assert len(first) == 1 and first.token
    rest = client.search_model_versions(f"name = '{name}'", max_results=1, page_token=first.token)
    assert {first[0].version, rest[0].version} == {"1", "2"}
    assert [v.version for v in client.get_latest_versions(name)] == ["2"]
    assert [v.version for v in client.get_registered_model(name).latest_versions] == ["2"]


def describe(client: MlflowClient, name: str, writes: Writes) -> None:
    with writes.write("model description", "Model.DescriptionChanged"):
        client.update_registered_model(name, description="Iris, by petal and sepal")
    with writes.write("version description", "ModelVersion.DescriptionChanged"):
        client.update_model_version(name, "1", description="the first, C=1")
    assert client.get_registered_model(name).description == "Iris, by petal and sepal"
    assert client.get_model_version(name, "1").description == "the first, C=1"


def load_and_predict(name: str, models: Models, downloads: Path) -> None:
    """The registered models, loaded back by alias and by number, predict exactly what the
    originals predict."""
    for uri, original in [
        (f"models:/{name}@champion", models.second),
        (f"models:/{name}/1", models.first),
    ]:
        destination = downloads / uri.replace(":", "_").replace("/", "_").replace("@", "_")
        destination.mkdir()
        loaded = mlflow.pyfunc.load_model(uri, dst_path=str(destination))
        predicted = np.asarray(loaded.predict(models.features))
        assert np.array_equal(predicted, original.predict(models.features)), uri


def delete_and_refuse(client: MlflowClient, name: str, writes: Writes) -> None:
    with writes.write("version tag delete", "ModelVersion.Untagged"):
        client.delete_model_version_tag(name, "1", "validated")
    with writes.write("model tag delete", "Model.Untagged"):
        client.delete_registered_model_tag(name, "team")
    with writes.write("alias delete", "Model.AliasRemoved"):
        client.delete_registered_model_alias(name, "champion")
    model = client.get_registered_model(name)
    assert (model.tags, model.aliases) == ({}, {})
    assert "validated" not in client.get_model_version(name, "1").tags

    with writes.write("version delete", "ModelVersion.Deleted"):
        client.delete_model_version(name, "1")
    assert [v.version for v in versions_of(client, name)] == ["2"]
    assert_error(lambda: client.get_model_version(name, "1"), "RESOURCE_DOES_NOT_EXIST")
    assert_error(lambda: client.get_registered_model(f"{name}-nope"), "RESOURCE_DOES_NOT_EXIST")
    assert_error(lambda: client.create_registered_model(name), "RESOURCE_ALREADY_EXISTS")
    assert_error(lambda: client.delete_model_version(name, "7"), "RESOURCE_DOES_NOT_EXIST")


def versions_of(client: MlflowClient, name: str) -> list[Any]:
    """The model's versions, oldest first."""
    found = client.search_model_versions(f"name = '{name}'")
    return sorted(found, key=lambda version: int(version.version))


def assert_error(call: Callable[[], object], code: str) -> None:
    with pytest.raises(MlflowException) as raised:
        call()
    assert raised.value.error_code == code, raised.value


def model_name() -> str:
    return f"iris-{uuid.uuid4().hex[:8]}-clf"


# -- three ways ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_scenario_passes_against_mlflow_server(
    point_client: Callable[[str, str], None], tmp_path: Path
) -> None:
    with mlflow_database("sqlite", PG_URL) as uri, mlflow_server(uri) as url:
        point_client(url, "")
        scenario(model_name(), Writes(), tmp_path)


@pytest.mark.slow
def test_the_scenario_passes_against_ledger_serve_and_is_audited(
    store: StoreFactory, cli: Cli, point_client: Callable[[str, str], None], tmp_path: Path
) -> None:
    with Ledger(store.settings()) as ledger:
        token = ledger.tokens.create(TOKEN_NAME, "contributor").secret
        start = ledger.event_count()
    name = model_name()
    with serving(store) as url, Ledger(store.settings()) as ledger:
        point_client(url, token)
        writes = Writes(ledger.event_count)  # the log's head, read from the store
        scenario(name, writes, tmp_path)

    assert_audited(cli, start, name, writes)
    verified = cli("verify")
    assert verified.code == 0 and "OK:" in verified.out, verified


def assert_audited(cli: Cli, start: int, name: str, writes: Writes) -> None:
    """Every event after log position ``start`` was written under the token's name, and
    each write of the scenario wrote the events it must have, to the model ``name``."""
    audited = cli("audit", "--after", str(start), "--limit", "1000", "--json")
    assert audited.code == 0, audited
    page = audited.json()
    assert page["next_token"] == "", "more events than one page"  # type: ignore[index]
    events = page["items"]  # type: ignore[index]
    assert events and {e["actor"] for e in events} == {TOKEN_NAME}
    for label, before, after, expected in writes.spans:
        span = [e for e in events if before < e["position"] <= after]
        written = {e["event_type"] for e in span}
        assert expected <= written, f"{label}: {sorted(written)} lacks {sorted(expected)}"
        models = {e["scope"] for e in span if e["kind"] in ("model", "model_version")}
        assert models == {name}, f"{label} wrote to {models}"
