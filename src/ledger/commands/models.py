"""Models and model versions: register, tag, alias, archive, delete, download."""

from __future__ import annotations

from collections.abc import Callable
from math import isfinite
from pathlib import Path
from typing import Any

from ledger.application import LedgerApplication
from ledger.artifact_integrity import materialize_all_or_nothing
from ledger.artifacts.paths import FileEntry
from ledger.artifacts.store import ArtifactStore
from ledger.commands.lookups import Lookups
from ledger.commands.model_names import delete_model, rename_model
from ledger.domain.data_asset import DataAsset, data_asset_id
from ledger.domain.environment import Environment, environment_id
from ledger.domain.model import (
    FLAVORS,
    Lineage,
    Model,
    ModelVersion,
    Origin,
    VersionSpec,
    model_id,
)
from ledger.domain.pipeline import Pipeline, pipeline_id
from ledger.errors import AlreadyExistsError, InvalidInputError, NotFoundError
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
    origin: Origin | None = None,
) -> VersionSpec:
    """What a new version is registered with: its stored files and checked details."""
    spec: VersionSpec = {
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files],
        "flavor": flavor,
        "signature": check_json_value(signature or {}, "signature"),
        "tags": check_tags(dict(tags or {})),
        "metrics": check_metrics(metrics or {}),
        "description": description,
        "lineage": lineage,
    }
    if origin:
        spec["origin"] = check_json_value(origin, "origin")
    return spec


def add_version(
    application: LedgerApplication, name: str, spec: VersionSpec, *, must_exist: bool = False
) -> tuple[Model, ModelVersion]:
    """The model (new or updated; ``must_exist``: NotFoundError unless it is live) and its
    next version, for the command to save. A deleted model is created again, its version
    numbers continuing."""
    model = application.find(Model, model_id(name), for_update=True)
    if must_exist and (model is None or model.deleted):
        raise NotFoundError(f"registered model {name!r} does not exist")
    model = model or Model.register(name)
    if model.deleted:
        model.recreate()
    return model, ModelVersion.register(name, model.add_version(), spec)


