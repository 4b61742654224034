"""What an MLflow ``create_model_version`` registers: the files behind its ``source``
(an artifact location logged to this server) and what the run that made them recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.api.mlflow.errors import NOT_IMPLEMENTED, MlflowError
from ledger.api.services import ApiServices
from ledger.artifacts.paths import FileEntry


@dataclass(frozen=True)
class ModelSource:
    """A logged model's directory as stored blobs, with its flavor and signature (read from
    its MLmodel file) and the run's latest metrics, parameters and dataset inputs."""

    files: list[FileEntry]
    flavor: str = "custom"  # the ledger's flavor: onnx, sklearn, pytorch or custom
    signature: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    model_id: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    datasets: list[dict[str, str]] = field(default_factory=list)


def resolve_source(services: ApiServices, source: str, run_id: str, model_id: str) -> ModelSource:
    """The files and run record behind ``source`` (``mlflow-artifacts:/...``, ``models:/m-...``
    or ``runs:/RUN/path``). Raises MlflowError(INVALID_PARAMETER_VALUE) for a source this
    server does not hold, RESOURCE_DOES_NOT_EXIST for an unknown run or logged model."""
    raise MlflowError(NOT_IMPLEMENTED, "registering from an MLflow source is being built")
