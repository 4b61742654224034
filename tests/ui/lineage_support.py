"""A model version with a whole lineage, for the version page's tests: data, an
environment and a pipeline, a job of it that produced the version, and a deployment of the
version on an endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.ledger import Ledger
from ledger.specs import EnvironmentSpec

SCRIPT = "<script>alert(1)</script>"
SIGNATURE = {
    "inputs": [{"name": "petal_length", "type": "double"}, {"name": "X", "type": "float32",
                                                          "shape": [None, 4]}],
    "outputs": [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}],
}  # fmt: skip


@dataclass(frozen=True)
class Registered:
    job_id: str


def model_files(folder: Path) -> Path:
    """A three-file model: binary weights (10 KiB), a config, a file in a subfolder."""
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (folder / "config.json").write_text('{"layers": 3}')
    (folder / "sub" / "vocab.txt").write_text("a\nb\nc\n")
    return folder


def register_with_lineage(ledger: Ledger, tmp_path: Path) -> Registered:
    """iris:1 (tagged with a script), made by a job of pipeline fit from data train:1 in
    environment cpu:1, deployed as shop/blue."""
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,2\n")
    ledger.assets.register_data("train", data)
    ledger.assets.register_environment("cpu", EnvironmentSpec(python="3.11"))
    ledger.assets.register_pipeline(
        "fit",
        {
            "environment": "cpu",
            "steps": [{"name": "train", "run": "fit:train", "inputs": {"rows": "data:train"}}],
        },
    )
    job = ledger.jobs.submit("fit")
    ledger.models.register_version(
        "iris",
        model_files(tmp_path / "model"),
        flavor="sklearn",
        description="Iris classifier\nsecond line",
        tags={"stage": SCRIPT, "team": "vision"},
        metrics={"accuracy": 0.97},
        signature=SIGNATURE,
        lineage={"job": str(job.id), "data": ["train:1"], "environment": "cpu:1"},
        reason="first model",
    )
    ledger.endpoints.create("shop", "online")
    ledger.endpoints.deploy("shop", "blue", "iris:1", environment="cpu", reason="go live")
    return Registered(str(job.id))
