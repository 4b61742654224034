"""MLflow runs: one execution of training code, with its parameters (write-once), metrics
(every value logged, with timestamp and step), tags, dataset inputs and logged model outputs.

The run keeps only what its rules need (parameters, tags, which inputs and outputs it has);
metric values go into events and the views, never into the aggregate's state, so a run
with a long metric history loads as fast as a short one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from typing_extensions import TypedDict

from ledger.domain.base import LedgerAggregate
from ledger.domain.tracking import (
    MAX_PARAM_VALUE,
    MAX_TAG_VALUE,
    check_int64,
    check_key,
    check_tags,
    check_text,
    encode_metric_value,
    run_aggregate_id,
)
from ledger.errors import InvalidInputError, NotFoundError

RUN_NAME_TAG = "mlflow.runName"
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
ACTIVE = "active"
DELETED = "deleted"
# MLflow's limits on one log-batch request and on dataset fields.
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS_TAGS = 100
MAX_BATCH_ENTITIES = 1000
_DATASET_LIMITS = {
    "name": 500,
    "digest": 36,
    "source_type": 500,
    "source": 65_535,
    "schema": 1_048_575,
    "profile": 16_777_215,
}
MAX_INPUT_TAG_KEY = 255
MAX_INPUT_TAG_VALUE = 500


@dataclass(frozen=True)
class Metric:
    """One metric value as logged: ``value`` may be NaN or infinite (MLflow takes them)."""

    key: str
    value: float
    timestamp: int  # ms since the epoch
    step: int = 0
    model_id: str = ""  # the logged model it measures, if any
    dataset_name: str = ""
    dataset_digest: str = ""


@dataclass(frozen=True)
class Dataset:
    """A dataset a run used, as MLflow describes it, and the input's tags (e.g. context)."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str = ""
    profile: str = ""
    tags: dict[str, str] = field(default_factory=dict)


class MetricPoint(TypedDict):
    """A metric as events hold it (value: a number, or "NaN", "Infinity", "-Infinity")."""

    key: str
    value: float | str
    timestamp: int
    step: int
    model_id: str
    dataset_name: str
    dataset_digest: str


def metric_point(metric: Metric) -> MetricPoint:
    """The checked metric, as an event holds it."""
    check_key("metric key", metric.key)
    for what in ("model_id", "dataset_name", "dataset_digest"):
        check_text(f"metric {what}", getattr(metric, what), 500)
    if metric.timestamp < 0:
        raise InvalidInputError(f"metric {metric.key!r}: timestamp must not be negative")
    return {
        "key": metric.key,
        "value": encode_metric_value(float(metric.value)),
        "timestamp": check_int64("metric timestamp", metric.timestamp),
        "step": check_int64("metric step", metric.step),
        "model_id": metric.model_id,
        "dataset_name": metric.dataset_name,
        "dataset_digest": metric.dataset_digest,
    }


def dataset_fields(dataset: Dataset) -> dict[str, Any]:
    """The checked dataset input, as an event holds it."""
    fields: dict[str, Any] = {}
    for name, limit in _DATASET_LIMITS.items():
        value = getattr(dataset, name)
        if name in ("name", "digest", "source_type", "source") and not value:
            raise InvalidInputError(f"a dataset input needs a {name}")
        fields[name] = check_text(f"dataset {name}", value, limit)
    for key, value in dataset.tags.items():
        check_text("input tag key", key, MAX_INPUT_TAG_KEY)
        check_text(f"input tag {key!r}", value, MAX_INPUT_TAG_VALUE)
    fields["tags"] = dict(dataset.tags)
    return fields


def check_batch(metrics: int, params: int, tags: int) -> None:
    """MLflow's limits on one log-batch request."""
    for what, count, limit in (
        ("metrics", metrics, MAX_BATCH_METRICS),
        ("params", params, MAX_BATCH_PARAMS_TAGS),
        ("tags", tags, MAX_BATCH_PARAMS_TAGS),
        ("metrics, params and tags", metrics + params + tags, MAX_BATCH_ENTITIES),
    ):
        if count > limit:
            raise InvalidInputError(
                f"a batch may log at most {limit} {what}; got {count}: split it up"
            )


