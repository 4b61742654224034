"""What a model version is registered with: files, flavor, lineage, origin (plain data)."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, get_args

# The API's response models (ledger.shapes) nest these; pydantic wants typing_extensions'.
from typing_extensions import TypedDict

Flavor = Literal["onnx", "sklearn", "pytorch", "custom"]
FLAVORS: tuple[str, ...] = get_args(Flavor)
VersionStatus = Literal["ready", "archived", "deleted"]


class StoredFile(TypedDict):
    """One file of a model version: relative path, sha256 digest and size."""

    path: str
    sha256: str
    size: int


class Lineage(TypedDict, total=False):
    """What produced a model version (all references are ``name:version``)."""

    job: str
    data: list[str]
    environment: str
    pipeline: str
    derived_from: str


class Origin(TypedDict, total=False):
    """Where a version came from when another system made it (e.g. an MLflow run, or an
    import from an MLflow registry): kept as it was, for the record."""

    system: str  # "mlflow"
    uri: str  # the tracking server it came from (an import)
    source: str  # the artifact location the files were taken from
    run_id: str
    model_id: str  # an MLflow logged model
    params: dict[str, str]  # the run's parameters
    created_by: str  # the original author and time (an import), the actor being the importer
    created_at: str
    run_link: str  # a link to the run, as the client gave it
    datasets: list[dict[str, str]]  # the run's inputs that are no ledger data asset version


class DeploymentRef(TypedDict):
    """A deployment that serves a model version."""

    endpoint: str
    deployment: str


class VersionSpec(TypedDict):
    """Everything recorded about a model version at registration."""

    files: list[StoredFile]
    flavor: str
    signature: dict[str, Any]
    tags: dict[str, str]
    metrics: dict[str, float]
    description: str
    lineage: Lineage
    origin: NotRequired[Origin]
