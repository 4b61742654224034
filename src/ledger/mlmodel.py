"""What a logged model's ``MLmodel`` file says: its flavor in the ledger's terms, and its
signature (MLflow writes inputs and outputs as JSON strings inside the YAML)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from ledger.artifact_integrity import verified_chunks
from ledger.artifacts.paths import FileEntry
from ledger.artifacts.store import ArtifactStore
from ledger.errors import InvalidInputError

MLMODEL = "MLmodel"
MAX_MLMODEL_BYTES = 1024 * 1024
# MLflow flavors the ledger knows, in the order they are looked for; any other is custom.
FLAVOR_OF = {"onnx": "onnx", "sklearn": "sklearn", "pytorch": "pytorch"}


def describe_model(store: ArtifactStore, files: list[FileEntry]) -> tuple[str, dict[str, Any]]:
    """(flavor, signature) from the ``MLmodel`` file among ``files``: ("custom", {}) when
    there is none; InvalidInputError when it cannot be read as one."""
    entry = next((f for f in files if f.path == MLMODEL), None)
    if entry is None:
        return "custom", {}
    if entry.size > MAX_MLMODEL_BYTES:
        raise InvalidInputError(
            f"the MLmodel file is {entry.size:,} bytes; at most {MAX_MLMODEL_BYTES:,} are read"
        )
    return parse_mlmodel(b"".join(verified_chunks(store, entry.sha256, entry.size)))


def parse_mlmodel(text: bytes) -> tuple[str, dict[str, Any]]:
    """(flavor, signature) an MLmodel file's text declares; InvalidInputError when it is not
    one (not YAML, not a mapping, a signature part that is not JSON)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidInputError(f"the MLmodel file is not YAML: {error}") from None
    if not isinstance(document, dict):
        raise InvalidInputError("the MLmodel file is not a YAML mapping")
    return flavor_of(document.get("flavors")), signature_of(document.get("signature"))


def flavor_of(flavors: object) -> str:
    """The ledger's flavor for MLmodel's ``flavors`` mapping."""
    if not isinstance(flavors, dict):
        return "custom"
    return next((ours for theirs, ours in FLAVOR_OF.items() if theirs in flavors), "custom")


def signature_of(signature: object) -> dict[str, Any]:
    """MLmodel's ``signature`` with its JSON strings decoded (null parts left out)."""
    if signature is None:
        return {}
    if not isinstance(signature, dict):
        raise InvalidInputError("the signature in the MLmodel file is not a mapping")
    decoded: dict[str, Any] = {}
    for key, value in signature.items():
        if value is None:
            continue
        if isinstance(value, str) and key in ("inputs", "outputs", "params"):
            try:
                value = json.loads(value)
            except ValueError:
                raise InvalidInputError(
                    f"the signature {key} in the MLmodel file is not JSON"
                ) from None
        decoded[str(key)] = value
    return decoded
