"""Downloading a model version's files: one file, or all of them as a zip. The API's
routes (a token) and the UI's (a session cookie) answer by the same rules: a deleted
version's files are gone (404), and so is a path the version does not have."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from ledger.api.auth import services_of
from ledger.api.downloads import Refusal, damaged_problem, file_response, zip_response
from ledger.api.routes.common import read_views
from ledger.domain.model import StoredFile
from ledger.errors import NotFoundError


def live_files(request: Request, name: str, version: int) -> list[StoredFile]:
    """The files of ``name:version``; NotFoundError when it does not exist or is deleted."""
    found = read_views(request, lambda v: v.version_of(name, version))
    if found["status"] == "deleted":
        raise NotFoundError(f"model version {name}:{version} is deleted")
    return found["files"]


def download_file(
    request: Request, name: str, version: int, path: str, refuse: Refusal = damaged_problem
) -> Any:
    """The file at ``path`` of ``name:version``, byte for byte (``refuse``: the answer
    when the stored file is damaged)."""
    entry = next((f for f in live_files(request, name, version) if f["path"] == path), None)
    if entry is None:
        raise NotFoundError(f"model version {name}:{version} has no file {path!r}")
    store = services_of(request).ledger.artifacts
    return file_response(store, f"{name}:{version}", entry, refuse)


def download_zip(
    request: Request, name: str, version: int, refuse: Refusal = damaged_problem
) -> Any:
    """Every file of ``name:version`` as ``NAME-VERSION.zip``."""
    files = live_files(request, name, version)
    store = services_of(request).ledger.artifacts
    return zip_response(store, f"{name}:{version}", files, f"{name}-{version}.zip", refuse)
