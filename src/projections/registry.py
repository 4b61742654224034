"""The registry view: models, versions, tags, aliases, and where each version is deployed."""

from __future__ import annotations

from typing import Any

import orjson

from ledger.domain import LedgerAggregate, Model, ModelVersion
from projections.base import Change, Handler, ReadModel
from projections.tables import Table

MODELS = Table(
    "ledger_view_models",
    key={"name": "TEXT"},
    columns={
        "description": "TEXT NOT NULL",
        "latest_version": "BIGINT NOT NULL",
        "created_at_us": "BIGINT NOT NULL",
        "created_by": "TEXT NOT NULL",
        "created_position": "BIGINT NOT NULL",
        "updated_at_us": "BIGINT NOT NULL",  # its description, versions added or deleted
    },
    indexes=(("created_position",),),
    historized=True,
)
MODEL_TAGS = Table(
    "ledger_view_model_tags",
    key={"model": "TEXT", "key": "TEXT"},
    columns={"value": "TEXT NOT NULL"},
    indexes=(("key", "value"),),
    historized=True,
)
ALIASES = Table(
    "ledger_view_aliases",
    key={"model": "TEXT", "alias": "TEXT"},
    columns={"version": "BIGINT NOT NULL"},
    indexes=(("model", "version"),),
    historized=True,
)
VERSIONS = Table(
    "ledger_view_versions",
    key={"model": "TEXT", "version": "BIGINT"},
    columns={
        "flavor": "TEXT NOT NULL",
        "status": "TEXT NOT NULL",
        "created_at_us": "BIGINT NOT NULL",
        "created_by": "TEXT NOT NULL",
        "created_position": "BIGINT NOT NULL",
    },
    indexes=(("created_position",), ("flavor", "created_position"), ("created_at_us",)),
    historized=True,
)
# What a version was registered with never changes, so it is not historized; beside it its
# description and when that or its status last changed, and where it came from (the origin
# another system recorded: searched by run).
VERSION_SPECS = Table(
    "ledger_view_version_specs",
    key={"model": "TEXT", "version": "BIGINT"},
    columns={
        "description": "TEXT NOT NULL",
        "spec": "TEXT NOT NULL",
        "updated_at_us": "BIGINT NOT NULL",
        "run_id": "TEXT NOT NULL",
        "source": "TEXT NOT NULL",
        "model_id": "TEXT NOT NULL",
        "run_link": "TEXT NOT NULL",
    },
    indexes=(("run_id",),),
)
# A tag's row carries its version's registration position: search walks the
# (key, value, created_position) index newest first and stops after a page.
VERSION_TAGS = Table(
    "ledger_view_version_tags",
    key={"model": "TEXT", "version": "BIGINT", "key": "TEXT"},
    columns={"value": "TEXT NOT NULL", "created_position": "BIGINT NOT NULL"},
    indexes=(("key", "value", "created_position"),),
    historized=True,
)
VERSION_DEPLOYMENTS = Table(
    "ledger_view_version_deployments",
    key={"model": "TEXT", "version": "BIGINT", "endpoint": "TEXT", "deployment": "TEXT"},
    historized=True,
)