class ModelCommands:
    """Commands and queries for models and their versions."""

    def __init__(self, application: LedgerApplication, lookups: Lookups) -> None:
        self._app = application
        self._lookups = lookups

    def register_version(
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
        origin: Origin | None = None,
        reason: str = "",
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ModelVersion:
        """Store the files at ``path`` and register them as the model's next version.

        ``on_progress(done, total)`` reports bytes read while the files are stored.
        """
        return self.register_stored_files(
            name,
            lambda store: store.put_tree(path, on_progress),
            flavor=flavor,
            tags=tags,
            metrics=metrics,
            description=description,
            signature=signature,
            lineage=lineage,
            origin=origin,
            reason=reason,
        )

    def register_stored_files(
        self,
        name: str,
        store_files: Callable[[ArtifactStore], list[FileEntry]],
        *,
        flavor: str = "custom",
        tags: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        description: str = "",
        signature: dict[str, Any] | None = None,
        lineage: Lineage | None = None,
        origin: Origin | None = None,
        reason: str = "",
        must_exist: bool = False,
    ) -> ModelVersion:
        """Register as the model's next version the files ``store_files`` puts in the
        artifact store (an upload, stored as it is read). It is called once the name,
        flavor and lineage are checked, so that a refused registration stores nothing.
        ``must_exist``: refuse (NotFoundError) unless the model exists (else it is created)."""
        check_model_identity(name, flavor)
        lineage = self._checked_lineage(lineage or {})
        files = store_files(self._app.artifacts)
        spec = version_spec(
            files,
            flavor=flavor,
            tags=tags,
            metrics=metrics,
            description=description,
            signature=signature,
            lineage=lineage,
            origin=origin,
        )

        def command() -> ModelVersion:
            model, version = add_version(self._app, name, spec, must_exist=must_exist)
            self._app.save(model, version)
            return version

        return self._app.execute(reason, command)

    def register_gap(
        self, name: str, *, description: str = "", origin: Origin | None = None, reason: str = ""
    ) -> ModelVersion:
        """Give the model's next number to a version registered deleted, with no files, in
        one command: how a copy keeps the numbers of a registry that lacks one (an MLflow
        version deleted before the import)."""
        check_name(name, "model name")
        spec = version_spec(
            [],
            flavor="custom",
            tags=None,
            metrics=None,
            description=description,
            signature=None,
            lineage={},
            origin=origin,
        )

        def command() -> ModelVersion:
            model, version = add_version(self._app, name, spec)
            version.delete()
            self._app.save(model, version)
            return version

        return self._app.execute(reason, command)

    def _checked_lineage(self, lineage: Lineage) -> Lineage:
        """Resolve every lineage reference to an exact ``name:version`` the ledger knows."""
        exact: Lineage = {}
        if "data" in lineage:
            exact["data"] = [
                self._lookups.exact_asset_ref(DataAsset, data_asset_id, ref)
                for ref in lineage["data"]
            ]
        if "environment" in lineage:
            exact["environment"] = self._lookups.exact_asset_ref(
                Environment, environment_id, lineage["environment"]
            )
        if "pipeline" in lineage:
            exact["pipeline"] = self._lookups.exact_asset_ref(
                Pipeline, pipeline_id, lineage["pipeline"]
            )
        if "derived_from" in lineage:
            exact["derived_from"] = self._lookups.model_version(lineage["derived_from"]).ref
        if "job" in lineage:
            exact["job"] = str(self._lookups.job(lineage["job"]).id)
        return exact

    def create_model(
        self,
        name: str,
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
        origin: Origin | None = None,
        reason: str = "",
    ) -> Model:
        """Create a model with no versions yet (registering a version creates it too). A
        deleted model's name can be used again: its version numbers continue."""
        check_name(name, "model name")
        check_tags(dict(tags or {}))
        checked_origin = check_json_value(dict(origin or {}), "origin")

        def command() -> Model:
            model = self._app.find(Model, model_id(name))
            if model is not None and not model.deleted:
                raise AlreadyExistsError(f"model {name!r} already exists")
            if model is None:
                model = Model.register(name, description, checked_origin)
            else:
                model.recreate(description, checked_origin)
            for key, value in (tags or {}).items():
                model.set_tag(key, value)
            self._app.save(model)
            return model

        return self._app.execute(reason, command)

    def describe(self, ref_text: str, description: str, *, reason: str = "") -> None:
        """Change the description of a model (``name``) or of one of its versions."""
        ref = parse_ref(ref_text)
        self._app.change(
            lambda: self._tag_target(ref), lambda target: target.describe(description), reason
        )

    # -- queries --------------------------------------------------------------------

    def get(self, name: str) -> Model:
        return self._lookups.model(name)

    def get_version(self, ref_text: str) -> ModelVersion:
        """Resolve ``name`` (latest live version), ``name:3`` or ``name@alias``."""
        return self._lookups.model_version(ref_text)

    def download_version(self, ref_text: str, dest: Path) -> list[Path]:
        """Write the version's files, byte-identical, under ``dest``: all of them, checked,
        or (on a missing or damaged blob) none."""
        version = self._lookups.model_version(ref_text)
        if version.status == "deleted":
            raise NotFoundError(f"model version {version.ref} is deleted")
        entries = [FileEntry.from_dict(dict(f)) for f in version.spec["files"]]
        return materialize_all_or_nothing(self._app.artifacts, entries, dest)

    # -- tags, aliases, status ----------------------------------------------------------

    def set_tags(self, ref_text: str, tags: dict[str, str], *, reason: str = "") -> None:
        """Tag a model (``name``) or one of its versions (``name:3`` / ``name@alias``)."""
        ref = parse_ref(ref_text)
        check_tags(tags)

        def change(target: Model | ModelVersion) -> None:
            for key, value in tags.items():
                target.set_tag(key, value)

        self._app.change(lambda: self._tag_target(ref), change, reason)

    def remove_tags(self, ref_text: str, keys: list[str], *, reason: str = "") -> None:
        """Remove tags from a model or one of its versions; unknown keys are refused."""
        ref = parse_ref(ref_text)

        def change(target: Model | ModelVersion) -> None:
            for key in keys:
                target.remove_tag(key)

        self._app.change(lambda: self._tag_target(ref), change, reason)

    def _tag_target(self, ref: Ref) -> Model | ModelVersion:
        if ref.version is None and ref.alias is None:
            return self._lookups.model(ref.name)
        return self._lookups.resolve(ref)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str = "") -> None:
        """Point ``name@alias`` at a live version (moving it if it pointed elsewhere)."""
        check_alias(alias)

        def command() -> None:
            target = self._lookups.resolve(Ref(name, version=version))
            if target.status == "deleted":
                raise InvalidInputError(f"cannot alias {target.ref}: it is deleted")
            model = self._lookups.model(name)
            model.set_alias(alias, version)
            self._app.save(model)

        self._app.execute(reason, command)

    def remove_alias(self, name: str, alias: str, *, reason: str = "") -> None:
        self._app.change(lambda: self._lookups.model(name), lambda m: m.remove_alias(alias), reason)

    def archive_version(self, ref_text: str, *, reason: str = "") -> None:
        """Archive a version (refused while it is deployed)."""
        ref = parse_ref(ref_text)
        self._app.change(lambda: self._lookups.resolve(ref), ModelVersion.archive, reason)

    def restore_version(self, ref_text: str, *, reason: str = "") -> None:
        ref = parse_ref(ref_text)
        self._app.change(lambda: self._lookups.resolve(ref), ModelVersion.restore, reason)

    def delete_model(self, name: str, *, reason: str = "") -> Model:
        """Delete a model and every version (refused while one is deployed); its name can
        be created again, version numbers continuing."""
        return self._app.execute(reason, lambda: delete_model(self._app, self._lookups, name))

    def rename_model(self, name: str, new_name: str, *, reason: str = "") -> Model:
        """Move a model, its versions (same numbers), tags and aliases to ``new_name``
        (refused while a version is deployed, or when ``new_name`` was ever used)."""
        check_name(new_name, "model name")
        return self._app.execute(
            reason, lambda: rename_model(self._app, self._lookups, name, new_name)
        )

    def delete_version(self, ref_text: str, *, reason: str = "") -> ModelVersion:
        """Delete a version (refused while deployed); aliases pointing at it go too."""
        ref = parse_ref(ref_text)

        def command() -> ModelVersion:
            version = self._lookups.resolve(ref)
            version.delete()
            model = self._lookups.model(version.model_name)
            for alias in model.aliases_of(version.number):
                model.remove_alias(alias)
            self._app.save(version, model)
            return version

        return self._app.execute(reason, command)
