"""The request bodies of MLflow's tracking API (``mlflow/protos/service.proto``), as its
client sends them: protobuf JSON, so 64-bit integers may come as strings, enums as names
(or numbers), metric values as numbers or "NaN"/"Infinity"/"-Infinity". Fields the ledger
does not read (``run_uuid`` beside ``run_id``...) are ignored, as MLflow's server does.

Text is refused at the door when the stores cannot hold it (NUL, a lone surrogate): the
validation error comes back as INVALID_PARAMETER_VALUE.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ledger.errors import InvalidInputError
from ledger.validation import check_value

MAX_RESULTS = 50_000  # MLflow's cap on one search page


def storable(text: str) -> str:
    """Text the stores can hold; a ValueError (a validation error) otherwise."""
    try:
        check_value("text", text)
    except InvalidInputError as error:
        raise ValueError(str(error).removeprefix("text ")) from None
    return text


def metric_value(value: Any) -> float:
    """A metric value: a number, or text MLflow's JSON uses for one ("NaN", "Infinity"...)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("a metric value is a number (or NaN, Infinity, -Infinity)")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{str(value)[:40]!r} is not a number") from None
    return math.nan if math.isnan(number) else number


def enum_name(names: dict[int, str]) -> Any:
    """A protobuf enum given by name or number, as its name."""

    def name_of(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return names.get(value, str(value))
        if isinstance(value, str) and value.isdigit():
            return names.get(int(value), value)
        return value

    return name_of


Text = Annotated[str, AfterValidator(storable)]
MetricValue = Annotated[float, BeforeValidator(metric_value)]
RunStatus = Annotated[
    str,
    BeforeValidator(
        enum_name({1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"})
    ),
]
ViewType = Annotated[
    str, BeforeValidator(enum_name({1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}))
]
ModelStatus = Annotated[
    str,
    BeforeValidator(
        enum_name(
            {1: "LOGGED_MODEL_PENDING", 2: "LOGGED_MODEL_READY", 3: "LOGGED_MODEL_UPLOAD_FAILED"}
        )
    ),
]
MaxResults = Annotated[int, Field(ge=1, le=MAX_RESULTS)]


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class KeyValue(Wire):
    key: Text
    value: Text = ""


def as_dict(pairs: list[KeyValue]) -> dict[str, str]:
    """Tags or params as a mapping (a key given twice: the last value)."""
    return {pair.key: pair.value for pair in pairs}


def as_pairs(pairs: list[KeyValue]) -> list[tuple[str, str]]:
    return [(pair.key, pair.value) for pair in pairs]


class RunRef(Wire):
    """A request naming a run by ``run_id`` (or its old name ``run_uuid``)."""

    run_id: Text = ""
    run_uuid: Text = ""

    @property
    def run(self) -> str:
        run_id = self.run_id or self.run_uuid
        if not run_id:
            raise InvalidInputError("missing value for required parameter 'run_id'")
        return run_id


# -- experiments ---------------------------------------------------------------------------


class CreateExperiment(Wire):
    name: Text
    artifact_location: Text = ""
    tags: list[KeyValue] = []


class ExperimentRef(Wire):
    experiment_id: Text


class UpdateExperiment(ExperimentRef):
    new_name: Text


class SetExperimentTag(ExperimentRef):
    key: Text
    value: Text = ""


class DeleteExperimentTag(ExperimentRef):
    key: Text


class SearchExperiments(Wire):
    max_results: MaxResults = 1000
    page_token: Text = ""
    filter: Text = ""
    order_by: list[Text] = []
    view_type: ViewType = "ACTIVE_ONLY"


# -- runs ----------------------------------------------------------------------------------


class CreateRun(Wire):
    experiment_id: Text = ""
    user_id: Text = ""
    run_name: Text = ""
    start_time: int | None = None
    tags: list[KeyValue] = []


class UpdateRun(RunRef):
    status: RunStatus | None = None
    end_time: int | None = None
    run_name: Text | None = None


class MetricIn(Wire):
    key: Text
    value: MetricValue
    timestamp: int
    step: int = 0
    model_id: Text = ""
    dataset_name: Text = ""
    dataset_digest: Text = ""


class LogMetric(RunRef, MetricIn):
    pass


class LogParam(RunRef, KeyValue):
    pass


class SetTag(RunRef, KeyValue):
    pass


class DeleteTag(RunRef):
    key: Text


class LogBatch(RunRef):
    metrics: list[MetricIn] = []
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class DatasetIn(Wire):
    name: Text
    digest: Text
    source_type: Text
    source: Text
    schema_: Text = Field("", alias="schema")
    profile: Text = ""


class DatasetInput(Wire):
    tags: list[KeyValue] = []
    dataset: DatasetIn


class ModelRef(Wire):
    model_id: Text


class LogInputs(RunRef):
    datasets: list[DatasetInput] = []
    models: list[ModelRef] = []


class ModelOutput(ModelRef):
    step: int = 0


class LogOutputs(RunRef):
    models: list[ModelOutput] = Field(min_length=1)


class SearchRuns(Wire):
    experiment_ids: list[Text] = []
    filter: Text = ""
    run_view_type: ViewType = "ACTIVE_ONLY"
    max_results: MaxResults = 1000
    order_by: list[Text] = []
    page_token: Text = ""


# -- logged models -------------------------------------------------------------------------


class CreateLoggedModel(Wire):
    experiment_id: Text
    name: Text = ""
    model_type: Text = ""
    source_run_id: Text = ""
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class FinalizeLoggedModel(Wire):
    status: ModelStatus


class LoggedModelTags(Wire):
    tags: list[KeyValue] = []


class LoggedModelParams(Wire):
    params: list[KeyValue] = []


class SearchDataset(Wire):
    dataset_name: Text = ""
    dataset_digest: Text = ""


class OrderBy(Wire):
    field_name: Text
    ascending: bool = True
    dataset_name: Text = ""
    dataset_digest: Text = ""


class SearchLoggedModels(Wire):
    experiment_ids: list[Text] = []
    filter: Text = ""
    datasets: list[SearchDataset] = []
    max_results: MaxResults = 100
    order_by: list[OrderBy] = []
    page_token: Text = ""
