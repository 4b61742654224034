"""Errors as RFC 9457 problem details: ``application/problem+json`` with a clear message."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import psycopg
from eventsourcing.persistence import DataError as StoredDataError
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from ledger.api.auth import Forbidden, Unauthenticated
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
    ServingUnavailableError,
)
from ledger.logging import get_logger
from ledger.outages import STORE_UNAVAILABLE, first_line

log = get_logger(__name__)
PROBLEM_TYPE = "application/problem+json"
# While the store is away, clients are told to retry after this many seconds.
RETRY_AFTER_S = 2
# What the store raises while it is unavailable (see ledger.outages); any other
# failure of eventsourcing's store is answered the same way.
STORE_ERRORS: tuple[type[Exception], ...] = (*STORE_UNAVAILABLE, PersistenceError)
# A value the store cannot take in a query (a NUL in a name read back): bad input.
UNSTORABLE_ERRORS: tuple[type[Exception], ...] = (psycopg.DataError, StoredDataError)


class Problem(BaseModel):
    """What went wrong; ``detail`` is meant for the user."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class BodyTooLarge(HTTPException):
    """The request body is over ``LEDGER_API_MAX_UPLOAD_MB`` (HTTP 413).

    An HTTPException, so that FastAPI's body parsing lets it through as it is.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


def problem(
    status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def store_unavailable(error: Exception) -> JSONResponse:
    """503 with ``Retry-After``: the event store cannot be reached (an outage, a restart)."""
    detail = f"the event store is unavailable: {first_line(error)}"
    return problem(503, detail, headers={"Retry-After": str(RETRY_AFTER_S)})


_STATUS_OF: list[tuple[type[Exception], int]] = [
    (ArtifactStoreUnavailableError, 503),
    (NotFoundError, 404),
    (ServingUnavailableError, 503),
    (RuleViolationError, 409),
    (AlreadyExistsError, 409),
    (ConcurrencyError, 409),
    (InvalidInputError, 400),
    (PermissionDeniedError, 403),
    (IntegrityViolationError, 500),
    (LedgerError, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
]


def unstorable_message(error: Exception) -> str:
    """What to say about a value the store cannot take (``UNSTORABLE_ERRORS``)."""
    first_line = (str(error).splitlines() or [type(error).__name__])[0]
    return f"the request holds a value the store cannot take: {first_line}"


def status_of(error: Exception) -> int | None:
    """The HTTP status a known error is answered with; None for an unexpected one."""
    return next((code for cls, code in _STATUS_OF if isinstance(error, cls)), None)


def validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [{"location": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in error.errors()]


def install_problem_handlers(app: FastAPI) -> None:
    """Every error a route raises becomes a problem response; none leaks a traceback."""

    async def known(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, ArtifactStoreUnavailableError):  # an outage: retry later
            log.warning("artifact store unavailable", path=request.url.path, error=str(error))
            return problem(503, str(error), headers={"Retry-After": str(RETRY_AFTER_S)})
        status = status_of(error) or 500
        if status >= 500:
            log.error("request failed", path=request.url.path, error=str(error))
        return problem(status, str(error))

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        errors = validation_errors(error)
        summary = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
        # A value no store can hold (a lone surrogate) is refused like the ledger refuses it.
        unstorable = all(e["type"] == "string_unicode" for e in error.errors())
        return problem(400 if unstorable else 422, f"invalid request: {summary}", errors=errors)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        return problem(error.status_code, str(error.detail))

    async def store_down(request: Request, error: Exception) -> JSONResponse:
        log.warning("event store unavailable", path=request.url.path, error=str(error))
        return store_unavailable(error)

    async def unstorable(request: Request, error: Exception) -> JSONResponse:
        return problem(400, unstorable_message(error))

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem(500, "internal error; the server log has the details")

    for cls, _ in _STATUS_OF:
        app.add_exception_handler(cls, known)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    for store_error in STORE_ERRORS:
        app.add_exception_handler(store_error, store_down)
    for data_error in UNSTORABLE_ERRORS:
        app.add_exception_handler(data_error, unstorable)
    app.add_exception_handler(Exception, unexpected)
