"""The real MlflowClient against a real `ledger serve` (both stores): the registry calls a
user makes, their errors as MlflowException codes, each write audited as the token's holder.

Versions are registered with the ledger's own API (registering from a logged MLflow model
is the tracking side's; see the end-to-end scenario)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ledger.ledger import Ledger
from projections.audit import AuditQuery
from projections.views import Views
from tests.conftest import StoreFactory
from tests.server_support import serving

T = TypeVar("T")


# Stages are deprecated; the client still calls them (and the ledger refuses them).
pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated since 2.9.0:FutureWarning")


@dataclass(frozen=True)
class Served:
    url: str
    ledger: Ledger
    reader_token: str


@pytest.fixture
def served(store: StoreFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """`ledger serve` on the test store, the client holding a contributor's token."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with Ledger(store.settings()) as ledger:
        token = ledger.tokens.create("ml-bot", "contributor").secret
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
        reader = ledger.tokens.create("ml-reader", "reader").secret
        with serving(store) as url:
            yield Served(url, ledger, reader)


def eventually(read: Callable[[], T], done: Callable[[T], bool]) -> T:
    """``read()`` once the server's views show what another process wrote (``done``)."""
    deadline = time.monotonic() + 15
    while not done(value := read()):
        assert time.monotonic() < deadline, value
        time.sleep(0.05)
    return value


def code_of(call: Callable[[], Any]) -> str:
    with pytest.raises(MlflowException) as raised:
        call()
    return str(raised.value.error_code)


def test_mlflow_client_registry_calls(
    served: Served, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = served.ledger
    client = MlflowClient(tracking_uri=served.url, registry_uri=served.url)
    created = client.create_registered_model("iris", tags={"team": "ml"}, description="flowers")
    assert (created.name, created.description, created.tags) == ("iris", "flowers", {"team": "ml"})
    assert code_of(lambda: client.create_registered_model("iris")) == "RESOURCE_ALREADY_EXISTS"
    client.create_registered_model("wine")
    for _ in range(2):
        ledger.models.register_version("iris", model_dir, tags={"k": "v"})

    latest = eventually(lambda: client.get_latest_versions("iris"),
                        lambda found: [v.version for v in found] == ["2"])  # fmt: skip
    assert latest[0].current_stage == "None" and latest[0].status == "READY"
    assert client.get_latest_versions("iris", stages=["Production"]) == []
    client.set_registered_model_tag("iris", "owner", "me")
    client.set_model_version_tag("iris", "1", "checked", "yes")
    client.set_registered_model_alias("iris", "champ", 1)
    champion = client.get_model_version_by_alias("iris", "champ")
    assert (champion.version, champion.aliases) == ("1", ["champ"])
    assert champion.tags == {"k": "v", "checked": "yes"}
    model = client.get_registered_model("iris")
    assert model.tags == {"team": "ml", "owner": "me"} and model.aliases == {"champ": "1"}

    assert [m.name for m in client.search_registered_models("name LIKE 'ir%'")] == ["iris"]
    first = client.search_registered_models(max_results=1)
    second = client.search_registered_models(max_results=1, page_token=first.token)
    assert [m.name for m in [*first, *second]] == ["iris", "wine"] and not second.token
    tagged = client.search_model_versions("name='iris' and tag.checked = 'yes'")
    assert [v.version for v in tagged] == ["1"]
    newest = client.search_model_versions("name = 'iris'", order_by=["version_number DESC"])
    assert [v.version for v in newest] == ["2", "1"]

    client.update_registered_model("iris", description="iris flowers")
    client.update_model_version("iris", "2", description="the second")
    assert client.get_model_version("iris", "2").description == "the second"
    stage = lambda: client.transition_model_version_stage("iris", "2", "Production")  # noqa: E731
    assert code_of(stage) == "INVALID_PARAMETER_VALUE"
    client.delete_registered_model_alias("iris", "champ")
    client.delete_registered_model_tag("iris", "owner")
    client.delete_model_version_tag("iris", "1", "checked")
    assert code_of(lambda: client.get_model_version_by_alias("iris", "champ")) == (
        "RESOURCE_DOES_NOT_EXIST"
    )

    client.rename_registered_model("iris", "flora")
    renamed = client.get_registered_model("flora")
    assert renamed.latest_versions[0].version == "2" and renamed.description == "iris flowers"
    assert code_of(lambda: client.get_registered_model("iris")) == "RESOURCE_DOES_NOT_EXIST"
    client.delete_model_version("flora", "1")
    assert code_of(lambda: client.get_model_version("flora", "1")) == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model("flora")
    assert [m.name for m in client.search_registered_models()] == ["wine"]

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", served.reader_token)
    assert code_of(lambda: client.create_registered_model("x")) == "PERMISSION_DENIED"
    assert [m.name for m in client.search_registered_models()] == ["wine"]
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "not-a-token")
    assert code_of(lambda: client.get_registered_model("wine")) == "UNAUTHENTICATED"

    with Views.open(ledger.settings) as views:
        audit = views.audit(AuditQuery(actor="ml-bot", limit=1000)).items
    reasons = {row["reason"] for row in audit}
    assert {"flowers", "MLflow: set_registered_model_alias", "MLflow: delete_registered_model",
            "MLflow: rename_registered_model to flora"} <= reasons  # fmt: skip
