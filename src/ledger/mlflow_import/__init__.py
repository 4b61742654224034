"""Copying an MLflow model registry into the ledger (`ledger import mlflow`).

``MlflowRegistry`` reads MLflow through its own client, ``plan_model`` compares each model
with what the ledger's views hold, and ``RegistryImport`` writes the difference with the
ledger's commands: models, versions under their MLflow numbers, tags, aliases,
descriptions and files, the original author and time kept as each version's origin.
"""

from ledger.mlflow_import.importer import ModelReport, RegistryImport
from ledger.mlflow_import.plan import ModelPlan, RegistryReader, plan_model
from ledger.mlflow_import.source import MlflowRegistry, MlflowSourceError, SourceModel

__all__ = [
    "MlflowRegistry",
    "MlflowSourceError",
    "ModelPlan",
    "ModelReport",
    "RegistryImport",
    "RegistryReader",
    "SourceModel",
    "plan_model",
]
