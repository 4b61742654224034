"""Webhooks: subscriptions (admins create, change and delete them: a webhook exports
events), their delivery log, pings and redeliveries."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ledger.api.auth import Admin, Deployer, Reader, services_of
from ledger.api.routes.common import (
    ReasonQuery,
    read_json,
    read_views,
    read_written,
    run_command,
)
from ledger.api.schemas import ReasonBody
from ledger.api.webhook_schemas import (
    DeliveryOut,
    RedeliveryBody,
    WebhookBody,
    WebhookCreatedOut,
    WebhookOut,
    WebhookPatch,
)
from ledger.storage.timestamps import iso
from ledger.storage.webhook_tables import list_deliveries

router = APIRouter(tags=["webhooks"])
Limit = Annotated[int, Query(ge=1, le=1_000, description="How many, the latest first")]


@router.get("/webhooks", response_model=list[WebhookOut])
def list_webhooks(request: Request, _: Reader, deleted: bool = False) -> Any:
    return read_json(request, lambda v: v.webhooks(deleted=deleted))


@router.get("/webhooks/{name}", response_model=WebhookOut)
def get_webhook(request: Request, _: Reader, name: str) -> Any:
    return read_json(request, lambda v: v.webhook(name))


@router.get("/webhooks/{name}/deliveries", response_model=list[DeliveryOut])
def webhook_deliveries(
    request: Request, _: Reader, name: str, dead: bool = False, limit: Limit = 50
) -> Any:
    """Every attempt (or with ``dead``, the dead letters not redelivered), the latest first."""
    return read_json(
        request,
        lambda v: (v.webhook(name), list_deliveries(v.db, name, dead=dead, limit=limit))[1],
    )


@router.post("/webhooks", response_model=WebhookCreatedOut, status_code=201)
def create_webhook(request: Request, principal: Admin, body: WebhookBody) -> Any:
    created = run_command(
        request,
        principal,
        lambda ledger: ledger.webhooks.create(
            body.name,
            url=body.url,
            events=body.events,
            filter=body.filter,
            secret=body.secret,
            description=body.description,
            reason=body.reason,
        ),
    )
    return read_written(request, lambda v: v.webhook(body.name) | {"secret": created.secret})


@router.patch("/webhooks/{name}", response_model=WebhookOut)
def update_webhook(request: Request, principal: Admin, name: str, body: WebhookPatch) -> Any:
    run_command(
        request,
        principal,
        lambda ledger: ledger.webhooks.update(
            name,
            url=body.url,
            events=body.events,
            filter=body.filter,
            secret=body.secret,
            description=body.description,
            reason=body.reason,
        ),
    )
    return read_written(request, lambda v: v.webhook(name))


@router.delete("/webhooks/{name}", status_code=204)
def delete_webhook(request: Request, principal: Admin, name: str, reason: ReasonQuery = "") -> None:
    run_command(request, principal, lambda ledger: ledger.webhooks.delete(name, reason=reason))


@router.post("/webhooks/{name}/pause", response_model=WebhookOut)
def pause_webhook(request: Request, principal: Deployer, name: str, body: ReasonBody) -> Any:
    run_command(request, principal, lambda ledger: ledger.webhooks.pause(name, reason=body.reason))
    return read_written(request, lambda v: v.webhook(name))


@router.post("/webhooks/{name}/resume", response_model=WebhookOut)
def resume_webhook(request: Request, principal: Deployer, name: str, body: ReasonBody) -> Any:
    run_command(request, principal, lambda ledger: ledger.webhooks.resume(name, reason=body.reason))
    return read_written(request, lambda v: v.webhook(name))


@router.post("/webhooks/{name}/redeliver", status_code=202)
def redeliver(request: Request, principal: Deployer, name: str, body: RedeliveryBody) -> Any:
    """Ask `ledger automation` to send the event to the webhook once more."""
    run_command(
        request,
        principal,
        lambda ledger: ledger.webhooks.request_redelivery(name, body.event_id, reason=body.reason),
    )
    return {"webhook": name, "event_id": body.event_id, "status": "requested"}


@router.post("/webhooks/{name}/test", response_model=DeliveryOut)
def test_webhook(request: Request, _: Deployer, name: str) -> Any:
    """Send a signed ping (type ledger.webhook.ping) now; the attempt as recorded."""
    from executors.webhooks.ping import send_ping  # the delivery code, loaded when used

    webhook = read_views(request, lambda v: v.webhook(name))
    attempt = send_ping(services_of(request).settings, webhook)
    fields = asdict(attempt)
    return fields | {"at": iso(fields.pop("at_us"))}
