"""Data over HTTP: server-side paths and object URLs only under LEDGER_DATA_ROOTS,
otherwise an upload.

A server-side path is checked after resolving symlinks and ``..``; every refusal
says the same thing, so a caller cannot learn which files exist outside the roots.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from ledger.artifacts.paths import safe_relative_path
from ledger.errors import InvalidInputError
from ledger.settings import Settings

M = TypeVar("M", bound=BaseModel)
NO_ROOTS = (
    "server-side paths are off on this server (LEDGER_DATA_ROOTS is empty): "
    "upload the file as multipart/form-data (field 'file') instead"
)


class UnsupportedMediaType(HTTPException):
    """The body is neither of the media types the route takes (HTTP 415)."""

    def __init__(self, detail: str) -> None:
        super().__init__(415, detail)


def refused_path(text: str) -> InvalidInputError:
    """The one answer for a path that is missing, unreadable or outside the roots."""
    return InvalidInputError(
        f"server-side path {text[:200]!r} is not a file or folder under the server's "
        "data roots (LEDGER_DATA_ROOTS); give an absolute path inside one, or upload the file"
    )


def server_side_path(settings: Settings, text: str) -> Path:
    """The real path ``text`` names, when it exists under one of the data roots."""
    if not settings.data_roots:
        raise InvalidInputError(NO_ROOTS)
    try:
        real = Path(os.path.realpath(text))
        roots = [Path(os.path.realpath(root)) for root in settings.data_roots
                 if isinstance(root, Path)]  # fmt: skip
        allowed = (
            os.path.isabs(text)
            and any(real.is_relative_to(root) for root in roots)
            and (real.is_file() or (real.is_dir() and _links_stay_inside(real)))
        )
    except (ValueError, OSError):  # a NUL byte, a name too long, a loop of links...
        allowed = False
    if not allowed:
        raise refused_path(text)
    return real


def server_side_url(settings: Settings, text: str) -> str:
    """``text``, an object's URL, when it lies under one of the data roots that are object
    store URLs (no ``.``/``..`` segments, query or fragment)."""
    if not settings.data_roots:
        raise InvalidInputError(NO_ROOTS)
    parts = urlsplit(text)
    segments = parts.path.split("/")
    allowed = (
        not parts.query
        and not parts.fragment
        and "." not in segments
        and ".." not in segments
        and any(
            isinstance(root, str) and text.startswith(f"{root}/") for root in settings.data_roots
        )
    )
    if not allowed:
        raise refused_path(text)
    return text


def _links_stay_inside(folder: Path) -> bool:
    """Whether every symlink under ``folder`` names something that exists inside it
    (checked here, so that reading the folder cannot say what exists elsewhere)."""
    for current, folders, files in os.walk(folder):  # links are listed, not followed
        for name in folders + files:
            entry = os.path.join(current, name)
            if os.path.islink(entry):
                target = Path(os.path.realpath(entry))
                if not target.exists() or not target.is_relative_to(folder):
                    return False
    return True


def validated(model: type[M], values: dict[str, Any]) -> M:
    """``values`` as ``model``; errors answer 422 like FastAPI's own body checks."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def upload_name(filename: str | None) -> str:
    """The uploaded file's own name (a folder part is dropped), checked."""
    return safe_relative_path(filename or "").rsplit("/", 1)[-1]
