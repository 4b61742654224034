"""Changing models and versions from the UI (contributors): tags, aliases, archive,
restore, delete. Each is a form's POST (CSRF-checked) running the CLI's command as the
signed-in user with their reason, then sending the browser back (303) to the page in the
form's ``back`` field when it is a page of this UI, else to the model's page. A refusal
(e.g. deleting a deployed version: 409) is a page with the CLI's message (routing.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request, Response

from ledger.api.routes.common import VersionNumber
from ledger.api.ui.access import UiContributor, UiUser
from ledger.api.ui.actions import ReasonField, ui_command
from ledger.api.ui.pages.model_tables import model_url
from ledger.api.ui.rendering import redirect
from ledger.api.ui.routing import local_page, ui_router
from ledger.ledger import Ledger
from ledger.refs import check_name

router = ui_router()
BackField = Annotated[str, Form(max_length=2_000, description="The page to go back to")]
KeyField = Annotated[str, Form(min_length=1, max_length=250)]
ValueField = Annotated[str, Form(max_length=5_000)]
AliasField = Annotated[str, Form(min_length=1, max_length=64)]


@dataclass(frozen=True)
class Change:
    """What every form here sends besides its own fields: who, why, where to go back;
    ``ref`` is what the command changes (the model, or ``name:n`` for a version)."""

    request: Request
    user: UiUser
    reason: str
    back: str
    model: str
    ref: str

    def run(self, command: Callable[[Ledger, str], object]) -> Response:
        """Run ``command(ledger, reason)`` as the user, then go back (303)."""
        check_name(self.model, "model name")  # never a reference such as iris:2 here
        ui_command(self.request, self.user, self.reason, command)
        return redirect(local_page(self.back, model_url(self.model)))


def model_change(
    request: Request, user: UiContributor, name: str, reason: ReasonField = "",
    back: BackField = "",
) -> Change:  # fmt: skip
    return Change(request, user, reason, back, name, name)


def version_change(
    request: Request, user: UiContributor, name: str, n: VersionNumber,
    reason: ReasonField = "", back: BackField = "",
) -> Change:  # fmt: skip
    return Change(request, user, reason, back, name, f"{name}:{n}")


ModelChange = Annotated[Change, Depends(model_change)]
VersionChange = Annotated[Change, Depends(version_change)]


# -- the model -------------------------------------------------------------------------


@router.post("/models/{name}/tags")
def set_model_tag(change: ModelChange, key: KeyField, value: ValueField = "") -> Response:
    return change.run(
        lambda ledger, why: ledger.models.set_tags(change.ref, {key: value}, reason=why)
    )


@router.post("/models/{name}/tags/delete")
def remove_model_tag(change: ModelChange, key: KeyField) -> Response:
    return change.run(lambda ledger, why: ledger.models.remove_tags(change.ref, [key], reason=why))


@router.post("/models/{name}/aliases")
def set_alias(
    change: ModelChange, alias: AliasField, version: Annotated[int, Form(ge=1, le=2**62)]
) -> Response:
    return change.run(
        lambda ledger, why: ledger.models.set_alias(change.ref, alias, version, reason=why)
    )


@router.post("/models/{name}/aliases/delete")
def remove_alias(change: ModelChange, alias: AliasField) -> Response:
    return change.run(lambda ledger, why: ledger.models.remove_alias(change.ref, alias, reason=why))


# -- a version -------------------------------------------------------------------------


@router.post("/models/{name}/versions/{n}/tags")
def set_version_tag(change: VersionChange, key: KeyField, value: ValueField = "") -> Response:
    return change.run(
        lambda ledger, why: ledger.models.set_tags(change.ref, {key: value}, reason=why)
    )


@router.post("/models/{name}/versions/{n}/tags/delete")
def remove_version_tag(change: VersionChange, key: KeyField) -> Response:
    return change.run(lambda ledger, why: ledger.models.remove_tags(change.ref, [key], reason=why))


@router.post("/models/{name}/versions/{n}/archive")
def archive_version(change: VersionChange) -> Response:
    return change.run(lambda ledger, why: ledger.models.archive_version(change.ref, reason=why))


@router.post("/models/{name}/versions/{n}/restore")
def restore_version(change: VersionChange) -> Response:
    return change.run(lambda ledger, why: ledger.models.restore_version(change.ref, reason=why))


@router.post("/models/{name}/versions/{n}/delete")
def delete_version(change: VersionChange) -> Response:
    return change.run(lambda ledger, why: ledger.models.delete_version(change.ref, reason=why))
