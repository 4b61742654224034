"""A model version's upload form, received as it arrives: each file goes into the artifact
store while it is read (never spooled to the server's disk, never whole in memory).

A file whose sha256 the form gave before it (the ``sha256`` field) is written straight to
its blob and checked as it is written: one copy, and a mismatch stores nothing. Any other
file is written once under ``tmp/`` while hashed, and moved to its blob only once the whole
form is received and checked, so that a refused upload keeps nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

from fastapi import UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from ledger.api.data_upload import validated
from ledger.api.form_stream import FormPart
from ledger.artifacts.paths import FileEntry, check_digest, check_no_clashes, safe_relative_path
from ledger.artifacts.store import ArtifactStore, blob_key
from ledger.commands.models import check_model_identity
from ledger.domain.model import FLAVORS
from ledger.errors import IntegrityViolationError, InvalidInputError

FILES = "files"
# The form's name in the OpenAPI document (what FastAPI named it when it parsed the form).
UPLOAD_SCHEMA = "Body_register_version_models__name__versions_post"
SHA256_HELP = (
    "JSON object: a file's path -> its sha256 (hex), for every file or none. Sent before "
    "the files, each is written straight to its place in the store (one copy); a file "
    "whose content hashes otherwise is refused (400) and nothing is registered"
)


class VersionForm(BaseModel):
    """The form's text fields (unknown fields are ignored, as FastAPI's forms do)."""

    flavor: str = Field("custom", description=f"One of: {', '.join(FLAVORS)}")
    description: str = ""
    tags: str = Field("", description='JSON object, e.g. {"stage": "dev"}')
    metrics: str = Field("", description='JSON object, e.g. {"accuracy": 0.97}')
    lineage: str = Field("", description="JSON object: data, environment, derived_from, job")
    signature: str = Field("", description="JSON object: inputs and outputs")
    reason: str = Field("", max_length=2000)
    sha256: str = Field("", description=SHA256_HELP)

    def json_field(self, name: str) -> dict[str, Any]:
        """The JSON object field ``name`` holds ({} when empty)."""
        return json_object(getattr(self, name), name)

    def digests(self) -> dict[str, str] | None:
        """The ``sha256`` field: checked path -> checked digest; None when not given."""
        if not self.sha256:
            return None
        given = json_object(self.sha256, "sha256")
        digests = {}
        for path, digest in given.items():
            if not isinstance(digest, str):
                raise InvalidInputError(f"sha256 of {path!r} must be a hex digest, got {digest!r}")
            digests[safe_relative_path(path)] = check_digest(digest)
        check_no_clashes(list(digests))
        return digests


class VersionUploadBody(VersionForm):
    # The whole form, as the OpenAPI document shows it (no docstring: no description there).
    model_config = ConfigDict(title=UPLOAD_SCHEMA)
    files: list[UploadFile] = Field(
        description="The version's files; a filename may hold a relative path"
    )


def json_object(text: str, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidInputError(f"{what} must be a JSON object, got {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a JSON object, got {text[:80]!r}")
    return value


def missing_files() -> RequestValidationError:
    """What FastAPI answered to a form without files (422)."""
    error = {"type": "missing", "loc": ("body", FILES), "msg": "Field required", "input": None}
    return RequestValidationError([error])


def checked_form(values: dict[str, str], name: str) -> VersionForm:
    """The text fields, every one checked (422 or 400 when one is wrong)."""
    form = validated(VersionForm, values)
    check_model_identity(name, form.flavor)
    for field in ("tags", "metrics", "lineage", "signature"):
        form.json_field(field)
    form.digests()
    return form


@dataclass
class _Upload:
    path: str
    sha256: str
    size: int
    staged: str | None  # its temporary key, until moved to its blob


class StoredUploads:
    """One form's files in the artifact store; on leaving the block, what was staged and
    not kept is deleted."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.files: list[_Upload] = []
        self._kept: list[FileEntry] | None = None

    def __enter__(self) -> StoredUploads:
        return self

    def __exit__(self, *exc: object) -> None:
        for upload in self.files:
            if upload.staged is not None:
                self.store.blobs.delete(upload.staged)

    def add(self, path: str, reader: BinaryIO, expected: str | None) -> None:
        """Store what ``reader`` holds as the file ``path``: straight to its blob when its
        digest is ``expected`` (InvalidInputError when it is not), else staged."""
        if expected is not None:
            try:
                digest, size = self.store.put_stream(reader, expected_sha256=expected)
            except IntegrityViolationError as error:
                raise InvalidInputError(
                    f"file {path!r} does not match its sha256 field: {error}; "
                    "nothing was registered"
                ) from None
            self.files.append(_Upload(path, digest, size, None))
            return
        digest, size, staged = self.store.stage_stream(reader)  # all or nothing
        self.files.append(_Upload(path, digest, size, staged))

    def keep(self, _store: object = None) -> list[FileEntry]:
        """Move each staged file to its blob; every file's entry, sorted by path.
        Called again, it returns the same entries. (``_store``: register_version calls
        its ``store_files`` with the store, which holds these files already.)"""
        if self._kept is None:
            for upload in self.files:
                if upload.staged is not None:
                    if self.store.has(upload.sha256):
                        self.store.blobs.delete(upload.staged)
                    else:
                        self.store.blobs.move(upload.staged, blob_key(upload.sha256))
                    upload.staged = None
            files = sorted(self.files, key=lambda upload: upload.path)
            self._kept = [FileEntry(f.path, f.sha256, f.size) for f in files]
        return self._kept


