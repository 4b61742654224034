"""Request and response bodies of the webhook routes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ledger.api.schemas import Body, Reason


class WebhookBody(Body):
    name: str
    url: str = Field(description="Where events are POSTed (http or https)")
    events: list[str] = Field(
        min_length=1, description="Subject patterns, e.g. ledger.model_version.*"
    )
    filter: str = Field("", max_length=2_000, description="An expression events must pass")
    secret: str = Field("", description="whsec_ + base64 of 24+ bytes ('' to have one generated)")
    description: str = Field("", max_length=1_000)
    reason: str = Reason


class WebhookPatch(Body):
    url: str | None = None
    events: list[str] | None = Field(None, min_length=1)
    filter: str | None = Field(None, max_length=2_000)
    secret: str | None = None
    description: str | None = Field(None, max_length=1_000)
    reason: str = Reason


class RedeliveryBody(Body):
    event_id: str = Field(max_length=200, description="The ledger event: <aggregate id>/<version>")
    reason: str = Reason


class WebhookOut(BaseModel):
    name: str
    url: str
    events: list[str]
    filter: str
    secret_fingerprint: str
    description: str
    state: str = Field(description="active, paused or deleted")
    pause_cause: str = Field(description="'' , user, or gone (the receiver answered 410)")
    created_by: str
    created_at: str
    updated_at: str


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="The signing secret: shown this once")


class DeliveryOut(BaseModel):
    webhook: str
    event_id: str
    attempt: int
    status_code: int = Field(description="0: no answer (timeout, refused, guard)")
    latency_ms: float
    response_head: str
    error: str
    outcome: str = Field(description="delivered, retrying, dead or gone")
    at: str
