"""Models and their versions (what a version is registered with: ``model_spec``).

A ``Model`` is a name with tags and aliases, and the counter that hands out version numbers.
Each ``ModelVersion`` is its own aggregate, so registering version 10,000 costs what version 1
costs: the model aggregate stays small. A deleted (or renamed) model keeps its aggregate: its
history stays, and a model created again under its name continues its version numbers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import UUID

from ledger.domain.base import LedgerAggregate, aggregate_id
from ledger.domain.model_spec import (
    FLAVORS,
    DeploymentRef,
    Flavor,
    Lineage,
    Origin,
    StoredFile,
    VersionSpec,
    VersionStatus,
)
from ledger.errors import InvalidInputError, RuleViolationError

__all__ = ["FLAVORS", "DeploymentRef", "Flavor", "Lineage", "Model", "ModelVersion", "Origin"]
__all__ += ["StoredFile", "VersionSpec", "VersionStatus", "model_id", "model_version_id"]


@lru_cache(maxsize=4096)
def model_id(name: str) -> UUID:
    return aggregate_id("model", name)


def model_version_id(name: str, version: int) -> UUID:
    return aggregate_id("model-version", name, version)


class Model(LedgerAggregate):
    """A registered model name: hands out version numbers, holds tags and aliases."""

    def __init__(self) -> None:
        self.name = ""
        self.description = ""
        self.latest_version = 0
        self.tags: dict[str, str] = {}
        self.aliases: dict[str, int] = {}
        self.deleted = False
        self.renamed_to = ""

    class Event(LedgerAggregate.Event):
        pass

    class Registered(Event, LedgerAggregate.Created):
        name: str
        description: str
        origin: Origin

        # v2 added origin (another system's record of the model, e.g. an MLflow import).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["origin"] = {}

        def apply(self, model: Model) -> None:
            model.name = self.name
            model.description = self.description

    class DescriptionChanged(Event):
        description: str

        def apply(self, model: Model) -> None:
            model.description = self.description

    class VersionAdded(Event):
        version: int

        def apply(self, model: Model) -> None:
            model.latest_version = self.version

    class Tagged(Event):
        key: str
        value: str

        def apply(self, model: Model) -> None:
            model.tags[self.key] = self.value

    class Untagged(Event):
        key: str

        def apply(self, model: Model) -> None:
            model.tags.pop(self.key, None)

    class AliasSet(Event):
        alias: str
        version: int

        def apply(self, model: Model) -> None:
            model.aliases[self.alias] = self.version

    class AliasRemoved(Event):
        alias: str

        def apply(self, model: Model) -> None:
            model.aliases.pop(self.alias, None)

    class Deleted(Event):
        def apply(self, model: Model) -> None:
            model.deleted = True
            model.description, model.tags, model.aliases = "", {}, {}

    class Renamed(Deleted):
        """Its versions moved to ``new_name`` (a model of its own, ``RenamedFrom``)."""

        new_name: str

        def apply(self, model: Model) -> None:
            super().apply(model)
            model.renamed_to = self.new_name

    class Recreated(Event):
        """Created again after a delete or rename: version numbers continue."""

        description: str
        origin: Origin

        def apply(self, model: Model) -> None:
            model.deleted, model.renamed_to = False, ""
            model.description = self.description

    class RenamedFrom(Event, LedgerAggregate.Created):
        """A model created by renaming ``old_name``: its description, tags, aliases, numbers."""

        name: str
        old_name: str
        description: str
        latest_version: int
        tags: dict[str, str]
        aliases: dict[str, int]

        def apply(self, model: Model) -> None:
            model.name, model.description = self.name, self.description
            model.latest_version = self.latest_version
            model.tags, model.aliases = dict(self.tags), dict(self.aliases)

    @classmethod
    def register(cls, name: str, description: str = "", origin: Origin | None = None) -> Model:
        return cls._create(
            cls.Registered,
            id=model_id(name),
            name=name,
            description=description,
            origin=origin or {},
        )

    @classmethod
    def renamed_from(cls, old: Model, new_name: str) -> Model:
        return cls._create(
            cls.RenamedFrom,
            id=model_id(new_name),
            name=new_name,
            old_name=old.name,
            description=old.description,
            latest_version=old.latest_version,
            tags=dict(old.tags),
            aliases=dict(old.aliases),
        )

    def describe(self, description: str) -> None:
        if description != self.description:
            self.trigger_event(self.DescriptionChanged, description=description)

    def delete(self) -> None:
        """Delete the model (the command deletes its versions in the same save)."""
        self.trigger_event(self.Deleted)

    def rename_to(self, new_name: str) -> None:
        self.trigger_event(self.Renamed, new_name=new_name)

    def recreate(self, description: str = "", origin: Origin | None = None) -> None:
        self.trigger_event(self.Recreated, description=description, origin=origin or {})

    def add_version(self) -> int:
        """Hand out the next version number: never reused, never skipped."""
        self.trigger_event(self.VersionAdded, version=self.latest_version + 1)
        return self.latest_version

    def set_tag(self, key: str, value: str) -> None:
        if self.tags.get(key) != value:
            self.trigger_event(self.Tagged, key=key, value=value)

    def remove_tag(self, key: str) -> None:
        if key not in self.tags:
            raise InvalidInputError(f"model {self.name} has no tag {key!r}")
        self.trigger_event(self.Untagged, key=key)

    def set_alias(self, alias: str, version: int) -> None:
        if self.aliases.get(alias) != version:
            self.trigger_event(self.AliasSet, alias=alias, version=version)

    def remove_alias(self, alias: str) -> None:
        if alias not in self.aliases:
            raise InvalidInputError(f"model {self.name} has no alias {alias!r}")
        self.trigger_event(self.AliasRemoved, alias=alias)

    def aliases_of(self, version: int) -> list[str]:
        return sorted(alias for alias, v in self.aliases.items() if v == version)


class ModelVersion(LedgerAggregate):
    """One immutable set of model files plus everything known about it."""

    def __init__(self) -> None:
        self.model_name = ""
        self.number = 0  # the model version number (`version` is the aggregate's)
        self.spec: VersionSpec
        self.tags: dict[str, str] = {}
        self.description = ""  # given at registration, changed since
        self.status: VersionStatus = "ready"
        self.deployments: list[DeploymentRef] = []

    @property
    def ref(self) -> str:
        return f"{self.model_name}:{self.number}"

    class Event(LedgerAggregate.Event):
        pass

    class Registered(Event, LedgerAggregate.Created):
        model_name: str
        version: int
        spec: VersionSpec

        # v2 added spec["signature"]; v1 events are read with an empty signature.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["spec"].setdefault("signature", {})

        def apply(self, mv: ModelVersion) -> None:
            mv.model_name = self.model_name
            mv.number = self.version
            mv.spec = self.spec
            mv.tags = dict(self.spec["tags"])
            mv.description = self.spec["description"]

    class DescriptionChanged(Event):
        description: str

        def apply(self, mv: ModelVersion) -> None:
            mv.description = self.description

    class Tagged(Event):
        key: str
        value: str

        def apply(self, mv: ModelVersion) -> None:
            mv.tags[self.key] = self.value

    class Untagged(Event):
        key: str

        def apply(self, mv: ModelVersion) -> None:
            mv.tags.pop(self.key, None)

    class Archived(Event):
        def apply(self, mv: ModelVersion) -> None:
            mv.status = "archived"

    class Restored(Event):
        def apply(self, mv: ModelVersion) -> None:
            mv.status = "ready"

    class Deleted(Event):
        def apply(self, mv: ModelVersion) -> None:
            mv.status = "deleted"

    class Renamed(Deleted):
        """Moved, with its model, to ``new_name`` (where ``RenamedFrom`` starts it)."""

        new_name: str

    class RenamedFrom(Registered):
        """The version as it was under ``old_name``: registration, tags, description, status."""

        old_name: str
        tags: dict[str, str]
        description: str
        status: VersionStatus

        def apply(self, mv: ModelVersion) -> None:
            super().apply(mv)
            mv.tags, mv.description, mv.status = dict(self.tags), self.description, self.status

    class DeploymentAttached(Event):
        endpoint: str
        deployment: str

        def apply(self, mv: ModelVersion) -> None:
            mv.deployments.append({"endpoint": self.endpoint, "deployment": self.deployment})

    class DeploymentDetached(Event):
        endpoint: str
        deployment: str

        def apply(self, mv: ModelVersion) -> None:
            mv.deployments.remove({"endpoint": self.endpoint, "deployment": self.deployment})

    @classmethod
    def register(cls, model_name: str, version: int, spec: VersionSpec) -> ModelVersion:
        if spec["flavor"] not in FLAVORS:
            raise InvalidInputError(
                f"unknown flavor {spec['flavor']!r}; expected one of {', '.join(FLAVORS)}"
            )
        return cls._create(
            cls.Registered,
            id=model_version_id(model_name, version),
            model_name=model_name,
            version=version,
            spec=spec,
        )

    @classmethod
    def renamed_from(cls, old: ModelVersion, new_name: str) -> ModelVersion:
        return cls._create(
            cls.RenamedFrom,
            id=model_version_id(new_name, old.number),
            model_name=new_name,
            version=old.number,
            spec=old.spec,
            old_name=old.model_name,
            tags=dict(old.tags),
            description=old.description,
            status=old.status,
        )

    def rename_to(self, new_name: str) -> None:
        self._require_not_deployed("rename")
        self.trigger_event(self.Renamed, new_name=new_name)

    def describe(self, description: str) -> None:
        self._require_not_deleted("describe")
        if description != self.description:
            self.trigger_event(self.DescriptionChanged, description=description)

    def set_tag(self, key: str, value: str) -> None:
        self._require_not_deleted("tag")
        if self.tags.get(key) != value:
            self.trigger_event(self.Tagged, key=key, value=value)

    def remove_tag(self, key: str) -> None:
        self._require_not_deleted("untag")
        if key not in self.tags:
            raise InvalidInputError(f"model version {self.ref} has no tag {key!r}")
        self.trigger_event(self.Untagged, key=key)

    def archive(self) -> None:
        self._require_not_deleted("archive")
        self._require_not_deployed("archive")
        if self.status != "archived":
            self.trigger_event(self.Archived)

    def restore(self) -> None:
        self._require_not_deleted("restore")
        if self.status == "archived":
            self.trigger_event(self.Restored)

    def delete(self) -> None:
        self._require_not_deleted("delete")
        self._require_not_deployed("delete")
        self.trigger_event(self.Deleted)

    def attach_deployment(self, endpoint: str, deployment: str) -> None:
        if self.status != "ready":
            raise RuleViolationError(f"cannot deploy model version {self.ref}: it is {self.status}")
        self.trigger_event(self.DeploymentAttached, endpoint=endpoint, deployment=deployment)

    def detach_deployment(self, endpoint: str, deployment: str) -> None:
        if {"endpoint": endpoint, "deployment": deployment} in self.deployments:
            self.trigger_event(self.DeploymentDetached, endpoint=endpoint, deployment=deployment)

    def _require_not_deleted(self, action: str) -> None:
        if self.status == "deleted":
            raise RuleViolationError(f"cannot {action} model version {self.ref}: it is deleted")

    def _require_not_deployed(self, action: str) -> None:
        if self.deployments:
            used_by = ", ".join(
                f"deployment {d['deployment']!r} of endpoint {d['endpoint']!r}"
                for d in self.deployments
            )
            raise RuleViolationError(
                f"cannot {action} model version {self.ref}: it is used by {used_by}; "
                "move its traffic away and undeploy it first"
            )
