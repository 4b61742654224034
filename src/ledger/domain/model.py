"""Models and their versions.

A ``Model`` is a name with tags and aliases, and the counter that hands out
version numbers. Each ``ModelVersion`` is its own aggregate, so registering
version 10,000 costs what version 1 costs: the model aggregate stays small.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal, NotRequired, get_args
from uuid import UUID

# The API's response models (ledger.shapes) nest these; pydantic wants typing_extensions'.
from typing_extensions import TypedDict

from ledger.domain.base import LedgerAggregate, aggregate_id
from ledger.errors import InvalidInputError, RuleViolationError

Flavor = Literal["onnx", "sklearn", "pytorch", "custom"]
FLAVORS: tuple[str, ...] = get_args(Flavor)
VersionStatus = Literal["ready", "archived", "deleted"]


class StoredFile(TypedDict):
    """One file of a model version: relative path, sha256 digest and size."""

    path: str
    sha256: str
    size: int


class Lineage(TypedDict, total=False):
    """What produced a model version (all references are ``name:version``)."""

    job: str
    data: list[str]
    environment: str
    pipeline: str
    derived_from: str


class Origin(TypedDict, total=False):
    """Where a version came from when another system made it (e.g. an MLflow run, or an
    import from an MLflow registry): kept as it was, for the record."""

    system: str  # "mlflow"
    uri: str  # the tracking server it came from (an import)
    source: str  # the artifact location the files were taken from
    run_id: str
    model_id: str  # an MLflow logged model
    params: dict[str, str]  # the run's parameters
    created_by: str  # the original author and time (an import), the actor being the importer
    created_at: str


class DeploymentRef(TypedDict):
    """A deployment that serves a model version."""

    endpoint: str
    deployment: str


class VersionSpec(TypedDict):
    """Everything recorded about a model version at registration."""

    files: list[StoredFile]
    flavor: str
    signature: dict[str, Any]
    tags: dict[str, str]
    metrics: dict[str, float]
    description: str
    lineage: Lineage
    origin: NotRequired[Origin]


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

    @classmethod
    def register(cls, name: str, description: str = "", origin: Origin | None = None) -> Model:
        return cls._create(
            cls.Registered,
            id=model_id(name),
            name=name,
            description=description,
            origin=origin or {},
        )

    def describe(self, description: str) -> None:
        if description != self.description:
            self.trigger_event(self.DescriptionChanged, description=description)

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
