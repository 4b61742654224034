"""Request and response bodies of the monitor routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ledger.api.schemas import Body, Reason

SignalName = Literal["data_drift", "prediction_drift", "data_quality", "performance"]
DEFAULT_SIGNALS: tuple[SignalName, ...] = ("data_drift", "data_quality")


class ThresholdBody(Body):
    metric: Literal["", "ks", "chi2", "wasserstein", "jensen_shannon", "psi"] = Field(
        "", description="'' chooses by the column's kind and the window's size"
    )
    value: float | None = Field(None, ge=0, description="None: the metric's default")


class MonitorBody(Body):
    name: str
    endpoint: str = Field(description="The online endpoint to watch")
    deployment: str = Field("", description="One deployment ('' for all)")
    reference: str = Field(description="data:NAME:VERSION, training, or window:P7D")
    signals: list[SignalName] = Field(default_factory=lambda: list(DEFAULT_SIGNALS))
    every: str = Field("PT1H", description="Window length and schedule, whole hours: PT1H, P1D")
    thresholds: dict[str, ThresholdBody] = Field(default_factory=dict)
    features: list[str] = Field(
        default_factory=list,
        description="The columns watched: the model's inputs in order, as the reference "
        "names them ([]: all; the reference's numeric columns in order)",
    )
    min_samples: int = Field(100, ge=1, le=2**62)
    drift_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="The window's dataset-level verdict (column *): drift when this share "
        "of columns drifts; any drifting column raises DriftDetected",
    )
    reason: str = Reason


class ColumnResultOut(BaseModel):
    signal: str
    column: str
    metric: str
    value: float | None
    threshold: float | None
    verdict: str = Field(description="drift, no_drift, breach, ok or insufficient_data")
    samples: int


class MonitorOut(BaseModel):
    name: str
    endpoint: str
    deployment: str
    reference: str
    signals: list[str]
    every_s: int
    thresholds: dict[str, dict[str, Any]]
    features: list[str]
    min_samples: int
    drift_share: float
    alerts: dict[str, list[str]] = Field(description="signal -> columns in breach, now")
    windows: int
    last_window_end: str
    created_by: str
    created_at: str


class MonitorWindowOut(BaseModel):
    position: int
    window_start: str
    window_end: str
    rows: int
    results: list[ColumnResultOut]
    drift_shares: dict[str, float]
    evaluated_at: str
