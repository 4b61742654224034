"""MLflow's error wire format: ``{"error_code": ..., "message": ...}`` with its HTTP status.

The MLflow client retries a 5xx for minutes, so a client error must never be one; the
ledger's own errors map onto MLflow's codes here. Routes that speak MLflow use
:class:`MlflowRoute`, which turns whatever they raise (auth and validation included) into
that format instead of the rest of the API's problem details.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from ledger.api.auth import Forbidden, Unauthenticated, services_of
from ledger.api.problems import RETRY_AFTER_S, STORE_ERRORS
from ledger.errors import (
    AlreadyExistsError,
    ArtifactStoreUnavailableError,
    ConcurrencyError,
    IntegrityViolationError,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from ledger.logging import get_logger
from ledger.outages import first_line

log = get_logger(__name__)

# MLflow's error codes (mlflow/protos/databricks.proto) and the status its server gives each.
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
RESOURCE_CONFLICT = "RESOURCE_CONFLICT"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
UNAUTHENTICATED = "UNAUTHENTICATED"
PERMISSION_DENIED = "PERMISSION_DENIED"
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
INTERNAL_ERROR = "INTERNAL_ERROR"
DATA_LOSS = "DATA_LOSS"  # a stored file is damaged
STATUS_OF_CODE = {
    INVALID_PARAMETER_VALUE: 400,
    RESOURCE_ALREADY_EXISTS: 400,
    RESOURCE_DOES_NOT_EXIST: 404,
    ENDPOINT_NOT_FOUND: 404,
    RESOURCE_CONFLICT: 409,
    UNAUTHENTICATED: 401,
    PERMISSION_DENIED: 403,
    NOT_IMPLEMENTED: 501,
    TEMPORARILY_UNAVAILABLE: 503,
    INTERNAL_ERROR: 500,
    DATA_LOSS: 500,
}
_ALL_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
# The ledger's errors as MLflow codes; the first class that matches wins.
_CODE_OF: list[tuple[type[Exception], str]] = [
    (NotFoundError, RESOURCE_DOES_NOT_EXIST),
    (AlreadyExistsError, RESOURCE_ALREADY_EXISTS),
    (RuleViolationError, RESOURCE_CONFLICT),
    (ConcurrencyError, RESOURCE_CONFLICT),
    (PermissionDeniedError, PERMISSION_DENIED),
    (Unauthenticated, UNAUTHENTICATED),
    (Forbidden, PERMISSION_DENIED),
    (InvalidInputError, INVALID_PARAMETER_VALUE),
    (IntegrityViolationError, DATA_LOSS),
    (LedgerError, INVALID_PARAMETER_VALUE),
]


class MlflowError(Exception):
    """An error to answer in MLflow's format, with one of MLflow's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_response(code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error_code": code, "message": message}
    return JSONResponse(body, status_code=STATUS_OF_CODE[code], headers=headers)


def answer_error(request: Request, error: Exception) -> Response:
    """What MLflow's client expects to read for ``error``."""
    if isinstance(error, MlflowError):
        return error_response(error.code, error.message)
    if isinstance(error, RequestValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return error_response(INVALID_PARAMETER_VALUE, f"invalid request: {problems}")
    if isinstance(error, HTTPException):  # e.g. a body over the size limit (413)
        code = INVALID_PARAMETER_VALUE if error.status_code < 500 else INTERNAL_ERROR
        return JSONResponse({"error_code": code, "message": str(error.detail)}, error.status_code)
    if isinstance(error, STORE_ERRORS):
        log.warning("event store unavailable", path=request.url.path, error=str(error))
        return error_response(
            TEMPORARILY_UNAVAILABLE,
            f"the event store is unavailable: {first_line(error)}",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    if isinstance(error, ArtifactStoreUnavailableError):
        log.warning("artifact store unavailable", path=request.url.path, error=str(error))
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        return error_response(TEMPORARILY_UNAVAILABLE, str(error), headers=headers)
    known = next((code for cls, code in _CODE_OF if isinstance(error, cls)), None)
    if known is not None:
        return error_response(known, str(error))
    log.exception("unhandled error", path=request.url.path)
    return error_response(INTERNAL_ERROR, "internal error; the server log has the details")


class MlflowRoute(APIRoute):
    """A route whose errors, auth and validation included, are answered in MLflow's format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as error:  # every error: the client must read a code, not a page
                return answer_error(request, error)
            self.after(request)
            return response

        return handle

    def after(self, request: Request) -> None:
        """What a route does once it answered (nothing here)."""


class TrackingRoute(MlflowRoute):
    """An MLflow tracking or artifact-proxy route: what it writes (runs, logged models,
    uploads) is what a model version's source is read from, so a registration waits for the
    views to include these writes only, not the registry's own (see ``resolve_source``)."""

    def after(self, request: Request) -> None:
        written = getattr(request.state, "views_needed", None)
        if request.method != "GET" and written is not None:
            services_of(request).note_source_write(written)


def mlflow_router(prefix: str, *, tracking: bool = False) -> APIRouter:
    """A router for MLflow endpoints under ``prefix``, hidden from the ledger's own docs;
    ``tracking``: its writes are what sources of model versions are read from."""
    route_class = TrackingRoute if tracking else MlflowRoute
    return APIRouter(prefix=prefix, route_class=route_class, include_in_schema=False)


# Answers any other path under MLflow's prefixes with ENDPOINT_NOT_FOUND (mounted last).
unknown_endpoints = APIRouter(route_class=MlflowRoute, include_in_schema=False)


@unknown_endpoints.api_route("/api/{api_version}/mlflow/{rest:path}", methods=_ALL_METHODS)
@unknown_endpoints.api_route(
    "/api/{api_version}/mlflow-artifacts/{rest:path}", methods=_ALL_METHODS
)
async def unknown(request: Request) -> Response:
    return error_response(
        ENDPOINT_NOT_FOUND,
        f"the ledger does not serve MLflow's {request.method} {request.url.path}",
    )
