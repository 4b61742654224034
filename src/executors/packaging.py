"""Model packages: a build context that serves one ONNX model version, with or without Docker.

DIR/model/...         the version's files, byte-identical
DIR/package.json      what the package holds: model, files, digests, environment
DIR/requirements.txt  onnxruntime and numpy at the versions tested here, plus the
                      environment's pip lines
DIR/serve.py          the scoring server (executors/package_server.py)
DIR/Dockerfile        the environment's base image, the requirements, the server
"""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version as installed
from pathlib import Path
from typing import Any

from ledger.errors import InvalidInputError, RuleViolationError
from ledger.ledger import Ledger

SERVER = Path(__file__).with_name("package_server.py")
DEFAULT_BASE_IMAGE = "python:3.11-slim"
PORT = 8080


def package_model_version(ledger: Ledger, ref: str, out: Path) -> dict[str, Any]:
    """Write the package of ``ref`` into ``out`` (new or empty); return its manifest."""
    version = ledger.models.get_version(ref)
    spec = version.spec
    if spec["flavor"] != "onnx":
        raise RuleViolationError(
            f"{version.ref} is a {spec['flavor']} model: package its ONNX conversion "
            f"(`ledger model convert {version.ref} --to onnx`)"
        )
    onnx_files = [f["path"] for f in spec["files"] if f["path"].endswith(".onnx")]
    if len(onnx_files) != 1:
        raise InvalidInputError(f"{version.ref} holds {len(onnx_files)} .onnx files, not one")
    if out.exists() and any(out.iterdir()):
        raise InvalidInputError(f"{out} is not empty: choose a new directory")
    environment: dict[str, Any] = {}
    if "environment" in spec["lineage"]:
        environment = ledger.assets.environment_version(spec["lineage"]["environment"])["content"]
    ledger.models.download_version(version.ref, out / "model")
    manifest = {
        "model": version.ref,
        "model_file": onnx_files[0],
        "files": spec["files"],
        "signature": spec["signature"],
        "environment": spec["lineage"].get("environment", ""),
    }
    (out / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    requirements = [
        f"onnxruntime=={installed('onnxruntime')}",
        f"numpy=={installed('numpy')}",
        *environment.get("pip", []),
    ]
    (out / "requirements.txt").write_text("\n".join(requirements) + "\n")
    shutil.copyfile(SERVER, out / "serve.py")
    (out / "Dockerfile").write_text(_dockerfile(environment))
    return manifest


def _dockerfile(environment: dict[str, Any]) -> str:
    variables = "".join(
        f'ENV {name}="{value}"\n' for name, value in environment.get("variables", {}).items()
    )
    return (
        f"FROM {environment.get('base_image') or DEFAULT_BASE_IMAGE}\n"
        "WORKDIR /app\n"
        "COPY requirements.txt .\n"
        "RUN pip install --no-cache-dir -r requirements.txt\n"
        "COPY . .\n"
        f"{variables}"
        f"EXPOSE {PORT}\n"
        f'HEALTHCHECK CMD python -c "import urllib.request; '
        f"urllib.request.urlopen('http://127.0.0.1:{PORT}/health')\"\n"
        f'CMD ["python", "serve.py", "--host", "0.0.0.0", "--port", "{PORT}"]\n'
    )
