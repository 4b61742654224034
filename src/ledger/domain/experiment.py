"""MLflow experiments: a named group of runs and logged models, with tags, that can be
renamed, deleted and restored; and the directory that numbers them and keeps names unique.

Experiment names are unique among live and deleted experiments (as in MLflow: a deleted
experiment keeps its name until it is renamed). The directory is one aggregate holding
every name and the last id given, so concurrent creators or renamers of the same name
collide on it and the loser decides again on fresh state. It is created, together with
the default experiment "0" ("Default"), by the first command that needs either.
"""

from __future__ import annotations

from ledger.domain.base import LedgerAggregate, aggregate_id
from ledger.domain.tracking import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    MAX_EXPERIMENT_NAME,
    MAX_EXPERIMENT_TAG_VALUE,
    check_key,
    check_tags,
    check_text,
    experiment_aggregate_id,
)
from ledger.errors import AlreadyExistsError, InvalidInputError, NotFoundError

DIRECTORY_ID = aggregate_id("mlflow_experiment_directory")
ACTIVE = "active"
DELETED = "deleted"


def check_experiment_name(name: str) -> str:
    if not name.strip():
        raise InvalidInputError("an experiment name must not be empty")
    return check_text("experiment name", name, MAX_EXPERIMENT_NAME)


class ExperimentDirectory(LedgerAggregate):
    """Which experiment holds each name, and the last experiment id given."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {DEFAULT_EXPERIMENT_NAME: DEFAULT_EXPERIMENT_ID}
        self.last_id = int(DEFAULT_EXPERIMENT_ID)

    class Event(LedgerAggregate.Event):
        pass

    class Created(Event, LedgerAggregate.Created):
        """The directory, holding the default experiment's name."""

    class NameClaimed(Event):
        name: str
        experiment_id: str

        def apply(self, directory: ExperimentDirectory) -> None:
            directory.names[self.name] = self.experiment_id
            directory.last_id = max(directory.last_id, int(self.experiment_id))

    class NameReleased(Event):
        name: str

        def apply(self, directory: ExperimentDirectory) -> None:
            directory.names.pop(self.name, None)

    @classmethod
    def create(cls) -> ExperimentDirectory:
        return cls._create(cls.Created, id=DIRECTORY_ID)

    def holder(self, name: str) -> str | None:
        """The id of the experiment holding ``name``, if any."""
        return self.names.get(name)

    def claim_new(self, name: str) -> str:
        """The next experiment id, holding ``name``."""
        self._check_free(name)
        experiment_id = str(self.last_id + 1)
        self.trigger_event(self.NameClaimed, name=name, experiment_id=experiment_id)
        return experiment_id

    def rename(self, experiment_id: str, old: str, new: str) -> None:
        self._check_free(new)
        self.trigger_event(self.NameReleased, name=old)
        self.trigger_event(self.NameClaimed, name=new, experiment_id=experiment_id)

    def _check_free(self, name: str) -> None:
        holder = self.names.get(name)
        if holder is not None:
            raise AlreadyExistsError(
                f"experiment name {name!r} is taken by experiment {holder} "
                "(a deleted experiment keeps its name until it is renamed)"
            )


class Experiment(LedgerAggregate):
    """An MLflow experiment: id, name, artifact location, tags and lifecycle stage."""

    def __init__(self) -> None:
        self.experiment_id = ""
        self.name = ""
        self.artifact_location = ""
        self.tags: dict[str, str] = {}
        self.lifecycle_stage = ACTIVE

    class Event(LedgerAggregate.Event):
        pass

    class Created(Event, LedgerAggregate.Created):
        experiment_id: str
        name: str
        artifact_location: str
        tags: dict[str, str]

        def apply(self, experiment: Experiment) -> None:
            experiment.experiment_id = self.experiment_id
            experiment.name = self.name
            experiment.artifact_location = self.artifact_location
            experiment.tags = dict(self.tags)

    class Renamed(Event):
        name: str

        def apply(self, experiment: Experiment) -> None:
            experiment.name = self.name

    class Deleted(Event):
        def apply(self, experiment: Experiment) -> None:
            experiment.lifecycle_stage = DELETED

    class Restored(Event):
        def apply(self, experiment: Experiment) -> None:
            experiment.lifecycle_stage = ACTIVE

    class TagSet(Event):
        key: str
        value: str

        def apply(self, experiment: Experiment) -> None:
            experiment.tags[self.key] = self.value

    class TagRemoved(Event):
        key: str

        def apply(self, experiment: Experiment) -> None:
            experiment.tags.pop(self.key, None)

    @classmethod
    def create(
        cls, experiment_id: str, name: str, artifact_location: str, tags: dict[str, str]
    ) -> Experiment:
        return cls._create(
            cls.Created,
            id=experiment_aggregate_id(experiment_id),
            experiment_id=experiment_id,
            name=check_experiment_name(name),
            artifact_location=artifact_location,
            tags=check_tags("experiment tag", tags, MAX_EXPERIMENT_TAG_VALUE),
        )

    @property
    def active(self) -> bool:
        return self.lifecycle_stage == ACTIVE

    def rename(self, name: str) -> None:
        self.require_active("renamed")
        self.trigger_event(self.Renamed, name=check_experiment_name(name))

    def delete(self) -> None:
        self.require_active("deleted")
        self.trigger_event(self.Deleted)

    def restore(self) -> None:
        if self.active:
            raise InvalidInputError(f"experiment {self.experiment_id} is not deleted")
        self.trigger_event(self.Restored)

    def set_tag(self, key: str, value: str) -> None:
        self.require_active("tagged")
        check_key("experiment tag key", key)
        check_text(f"experiment tag {key!r}", value, MAX_EXPERIMENT_TAG_VALUE)
        self.trigger_event(self.TagSet, key=key, value=value)

    def remove_tag(self, key: str) -> None:
        self.require_active("changed")
        if key not in self.tags:
            raise NotFoundError(f"experiment {self.experiment_id} has no tag {key[:100]!r}")
        self.trigger_event(self.TagRemoved, key=key)

    def require_active(self, doing: str = "changed") -> None:
        """Refuse to act on a deleted experiment (INVALID_PARAMETER_VALUE, as in MLflow)."""
        if not self.active:
            raise InvalidInputError(
                f"experiment {self.experiment_id} is deleted: it cannot be {doing} "
                "(restore it first)"
            )
