"""Converting registered models to ONNX, checked for numeric parity before registering.

scikit-learn models (a pickled estimator in the version's files) are converted with
skl2onnx; PyTorch models (an ExportedProgram saved with ``torch.export.save`` as
``.pt2``, or a TorchScript module saved with ``torch.jit.save`` as ``.pt``) with
``torch.onnx``, when torch is installed. The converted model must give the same
answers as the original on sample rows (the version's training data by default):
class labels equal, probabilities, regression and network outputs within the
tolerance. A conversion that differs is refused and nothing is registered. The new
version's lineage says ``derived_from``; its signature records the opset and the
input and output names, types and shapes.
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from executors.features import numeric_features, random_features
from executors.onnx_parity import Conversion, ParityError, compare, onnx_signature
from ledger.artifacts.paths import local_path
from ledger.data_objects import fetch_data
from ledger.domain.model import Lineage, ModelVersion
from ledger.errors import InvalidInputError
from ledger.ledger import Ledger

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
DEFAULT_ROWS = 500
DEFAULT_TOLERANCE = 1e-4


def load_sklearn_model(directory: Path) -> Any:
    """The one pickled estimator among a version's files."""
    found = sorted(p for p in directory.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if len(found) != 1:
        raise InvalidInputError(
            f"expected exactly one pickled model ({', '.join(PICKLE_SUFFIXES)}) among the "
            f"version's files, found {len(found)}"
        )
    if found[0].suffix == ".joblib":
        import joblib  # type: ignore[import-untyped]  # scikit-learn's own dependency

        return joblib.load(found[0])
    with found[0].open("rb") as stream:
        return pickle.load(stream)


def _feature_count(model: Any) -> int:
    count = getattr(model, "n_features_in_", None)
    if not isinstance(count, int):
        raise InvalidInputError("the model does not say how many features it takes")
    return count


def convert_sklearn(
    model: Any, sample: np.ndarray, *, tolerance: float, opset: int | None = None
) -> Conversion:
    """Convert ``model``; raise ParityError unless it matches on ``sample``."""
    from skl2onnx import to_onnx

    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    try:
        converted = to_onnx(model, sample[:1], target_opset=opset, options=options)
    except Exception as error:  # skl2onnx raises many kinds for unsupported models
        raise InvalidInputError(f"cannot convert {type(model).__name__}: {error}") from None
    onnx_bytes = converted.SerializeToString()
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    difference = check_parity(model, session, sample, tolerance)
    return Conversion(onnx_bytes, onnx_signature(converted), len(sample), difference)


def check_parity(
    model: Any, session: onnxruntime.InferenceSession, sample: np.ndarray, tolerance: float
) -> float:
    """The largest difference between the original's and the session's outputs."""
    outputs = session.run(None, {session.get_inputs()[0].name: sample})
    expected = model.predict(sample)
    got = np.asarray(outputs[0]).reshape(np.shape(expected))
    if expected.dtype.kind in "OUSb" or hasattr(model, "classes_"):
        mismatched = np.flatnonzero(np.asarray(got) != expected)
        if len(mismatched):
            row = int(mismatched[0])
            raise ParityError(
                f"the ONNX model predicts {got[row]!r} where the original predicts "
                f"{expected[row]!r} (row {row}; {len(mismatched)} of {len(sample)} rows differ)"
            )
        difference = 0.0
        if hasattr(model, "predict_proba") and len(outputs) > 1:
            difference = compare(model.predict_proba(sample), outputs[1], tolerance, "probability")
        return difference
    return compare(expected, got, tolerance, "prediction")


def convert_model_version(
    ledger: Ledger,
    ref: str,
    *,
    sample: Path | None = None,
    rows: int = DEFAULT_ROWS,
    tolerance: float = DEFAULT_TOLERANCE,
    opset: int | None = None,
    name: str = "",
    reason: str = "",
) -> tuple[ModelVersion, Conversion]:
    """Convert a scikit-learn model version to ONNX and register the result.

    Sample rows: ``sample``, else the version's training data (its lineage), else
    random normal rows.
    """
    source = ledger.models.get_version(ref)
    flavor = source.spec["flavor"]
    if flavor not in ("sklearn", "pytorch"):
        raise InvalidInputError(
            f"{source.ref} is a {flavor} model; converting to ONNX is supported for "
            "sklearn and pytorch models"
        )
    with tempfile.TemporaryDirectory() as work:
        ledger.models.download_version(source.ref, Path(work) / "source")
        if flavor == "sklearn":
            model = load_sklearn_model(Path(work) / "source")
            features = _sample(ledger, source, _feature_count(model), sample, rows)
            conversion = convert_sklearn(model, features, tolerance=tolerance, opset=opset)
        else:
            from executors.torch_conversion import convert_torch, load_torch_model

            network = load_torch_model(Path(work) / "source")
            count = _signature_features(source.spec["signature"])
            if count is None and sample is None:
                raise InvalidInputError(
                    f"{source.ref} does not say how many features it takes: pass --sample "
                    "FILE, or register it with a signature"
                )
            features = _sample(ledger, source, count, sample, rows)
            conversion = convert_torch(network, features, tolerance=tolerance, opset=opset)
        target = Path(work) / "onnx"
        target.mkdir()
        (target / "model.onnx").write_bytes(conversion.onnx_model)
        lineage: Lineage = {"derived_from": source.ref}
        for key in ("data", "environment"):
            if key in source.spec["lineage"]:
                lineage[key] = source.spec["lineage"][key]
        version = ledger.models.register_version(
            name or source.model_name,
            target,
            flavor="onnx",
            signature=conversion.signature,
            metrics={**source.spec["metrics"], "onnx_parity_max_diff": conversion.max_difference},
            tags={**source.spec["tags"], "converted_from": source.ref},
            description=f"ONNX conversion of {source.ref}",
            lineage=lineage,
            reason=reason or f"converted {source.ref} to ONNX",
        )
    return version, conversion


def _sample(
    ledger: Ledger, source: ModelVersion, features: int | None, sample: Path | None, rows: int
) -> np.ndarray:
    """Sample rows: ``sample``, else the training data, else random normal rows (the
    number of ``features`` must then be known)."""
    if sample is not None:
        return numeric_features(sample, features, rows=rows)
    for data_ref in source.spec["lineage"].get("data", []):
        version = ledger.assets.data_version(data_ref)
        uri = version["content"]["uri"]
        if not uri.startswith("file:"):  # an object in a store: fetched, digest checked
            with tempfile.TemporaryDirectory(prefix="ledger-sample-") as folder:
                fetched = fetch_data(uri, version["digest"], Path(folder))
                return numeric_features(fetched, features, rows=rows)
        path = local_path(uri)
        if path.is_file():
            return numeric_features(path, features, rows=rows)
    if features is None:
        raise InvalidInputError(f"{source.ref}: pass --sample, its feature count is unknown")
    return random_features(features, rows)


def _signature_features(signature: dict[str, Any]) -> int | None:
    """The feature count of a [rows, features] input recorded in a signature."""
    inputs = signature.get("inputs") or []
    shape = inputs[0].get("shape") if inputs and isinstance(inputs[0], dict) else None
    if isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int):
        return shape[1]
    return None
