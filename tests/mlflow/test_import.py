"""`ledger import mlflow`: a real `mlflow server`, filled through MLflow's client, copied
into the ledger on both stores: same models, numbers, tags, aliases, descriptions and
byte-identical files; a rerun writes nothing; a crash half way resumes without duplicates."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger.ledger import Ledger
from ledger.mlflow_import.source import name_matcher, problem, public_uri, read_mlmodel
from projections.views import Views
from tests.conftest import PG_URL, Cli, StoreFactory, assert_user_error, free_port, run_cli
from tests.mlflow_support import mlflow_database, mlflow_server

MODELS = {"churn": "sklearn", "fraud": "onnx", "iris": "python_function"}  # name -> MLmodel flavor
FLAVORS = {"churn": "sklearn", "fraud": "onnx", "iris": "custom"}  # what the ledger records
VERSIONS = 20
GAP = ("fraud", 7)  # deleted in MLflow: kept in the ledger as a deleted version
ALIASES = {"churn": {"champion": 20, "challenger": 19}, "iris": {"prod": 5}}
AUTHOR = "alice"


@dataclass
class Registry:
    """The MLflow registry the tests import, and what it holds (the expected copy)."""

    url: str
    client: Any  # mlflow.MlflowClient
    experiment: str
    tmp: Path
    files: dict[tuple[str, int], dict[str, bytes]] = field(default_factory=dict)
    created_ms: dict[tuple[str, int], int] = field(default_factory=dict)

    def log_version(self, name: str, number: int, files: dict[str, bytes], path: str) -> None:
        """A run with ``files`` logged under ``model``, registered from ``runs:/RUN/path``."""
        run = self.client.create_run(self.experiment).info.run_id
        local = self.tmp / f"{name}-{number}"
        for relative, content in files.items():
            (local / relative).parent.mkdir(parents=True, exist_ok=True)
            (local / relative).write_bytes(content)
        self.client.log_artifacts(run, str(local), "model")
        version = self.client.create_model_version(
            name,
            f"runs:/{run}/{path}",
            run,
            tags={"n": str(number), "parity": "odd" if number % 2 else "even"},
            description=f"{name} version {number}",
        )
        assert int(version.version) == number
        self.files[name, number] = files
        self.created_ms[name, number] = version.creation_timestamp


def _files(name: str, number: int) -> dict[str, bytes]:
    mlmodel = f"flavors:\n  {MODELS[name]}:\n    version: '{number}'\n"
    return {
        "MLmodel": mlmodel.encode(),
        "sub/model.bin": os.urandom(200 + number),
    }


def _fill(registry: Registry, db_file: Path) -> None:
    client = registry.client
    for name in MODELS:
        client.create_registered_model(
            name, tags={"team": "risk", "model": name}, description=f"the {name} model"
        )
        for number in range(1, VERSIONS + 1):
            registry.log_version(name, number, _files(name, number), "model")
    client.delete_model_version(*GAP)
    del registry.files[GAP]
    for name, aliases in ALIASES.items():
        for alias, number in aliases.items():
            client.set_registered_model_alias(name, alias, str(number))
    # The open-source server records no author; a registry behind authentication does.
    with sqlite3.connect(db_file) as conn:
        conn.execute("UPDATE model_versions SET user_id = ?", (AUTHOR,))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    from mlflow import MlflowClient

    with mlflow_database("sqlite", PG_URL) as uri, mlflow_server(uri) as url:
        client = MlflowClient(url, url)
        tmp = tmp_path_factory.mktemp("mlflow-files")
        filled = Registry(url, client, client.create_experiment("training"), tmp)
        _fill(filled, Path(uri.removeprefix("sqlite:///")))
        yield filled


def _import(cli: Cli, registry: Registry, *args: str) -> Any:
    return cli("import", "mlflow", "--tracking-uri", registry.url, *args)


def _views(store: StoreFactory) -> Views:
    return Views.open(store.settings())


def _assert_complete_copy(store: StoreFactory, registry: Registry) -> None:
    """The ledger holds MLflow's models, numbers, tags, aliases, descriptions and files."""
    with _views(store) as views, Ledger(store.settings()) as ledger:
        assert sorted(m["name"] for m in views.models()) == sorted(MODELS)
        for name in MODELS:
            model = views.model(name)
            assert model["latest_version"] == VERSIONS, model
            assert model["tags"] == {"team": "risk", "model": name}
            assert model["description"] == f"the {name} model"
            assert model["aliases"] == ALIASES.get(name, {})
            versions = views.versions(name, limit=100, include_deleted=True)
            assert sorted(v["version"] for v in versions) == list(range(1, VERSIONS + 1))
            for version in versions:
                _assert_version(ledger, registry, version, store.tmp_path)


