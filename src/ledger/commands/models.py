"""Models and model versions: register, tag, alias, archive, delete, download."""

from __future__ import annotations

from collections.abc import Callable
from math import isfinite
from pathlib import Path
from typing import Any

from ledger.artifact_integrity import materialize_all_or_nothing
from ledger.artifacts.paths import FileEntry
from ledger.commands.jobs import JobCommands
from ledger.core import HistoryEntry
from ledger.domain.data_asset import DataAsset, data_asset_id
from ledger.domain.environment import Environment, environment_id
from ledger.domain.model import (
    FLAVORS,
    Lineage,
    Model,
    ModelVersion,
    VersionSpec,
    model_id,
    model_version_id,
)
from ledger.domain.pipeline import Pipeline, pipeline_id
from ledger.errors import InvalidInputError, NotFoundError
from ledger.refs import Ref, check_alias, check_name, parse_ref
from ledger.specs import check_json_value

MAX_TAG_KEY = 250
MAX_TAG_VALUE = 5_000


def check_metrics(metrics: dict[str, float]) -> dict[str, float]:
    checked = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not isfinite(value):
            raise InvalidInputError(f"metric {name!r} must be a finite number, got {value!r}")
        checked[name] = float(value)
    return checked


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    for key, value in tags.items():
        if not key or len(key) > MAX_TAG_KEY:
            raise InvalidInputError(f"tag key {key!r} must be 1 to {MAX_TAG_KEY} characters")
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise InvalidInputError(f"tag {key!r}: value must be text of at most {MAX_TAG_VALUE}")
    return tags


def check_model_identity(name: str, flavor: str) -> None:
    check_name(name, "model name")
    if flavor not in FLAVORS:
        raise InvalidInputError(f"unknown flavor {flavor!r}; expected one of {', '.join(FLAVORS)}")


def version_spec(
    files: list[FileEntry],
    *,
    flavor: str,
    tags: dict[str, str] | None,
    metrics: dict[str, float] | None,
    description: str,
    signature: dict[str, Any] | None,
    lineage: Lineage,
) -> VersionSpec:
    """What a new version is registered with: its stored files and checked details."""
    return {
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files],
        "flavor": flavor,
        "signature": check_json_value(signature or {}, "signature"),
        "tags": check_tags(dict(tags or {})),
        "metrics": check_metrics(metrics or {}),
        "description": description,
        "lineage": lineage,
    }


