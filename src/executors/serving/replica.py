"""One replica of a deployment: a Ray actor holding an ONNX Runtime session."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import ray

from executors.serving.sessions import feeds, open_session, run
from ledger.artifacts.paths import FileEntry
from ledger.artifacts.store import ArtifactStore


class ModelReplica:
    """Loads the model's files from the artifact store (by URL: a directory or an object
    store) once; scores many requests."""

    def __init__(
        self, artifacts_url: str, files: list[dict[str, Any]], want_gpu: bool, work_dir: str
    ) -> None:
        entries = [FileEntry.from_dict(f) for f in files]
        onnx_files = [e for e in entries if e.path.endswith(".onnx")]
        if len(onnx_files) != 1:
            raise ValueError(
                f"expected one .onnx file among the model's files, found {len(onnx_files)}"
            )
        ArtifactStore(artifacts_url).materialize(onnx_files, Path(work_dir))
        self.model = open_session(Path(work_dir) / onnx_files[0].path, want_gpu=want_gpu)

    def describe(self) -> dict[str, str]:
        """The provider in use, and why when it is not the one asked for."""
        return {"provider": self.model.provider, "note": self.model.note}

    def score(self, inputs: Any) -> dict[str, Any]:
        """Outputs as lists (JSON-ready): for online requests."""
        return {name: value.tolist() for name, value in self.score_fed(inputs)[1].items()}

    def score_fed(self, inputs: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The inputs as the model took them (name -> array) and its outputs, as arrays."""
        fed = feeds(self.model.session, inputs)
        return fed, run(self.model.session, fed)

    def score_arrays(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs as arrays: for batch mini-batches."""
        return run(self.model.session, feeds(self.model.session, features))


def reservable_gpus(resources: Mapping[str, Any]) -> float:
    """The GPUs to reserve for a replica of a deployment: its GPUs if the Ray cluster has
    that many, else none, so that the replica starts and ONNX Runtime falls back to CPU
    (the health detail says so) instead of waiting forever."""
    return float(resources["gpus"]) if resources["gpus"] <= _cluster_gpus() else 0.0


def _cluster_gpus() -> float:
    return float(ray.cluster_resources().get("GPU", 0))  # type: ignore[no-untyped-call]
