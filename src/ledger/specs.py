"""User-supplied specifications, validated by pydantic, and their content digests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ledger.errors import InvalidInputError
from ledger.validation import check_value


def content_digest(content: Any) -> str:
    """sha256 of the canonical JSON form: equal content, equal digest."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


INT64 = range(-(2**63), 2**63)


def check_json_value(value: Any, what: str) -> Any:
    """Refuse what JSON readers (and the stores' 64-bit integers) cannot take back:
    integers beyond 64 bits, NaN and infinities, keys that are not text, and text the
    stores cannot hold (see ``ledger.validation``)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        check_value(what, value)  # NUL, lone surrogates
        return value
    if isinstance(value, int):
        if value not in INT64:
            raise InvalidInputError(f"{what}: integer {value} is out of the 64-bit range")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInputError(f"{what}: {value} is not a JSON number")
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"{what}: key {key!r} must be text")
            check_value(what, {key: None})  # "key ... of WHAT contains ..."
            check_json_value(item, f"{what}.{key}")
        return value
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_json_value(item, f"{what}[{index}]")
        return value
    raise InvalidInputError(f"{what}: {type(value).__name__} is not a JSON value")


class EnvironmentSpec(BaseModel):
    """A runtime environment: python version, packages, base image, variables."""

    model_config = ConfigDict(extra="forbid")

    python: str = Field("3.11", pattern=r"^\d+\.\d+(\.\d+)?$")
    pip: list[str] = Field(default_factory=list, description="pip requirement lines")
    conda: dict[str, Any] | None = Field(None, description="conda environment.yml content")
    base_image: str = "python:3.11-slim"
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("python", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        """YAML reads `python: 3.11` as a number: take it as the text it was written as.
        (YAML also reads 3.10 as 3.1, which the spec cannot tell apart: quote such versions.)"""
        return _number_as_text(value)

    @field_validator("variables", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        """Environment variables are text: `OMP_NUM_THREADS: 1` means "1"."""
        if isinstance(value, dict):
            return {key: _number_as_text(item) for key, item in value.items()}
        return value


def _number_as_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def read_spec_file(path: Path) -> dict[str, Any]:
    """Load a YAML or JSON mapping from ``path`` with a clear error when it is not one."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InvalidInputError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path} must contain a mapping of settings")
    return data


def read_named_spec(path: Path, name: str = "") -> tuple[str, dict[str, Any]]:
    """The spec in ``path`` without its ``name``, and the name: ``name`` if given, else
    the spec's own."""
    spec = read_spec_file(path)
    own = spec.pop("name", "")
    chosen = name or str(own or "")
    if not chosen:
        raise InvalidInputError(f"{path} has no `name`; pass --name")
    return chosen, spec


def parse_environment_spec(data: dict[str, Any]) -> EnvironmentSpec:
    try:
        return EnvironmentSpec.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in error.errors()
        )
        raise InvalidInputError(f"invalid environment spec: {problems}") from None
