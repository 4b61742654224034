"""The ledger's models and versions as MLflow's ``registered_model`` and ``model_version``
JSON: versions as strings, times in integer milliseconds, tags as ``[{key, value}]``.

Stages are gone from the ledger (MLflow deprecated them): every version's ``current_stage``
is ``"None"``, and its ``status`` is ``"READY"`` (a version exists once its files are
stored; any other status makes the client poll for minutes).
"""

from __future__ import annotations

from typing import Any

from ledger.domain.model import Model, ModelVersion
from ledger.storage.timestamps import to_microseconds
from projections.registry_records import ModelRecord, VersionRecord

DOWNLOAD_PREFIX = "mlflow-artifacts:/ledger/models"


def download_uri(name: str, version: int) -> str:
    """Where the MLflow client downloads a version's files (the artifact proxy serves it)."""
    return f"{DOWNLOAD_PREFIX}/{name}/{version}"


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in sorted(tags.items())]


def model_version(record: VersionRecord) -> dict[str, Any]:
    """MLflow's ``model_version``; its source is where its files came from, else the
    download URI of the ledger's copy."""
    name, number = record["model"], record["version"]
    return {
        "name": name,
        "version": str(number),
        "creation_timestamp": record["created_at_us"] // 1000,
        "last_updated_timestamp": record["updated_at_us"] // 1000,
        "user_id": record["created_by"],
        "current_stage": "None",
        "description": record["description"],
        "source": record["source"] or download_uri(name, number),
        "run_id": record["run_id"],
        "status": "READY",
        "run_link": record["run_link"],
        "tags": tag_list(record["tags"]),
        "aliases": record["aliases"],
        "model_id": record["model_id"],
    }


def registered_model(record: ModelRecord) -> dict[str, Any]:
    """MLflow's ``registered_model``, with its newest live version as ``latest_versions``."""
    return {
        "name": record["name"],
        "creation_timestamp": record["created_at_us"] // 1000,
        "last_updated_timestamp": record["updated_at_us"] // 1000,
        "user_id": record["created_by"],
        "description": record["description"],
        "latest_versions": [model_version(version) for version in record["latest"]],
        "tags": tag_list(record["tags"]),
        "aliases": [
            {"alias": alias, "version": str(version)}
            for alias, version in sorted(record["aliases"].items())
        ],
    }


def version_record_of(version: ModelVersion, created_by: str) -> VersionRecord:
    """A version a command just registered, as the views will show it."""
    origin = version.spec.get("origin", {})
    created = to_microseconds(version.created_on)
    return VersionRecord(
        model=version.model_name, version=version.number, created_at_us=created,
        created_by=created_by, updated_at_us=created, description=version.description,
        run_id=origin.get("run_id", ""), source=origin.get("source", ""),
        model_id=origin.get("model_id", ""), run_link=origin.get("run_link", ""),
        tags=dict(version.tags), aliases=[],
    )  # fmt: skip


def model_record_of(model: Model, created_by: str) -> ModelRecord:
    """A model a command just created (no live version yet), from the command's result."""
    created = to_microseconds(model.modified_on)
    return ModelRecord(
        name=model.name, description=model.description, created_at_us=created,
        created_by=created_by, updated_at_us=created, tags=dict(model.tags),
        aliases=dict(model.aliases), latest=[],
    )  # fmt: skip
