"""The registry view: models, versions, tags, aliases, and where each version is deployed."""

from __future__ import annotations

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
# What a version was registered with never changes, so it is not historized.
VERSION_SPECS = Table(
    "ledger_view_version_specs",
    key={"model": "TEXT", "version": "BIGINT"},
    columns={"description": "TEXT NOT NULL", "spec": "TEXT NOT NULL"},
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
            Model.DescriptionChanged: self._model_described,
            Model.VersionAdded: self._version_added,
            Model.Tagged: self._model_tagged,
            Model.Untagged: self._model_untagged,
            Model.AliasSet: self._alias_set,
            Model.AliasRemoved: self._alias_removed,
            ModelVersion.Registered: self._version_registered,
            ModelVersion.DescriptionChanged: self._version_described,
            ModelVersion.Tagged: self._version_tagged,
            ModelVersion.Untagged: self._version_untagged,
            ModelVersion.Archived: self._status("archived"),
            ModelVersion.Restored: self._status("ready"),
            ModelVersion.Deleted: self._status("deleted"),
            ModelVersion.DeploymentAttached: self._deployment_attached,
            ModelVersion.DeploymentDetached: self._deployment_detached,
        }

    # -- models ----------------------------------------------------------------------

    def _model_registered(self, change: Change) -> None:
        event = change.data
        self.put(
            MODELS.name,
            (event["name"],),
            (event["description"], 0, change.time_us, event["actor"], change.position),
        )

    def _model_described(self, change: Change) -> None:
        key = (change.entity.name,)
        row = self.get(MODELS.name, key)
        if row is not None:
            self.put(MODELS.name, key, (change.data["description"], *row[1:]))

    def _version_added(self, change: Change) -> None:
        event = change.data
        key = (change.entity.name,)
        row = self.get(MODELS.name, key)
        if row is not None:
            self.put(MODELS.name, key, (row[0], event["version"], *row[2:]))

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
        event = change.data
        key = (event["model_name"], event["version"])
        spec = event["spec"]
        self.put(
            VERSIONS.name,
            key,
            (spec["flavor"], "ready", change.time_us, event["actor"], change.position),
        )
        self.put(VERSION_SPECS.name, key, (spec["description"], orjson.dumps(spec).decode()))
        for tag, value in spec["tags"].items():
            self.put(VERSION_TAGS.name, (*key, tag), (value, change.position))

    def _version_key(self, change: Change) -> tuple[str, int]:
        model, _, number = change.entity.name.rpartition(":")
        return model, int(number)

    def _version_described(self, change: Change) -> None:
        # The spec table is not historized: a past registry shows today's description.
        key = self._version_key(change)
        row = self.get(VERSION_SPECS.name, key)
        if row is not None:
            spec = orjson.loads(row[1]) | {"description": change.data["description"]}
            self.put(VERSION_SPECS.name, key, (spec["description"], orjson.dumps(spec).decode()))

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

        return set_status

    def _deployment_attached(self, change: Change) -> None:
        event = change.data
        key = (*self._version_key(change), event["endpoint"], event["deployment"])
        self.put(VERSION_DEPLOYMENTS.name, key, ())

    def _deployment_detached(self, change: Change) -> None:
        event = change.data
        key = (*self._version_key(change), event["endpoint"], event["deployment"])
        self.delete(VERSION_DEPLOYMENTS.name, key)
