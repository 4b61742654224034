"""The unmodified MLflow client logs a run to a real `ledger serve` process, on SQLite and
PostgreSQL, and reads it back; every call is an audited event done by the token's holder.

(Logging a model's files needs the artifact proxy: the end-to-end scenario tests that.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import mlflow
import mlflow.data
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.tracking import fluent
from mlflow.tracking._tracking_service import utils as tracking_utils

from ledger.ledger import Ledger
from tests.conftest import Cli, StoreFactory
from tests.server_support import serving


@pytest.fixture
def mlflow_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """MLflow's client, failing fast (no retries), its global state restored afterwards."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    before = tracking_utils._tracking_uri
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # set_experiment sets it
    mlflow.set_tracking_uri(before)  # type: ignore[arg-type]


def test_the_mlflow_client_logs_a_run_and_reads_it_back(
    store: StoreFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch, mlflow_client: None
) -> None:
    with Ledger(store.settings()) as ledger:
        monkeypatch.setenv(
            "MLFLOW_TRACKING_TOKEN", ledger.tokens.create("ml-bot", "contributor").secret
        )
    features = np.arange(12, dtype=float).reshape(4, 3)
    with serving(store) as url:
        mlflow.set_tracking_uri(url)
        with mlflow.start_run(run_name="train") as run:
            mlflow.log_param("C", 1.0)
            mlflow.log_params({"solver": "lbfgs", "max_iter": 200})
            mlflow.log_metric("acc", 0.9)
            mlflow.log_metric("acc", 0.95, step=1)
            mlflow.log_metric("loss", math.nan)
            mlflow.log_input(mlflow.data.from_numpy(features, targets=np.array([0, 1, 0, 1])),
                             context="training")  # fmt: skip
            mlflow.set_tag("team", "ml")
            with pytest.raises(MlflowException, match="parameters are write-once"):
                mlflow.log_param("C", 2.0)
        client = MlflowClient()
        got = client.get_run(run.info.run_id)
        history = client.get_metric_history(run.info.run_id, "acc")
        experiment = mlflow.set_experiment("churn")  # created: it did not exist
        found = client.search_runs(["0"], "metrics.acc > 0.9 and params.solver = 'lbfgs'")
        with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
            client.get_run("0" * 32)
    info = got.info
    assert (info.status, info.run_name, info.experiment_id) == ("FINISHED", "train", "0")
    assert info.artifact_uri == f"mlflow-artifacts:/0/{info.run_id}/artifacts"
    assert info.end_time >= info.start_time > 0 and info.lifecycle_stage == "active"
    assert got.data.params == {"C": "1.0", "solver": "lbfgs", "max_iter": "200"}
    assert got.data.metrics["acc"] == 0.95 and math.isnan(got.data.metrics["loss"])
    assert got.data.tags["team"] == "ml" and got.data.tags["mlflow.runName"] == "train"
    (dataset_input,) = got.inputs.dataset_inputs
    assert dataset_input.dataset.source_type == "code" and dataset_input.dataset.digest
    assert {t.key: t.value for t in dataset_input.tags} == {"mlflow.data.context": "training"}
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.95)]
    assert experiment.experiment_id == "1" and experiment.name == "churn"
    assert [r.info.run_id for r in found] == [info.run_id]
    audit = cli("audit", "--actor", "ml-bot", "--limit", "1000", "--json").json()
    logged = {(e["kind"], e["event_type"]) for e in audit["items"]}  # type: ignore[index]
    assert {
        ("run", "Run.Created"), ("run", "Run.ParamsLogged"), ("run", "Run.MetricsLogged"),
        ("run", "Run.InputsLogged"), ("run", "Run.TagsSet"), ("run", "Run.Updated"),
        ("experiment", "Experiment.Created"),
    } <= logged  # fmt: skip
    history_of_run = cli("history", "run", info.run_id, "--json").json()
    assert {e["actor"] for e in history_of_run} == {"ml-bot"}  # type: ignore[union-attr]
