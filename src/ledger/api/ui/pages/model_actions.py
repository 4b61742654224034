"""Changing models and versions from the UI (contributors): tags, aliases, archive,
restore, delete. Each is a form's POST (CSRF-checked) running the CLI's command as the
signed-in user with their reason, then sending the browser back (303) to the page in the
form's ``back`` field when it is a page of this UI, else to the model's page. A refusal
(e.g. deleting a deployed version: 409) is a page with the CLI's message (routing.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Form, Request, Response

from ledger.api.routes.common import VersionNumber
from ledger.api.ui.access import UiContributor
from ledger.api.ui.actions import ReasonField, ui_command
from ledger.api.ui.pages.model_tables import model_url
from ledger.api.ui.rendering import redirect
from ledger.api.ui.routing import PREFIX, ui_router
from ledger.ledger import Ledger
from ledger.refs import check_name

router = ui_router()
BackField = Annotated[str, Form(max_length=2_000, description="The page to go back to")]
KeyField = Annotated[str, Form(min_length=1, max_length=250)]
ValueField = Annotated[str, Form(max_length=5_000)]
AliasField = Annotated[str, Form(min_length=1, max_length=64)]


def back_to(back: str, model: str) -> str:
    """``back`` when it is a page of this UI (a local path, never another site), else the
    model's page."""
    local = back.startswith(f"{PREFIX}/") and not back.startswith("//")
    if local and "\\" not in back and back.isprintable():
        return back
    return model_url(model)


def _changed(
    request: Request,
    user: UiContributor,
    reason: str,
    back: str,
    model: str,
    command: Callable[[Ledger, str], object],
) -> Response:
    """Run ``command`` as the user with their reason, then go back (303)."""
    check_name(model, "model name")  # never a reference such as iris:2 in a model's place
    ui_command(request, user, reason, command)
    return redirect(back_to(back, model))


# -- the model -------------------------------------------------------------------------


@router.post("/models/{name}/tags")
def set_model_tag(
    request: Request,
    user: UiContributor,
    name: str,
    key: KeyField,
    value: ValueField = "",
    reason: ReasonField = "",
    back: BackField = "",
) -> Response:
    return _changed(
        request,
        user,
        reason,
        back,
        name,
        lambda ledger, why: ledger.models.set_tags(name, {key: value}, reason=why),
    )


@router.post("/models/{name}/tags/delete")
def remove_model_tag(
    request: Request,
    user: UiContributor,
    name: str,
    key: KeyField,
    reason: ReasonField = "",
    back: BackField = "",
) -> Response:
    return _changed(
        request,
        user,
        reason,
        back,
        name,
        lambda ledger, why: ledger.models.remove_tags(name, [key], reason=why),
    )


@router.post("/models/{name}/aliases")
def set_alias(
    request: Request,
    user: UiContributor,
    name: str,
    alias: AliasField,
    version: Annotated[int, Form(ge=1, le=2**62)],
    reason: ReasonField = "",
    back: BackField = "",
) -> Response:
    return _changed(
        request,
        user,
        reason,
        back,
        name,
        lambda ledger, why: ledger.models.set_alias(name, alias, version, reason=why),
    )


@router.post("/models/{name}/aliases/delete")
def remove_alias(
    request: Request,
    user: UiContributor,
    name: str,
    alias: AliasField,
    reason: ReasonField = "",
    back: BackField = "",
) -> Response:
    return _changed(
        request,
        user,
        reason,
        back,
        name,
        lambda ledger, why: ledger.models.remove_alias(name, alias, reason=why),
    )


# -- a version -------------------------------------------------------------------------


@router.post("/models/{name}/versions/{n}/tags")
def set_version_tag(
    request: Request,
    user: UiContributor,
    name: str,
    n: VersionNumber,
    key: KeyField,
    value: ValueField = "",
    reason: ReasonField = "",
    back: BackField = "",
) -> Response:
    ref = f"{name}:{n}"
    return _changed(
        request,
        user,
        reason,
        back,
        name,
        lambda ledger, why: ledger.models.set_tags(ref, {key: value}, reason=why),
    )


@router.post("/models/{name}/versions/{n}/tags/delete")
def remove_version_tag(
    request: Request,
    user: UiContributor,
    name: str,
    n: VersionNumber,
    key: KeyField,
    reason: ReasonField = "",
    back: BackField = "",
) -> Response:
    ref = f"{name}:{n}"
    return _changed(
        request,
        user,
        reason,
        back,
        name,
        lambda ledger, why: ledger.models.remove_tags(ref, [key], reason=why),
    )


@router.post("/models/{name}/versions/{n}/archive")
def archive_version(
    request: Request,
    user: UiContributor,
    name: str,
    n: VersionNumber,
    reason: ReasonField = "",
    back: BackField = "",
) -> Response:
    return _changed(
        request,
        user,
        reason,
        back,
        name,
        lambda ledger, why: ledger.models.archive_version(f"{name}:{n}", reason=why),
    )


@router.post("/models/{name}/versions/{n}/restore")
def restore_version(
    request: Request,
    user: UiContributor,
    name: str,
    n: VersionNumber,
    reason: ReasonField = "",
    back: BackField = "",
) -> Response:
    return _changed(
        request,
        user,
        reason,
        back,
        name,
        lambda ledger, why: ledger.models.restore_version(f"{name}:{n}", reason=why),
    )


@router.post("/models/{name}/versions/{n}/delete")
def delete_version(
    request: Request,
    user: UiContributor,
    name: str,
    n: VersionNumber,
    reason: ReasonField = "",
    back: BackField = "",
) -> Response:
    return _changed(
        request,
        user,
        reason,
        back,
        name,
        lambda ledger, why: ledger.models.delete_version(f"{name}:{n}", reason=why),
    )
