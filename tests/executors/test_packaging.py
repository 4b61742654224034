"""Model packages: the build context runs locally with `python DIR/serve.py`."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

from executors.onnx_conversion import convert_model_version
from ledger.ledger import Ledger
from ledger.specs import EnvironmentSpec
from tests.conftest import Cli, assert_user_error, free_port


def _post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_a_package_serves_the_model_without_docker(
    cli: Cli, open_ledger: Any, tmp_path: Path
) -> None:
    features, labels = make_classification(n_samples=200, n_features=5, random_state=4)
    ledger: Ledger = open_ledger()
    ledger.assets.register_environment(
        "serving", EnvironmentSpec(pip=["pyarrow>=16"], variables={"MODE": "prod"})
    )
    source = tmp_path / "forest"
    source.mkdir()
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(features, labels)
    (source / "model.pkl").write_bytes(pickle.dumps(model))
    ledger.models.register_version("forest", source, flavor="sklearn",
                                  lineage={"environment": "serving"})  # fmt: skip
    convert_model_version(ledger, "forest:1", rows=50)
    ledger.close()

    out = tmp_path / "package"
    packaged = cli("model", "package", "forest:2", "--out", str(out))
    assert packaged.code == 0, packaged.err
    assert sorted(p.name for p in out.iterdir()) == [
        "Dockerfile", "model", "package.json", "requirements.txt", "serve.py"
    ]  # fmt: skip
    dockerfile = (out / "Dockerfile").read_text()
    assert dockerfile.startswith("FROM python:3.11-slim\n") and 'ENV MODE="prod"' in dockerfile
    assert 'CMD ["python", "serve.py", "--host", "0.0.0.0", "--port", "8080"]' in dockerfile
    requirements = (out / "requirements.txt").read_text().splitlines()
    assert requirements[0].startswith("onnxruntime==") and "pyarrow>=16" in requirements

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(out / "serve.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as response:
                    health = json.load(response)
                break
            except OSError:
                assert time.monotonic() < deadline, "the package server did not start"
                time.sleep(0.1)
        assert health == {"status": "ok", "model": "forest:2", "provider": "CPUExecutionProvider"}
        status, scored = _post(f"http://127.0.0.1:{port}/score", {"inputs": features[:4].tolist()})
        assert status == 200 and scored["model"] == "forest:2"
        session = onnxruntime.InferenceSession(str(out / "model" / "model.onnx"))
        expected = session.run(None, {"X": features[:4].astype(np.float32)})
        assert scored["outputs"]["label"] == expected[0].tolist()
        status, refused = _post(f"http://127.0.0.1:{port}/score", {"inputs": [[1, 2]]})
        assert status == 400 and refused["detail"]
    finally:
        server.terminate()
        server.wait(10)

    assert_user_error(cli("model", "package", "forest:1", "--out", str(tmp_path / "x")), "convert")
    assert_user_error(cli("model", "package", "forest:2", "--out", str(out)), "is not empty")
