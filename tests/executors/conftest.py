"""Fixtures of the executor tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from executors.onnx_conversion import convert_model_version
from ledger.domain.endpoint import Resources
from ledger.ledger import Ledger

TWO_REPLICAS: Resources = {"cpus": 0.5, "gpus": 0, "memory_mb": 512, "replicas": 2}


@pytest.fixture
def nightly(ledger: Ledger, tmp_path: Path, ray_started: None) -> str:
    """Batch endpoint nightly, all traffic on `main`: a logistic regression in ONNX."""
    features, labels = make_classification(n_samples=500, n_features=4, random_state=5)
    directory = tmp_path / "clf"
    directory.mkdir()
    model = LogisticRegression().fit(features, labels)
    (directory / "model.pkl").write_bytes(pickle.dumps(model))
    ledger.models.register_version("clf", directory, flavor="sklearn")
    onnx_ref = convert_model_version(ledger, "clf:1", rows=100)[0].ref
    ledger.endpoints.create("nightly", "batch")
    ledger.endpoints.deploy("nightly", "main", onnx_ref, resources=TWO_REPLICAS)
    ledger.endpoints.set_traffic("nightly", {"main": 100})
    return onnx_ref