class ModelCommands(JobCommands):
    """Commands and queries for models and their versions."""

    def register_model_version(
        self,
        name: str,
        path: Path,
        *,
        flavor: str = "custom",
        tags: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        description: str = "",
        signature: dict[str, Any] | None = None,
        lineage: Lineage | None = None,
        reason: str = "",
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ModelVersion:
        """Store the files at ``path`` and register them as the model's next version.

        ``on_progress(done, total)`` reports bytes read while the files are stored.
        """
        check_model_identity(name, flavor)
        lineage = self._checked_lineage(lineage or {})
        files = self.artifacts.put_tree(path, on_progress)
        spec = version_spec(
            files,
            flavor=flavor,
            tags=tags,
            metrics=metrics,
            description=description,
            signature=signature,
            lineage=lineage,
        )

        def command() -> ModelVersion:
            model, version = self._add_model_version(name, spec)
            self.save(model, version)
            return version

        return self._execute(reason, command)

    def _add_model_version(self, name: str, spec: VersionSpec) -> tuple[Model, ModelVersion]:
        """The model (new or updated) and its next version, for the caller to save."""
        model = self._find(Model, model_id(name), for_update=True) or Model.register(name)
        return model, ModelVersion.register(name, model.add_version(), spec)

    def _checked_lineage(self, lineage: Lineage) -> Lineage:
        """Resolve every lineage reference to an exact ``name:version`` the ledger knows."""
        exact: Lineage = {}
        if "data" in lineage:
            exact["data"] = [
                self._exact_asset_ref(DataAsset, data_asset_id, ref) for ref in lineage["data"]
            ]
        if "environment" in lineage:
            exact["environment"] = self._exact_asset_ref(
                Environment, environment_id, lineage["environment"]
            )
        if "pipeline" in lineage:
            exact["pipeline"] = self._exact_asset_ref(Pipeline, pipeline_id, lineage["pipeline"])
        if "derived_from" in lineage:
            exact["derived_from"] = self.get_model_version(lineage["derived_from"]).ref
        if "job" in lineage:
            exact["job"] = str(self.get_job(lineage["job"]).id)
        return exact

    # -- queries --------------------------------------------------------------------

    def get_model(self, name: str) -> Model:
        check_name(name, "model name")
        return self._load(Model, model_id(name), f"model {name!r}")

    def get_model_version(self, ref_text: str) -> ModelVersion:
        """Resolve ``name`` (latest live version), ``name:3`` or ``name@alias``."""
        return self._resolve(parse_ref(ref_text))

    def _resolve(self, ref: Ref) -> ModelVersion:
        model = self._load(Model, model_id(ref.name), f"model {ref.name!r}")
        if ref.alias is not None:
            if ref.alias not in model.aliases:
                raise NotFoundError(f"model {ref.name!r} has no alias {ref.alias!r}")
            number = model.aliases[ref.alias]
        elif ref.version is not None:
            number = ref.version
        else:
            return self._latest_live_version(model)
        return self._version(ref.name, number)

    def _version(self, name: str, number: int) -> ModelVersion:
        return self._load(
            ModelVersion, model_version_id(name, number), f"model version {name}:{number}"
        )

    def _latest_live_version(self, model: Model) -> ModelVersion:
        for number in range(model.latest_version, 0, -1):
            version = self._version(model.name, number)
            if version.status != "deleted":
                return version
        raise NotFoundError(f"model {model.name!r} has no live versions")

    def list_model_versions(
        self, name: str, *, limit: int = 50, include_deleted: bool = False
    ) -> list[ModelVersion]:
        """The model's versions, newest first."""
        model = self.get_model(name)
        versions: list[ModelVersion] = []
        for number in range(model.latest_version, 0, -1):
            if len(versions) >= limit:
                break
            version = self._version(name, number)
            if include_deleted or version.status != "deleted":
                versions.append(version)
        return versions

    def list_models(self) -> list[Model]:
        return [self.get_model(name) for name in self.names_of(Model.Registered)]

    def download_model_version(self, ref_text: str, dest: Path) -> list[Path]:
        """Write the version's files, byte-identical, under ``dest``: all of them, checked,
        or (on a missing or damaged blob) none."""
        version = self.get_model_version(ref_text)
        if version.status == "deleted":
            raise NotFoundError(f"model version {version.ref} is deleted")
        entries = [FileEntry.from_dict(dict(f)) for f in version.spec["files"]]
        return materialize_all_or_nothing(self.artifacts, entries, dest)

    def model_history(self, name: str) -> list[HistoryEntry]:
        """Events of the model and of every one of its versions, oldest first."""
        model = self.get_model(name)
        ids = {model.id: f"model {name}"}
        for number in range(1, model.latest_version + 1):
            ids[model_version_id(name, number)] = f"model {name}:{number}"
        return self.history_of(ids)

    # -- tags, aliases, status ----------------------------------------------------------

    def set_tags(self, ref_text: str, tags: dict[str, str], *, reason: str = "") -> None:
        """Tag a model (``name``) or one of its versions (``name:3`` / ``name@alias``)."""
        ref = parse_ref(ref_text)
        check_tags(tags)

        def change(target: Model | ModelVersion) -> None:
            for key, value in tags.items():
                target.set_tag(key, value)

        self._change(lambda: self._tag_target(ref), change, reason)

    def remove_tags(self, ref_text: str, keys: list[str], *, reason: str = "") -> None:
        """Remove tags from a model or one of its versions; unknown keys are refused."""
        ref = parse_ref(ref_text)

        def change(target: Model | ModelVersion) -> None:
            for key in keys:
                target.remove_tag(key)

        self._change(lambda: self._tag_target(ref), change, reason)

    def _tag_target(self, ref: Ref) -> Model | ModelVersion:
        if ref.version is None and ref.alias is None:
            return self._load(Model, model_id(ref.name), f"model {ref.name!r}")
        return self._resolve(ref)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str = "") -> None:
        """Point ``name@alias`` at a live version (moving it if it pointed elsewhere)."""
        check_alias(alias)

        def command() -> None:
            target = self._resolve(Ref(name, version=version))
            if target.status == "deleted":
                raise InvalidInputError(f"cannot alias {target.ref}: it is deleted")
            model = self.get_model(name)
            model.set_alias(alias, version)
            self.save(model)

        self._execute(reason, command)

    def remove_alias(self, name: str, alias: str, *, reason: str = "") -> None:
        self._change(lambda: self.get_model(name), lambda m: m.remove_alias(alias), reason)

    def archive_model_version(self, ref_text: str, *, reason: str = "") -> None:
        """Archive a version (refused while it is deployed)."""
        ref = parse_ref(ref_text)
        self._change(lambda: self._resolve(ref), ModelVersion.archive, reason)

    def restore_model_version(self, ref_text: str, *, reason: str = "") -> None:
        ref = parse_ref(ref_text)
        self._change(lambda: self._resolve(ref), ModelVersion.restore, reason)

    def delete_model_version(self, ref_text: str, *, reason: str = "") -> ModelVersion:
        """Delete a version (refused while deployed); aliases pointing at it go too."""
        ref = parse_ref(ref_text)

        def command() -> ModelVersion:
            version = self._resolve(ref)
            version.delete()
            model = self.get_model(version.model_name)
            for alias in model.aliases_of(version.number):
                model.remove_alias(alias)
            self.save(version, model)
            return version

        return self._execute(reason, command)
