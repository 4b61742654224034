"""ONNX Runtime sessions: choosing the provider, and scoring JSON-shaped inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from ledger.errors import InvalidInputError

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": np.str_,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class LoadedModel:
    """A session and what it runs on: ``provider``, and why, when it is not what was asked."""

    session: onnxruntime.InferenceSession
    provider: str
    note: str


def open_session(model_file: Path, *, want_gpu: bool, threads: int = 1) -> LoadedModel:
    """A session on CUDA when a GPU is wanted and the CUDA provider is present, else CPU."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    available = onnxruntime.get_available_providers()
    providers = [CUDA, CPU] if want_gpu and CUDA in available else [CPU]
    session = onnxruntime.InferenceSession(str(model_file), options, providers=providers)
    provider = session.get_providers()[0]
    note = ""
    if want_gpu and provider != CUDA:
        note = (
            "a GPU was asked for but the CUDA provider is not available "
            f"(onnxruntime has {', '.join(available)}): running on CPU"
        )
    return LoadedModel(session, provider, note)


def feeds(session: onnxruntime.InferenceSession, inputs: Any) -> dict[str, np.ndarray]:
    """The session's inputs from ``inputs``: rows (for a model with one input), or a
    mapping of input name to rows."""
    declared = session.get_inputs()
    if not isinstance(inputs, dict):
        if len(declared) != 1:
            names = ", ".join(i.name for i in declared)
            raise InvalidInputError(f"the model has several inputs ({names}): send a mapping")
        inputs = {declared[0].name: inputs}
    unknown = set(inputs) - {i.name for i in declared}
    if unknown:
        raise InvalidInputError(f"unknown model input(s) {sorted(unknown)}")
    result = {}
    for spec in declared:
        if spec.name not in inputs:
            raise InvalidInputError(f"missing model input {spec.name!r}")
        try:
            dtype = NUMPY_TYPES.get(spec.type, np.float32)
            array: np.ndarray = np.asarray(inputs[spec.name], dtype=dtype)
        except (TypeError, ValueError) as error:
            raise InvalidInputError(f"input {spec.name!r}: {error}") from None
        expected = spec.shape
        if array.ndim != len(expected) or any(
            isinstance(size, int) and size != got
            for size, got in zip(expected, array.shape, strict=True)
        ):
            raise InvalidInputError(
                f"input {spec.name!r} has shape {list(array.shape)}; the model takes "
                f"{[s if isinstance(s, int) else None for s in expected]}"
            )
        result[spec.name] = array
    return result


def run(
    session: onnxruntime.InferenceSession, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Score; outputs by name."""
    names = [o.name for o in session.get_outputs()]
    try:
        values = session.run(names, inputs)
    except (onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument, ValueError) as error:
        raise InvalidInputError(f"the model refused the input: {error}") from None
    return {name: np.asarray(value) for name, value in zip(names, values, strict=True)}
