"""What every conversion to ONNX shares: the converted model, its signature, and the
parity check that refuses one whose answers differ from the original's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from ledger.errors import InvalidInputError


class ParityError(InvalidInputError):
    """The converted model does not give the original's answers."""


@dataclass(frozen=True)
class Conversion:
    """A converted model and how closely it matched the original."""

    onnx_model: bytes
    signature: dict[str, Any]
    rows_checked: int
    max_difference: float


def compare(expected: Any, got: Any, tolerance: float, what: str) -> float:
    """The largest absolute difference; ParityError when one exceeds the tolerance
    (relative to the value, for values above 1)."""
    expected, got = np.asarray(expected, dtype=np.float64), np.asarray(got, dtype=np.float64)
    got = got.reshape(expected.shape)
    errors = np.abs(expected - got) - tolerance * np.maximum(1.0, np.abs(expected))
    worst = np.unravel_index(int(np.argmax(errors)), errors.shape)
    difference = float(np.max(np.abs(expected - got)))
    if errors[worst] > 0:
        raise ParityError(
            f"ONNX {what} {got[worst]:.9g} differs from the original's {expected[worst]:.9g} "
            f"at row {worst[0]} by more than the tolerance {tolerance:g}"
        )
    return difference


def onnx_signature(model: onnx.ModelProto) -> dict[str, Any]:
    """Opset, and the inputs' and outputs' names, element types and shapes."""

    def describe(value: onnx.ValueInfoProto) -> dict[str, Any]:
        tensor = value.type.tensor_type
        shape = [d.dim_param or d.dim_value or None for d in tensor.shape.dim]
        return {
            "name": value.name,
            "type": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
            "shape": shape,
        }

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return {
        "format": "onnx",
        "opset": int(opset),
        "inputs": [describe(v) for v in model.graph.input],
        "outputs": [describe(v) for v in model.graph.output],
    }
