"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.domain.token import Role
from ledger.shapes import VersionItem
from ledger.specs import EnvironmentSpec

Reason = Field("", max_length=2_000, description="Why: recorded on every event written")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonBody(Body):
    reason: str = Reason


class TagsBody(Body):
    tags: dict[str, str] = Field(min_length=1, description="key -> value, set or replaced")
    reason: str = Reason


class AliasBody(Body):
    version: int = Field(ge=1, le=2**62, description="The version the alias points at")
    reason: str = Reason


class EndpointBody(Body):
    name: str
    kind: Literal["online", "batch"] = "online"
    description: str = ""
    reason: str = Reason


class ResourcesBody(Body):
    cpus: float = Field(1.0, gt=0, le=1024)
    gpus: int = Field(0, ge=0, le=64)
    memory_mb: int = Field(1024, ge=1, le=16_777_216)
    replicas: int = Field(1, ge=1, le=1_000, description="Replicas (the least, autoscaling)")
    max_replicas: int | None = Field(
        None, ge=1, le=1_000, description="Online: scale up to this many replicas with the load"
    )
    target_ongoing_requests: float | None = Field(
        None, gt=0, le=10_000, description="Online, autoscaling: requests each replica keeps"
    )
    max_ongoing_requests: int | None = Field(
        None, ge=1, le=100_000, description="Online: requests one replica holds at most"
    )


class DeploymentBody(Body):
    deployment: str = Field(description="Deployment name, e.g. blue")
    model: str = Field(description="NAME:VERSION, NAME@ALIAS or NAME (latest)")
    environment: str = Field("", description="Environment NAME[:VERSION]")
    resources: ResourcesBody = Field(default_factory=ResourcesBody)
    sampling_rate: float = Field(
        0.0, ge=0, le=1, description="Online: the share of requests collected (0: none)"
    )
    reason: str = Reason


class CollectionBody(Body):
    sampling_rate: float = Field(
        ge=0, le=1, description="The share of the deployment's requests collected (0: none)"
    )
    reason: str = Reason


class WeightsBody(Body):
    weights: dict[str, int] = Field(description="deployment -> whole percent")
    reason: str = Reason


class ScoreBody(BaseModel):
    """Model inputs: rows of features (a model with one input), or input name -> rows."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[Any] | dict[str, list[Any]] = Field(
        description='e.g. [[5.1, 3.5, 1.4, 0.2]] or {"X": [[5.1, 3.5, 1.4, 0.2]]}'
    )


class ScoreOut(BaseModel):
    deployment: str = Field(description="The deployment that answered")
    model: str = Field(description="Its model version, NAME:VERSION")
    outputs: dict[str, Any] = Field(description="Output name -> values, one per input row")


class HealthBody(Body):
    status: str = Field(min_length=1, max_length=64)
    detail: str = Field("", max_length=2_000)
    reason: str = Reason


class EnvironmentBody(Body):
    spec: EnvironmentSpec
    reason: str = Reason


class DataBody(Body):
    path: str = Field(
        description="CSV/Parquet file or directory, or an object's URL (s3://, az://, gs://), "
        "under one of the server's LEDGER_DATA_ROOTS"
    )
    description: str = ""
    reason: str = Reason


class DataUploadForm(Body):
    """The form fields sent beside an uploaded data file."""

    description: str = ""
    reason: str = Reason


class PipelineBody(Body):
    spec: dict[str, Any] = Field(description="The pipeline DAG: steps and their inputs")
    reason: str = Reason


class CloneBody(Body):
    source: str = Field(description="Pipeline NAME[:VERSION] to start from")
    reason: str = Reason


class JobBody(Body):
    pipeline: str = Field(description="Pipeline NAME[:VERSION]")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the pipeline's parameter defaults"
    )
    executor: str = Field("", description="Executor (default: the server's LEDGER_EXECUTOR)")
    reason: str = Reason


class TokenBody(Body):
    name: str
    role: Role
    reason: str = Reason


# -- responses (models, versions and endpoints: ledger.shapes) ------------------------


class VersionPage(BaseModel):
    items: list[VersionItem]
    next_token: str = Field(description="Pass as page_token for the next page; '' at the end")


class AuditEvent(BaseModel):
    position: int
    time: str
    kind: str
    name: str
    scope: str
    event_type: str
    actor: str
    reason: str
    correlation_id: str
    causation_id: str
    aggregate_id: str
    aggregate_version: int
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_token: str


class EventOut(BaseModel):
    position: int
    id: str = Field(description="Stable id of the event: aggregate id / aggregate version")
    subject: str
    type: str
    aggregate_id: str
    aggregate_version: int
    time: str
    actor: str
    reason: str
    correlation_id: str
    causation_id: str
    data: dict[str, Any]


class CloudEventOut(BaseModel):
    """A ledger event as a CloudEvents 1.0 structured JSON event (`?format=cloudevents`)."""

    specversion: str
    id: str
    source: str
    type: str = Field(description="ledger.<aggregate>.<event>")
    subject: str = Field(description="<aggregate>/<aggregate id>")
    time: str
    datacontenttype: str
    ledgerposition: int = Field(description="The event's log position")
    data: EventOut


class EventBatch(BaseModel):
    items: list[EventOut] | list[CloudEventOut]
    last_position: int = Field(description="Pass as `after` to continue")


class RegisteredOut(BaseModel):
    name: str
    version: int
    ref: str
    digest: str
    created: bool = Field(description="False when identical content reused a version")


class SketchOut(BaseModel):
    digest: str = Field(description="sha256 of the sketch's blob in the artifact store")
    bytes: int


class ProfiledOut(BaseModel):
    name: str
    version: int
    ref: str
    sketch: SketchOut
    created: bool = Field(description="False when the version had a sketch already")


class AssetVersionOut(BaseModel):
    version: int
    digest: str
    content: dict[str, Any]
    created_at: str
    created_by: str


class AssetOut(BaseModel):
    name: str
    kind: str
    origin: str
    versions: list[AssetVersionOut]
    created_at: str
    created_by: str
    updated_at: str


class JobOut(BaseModel):
    id: str
    pipeline: str
    status: str
    executor: str
    worker: str
    rerun_of: str
    snapshot: dict[str, Any]
    steps: dict[str, Any]
    error: str
    submitted_at: str
    updated_at: str


class JobListItem(BaseModel):
    id: str
    pipeline: str
    status: str
    executor: str
    worker: str
    steps_total: int
    steps_done: int
    error: str
    rerun_of: str
    submitted_by: str
    submitted_at: str
    updated_at: str


class LineageNode(BaseModel):
    node: str
    depth: int


class LineageEdge(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    source: str = Field(alias="from")
    to: str
    relation: str


class LineageOut(BaseModel):
    root: str
    direction: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]


class ViewErrorOut(BaseModel):
    projection: str
    position: int = Field(description="The log position of the event the view passed")
    event_type: str
    error: str
    recorded_at: str


class ProjectionOut(BaseModel):
    name: str
    description: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    errors: int = Field(0, description="Events this view could not store, and passed")
    last_error: ViewErrorOut | None = None


class TokenOut(BaseModel):
    name: str
    role: str
    revoked: bool
    issued_at: str
    issued_by: str


class NewTokenOut(BaseModel):
    name: str
    role: str
    token: str = Field(description="The secret: shown this once, never stored")


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    store: dict[str, Any]
    projections: dict[str, Any]
    bus: dict[str, Any]
    artifacts: dict[str, Any] = Field(default_factory=dict, description="Where files are kept")
