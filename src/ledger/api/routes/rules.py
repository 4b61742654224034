"""Rules and approvals over HTTP: applying rules, reading their firings, and approving or
rejecting what they hold (the token's role must allow the approval's role)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from ledger.api.auth import Contributor, Deployer, Reader
from ledger.api.routes.common import ReasonQuery, read_json, read_views, read_written, run_command
from ledger.rule_spec import parse_rule_data, parse_rules

router = APIRouter(tags=["rules"])
Limit = Annotated[int, Query(ge=1, le=1_000, description="How many, the latest first")]


class RulesYaml(BaseModel):
    yaml: str = Field(max_length=1_000_000, description="A rules file's text")
    reason: str = Field("", max_length=2_000)


class Decision(BaseModel):
    reason: str = Field("", max_length=2_000, description="Why (recorded as the event's reason)")


RulesBody = Annotated[
    RulesYaml | list[dict[str, Any]],
    Body(description='{"yaml": "<a rules file>"} or a list of rule objects'),
]


@router.get("/rules")
def list_rules(request: Request, _: Reader) -> Any:
    return read_json(request, lambda v: v.rules())


@router.get("/rules/{name}")
def get_rule(request: Request, _: Reader, name: str) -> Any:
    return read_json(request, lambda v: v.rule(name))


@router.get("/rules/{name}/firings")
def rule_firings(request: Request, _: Reader, name: str, limit: Limit = 50) -> Any:
    """Each event the rule fired on or skipped (with the reason), the latest first."""
    return read_json(request, lambda v: v.rule_firings(name, limit=limit))


@router.post("/rules")
def apply_rules(request: Request, principal: Deployer, body: RulesBody) -> Any:
    """Apply rules: each changed rule gets a new version; says which were created,
    updated or left unchanged."""
    if isinstance(body, RulesYaml):
        specs, reason = parse_rules(body.yaml), body.reason
    else:
        specs, reason = parse_rule_data(body), ""
    result = run_command(
        request, principal, lambda ledger: ledger.rules.apply(specs, reason=reason)
    )
    return {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}


@router.post("/rules/{name}/disable")
def disable_rule(request: Request, principal: Deployer, name: str, reason: ReasonQuery = "") -> Any:
    run_command(request, principal, lambda ledger: ledger.rules.disable(name, reason=reason))
    return read_written(request, lambda v: v.rule(name))


@router.post("/rules/{name}/enable")
def enable_rule(request: Request, principal: Deployer, name: str, reason: ReasonQuery = "") -> Any:
    run_command(request, principal, lambda ledger: ledger.rules.enable(name, reason=reason))
    return read_written(request, lambda v: v.rule(name))


@router.get("/approvals")
def list_approvals(
    request: Request,
    _: Reader,
    state: Annotated[str, Query(description="pending, approved, rejected or expired")] = "",
) -> Any:
    return read_json(request, lambda v: v.approvals(state))


@router.get("/approvals/{approval_id}")
def get_approval(request: Request, _: Reader, approval_id: str) -> Any:
    """An approval by its short id (the first 12 hex digits of its id) or full id."""
    return read_json(request, lambda v: v.approval(approval_id))


def _decide(request: Request, principal: Any, approval_id: str, reason: str, approve: bool) -> Any:
    found = read_views(request, lambda v: v.approval(approval_id))
    full = str(uuid.UUID(str(found["id"])))
    decide = "approve" if approve else "reject"
    run_command(
        request,
        principal,
        lambda ledger: getattr(ledger.approvals, decide)(full, role=principal.role, reason=reason),
    )
    return read_written(request, lambda v: v.approval(full))


@router.post("/approvals/{approval_id}/approve")
def approve(request: Request, principal: Contributor, approval_id: str, body: Decision) -> Any:
    """Approve: the rule engine runs the held actions. The token's role must allow the
    approval's role (403 otherwise)."""
    return _decide(request, principal, approval_id, body.reason, approve=True)


@router.post("/approvals/{approval_id}/reject")
def reject(request: Request, principal: Contributor, approval_id: str, body: Decision) -> Any:
    """Reject: the held actions never run."""
    return _decide(request, principal, approval_id, body.reason, approve=False)