class RegistryProjection(ReadModel):
    """Models and their versions as the registry shows and searches them."""

    name = "registry"
    description = "models, versions, tags, aliases, deployments of each version"
    tables = (MODELS, MODEL_TAGS, ALIASES, VERSIONS, VERSION_SPECS, VERSION_TAGS,
              VERSION_DEPLOYMENTS)  # fmt: skip

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        return {
            Model.Registered: self._model_registered,
            Model.RenamedFrom: self._model_renamed_from,
            Model.Recreated: self._model_recreated,
            Model.DescriptionChanged: self._model_described,
            Model.Tagged: self._model_tagged,
            Model.Untagged: self._model_untagged,
            Model.AliasSet: self._alias_set,
            Model.AliasRemoved: self._alias_removed,
            Model.Deleted: self._model_deleted,
            Model.Renamed: self._model_deleted,
            ModelVersion.Registered: self._version_registered,
            ModelVersion.RenamedFrom: self._version_registered,
            ModelVersion.DescriptionChanged: self._version_described,
            ModelVersion.Tagged: self._version_tagged,
            ModelVersion.Untagged: self._version_untagged,
            ModelVersion.Archived: self._status("archived"),
            ModelVersion.Restored: self._status("ready"),
            ModelVersion.Deleted: self._status("deleted"),
            ModelVersion.Renamed: self._status("deleted"),
            ModelVersion.DeploymentAttached: self._deployment_attached,
            ModelVersion.DeploymentDetached: self._deployment_detached,
        }

    # -- models ----------------------------------------------------------------------

    def _put_model(self, change: Change, name: str, description: str, latest: int) -> None:
        row = (description, latest, change.time_us, change.data["actor"], change.position,
               change.time_us)  # fmt: skip
        self.put(MODELS.name, (name,), row)

    def _model_registered(self, change: Change) -> None:
        self._put_model(change, change.data["name"], change.data["description"], 0)

    def _model_renamed_from(self, change: Change) -> None:
        event = change.data
        name = event["name"]
        self._put_model(change, name, event["description"], event["latest_version"])
        for key, value in event["tags"].items():
            self.put(MODEL_TAGS.name, (name, key), (value,))
        for alias, version in event["aliases"].items():
            self.put(ALIASES.name, (name, alias), (version,))

    def _model_recreated(self, change: Change) -> None:
        name = change.entity.name
        # Its versions' rows stay (deleted): numbering continues after the last of them.
        latest = max((key[1] for key in self.state[VERSIONS.name].rows if key[0] == name),
                     default=0)  # fmt: skip
        self._put_model(change, name, change.data["description"], latest)

    def _model_deleted(self, change: Change) -> None:
        """A delete or rename: the model leaves the registry with its tags and aliases (its
        versions' own events mark them deleted); the history keeps them."""
        name = change.entity.name
        self.delete(MODELS.name, (name,))
        for table in (MODEL_TAGS.name, ALIASES.name):
            for key in [key for key in self.state[table].rows if key[0] == name]:
                self.delete(table, key)

    def _touch_model(self, change: Change, name: str, **values: Any) -> None:
        """Change some of the model's columns; its last update is now."""
        row = self.get(MODELS.name, (name,))
        if row is not None:
            columns = dict(zip(MODELS.columns, row, strict=True))
            columns.update(values, updated_at_us=change.time_us)
            self.put(MODELS.name, (name,), tuple(columns.values()))

    def _model_described(self, change: Change) -> None:
        self._touch_model(change, change.entity.name, description=change.data["description"])

    def _model_tagged(self, change: Change) -> None:
        event = change.data
        self.put(MODEL_TAGS.name, (change.entity.name, event["key"]), (event["value"],))

    def _model_untagged(self, change: Change) -> None:
        event = change.data
        self.delete(MODEL_TAGS.name, (change.entity.name, event["key"]))

    def _alias_set(self, change: Change) -> None:
        event = change.data
        self.put(ALIASES.name, (change.entity.name, event["alias"]), (event["version"],))

    def _alias_removed(self, change: Change) -> None:
        event = change.data
        self.delete(ALIASES.name, (change.entity.name, event["alias"]))

    # -- versions --------------------------------------------------------------------

    def _version_registered(self, change: Change) -> None:
        """A registration, or a version moved here by a rename (``RenamedFrom``: with the
        tags, description and status it had)."""
        event = change.data
        key = (event["model_name"], event["version"])
        spec = event["spec"]
        status = event.get("status", "ready")
        self.put(
            VERSIONS.name,
            key,
            (spec["flavor"], status, change.time_us, event["actor"], change.position),
        )
        description = event.get("description", spec["description"])
        self._put_spec(change, key, spec | {"description": description}, description)
        for tag, value in event.get("tags", spec["tags"]).items():
            self.put(VERSION_TAGS.name, (*key, tag), (value, change.position))
        if "old_name" not in event:
            # A new version (its number came with Model.VersionAdded, in the same save): the
            # model's latest number, and its last update the version's creation.
            self._touch_model(change, key[0], latest_version=key[1])

    def _put_spec(
        self, change: Change, key: tuple[str, int], spec: dict[str, Any], description: str
    ) -> None:
        origin = spec.get("origin", {})
        where = [str(origin.get(field, "")) for field in ("run_id", "source", "model_id",
                                                           "run_link")]  # fmt: skip
        row = (description, orjson.dumps(spec).decode(), change.time_us, *where)
        self.put(VERSION_SPECS.name, key, row)

    def _version_key(self, change: Change) -> tuple[str, int]:
        model, _, number = change.entity.name.rpartition(":")
        return model, int(number)

    def _version_described(self, change: Change) -> None:
        # The spec table is not historized: a past registry shows today's description.
        key = self._version_key(change)
        row = self.get(VERSION_SPECS.name, key)
        if row is not None:
            description = change.data["description"]
            spec = orjson.dumps(orjson.loads(row[1]) | {"description": description}).decode()
            self.put(VERSION_SPECS.name, key, (description, spec, change.time_us, *row[3:]))

    def _version_tagged(self, change: Change) -> None:
        event = change.data
        key = self._version_key(change)
        version = self.get(VERSIONS.name, key)
        if version is not None:
            self.put(VERSION_TAGS.name, (*key, event["key"]), (event["value"], version[4]))

    def _version_untagged(self, change: Change) -> None:
        event = change.data
        self.delete(VERSION_TAGS.name, (*self._version_key(change), event["key"]))

    def _status(self, status: str) -> Handler:
        def set_status(change: Change) -> None:
            key = self._version_key(change)
            row = self.get(VERSIONS.name, key)
            if row is not None:
                self.put(VERSIONS.name, key, (row[0], status, *row[2:]))
            spec = self.get(VERSION_SPECS.name, key)
            if spec is not None:
                self.put(VERSION_SPECS.name, key, (spec[0], spec[1], change.time_us, *spec[3:]))
            if status == "deleted":
                self._touch_model(change, key[0])

        return set_status

    def _deployment_attached(self, change: Change) -> None:
        event = change.data
        key = (*self._version_key(change), event["endpoint"], event["deployment"])
        self.put(VERSION_DEPLOYMENTS.name, key, ())

    def _deployment_detached(self, change: Change) -> None:
        event = change.data
        key = (*self._version_key(change), event["endpoint"], event["deployment"])
        self.delete(VERSION_DEPLOYMENTS.name, key)