class Run(LedgerAggregate):
    """An MLflow run: its experiment, name, status, times, parameters, tags, inputs, outputs."""

    def __init__(self) -> None:
        self.run_id = ""
        self.experiment_id = ""
        self.run_name = ""
        self.user_id = ""
        self.status = "RUNNING"
        self.start_time = 0
        self.end_time: int | None = None
        self.artifact_uri = ""
        self.lifecycle_stage = ACTIVE
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.inputs: list[list[str]] = []  # [name, digest] of each dataset input
        self.model_inputs: list[str] = []
        self.outputs: list[str] = []  # logged model ids

    class Event(LedgerAggregate.Event):
        pass

    class Created(Event, LedgerAggregate.Created):
        run_id: str
        experiment_id: str
        run_name: str
        user_id: str
        start_time: int
        tags: dict[str, str]
        artifact_uri: str

        def apply(self, run: Run) -> None:
            run.run_id = self.run_id
            run.experiment_id = self.experiment_id
            run.run_name = self.run_name
            run.user_id = self.user_id
            run.start_time = self.start_time
            run.tags = dict(self.tags)
            run.artifact_uri = self.artifact_uri

    class Updated(Event):
        """What changed; a field left out (None) keeps its value."""

        status: str | None
        end_time: int | None
        run_name: str | None

        def apply(self, run: Run) -> None:
            run.status = self.status or run.status
            run.end_time = self.end_time if self.end_time is not None else run.end_time
            if self.run_name:
                run.run_name = run.tags[RUN_NAME_TAG] = self.run_name

    class ParamsLogged(Event):
        params: dict[str, str]

        def apply(self, run: Run) -> None:
            run.params.update(self.params)

    class MetricsLogged(Event):
        metrics: list[MetricPoint]

        def apply(self, run: Run) -> None:
            pass

    class TagsSet(Event):
        tags: dict[str, str]

        def apply(self, run: Run) -> None:
            run.tags.update(self.tags)
            if RUN_NAME_TAG in self.tags:
                run.run_name = self.tags[RUN_NAME_TAG]

    class TagDeleted(Event):
        key: str

        def apply(self, run: Run) -> None:
            run.tags.pop(self.key, None)

    class InputsLogged(Event):
        datasets: list[dict[str, Any]]
        models: list[str]  # logged models the run used

        def apply(self, run: Run) -> None:
            run.inputs.extend([d["name"], d["digest"]] for d in self.datasets)
            run.model_inputs.extend(self.models)

    class OutputsLogged(Event):
        models: list[dict[str, Any]]  # {model_id, step}

        def apply(self, run: Run) -> None:
            run.outputs.extend(m["model_id"] for m in self.models)

    class Deleted(Event):
        def apply(self, run: Run) -> None:
            run.lifecycle_stage = DELETED

    class Restored(Event):
        def apply(self, run: Run) -> None:
            run.lifecycle_stage = ACTIVE

    @classmethod
    def create(
        cls,
        run_id: str,
        *,
        experiment_id: str,
        run_name: str,
        user_id: str,
        start_time: int,
        tags: dict[str, str],
        artifact_uri: str,
    ) -> Run:
        check_tags("tag", tags, MAX_TAG_VALUE)
        named = tags.get(RUN_NAME_TAG, "")
        if run_name and named and run_name != named:
            raise InvalidInputError(
                f"run_name {run_name!r} and tag {RUN_NAME_TAG} {named!r} differ: give one"
            )
        name = check_text("run name", run_name or named, MAX_TAG_VALUE)
        return cls._create(
            cls.Created,
            id=run_aggregate_id(run_id),
            run_id=run_id,
            experiment_id=experiment_id,
            run_name=name,
            user_id=check_text("user id", user_id, MAX_TAG_VALUE),
            start_time=check_int64("start_time", start_time),
            tags={**tags, RUN_NAME_TAG: name},
            artifact_uri=artifact_uri,
        )

    def update(
        self, *, status: str | None = None, end_time: int | None = None, run_name: str | None = None
    ) -> None:
        self.require_active()
        if status is not None and status not in RUN_STATUSES:
            raise InvalidInputError(
                f"unknown run status {status[:40]!r}; expected one of {', '.join(RUN_STATUSES)}"
            )
        if end_time is not None:
            check_int64("end_time", end_time)
        if run_name:
            check_text("run name", run_name, MAX_TAG_VALUE)
        self.trigger_event(
            self.Updated, status=status, end_time=end_time, run_name=run_name or None
        )

    def log(
        self, metrics: list[Metric], params: list[tuple[str, str]], tags: list[tuple[str, str]]
    ) -> None:
        """Log metrics, parameters and tags at once (a tag given twice: the last value). A
        parameter logged before keeps its value: logging it again with another value is
        refused (MLflow's rule)."""
        self.require_active()
        check_batch(len(metrics), len(params), len(tags))
        points = [metric_point(metric) for metric in metrics]
        new_params = self._new_params(params)
        new_tags = check_tags("tag", dict(tags), MAX_TAG_VALUE)
        if new_params:
            self.trigger_event(self.ParamsLogged, params=new_params)
        if points:
            self.trigger_event(self.MetricsLogged, metrics=points)
        if new_tags:
            self.trigger_event(self.TagsSet, tags=new_tags)

    def _new_params(self, params: list[tuple[str, str]]) -> dict[str, str]:
        new: dict[str, str] = {}
        for key, value in params:
            check_key("param key", key)
            check_text(f"param {key!r}", value, MAX_PARAM_VALUE)
            logged = self.params.get(key, new.get(key))
            if logged is None:
                new[key] = value
            elif logged != value:
                raise InvalidInputError(
                    f"param {key!r} of run {self.run_id} was logged with value {logged[:100]!r}; "
                    f"it cannot change to {value[:100]!r} (parameters are write-once)"
                )
        return new

    def delete_tag(self, key: str) -> None:
        self.require_active()
        if key not in self.tags:
            raise NotFoundError(f"run {self.run_id} has no tag {key[:100]!r}")
        self.trigger_event(self.TagDeleted, key=key)

    def log_inputs(self, datasets: list[Dataset], models: list[str]) -> None:
        """Record the datasets (and logged models) the run used; ones it has already are skipped."""
        self.require_active()
        seen = {(name, digest) for name, digest in self.inputs}
        new: list[dict[str, Any]] = []
        for dataset in datasets:
            fields = dataset_fields(dataset)
            if (fields["name"], fields["digest"]) not in seen:
                seen.add((fields["name"], fields["digest"]))
                new.append(fields)
        new_models = [m for m in dict.fromkeys(models) if m not in self.model_inputs]
        if new or new_models:
            self.trigger_event(self.InputsLogged, datasets=new, models=new_models)

    def log_outputs(self, models: list[tuple[str, int]]) -> None:
        """Record logged models the run produced, each at a step; known ones are skipped."""
        self.require_active()
        new = {model_id: step for model_id, step in models if model_id not in self.outputs}
        if new:
            outputs = [{"model_id": m, "step": check_int64("step", s)} for m, s in new.items()]
            self.trigger_event(self.OutputsLogged, models=outputs)

    def delete(self) -> None:
        if self.lifecycle_stage != DELETED:
            self.trigger_event(self.Deleted)

    def restore(self) -> None:
        if self.lifecycle_stage != ACTIVE:
            self.trigger_event(self.Restored)

    def require_active(self) -> None:
        if self.lifecycle_stage != ACTIVE:
            raise InvalidInputError(
                f"run {self.run_id} is deleted: it must be active to change (restore it first)"
            )
