"""MLflow's REST API on the ledger: the unmodified MLflow client registers, tags, aliases,
searches, logs and loads models through ``ledger serve``.

Mounted under ``/api/2.0/mlflow`` (registry and tracking), ``/api/2.0/mlflow-artifacts``
(the artifact proxy) and ``/api/3.0/mlflow``. Every registry write is a ledger command, so
MLflow's calls are audited events like any other. Errors use MLflow's wire format
(``{"error_code", "message"}``, see :mod:`ledger.api.mlflow.errors`).
"""

from __future__ import annotations

from fastapi import APIRouter

from ledger.api.mlflow import artifacts, model_versions, registered_models
from ledger.api.mlflow.errors import unknown_endpoints
from ledger.api.mlflow.experiments import experiment_router
from ledger.api.mlflow.logged_models import logged_model_router
from ledger.api.mlflow.runs import run_router


def mlflow_routers() -> list[APIRouter]:
    """The routers that speak MLflow, the catch-all for its unknown endpoints last."""
    return [
        registered_models.router,
        model_versions.router,
        experiment_router(),
        run_router(),
        logged_model_router(),
        artifacts.router,
        unknown_endpoints(),
    ]