def _assert_version(ledger: Ledger, registry: Registry, version: Any, tmp: Path) -> None:
    name, number = version["model"], version["version"]
    origin = version["origin"]
    assert origin["system"] == "mlflow" and origin["uri"] == registry.url
    if (name, number) == GAP:
        assert version["status"] == "deleted" and version["files"] == []
        return
    assert version["status"] == "ready"
    assert version["tags"] == {"n": str(number), "parity": "odd" if number % 2 else "even"}
    assert version["description"] == f"{name} version {number}"
    assert version["flavor"] == FLAVORS[name]
    assert version["created_by"] == "tester"  # the importer acts; the author is recorded
    assert origin["created_by"] == AUTHOR
    created = datetime.fromtimestamp(registry.created_ms[name, number] / 1000, UTC)
    assert datetime.fromisoformat(origin["created_at"]) == created
    assert origin["source"].startswith("runs:/") and origin["run_id"] in origin["source"]
    dest = tmp / "downloads" / f"{name}-{number}"
    ledger.models.download_version(f"{name}:{number}", dest)
    found = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert found == registry.files[name, number]


def _head(store: StoreFactory) -> int:
    with _views(store) as views:
        return views.db.head_position()


def test_a_rerun_brings_tags_aliases_and_descriptions_to_mlflow_s(
    cli: Cli, store: StoreFactory, registry: Registry
) -> None:
    assert _import(cli, registry, "--models", "churn").code == 0
    client = registry.client
    client.set_model_version_tag("churn", "3", "n", "three")
    client.delete_model_version_tag("churn", "3", "parity")
    client.update_model_version("churn", "4", description="retrained")
    client.set_registered_model_tag("churn", "owner", "bob")
    client.set_registered_model_alias("churn", "champion", "18")
    client.delete_registered_model_alias("churn", "challenger")
    try:
        head = _head(store)
        rerun = _import(cli, registry, "--models", "churn")
        assert rerun.code == 0, rerun
        assert "churn: 6 changes to tags, aliases and descriptions" in rerun.out
        with _views(store) as views:
            assert views.version("churn:3")["tags"] == {"n": "three"}
            assert views.version("churn:4")["description"] == "retrained"
            assert views.model("churn")["tags"]["owner"] == "bob"
            assert views.model("churn")["aliases"] == {"champion": 18}
            # One event for each difference, none for what was already equal.
            assert views.db.head_position() - head == 6
    finally:
        client.set_model_version_tag("churn", "3", "n", "3")
        client.set_model_version_tag("churn", "3", "parity", "odd")
        client.update_model_version("churn", "4", description="churn version 4")
        client.delete_registered_model_tag("churn", "owner")
        client.set_registered_model_alias("churn", "champion", "20")
        client.set_registered_model_alias("churn", "challenger", "19")


KILL_SCRIPT = """
import os, signal, sys
from ledger.cli import main
from ledger.commands.models import ModelCommands
from ledger.mlflow_import.source import MlflowRegistry

point, at, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
done = 0

def killing_after(original, where):
    def wrapped(*args, **kwargs):
        global done
        result = original(*args, **kwargs)
        done += where == point
        if done == at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped

# files downloaded, version not registered / version registered, import not yet told
MlflowRegistry.download = killing_after(MlflowRegistry.download, "downloaded")
ModelCommands.register_version = killing_after(ModelCommands.register_version, "registered")
sys.argv = ["ledger", "import", "mlflow", "--tracking-uri", url]
main()
"""


def _killed_import(store: StoreFactory, registry: Registry, point: str, at: int) -> int:
    """`ledger import mlflow` in a process of its own, SIGKILLed right after its ``at``-th
    download or registration; fraud's latest version then."""
    killed = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, point, str(at), registry.url],
        env={**os.environ, **store.env()},
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    with _views(store) as views:
        return views.model("fraud")["latest_version"]


