"""PyTorch models to ONNX with ``torch.onnx`` (torch is an optional dependency).

A PyTorch model version holds one of:

- ``*.pt2``: an ExportedProgram (``torch.export.save``), converted by the torch.export
  based exporter (it needs onnxscript);
- ``*.pt`` / ``*.pth``: a TorchScript module (``torch.jit.save``), converted by the
  TorchScript exporter.

Either way the batch dimension is dynamic and the outputs are checked against the
original's on the sample rows.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime

from executors.onnx_parity import Conversion, compare, onnx_signature
from ledger.errors import InvalidInputError

SUFFIXES = (".pt2", ".pt", ".pth")


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InvalidInputError(
            "converting PyTorch models needs torch: pip install 'lifecycle-ledger[pytorch]'"
        ) from None
    return torch


def load_torch_model(directory: Path) -> Any:
    """The one saved ExportedProgram or TorchScript module among a version's files."""
    torch = _torch()
    found = sorted(p for p in directory.rglob("*") if p.suffix in SUFFIXES)
    if len(found) != 1:
        raise InvalidInputError(
            f"expected exactly one saved PyTorch model ({', '.join(SUFFIXES)}) among the "
            f"version's files, found {len(found)}"
        )
    try:
        if found[0].suffix == ".pt2":
            return torch.export.load(str(found[0]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated
            return torch.jit.load(str(found[0]))
    except Exception as error:  # torch raises many kinds for files it cannot read
        raise InvalidInputError(f"cannot load {found[0].name}: {error}") from None


def convert_torch(
    model: Any, sample: np.ndarray, *, tolerance: float, opset: int | None = None
) -> Conversion:
    """Convert ``model``; raise ParityError unless it matches on ``sample``."""
    torch = _torch()
    example = torch.from_numpy(sample[: min(len(sample), 8)])
    with tempfile.TemporaryDirectory() as work:
        target = Path(work) / "model.onnx"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporters' deprecation chatter
                if isinstance(model, torch.export.ExportedProgram):
                    program = torch.onnx.export(model, dynamo=True, opset_version=opset)
                    program.save(str(target))
                else:
                    torch.onnx.export(
                        model,
                        (example,),
                        str(target),
                        input_names=["X"],
                        dynamic_axes={"X": {0: "rows"}},
                        opset_version=opset,
                        dynamo=False,
                    )
        except Exception as error:  # the exporters raise many kinds for unsupported models
            raise InvalidInputError(f"cannot convert the PyTorch model: {error}") from None
        converted = onnx.load(str(target))
    onnx_bytes = converted.SerializeToString()
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: sample})
    expected = _outputs(torch, model, torch.from_numpy(sample))
    difference = 0.0
    for index, (want, have) in enumerate(zip(expected, got, strict=False)):
        difference = max(difference, compare(want, have, tolerance, f"output {index}"))
    return Conversion(onnx_bytes, onnx_signature(converted), len(sample), difference)


def _outputs(torch: Any, model: Any, inputs: Any) -> list[np.ndarray]:
    module = model.module() if isinstance(model, torch.export.ExportedProgram) else model
    with torch.no_grad():
        result = module(inputs)
    results = result if isinstance(result, list | tuple) else [result]
    return [r.detach().numpy() for r in results]
