"""What the models pages' tables show, read from the views: a model's versions a page at a
time (now, or as of a past point), one metric across every version, and versions side by
side for comparing."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ledger.errors import InvalidInputError
from ledger.shapes import VersionOut
from ledger.storage.timestamps import iso
from projections.model_browse import metric_names, metrics_by_version
from projections.views import Views

PAGE_SIZE = 50
MAX_COMPARED = 20


def version_url(model: str, number: int) -> str:
    return f"/ui/models/{quote(model, safe='')}/versions/{number}"


def model_url(model: str) -> str:
    return f"/ui/models/{quote(model, safe='')}"


def before_of(page_token: str) -> int:
    """The version number a model page's token continues below (0: from the newest)."""
    if not page_token:
        return 0
    if not page_token.isdigit() or not 0 < int(page_token) < 2**62:
        raise InvalidInputError("invalid page token: follow the page's Next page link")
    return int(page_token)


@dataclass
class VersionsPage:
    """A page of a model's versions (newest first) as rows, and its chart's series."""

    rows: list[dict[str, Any]]
    next_token: str
    series: list[tuple[int, dict[str, float]]] = field(default_factory=list)


def versions_now(views: Views, name: str, before: int, deleted: bool) -> VersionsPage:
    """The model's versions below ``before`` (0: the newest), and every live version's
    metrics."""
    found = views.versions(name, limit=PAGE_SIZE + 1, include_deleted=deleted, before=before)
    rows = [_row(version) for version in found[:PAGE_SIZE]]
    more = str(rows[-1]["version"]) if len(found) > PAGE_SIZE else ""
    return VersionsPage(rows, more, metrics_by_version(views.db, name))


def _row(version: VersionOut) -> dict[str, Any]:
    return {
        "version": version["version"],
        "status": version["status"],
        "aliases": sorted(version["aliases"]),
        "tags": dict(sorted(version["tags"].items())),
        "metrics": dict(sorted(version["metrics"].items())),
        "deployments": version["deployments"],
        "created_at": version["created_at"],
        "created_by": version["created_by"],
    }


def versions_as_of(views: Views, model: dict[str, Any], before: int, deleted: bool) -> VersionsPage:
    """The versions of ``model`` (as ``Views.model_as_of`` gives it) below ``before``; the
    metrics, recorded once at registration, are today's records."""
    versions: dict[int, dict[str, Any]] = model["versions"]
    live = {n for n, v in versions.items() if v["status"] != "deleted"}
    metrics = dict(metrics_by_version(views.db, model["name"], include_deleted=True))
    aliases: dict[int, list[str]] = {}
    for alias, number in sorted(model["aliases"].items()):
        aliases.setdefault(number, []).append(alias)
    wanted = [
        n for n in sorted(versions, reverse=True)
        if (deleted or n in live) and (not before or n < before)
    ][: PAGE_SIZE + 1]  # fmt: skip
    rows = [
        {
            "version": n,
            "status": versions[n]["status"],
            "aliases": aliases.get(n, []),
            "tags": dict(sorted(versions[n]["tags"].items())),
            "metrics": dict(sorted(metrics.get(n, {}).items())),
            "deployments": versions[n]["deployments"],
            "created_at": iso(versions[n]["created_at_us"]),
            "created_by": versions[n]["created_by"],
        }
        for n in wanted[:PAGE_SIZE]
    ]
    more = str(rows[-1]["version"]) if len(wanted) > PAGE_SIZE else ""
    series = [(n, metrics.get(n, {})) for n in sorted(live)]
    return VersionsPage(rows, more, series)


def chosen_metric(
    series: list[tuple[int, dict[str, float]]], asked: str
) -> tuple[list[str], str, list[tuple[int, float]]]:
    """The metric names, the one to chart (``asked`` if any version has it, else the
    first), and its points (version, value)."""
    names = metric_names(series)
    metric = asked if asked in names else (names[0] if names else "")
    points = [(n, float(m[metric])) for n, m in series if metric in m]
    return names, metric, points


# -- comparing versions ---------------------------------------------------------------


def compared_numbers(asked: list[int]) -> list[int]:
    """The distinct version numbers to compare, in order; two at least."""
    numbers = sorted(set(asked))
    if len(numbers) < 2:
        raise InvalidInputError("choose two or more versions to compare")
    if len(numbers) > MAX_COMPARED:
        raise InvalidInputError(f"compare at most {MAX_COMPARED} versions at once")
    return numbers


def comparison(versions: list[VersionOut]) -> list[dict[str, Any]]:
    """Sections of rows, each row a label and one cell per version, marked ``differs``
    when the versions' values are not all the same."""
    sections = [
        ("Version", _summary_rows(versions)),
        ("Metrics", _keyed_rows(versions, lambda v: v["metrics"])),
        ("Tags", _keyed_rows(versions, lambda v: v["tags"])),
        ("Signature", _keyed_rows(versions, lambda v: _as_text(v["signature"]))),
        ("Files", _keyed_rows(versions, _files)),
        ("Lineage", _lineage_rows(versions)),
    ]
    return [{"title": title, "rows": rows} for title, rows in sections]


def _compared_row(label: str, cells: list[Any]) -> dict[str, Any]:
    texts = [json.dumps(cell, sort_keys=True) for cell in cells]
    return {"label": label, "cells": cells, "differs": len(set(texts)) > 1}


def _summary_rows(versions: list[VersionOut]) -> list[dict[str, Any]]:
    fields = {
        "Status": "status",
        "Flavor": "flavor",
        "Description": "description",
        "Created by": "created_by",
        "Created at": "created_at",
        "Size (bytes)": "size",
    }
    rows = [_compared_row(label, [dict(v)[key] for v in versions]) for label, key in fields.items()]
    aliases = [", ".join(sorted(v["aliases"])) for v in versions]
    return [*rows[:2], _compared_row("Aliases", aliases), *rows[2:]]


def _keyed_rows(
    versions: list[VersionOut], mapping: Callable[[VersionOut], dict[str, Any]]
) -> list[dict[str, Any]]:
    values = [mapping(v) for v in versions]
    keys = sorted({key for value in values for key in value})
    return [_compared_row(key, [value.get(key) for value in values]) for key in keys]


def _as_text(mapping: dict[str, Any]) -> dict[str, str]:
    return {key: json.dumps(value, sort_keys=True) for key, value in mapping.items()}


def _files(version: VersionOut) -> dict[str, dict[str, Any]]:
    return {f["path"]: {"size": f["size"], "sha256": f["sha256"]} for f in version["files"]}


def _lineage_rows(versions: list[VersionOut]) -> list[dict[str, Any]]:
    rows = []
    for key in ("data", "environment", "pipeline", "job", "derived_from"):
        cells = [_lineage_refs(key, dict(v["lineage"]).get(key)) for v in versions]
        if any(cells):
            rows.append(_compared_row(key.replace("_", " "), cells))
    return rows


def _lineage_refs(key: str, value: Any) -> list[dict[str, str]]:
    """A lineage entry's references as links: data, environment and pipeline to their
    audit trail, a job to its page, a model version to its page."""
    refs = value if isinstance(value, list) else ([value] if value else [])
    links = []
    for ref in refs:
        text = str(ref)
        if key == "job":
            href = f"/ui/jobs/{quote(text, safe='')}"
        elif key == "derived_from":
            model, _, number = text.rpartition(":")
            href = version_url(model, int(number)) if number.isdigit() else ""
        else:
            asset = text.rpartition(":")[0] or text
            href = f"/ui/audit?entity={quote(key + ':' + asset, safe=':')}"
        links.append({"text": text, "href": href})
    return links
