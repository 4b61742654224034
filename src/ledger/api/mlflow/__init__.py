"""MLflow's REST API on the ledger: the unmodified MLflow client registers, tags, aliases,
searches, logs and loads models through ``ledger serve``.

Mounted under ``/api/2.0/mlflow`` (registry and tracking), ``/api/2.0/mlflow-artifacts``
(the artifact proxy) and ``/api/3.0/mlflow``. Every registry write is a ledger command, so
MLflow's calls are audited events like any other. Errors use MLflow's wire format
(``{"error_code", "message"}``, see :mod:`ledger.api.mlflow.errors`).
"""

from __future__ import annotations

from fastapi import APIRouter

from ledger.api.mlflow import (
    artifacts,
    experiments,
    logged_models,
    model_versions,
    registered_models,
    runs,
)
from ledger.api.mlflow.errors import unknown_endpoints


def mlflow_routers() -> list[APIRouter]:
    """The routers that speak MLflow, the catch-all for its unknown endpoints last."""
    return [
        registered_models.router,
        model_versions.router,
        experiments.router,
        runs.router,
        logged_models.router,
        artifacts.router,
        unknown_endpoints,
    ]