def receive_version_form(
    parts: Iterable[FormPart], uploads: StoredUploads, name: str
) -> VersionForm:
    """Read the form, storing its files in ``uploads`` as they come; return its checked
    fields. The fields sent before the first file are checked before it is read."""
    values: dict[str, str] = {}
    paths: list[str] = []
    digests: dict[str, str] | None = None
    read_from: str | None = None  # the sha256 field ``digests`` was read from
    for part in parts:
        if part.content is None:
            if part.name == FILES:
                raise _text_as_file()
            if part.name in VersionForm.model_fields:
                values[part.name] = part.value
            continue
        if part.name != FILES:
            continue  # another field's file: left unread, as FastAPI leaves it unused
        if read_from != values.get("sha256", ""):  # the first file, or a new sha256 field
            read_from = values.get("sha256", "")
            digests = checked_form(values, name).digests()
        path = safe_relative_path(part.filename or "")
        check_no_clashes([*paths, path])
        if digests is not None and path not in digests:
            raise InvalidInputError(
                f"the sha256 field lists no digest for {path!r}: give every file's, or none"
            )
        paths.append(path)
        uploads.add(path, part.content, None if digests is None else digests[path])
    if not paths:
        raise missing_files()
    form = checked_form(values, name)
    _check_digests(uploads, form.digests())
    return form


def _check_digests(uploads: StoredUploads, digests: dict[str, str] | None) -> None:
    """Files match the ``sha256`` field (those sent before it were hashed as staged)."""
    if digests is None:
        return
    sent = {upload.path: upload.sha256 for upload in uploads.files}
    for path in sorted(set(digests) ^ set(sent)):
        where = "no such file was sent" if path in digests else "it lists no digest for it"
        raise InvalidInputError(f"the sha256 field does not match the files: {path!r}: {where}")
    for path, digest in sent.items():
        if digests[path] != digest:
            raise InvalidInputError(
                f"file {path!r} does not match its sha256 field: the content hashes to "
                f"sha256 {digest}, expected {digests[path]}; nothing was registered"
            )


def _text_as_file() -> RequestValidationError:
    message = "each file must be a part with a filename, not a text field"
    error = {"type": "value_error", "loc": ("body", FILES), "msg": message, "input": None}
    return RequestValidationError([error])
