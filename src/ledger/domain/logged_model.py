"""MLflow logged models (MLflow 3): a model logged from code, with or without a run, whose
files live under its artifact location; pending until the client finalizes it, after the
upload, as ready (or failed)."""

from __future__ import annotations

from ledger.domain.base import LedgerAggregate
from ledger.domain.tracking import (
    MAX_MODEL_TAG_VALUE,
    MAX_PARAM_VALUE,
    check_key,
    check_tags,
    check_text,
    logged_model_aggregate_id,
)
from ledger.errors import InvalidInputError, NotFoundError

PENDING = "PENDING"
READY = "READY"
FAILED = "FAILED"
FINAL_STATUSES = (READY, FAILED)
_BAD_NAME_CHARACTERS = ("/", ":", ".", "%", '"', "'")


def check_model_name(name: str) -> str:
    """MLflow's rule: not empty, and none of / : . % " '."""
    if not name or any(c in name for c in _BAD_NAME_CHARACTERS):
        raise InvalidInputError(
            f"invalid logged model name {name[:100]!r}: give a name without any of "
            + " ".join(_BAD_NAME_CHARACTERS)
        )
    return check_text("logged model name", name, 500)


def check_params(params: dict[str, str]) -> dict[str, str]:
    for key, value in params.items():
        check_key("param key", key)
        check_text(f"param {key!r}", value, MAX_PARAM_VALUE)
    return dict(params)


class LoggedModel(LedgerAggregate):
    """A logged model: experiment, name, the run that made it, type, params, tags, status."""

    def __init__(self) -> None:
        self.model_id = ""
        self.experiment_id = ""
        self.name = ""
        self.source_run_id = ""
        self.artifact_location = ""
        self.status = PENDING
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.deleted = False

    class Event(LedgerAggregate.Event):
        pass

    class Created(Event, LedgerAggregate.Created):
        model_id: str
        experiment_id: str
        name: str
        source_run_id: str
        model_type: str
        params: dict[str, str]
        tags: dict[str, str]
        artifact_location: str

        def apply(self, model: LoggedModel) -> None:
            model.model_id = self.model_id
            model.experiment_id = self.experiment_id
            model.name = self.name
            model.source_run_id = self.source_run_id
            model.params = dict(self.params)
            model.tags = dict(self.tags)
            model.artifact_location = self.artifact_location

    class Finalized(Event):
        status: str  # READY | FAILED

        def apply(self, model: LoggedModel) -> None:
            model.status = self.status

    class ParamsLogged(Event):
        params: dict[str, str]

        def apply(self, model: LoggedModel) -> None:
            model.params.update(self.params)

    class TagsSet(Event):
        tags: dict[str, str]

        def apply(self, model: LoggedModel) -> None:
            model.tags.update(self.tags)

    class TagDeleted(Event):
        key: str

        def apply(self, model: LoggedModel) -> None:
            model.tags.pop(self.key, None)

    class Deleted(Event):
        def apply(self, model: LoggedModel) -> None:
            model.deleted = True

    @classmethod
    def create(
        cls,
        model_id: str,
        *,
        experiment_id: str,
        name: str,
        source_run_id: str,
        model_type: str,
        params: dict[str, str],
        tags: dict[str, str],
        artifact_location: str,
    ) -> LoggedModel:
        return cls._create(
            cls.Created,
            id=logged_model_aggregate_id(model_id),
            model_id=model_id,
            experiment_id=experiment_id,
            name=check_model_name(name),
            source_run_id=source_run_id,
            model_type=check_text("model type", model_type, 500),
            params=check_params(params),
            tags=check_tags("logged model tag", tags, MAX_MODEL_TAG_VALUE),
            artifact_location=artifact_location,
        )

    def finalize(self, status: str) -> None:
        if status not in FINAL_STATUSES:
            raise InvalidInputError(
                f"a logged model is finalized as {' or '.join(FINAL_STATUSES)}, not {status!r}"
            )
        self.trigger_event(self.Finalized, status=status)

    def log_params(self, params: dict[str, str]) -> None:
        if params:
            self.trigger_event(self.ParamsLogged, params=check_params(params))

    def set_tags(self, tags: dict[str, str]) -> None:
        if tags:
            self.trigger_event(
                self.TagsSet, tags=check_tags("logged model tag", tags, MAX_MODEL_TAG_VALUE)
            )

    def delete_tag(self, key: str) -> None:
        if key not in self.tags:
            raise NotFoundError(f"logged model {self.model_id} has no tag {key[:100]!r}")
        self.trigger_event(self.TagDeleted, key=key)

    def delete(self) -> None:
        self.trigger_event(self.Deleted)
