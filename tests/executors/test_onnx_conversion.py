"""Converting scikit-learn model versions to ONNX, with a parity check (both stores)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression

from executors.onnx_conversion import convert_model_version
from executors.onnx_parity import ParityError
from ledger.artifacts.locations import open_blobs
from ledger.errors import IntegrityViolationError, InvalidInputError
from ledger.ledger import Ledger
from tests.conftest import Cli, assert_user_error
from tests.object_stores import ObjectStoreServer


def _register(ledger: Ledger, tmp_path: Path, name: str, model: object, **kwargs: object) -> str:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "model.pkl").write_bytes(pickle.dumps(model))
    return ledger.models.register_version(name, directory, flavor="sklearn", **kwargs).ref  # type: ignore[arg-type]


def _training_data(tmp_path: Path) -> tuple[np.ndarray, np.ndarray, Path]:
    features, labels = make_classification(n_samples=400, n_features=6, random_state=1)
    path = tmp_path / "train.csv"
    header = ",".join([*(f"f{i}" for i in range(6)), "label"])
    rows = np.column_stack([features, labels])
    np.savetxt(path, rows, delimiter=",", header=header, comments="", fmt="%.9g")
    return features, labels, path


def test_a_classifier_converts_with_the_same_answers_and_lineage(
    ledger: Ledger, tmp_path: Path
) -> None:
    features, labels, data = _training_data(tmp_path)
    ledger.assets.register_data("train", data)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(features, labels)
    ref = _register(ledger, tmp_path, "forest", model, lineage={"data": ["train"]},
                    metrics={"accuracy": 0.9})  # fmt: skip
    version, conversion = convert_model_version(ledger, ref)
    assert version.ref == "forest:2" and version.spec["flavor"] == "onnx"
    assert version.spec["lineage"] == {"derived_from": "forest:1", "data": ["train:1"]}
    assert version.spec["metrics"]["accuracy"] == 0.9
    assert conversion.rows_checked == 400 and conversion.max_difference < 1e-4
    signature = version.spec["signature"]
    assert signature["opset"] >= 7
    assert signature["inputs"] == [{"name": "X", "type": "float32", "shape": [None, 6]}]
    assert [o["name"] for o in signature["outputs"]] == ["label", "probabilities"]

    ledger.models.download_version(version.ref, tmp_path / "out")
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"))
    labels_out, probabilities = session.run(None, {"X": features.astype(np.float32)})
    assert (labels_out == model.predict(features)).all()
    assert np.allclose(probabilities, model.predict_proba(features), atol=1e-5)


def test_training_data_in_an_object_store_is_the_sample_while_it_has_its_digest(
    ledger: Ledger, tmp_path: Path, s3_server: ObjectStoreServer
) -> None:
    features, labels, data = _training_data(tmp_path)
    lake = open_blobs(s3_server.new_location("lake"))
    lake.write("train.csv", [data.read_bytes()])
    ledger.assets.register_data("train", f"{lake.url}/train.csv")
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(features, labels)
    ref = _register(ledger, tmp_path, "forest", model, lineage={"data": ["train"]})
    _, conversion = convert_model_version(ledger, ref)
    assert conversion.rows_checked == 400  # the training data's rows, not random ones
    lake.write("train.csv", [data.read_bytes()[:-40]])  # cut short after registration
    with pytest.raises(IntegrityViolationError, match=r"train\.csv changed since it was recorded"):
        convert_model_version(ledger, ref)


def test_a_conversion_whose_outputs_differ_is_refused_and_nothing_is_registered(
    ledger: Ledger, tmp_path: Path
) -> None:
    # Features around 1e6 with fine detail: float32, what ONNX runs on, loses it.
    features, target = make_regression(n_samples=200, n_features=3, noise=0.1, random_state=2)
    features = features + 1e6
    model = LinearRegression().fit(features, target * 1e3)
    ref = _register(ledger, tmp_path, "linear", model)
    sample = tmp_path / "sample.csv"
    np.savetxt(sample, features, delimiter=",", header="a,b,c", comments="", fmt="%.12g")
    with pytest.raises(ParityError, match="differs from the original's"):
        convert_model_version(ledger, ref, sample=sample)
    assert ledger.models.get("linear").latest_version == 1
    # The same model on centred features keeps its precision in float32: accepted.
    centred = LinearRegression().fit(features - 1e6, target * 1e3)
    version, conversion = convert_model_version(
        ledger, _register(ledger, tmp_path, "centred", centred)
    )
    assert version.ref == "centred:2" and conversion.max_difference < 1.0


def test_convert_from_the_cli_and_its_errors(
    cli: Cli, open_ledger: Callable[..., Ledger], tmp_path: Path
) -> None:
    features, labels, _ = _training_data(tmp_path)
    ledger = open_ledger()
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(features, labels)
    _register(ledger, tmp_path, "cli-forest", model)
    ledger.close()
    converted = cli("model", "convert", "cli-forest:1", "--to", "onnx", "--rows", "50")
    assert converted.code == 0, converted.err
    assert "Registered cli-forest:2 (ONNX opset" in converted.out and "on 50 rows" in converted.out
    as_json = cli("model", "convert", "cli-forest:1", "--rows", "50", "--json").json()
    assert as_json == cli("model", "show", as_json["ref"], "--json").json()
    assert as_json["lineage"]["derived_from"] == "cli-forest:1"
    assert_user_error(cli("model", "convert", "cli-forest:1", "--to", "tflite"), "onnx")
    assert_user_error(cli("model", "convert", "cli-forest:2"), "is a onnx model")
    assert_user_error(
        cli("model", "convert", "cli-forest:1", "--tolerance", "0", "--rows", "50"),
        "differs from the original's",
    )


def _network() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3), torch.nn.Softmax(dim=1)
    ).eval()


@pytest.mark.parametrize("saved_as", ["torchscript", "exported_program"])
def test_a_pytorch_model_converts_with_the_same_outputs(
    saved_as: str, ledger: Ledger, tmp_path: Path
) -> None:
    import torch

    network = _network()
    directory = tmp_path / "net"
    directory.mkdir()
    example = torch.randn(4, 6)
    if saved_as == "torchscript":
        torch.jit.save(torch.jit.script(network), str(directory / "model.pt"))
    else:
        batch = torch.export.Dim("batch")
        program = torch.export.export(network, (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(directory / "model.pt2"))
    signature = {"inputs": [{"name": "X", "type": "float32", "shape": [None, 6]}]}
    ledger.models.register_version("net", directory, flavor="pytorch", signature=signature)
    version, conversion = convert_model_version(ledger, "net:1", rows=64)
    assert version.spec["flavor"] == "onnx" and conversion.max_difference < 1e-5
    assert version.spec["signature"]["inputs"][0]["shape"][1] == 6

    ledger.models.download_version(version.ref, tmp_path / "out")
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"))
    rows = np.random.default_rng(1).standard_normal((10, 6)).astype(np.float32)
    (got,) = session.run(None, {session.get_inputs()[0].name: rows})
    with torch.no_grad():
        expected = network(torch.from_numpy(rows)).numpy()
    assert np.allclose(got, expected, atol=1e-6)
    with pytest.raises(ParityError, match="differs from the original's"):
        convert_model_version(ledger, "net:1", rows=64, tolerance=0.0)


def test_a_pytorch_model_without_a_signature_needs_a_sample(ledger: Ledger, tmp_path: Path) -> None:
    import torch

    directory = tmp_path / "net"
    directory.mkdir()
    torch.jit.save(torch.jit.script(_network()), str(directory / "model.pt"))
    ledger.models.register_version("net", directory, flavor="pytorch")
    with pytest.raises(InvalidInputError, match="pass --sample"):
        convert_model_version(ledger, "net:1")
    sample = tmp_path / "rows.csv"
    np.savetxt(sample, np.random.default_rng(2).standard_normal((20, 6)), delimiter=",",
               header="a,b,c,d,e,f", comments="")  # fmt: skip
    version, conversion = convert_model_version(ledger, "net:1", sample=sample)
    assert version.ref == "net:2" and conversion.rows_checked == 20