def test_an_import_resumes_after_a_kill_and_a_rerun_writes_nothing(
    cli: Cli, store: StoreFactory, registry: Registry
) -> None:
    planned = _import(cli, registry, "--dry-run", "--json")
    assert planned.code == 0, planned
    rows = {row["model"]: row for row in planned.json()}
    assert set(rows) == set(MODELS) and {r["action"] for r in rows.values()} == {"create"}
    assert rows["fraud"]["register"] == list(range(1, VERSIONS + 1))
    assert rows["fraud"]["deleted_in_mlflow"] == [7] and rows["churn"]["deleted_in_mlflow"] == []
    assert _head(store) == 0  # a dry run writes nothing

    subset = _import(cli, registry, "--models", "c*")  # churn only
    assert subset.code == 0, subset
    assert "churn: created, 20 versions registered" in subset.out
    # Killed once with fraud:5's files downloaded, then after registering fraud 5, 6, 8, 9
    # (7 was deleted in MLflow: registered deleted between them).
    assert _killed_import(store, registry, "downloaded", 5) == 4
    assert _killed_import(store, registry, "registered", 4) == 9
    resumed = _import(cli, registry)
    assert resumed.code == 0, resumed
    assert "churn: up to date" in resumed.out and "iris: created, 20 versions" in resumed.out
    _assert_complete_copy(store, registry)
    history = cli("history", "model", "fraud", "--json").json()
    assert {(e["actor"], e["reason"]) for e in history} == {
        ("tester", f"imported from MLflow {registry.url}")
    }

    head = _head(store)
    again = _import(cli, registry)
    assert again.code == 0, again
    assert again.out.count("up to date") == 3 and "Imported 0 versions" in again.out
    assert _head(store) == head


def test_a_missing_file_stops_the_import_with_one_line_and_whole_versions(
    cli: Cli, store: StoreFactory, registry: Registry
) -> None:
    name = f"broken-{store.kind}"
    registry.client.create_registered_model(name)
    try:
        registry.log_version(name, 1, {"model.bin": b"ok"}, "model")
        run = registry.client.create_run(registry.experiment).info.run_id
        registry.client.create_model_version(name, f"runs:/{run}/nothing-logged", run)
        result = _import(cli, registry, "--models", name)
        assert_user_error(result, f"MLflow at {registry.url}: Failed to download artifacts")
        assert f"(reading the files of {name} version 2)" in result.err
        assert len(result.err.strip().splitlines()) == 1
        with _views(store) as views:
            assert views.model(name)["latest_version"] == 1  # version 1 whole, 2 not at all
            assert [f["path"] for f in views.version(f"{name}:1")["files"]] == ["model.bin"]
    finally:
        registry.client.delete_registered_model(name)


def test_versions_deleted_in_mlflow_since_the_import_are_deleted_on_a_rerun(
    cli: Cli, store: StoreFactory, registry: Registry
) -> None:
    name = f"shrinking-{store.kind}"
    client = registry.client
    client.create_registered_model(name)
    try:
        for number in (1, 2, 3):
            registry.log_version(name, number, {"model.bin": bytes([number])}, "model")
        client.set_registered_model_alias(name, "latest-good", "3")
        assert _import(cli, registry, "--models", name).code == 0
        client.delete_model_version(name, "3")  # its alias goes with it
        client.delete_model_version(name, "1")
        rerun = _import(cli, registry, "--models", name)
        assert rerun.code == 0, rerun
        assert f"{name}: 2 deleted (deleted in MLflow since)" in rerun.out
        with _views(store) as views:
            statuses = {
                v["version"]: v["status"] for v in views.versions(name, include_deleted=True)
            }
            assert statuses == {1: "deleted", 2: "ready", 3: "deleted"}
            assert views.model(name)["aliases"] == {}
        assert "up to date" in _import(cli, registry, "--models", name).out
    finally:
        client.delete_registered_model(name)


