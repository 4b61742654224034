"""The OpenAPI document: every operation lists the problem responses it can give."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ledger.api.problems import PROBLEM_TYPE, Problem
from ledger.api.version_upload import UPLOAD_SCHEMA, VersionUploadBody

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
UNAUTHENTICATED_PATHS = frozenset({"/health"})


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_TYPE: {"schema": PROBLEM_REF}},
    }


def _errors_of(path: str, method: str) -> list[int]:
    if path in UNAUTHENTICATED_PATHS:
        return [503]
    errors = [400, 401, 403, 404, 409, 422, 503]
    if method in ("post", "put", "patch", "delete"):
        errors.append(413)
    return errors


def install_openapi(app: FastAPI) -> None:
    """Document problem details (``application/problem+json``) on every operation."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        # A form the route reads itself, as it arrives (FastAPI would spool it first).
        components[UPLOAD_SCHEMA] = VersionUploadBody.model_json_schema()
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status in _errors_of(path, method):
                    responses[str(status)] = _problem_response(status)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
