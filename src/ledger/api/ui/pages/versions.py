"""A model version's page (files, signature, metrics, origin, deployments, history and its
lineage graph) and its downloads with the UI's session."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from ledger.api import version_files
from ledger.api.downloads import Refusal
from ledger.api.routes.common import VersionNumber, read_views
from ledger.api.ui.access import UiReader
from ledger.api.ui.graphics.lineage import LineagePicture, lineage_picture, node_href
from ledger.api.ui.rendering import render
from ledger.api.ui.routing import ui_router
from ledger.artifact_integrity import BlobDamage
from ledger.errors import NotFoundError
from ledger.logging import get_logger
from ledger.shapes import VersionOut
from projections.audit import AuditQuery
from projections.views import Views

log = get_logger(__name__)
router = ui_router()
LINEAGE_DEPTH = 3
HISTORY_EVENTS = 50
UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(size: int) -> str:
    """``size`` bytes for a person: 1 byte, 900 bytes, 1.5 KiB, 2.0 GiB."""
    if size == 1:
        return "1 byte"
    amount, unit = float(size), 0
    while amount >= 1024 and unit < len(UNITS) - 1:
        amount, unit = amount / 1024, unit + 1
    return f"{size} bytes" if unit == 0 else f"{amount:.1f} {UNITS[unit]}"


def version_lineage(views: Views, ref: str) -> LineagePicture | None:
    """The version's lineage, upstream and downstream (None if the view has no node)."""
    node = f"model:{ref}"
    try:
        up = views.lineage(node, direction="upstream", depth=LINEAGE_DEPTH)
        down = views.lineage(node, direction="downstream", depth=LINEAGE_DEPTH)
    except NotFoundError:
        return None
    return lineage_picture(up, down)


def version_history(views: Views, ref: str) -> tuple[list[dict[str, Any]], bool]:
    """The version's first events (oldest first), and whether it has more."""
    page = views.audit(AuditQuery(kind="model_version", name=ref, limit=HISTORY_EVENTS))
    events = [
        {
            **item,
            "event": item["event_type"].rpartition(".")[2],
            # what changed, in short (a registration's spec is on this page already)
            "changes": {
                key: value
                for key, value in item["details"].items()
                if isinstance(value, str | int | float | bool)
                and key not in ("model_name", "version")
            },
        }
        for item in page.items
    ]
    return events, bool(page.next_token)


def _signature_rows(part: object) -> list[dict[str, str]]:
    """A signature's inputs or outputs as table rows (name, type, shape)."""
    if not isinstance(part, list):
        return []
    rows = []
    for item in part:
        spec: dict[str, Any] = item if isinstance(item, dict) else {"type": item}
        tensor = spec.get("tensor-spec")
        tensor = tensor if isinstance(tensor, dict) else {}
        shape = spec.get("shape", tensor.get("shape", ""))
        rows.append(
            {
                "name": str(spec.get("name", "")),
                "type": str(tensor.get("dtype") or spec.get("type", "")),
                "shape": "" if shape in ("", None) else str(shape).replace("None", "-1"),
            }
        )
    return rows


LINEAGE_KINDS = {"data": "data", "environment": "environment", "pipeline": "pipeline",
                 "job": "job", "derived_from": "model"}  # fmt: skip


def _made_from(lineage: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """What the version was registered as made from: (what, [(reference, its page)])."""
    made = []
    for key, kind in LINEAGE_KINDS.items():
        refs = lineage.get(key) or []
        refs = [refs] if isinstance(refs, str) else refs
        if refs:
            made.append((key.replace("_", " "), [(r, node_href(f"{kind}:{r}")) for r in refs]))
    return made


def _page_context(views: Views, name: str, number: int) -> dict[str, Any]:
    version: VersionOut = views.version_of(name, number)
    signature = version["signature"] or {}
    history, more_history = version_history(views, version["ref"])
    return {
        "model_version": version,
        "deleted": version["status"] == "deleted",
        "files": [{**f, "size_text": human_size(f["size"])} for f in version["files"]],
        "size_text": human_size(version["size"]),
        "inputs": _signature_rows(signature.get("inputs")),
        "outputs": _signature_rows(signature.get("outputs")),
        "made_from": _made_from(dict(version["lineage"])),
        "signature_rest": {k: v for k, v in signature.items() if k not in ("inputs", "outputs")},
        "lineage": version_lineage(views, version["ref"]),
        "history": history,
        "more_history": more_history,
    }


@router.get("/models/{name}/versions/{number}")
def version_page(request: Request, _: UiReader, name: str, number: VersionNumber) -> Response:
    """Everything known about a version, where it came from and where it went."""
    context = read_views(request, lambda views: _page_context(views, name, number))
    return render(request, "version.html", here=request.url.path, **context)


def _damaged_page(request: Request) -> Refusal:
    """The answer for a stored file found damaged: an error page (the store needs repair)."""

    def refuse(ref: str, path: str, damage: BlobDamage) -> Response:
        log.error("download refused: stored artifact is damaged", ref=ref, path=path,
                  **damage.to_dict())  # fmt: skip
        message = f"model version {ref}, file {path!r}: {damage.describe()}"
        return render(request, "error.html", 500, message=message, back="")

    return refuse


@router.get("/models/{name}/versions/{number}/files/{path:path}")
def download_file(
    request: Request, _: UiReader, name: str, number: VersionNumber, path: str
) -> Response:
    """One file of the version, byte for byte (404 once the version is deleted)."""
    response: Response = version_files.download_file(
        request, name, number, path, _damaged_page(request)
    )
    return response


@router.get("/models/{name}/versions/{number}/download")
def download_zip(request: Request, _: UiReader, name: str, number: VersionNumber) -> Response:
    """Every file of the version as one zip."""
    response: Response = version_files.download_zip(request, name, number, _damaged_page(request))
    return response
