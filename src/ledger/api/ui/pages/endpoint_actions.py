"""What deployers do to endpoints from the UI: create, deploy, set the traffic and mirror
splits, undeploy and delete; each a ledger command with their reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, Request, Response

from ledger.api.ui.access import UiDeployer, UiUser
from ledger.api.ui.actions import ReasonField, ui_command
from ledger.api.ui.rendering import redirect
from ledger.api.ui.routing import PREFIX, ui_router
from ledger.commands.endpoints import DEFAULT_RESOURCES
from ledger.domain.endpoint import Resources
from ledger.errors import InvalidInputError
from ledger.ledger import Ledger

router = ui_router()
# A split form's fields: one per deployment, named WEIGHT_FIELD + the deployment's name.
WEIGHT_FIELD = "weight:"

NameField = Annotated[str, Form(max_length=200)]
TextField = Annotated[str, Form(max_length=2_000)]


def page_of(endpoint: str) -> str:
    """The endpoint's page."""
    return f"{PREFIX}/endpoints/{quote(endpoint, safe='')}"


async def split_fields(request: Request) -> list[tuple[str, str]]:
    """The ``weight:<deployment>`` fields of a split form, as (deployment, text)."""
    form = await request.form()
    return [
        (key[len(WEIGHT_FIELD) :], str(value))
        for key, value in form.multi_items()
        if key.startswith(WEIGHT_FIELD)
    ]


SplitFields = Annotated[list[tuple[str, str]], Depends(split_fields)]


def _changed(
    request: Request, user: UiUser, reason: str, endpoint: str,
    command: Callable[[Ledger, str], object],
) -> Response:  # fmt: skip
    """Run ``command(ledger, reason)`` as the user, then show the endpoint's page (303)."""
    ui_command(request, user, reason, command)
    return redirect(page_of(endpoint))


def parse_split(what: str, fields: list[tuple[str, str]]) -> dict[str, int]:
    """Deployment -> whole percent from a split form (a blank field is 0)."""
    split: dict[str, int] = {}
    for deployment, text in fields:
        text = text.strip() or "0"
        if not text.lstrip("-").isdigit():
            raise InvalidInputError(f"{what} for {deployment!r} must be a whole percentage, "
                                    f"got {text!r}")  # fmt: skip
        split[deployment] = int(text)
    return split


@router.post("/endpoints")
def create_endpoint(
    request: Request,
    user: UiDeployer,
    name: NameField,
    kind: Annotated[str, Form(max_length=20)] = "online",
    description: TextField = "",
    reason: ReasonField = "",
) -> Response:
    name = name.strip()
    return _changed(
        request, user, reason, name,
        lambda ledger, why: ledger.endpoints.create(
            name, kind, description=description, reason=why
        ),
    )  # fmt: skip


@router.post("/endpoints/{name}/deployments")
def deploy(
    request: Request,
    user: UiDeployer,
    name: str,
    deployment: NameField,
    model: Annotated[str, Form(max_length=300)],
    environment: Annotated[str, Form(max_length=300)] = "",
    cpus: Annotated[float | None, Form(gt=0, le=1024)] = None,
    gpus: Annotated[int | None, Form(ge=0, le=64)] = None,
    memory_mb: Annotated[int | None, Form(ge=1, le=16_777_216)] = None,
    replicas: Annotated[int | None, Form(ge=1, le=1_000)] = None,
    reason: ReasonField = "",
) -> Response:
    """Deploy a model version (NAME:VERSION, NAME@ALIAS); it takes no traffic until the
    split gives it some (the first deployment of an endpoint takes it all)."""
    resources: Resources = {
        "cpus": DEFAULT_RESOURCES["cpus"] if cpus is None else cpus,
        "gpus": DEFAULT_RESOURCES["gpus"] if gpus is None else gpus,
        "memory_mb": DEFAULT_RESOURCES["memory_mb"] if memory_mb is None else memory_mb,
        "replicas": DEFAULT_RESOURCES["replicas"] if replicas is None else replicas,
    }
    return _changed(
        request, user, reason, name,
        lambda ledger, why: ledger.endpoints.deploy(
            name, deployment.strip(), model.strip(), environment=environment.strip(),
            resources=resources, reason=why,
        ),
    )  # fmt: skip


@router.post("/endpoints/{name}/traffic")
def set_traffic(
    request: Request, user: UiDeployer, name: str, fields: SplitFields, reason: ReasonField = ""
) -> Response:
    """Set the live split: whole percentages summing to 100."""
    weights = parse_split("traffic", fields)
    return _changed(
        request, user, reason, name,
        lambda ledger, why: ledger.endpoints.set_traffic(name, weights, reason=why),
    )  # fmt: skip


@router.post("/endpoints/{name}/mirror")
def set_mirror(
    request: Request, user: UiDeployer, name: str, fields: SplitFields, reason: ReasonField = ""
) -> Response:
    """Copy a share of requests to deployments with no live traffic (all 0: none)."""
    mirror = parse_split("mirror", fields)
    return _changed(
        request, user, reason, name,
        lambda ledger, why: ledger.endpoints.set_mirror(name, mirror, reason=why),
    )  # fmt: skip


@router.post("/endpoints/{name}/deployments/{deployment}/delete")
def undeploy(
    request: Request, user: UiDeployer, name: str, deployment: str, reason: ReasonField = ""
) -> Response:
    """Remove a deployment that receives no traffic."""
    return _changed(
        request, user, reason, name,
        lambda ledger, why: ledger.endpoints.undeploy(name, deployment, reason=why),
    )  # fmt: skip


@router.post("/endpoints/{name}/delete")
def delete_endpoint(
    request: Request, user: UiDeployer, name: str, reason: ReasonField = ""
) -> Response:
    """Delete an endpoint that has no deployments left."""
    ui_command(request, user, reason, lambda ledger, why: ledger.endpoints.delete(name, reason=why))
    return redirect(f"{PREFIX}/endpoints")