def test_ledger_versions_from_elsewhere_refuse_the_model(
    cli: Cli, store: StoreFactory, registry: Registry, model_dir: Path
) -> None:
    assert cli("model", "register", "iris", str(model_dir)).code == 0
    head = _head(store)
    planned = _import(cli, registry, "--models", "[fi]*", "--dry-run")
    assert planned.code == 0
    assert re.search(r"fraud *│ create *│ 1-20 *│ 1 *│ 0 ", planned.out), planned.out
    assert re.search(r"iris *│ refuse *│ - *│ 0 *│ 0 ", planned.out), planned.out
    assert "refused: model 'iris': ledger version(s) 1 did not come from" in planned.err
    refused = _import(cli, registry, "--models", "iris")
    assert refused.code == 1
    assert "refused: model 'iris': ledger version(s) 1 did not come from MLflow" in refused.err
    assert _head(store) == head


@pytest.fixture(scope="module")
def database_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry read straight from its database (no server), its files in a folder."""
    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("mlflow-database")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("local", artifact_location=(tmp / "runs").as_uri())
    filled = Registry(uri, client, experiment, tmp)
    client.create_registered_model("local-model", description="kept on disk")
    for number in (1, 2):
        filled.log_version("local-model", number, _files("iris", number), "model")
    yield filled


# MLflow's own store, opened in this process, uses a loader SQLAlchemy deprecates.
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")
def test_an_import_straight_from_mlflow_s_database(
    cli: Cli, store: StoreFactory, database_registry: Registry
) -> None:
    result = _import(cli, database_registry)
    assert result.code == 0, result
    assert "local-model: created, 2 versions registered" in result.out
    with Ledger(store.settings()) as ledger:
        for number in (1, 2):
            dest = store.tmp_path / f"local-{number}"
            ledger.models.download_version(f"local-model:{number}", dest)
            found = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*")
                     if p.is_file()}  # fmt: skip
            assert found == database_registry.files["local-model", number]


def test_an_unreachable_tracking_server_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / ".ledger"))  # it fails before any store
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(monkeypatch, capsys, "import", "mlflow", "--tracking-uri", url)
    assert_user_error(result, f"cannot reach MLflow at {url}: Connection refused")
    assert len(result.err.strip().splitlines()) == 1
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # set for the import only


def test_uri_names_and_mlmodel_parsing(tmp_path: Path) -> None:
    assert public_uri(" https://user:secret@mlflow.example:5000/ ") == "https://mlflow.example:5000"
    assert public_uri("sqlite:///tmp/mlflow.db") == "sqlite:///tmp/mlflow.db"
    matcher = name_matcher("fraud_%")
    assert matcher.fullmatch("fraud_v2") and not matcher.fullmatch("fraudXv2")
    assert name_matcher("[ci]*").fullmatch("iris") and not name_matcher("[ci]*").fullmatch("fr")
    assert read_mlmodel(tmp_path) == ("custom", {})
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function: {}\n  onnx: {}\n"
        'signature:\n  inputs: \'[{"type": "double"}]\'\n  outputs: null\n'
    )
    assert read_mlmodel(tmp_path) == ("onnx", {"inputs": [{"type": "double"}]})
    (tmp_path / "MLmodel").write_text("flavors:\n  onnx: {}\nsignature:\n  outputs: not json\n")
    assert read_mlmodel(tmp_path) == ("custom", {})
    (tmp_path / "MLmodel").write_text(": not yaml: [")
    assert read_mlmodel(tmp_path) == ("custom", {})


def test_refused_credentials_are_named_as_such() -> None:
    from mlflow.exceptions import MlflowException

    # What MLflow's client raises when a server behind authentication answers 401.
    refused = MlflowException(
        "API request to endpoint /api/2.0/mlflow/registered-models/search failed with error "
        "code 401 != 200. Response body: 'You are not authenticated.'"
    )
    message = problem(refused, "https://mlflow.example")
    assert message.startswith("MLflow at https://mlflow.example refused access (API request")
    assert message.endswith(
        "set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
    )


def test_without_mlflow_the_import_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / ".ledger"))
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    result = run_cli(monkeypatch, capsys, "import", "mlflow", "--tracking-uri", "http://x")
    assert_user_error(result, "install the `mlflow` extra")
    assert run_cli(monkeypatch, capsys, "model", "list").code == 0  # the rest works
