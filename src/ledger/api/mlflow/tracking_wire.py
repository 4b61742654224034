"""The views' experiments, runs and logged models as MLflow's protobuf JSON: tags and
params as lists of ``{key, value}``, times in integer ms (left out while unset), metric
values that JSON cannot hold as "NaN", "Infinity" or "-Infinity"."""

from __future__ import annotations

import math
from typing import Any

MODEL_STATUS = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
STATUS_OF_WIRE = {wire: status for status, wire in MODEL_STATUS.items()}


def pairs(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in mapping.items()]


def number(value: float) -> float | str:
    """A metric value as MLflow's JSON writes it."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


_EXPERIMENT_FIELDS = ("experiment_id", "name", "artifact_location", "lifecycle_stage",
                      "last_update_time", "creation_time")  # fmt: skip
_RUN_INFO_FIELDS = ("run_name", "experiment_id", "user_id", "status", "start_time", "end_time",
                    "artifact_uri", "lifecycle_stage")  # fmt: skip


def _set_fields(record: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The fields ``names`` of ``record`` that are set (protobuf JSON leaves unset ones out)."""
    return {name: record[name] for name in names if record[name] is not None}


def experiment_wire(experiment: dict[str, Any]) -> dict[str, Any]:
    return {**_set_fields(experiment, _EXPERIMENT_FIELDS), "tags": pairs(experiment["tags"])}


def metric_wire(metric: dict[str, Any], *, linked: bool = False) -> dict[str, Any]:
    """``linked``: with the run, logged model and dataset the value belongs to, when set."""
    fields = {
        "key": metric["key"],
        "value": number(metric["value"]),
        "timestamp": metric["timestamp"],
        "step": metric["step"],
    }
    if linked:
        for extra in ("dataset_name", "dataset_digest", "model_id", "run_id"):
            if metric.get(extra):
                fields[extra] = metric[extra]
    return fields


def run_info_wire(run: dict[str, Any]) -> dict[str, Any]:
    ids = {"run_id": run["run_id"], "run_uuid": run["run_id"]}
    return {**ids, **_set_fields(run, _RUN_INFO_FIELDS)}


def run_wire(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "info": run_info_wire(run),
        "data": {
            "metrics": [metric_wire(metric) for metric in run["latest_metrics"]],
            "params": pairs(run["params"]),
            "tags": pairs(run["tags"]),
        },
        "inputs": {
            "dataset_inputs": [
                {
                    "tags": pairs(item["tags"]),
                    "dataset": {k: v for k, v in item.items() if k != "tags"},
                }
                for item in run["inputs"]
            ],
            "model_inputs": [{"model_id": model_id} for model_id in run["model_inputs"]],
        },
        "outputs": {"model_outputs": run["model_outputs"]},
    }


def logged_model_wire(model: dict[str, Any]) -> dict[str, Any]:
    return {
        "info": {
            "model_id": model["model_id"],
            "experiment_id": model["experiment_id"],
            "name": model["name"],
            "creation_timestamp_ms": model["creation_timestamp"],
            "last_updated_timestamp_ms": model["last_updated_timestamp"],
            "artifact_uri": model["artifact_location"],
            "status": MODEL_STATUS[model["status"]],
            "model_type": model["model_type"],
            "source_run_id": model["source_run_id"],
            "tags": pairs(model["tags"]),
        },
        "data": {
            "params": pairs(model["params"]),
            "metrics": [metric_wire(metric, linked=True) for metric in model["metrics"]],
        },
    }
