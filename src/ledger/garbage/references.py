"""The mark of `ledger gc`: what the live events reference in the artifact store.

Read from the event log itself, by topic and a page at a time (the views may lag, and
``ledger.*`` never reads them). Referenced are:

- the files of every model version that is not deleted, or was deleted less than the
  retention ago (``LEDGER_GC_DELETED_RETENTION``); a renamed version lives on under its
  new name;
- the code files of every pipeline version;
- each data asset version's data when it was uploaded into the store (its URI names
  ``data/<digest>/<name>``) and its profile's sketch (a blob digest);
- job steps' outputs (``sha256:<d>``, or ``tree:sha256:<d>``: the manifest blob ``d`` and
  every file it lists), batch jobs' outputs, and an input kept in the store;
- ground truth recorded for endpoints;
- what each path of the MLflow artifact proxy holds now (not what it held before).

Monitors reference data asset versions (their sketches, above) and batch outputs.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from ledger.application import LedgerApplication
from ledger.domain import (
    BatchJob,
    DataAsset,
    Endpoint,
    Job,
    ModelVersion,
    Pipeline,
    TrackedArtifact,
)
from ledger.domain.model import model_version_id
from ledger.step_results import FILE_PREFIX, TREE_PREFIX

PAGE = 1_000
_DIGEST = re.compile(r"[0-9a-f]{64}")
_DATA_KEY = re.compile(r"(?:^|/)(data/[0-9a-f]{64}/[^/]+)$")

READ: tuple[type[Any], ...] = (
    ModelVersion.Registered,
    ModelVersion.RenamedFrom,
    ModelVersion.Deleted,
    ModelVersion.Renamed,
    Pipeline.VersionRegistered,
    DataAsset.VersionRegistered,
    DataAsset.VersionProfiled,
    Job.StepCompleted,
    BatchJob.Requested,
    BatchJob.Completed,
    Endpoint.GroundTruthRecorded,
    TrackedArtifact.Uploaded,
    TrackedArtifact.Deleted,
)
"""The events that reference stored content, or stop a reference."""

OpenBlob = Callable[[str], BinaryIO | None]
"""Opens the blob with a digest wherever it is kept (None when it is nowhere)."""


def data_key(uri: str) -> str | None:
    """The store key ``data/<digest>/<name>`` a data URI names, if it names one."""
    found = _DATA_KEY.search(unquote(urlsplit(uri).path))
    return found.group(1) if found else None


@dataclass
class _Version:
    files: list[str]
    deleted_at: datetime | None = None


class References:
    """The blob digests and data keys referenced by the events read so far.

    ``mark`` reads the whole log; ``advance`` then reads the events appended since and
    only adds what they reference (a deletion takes effect from the next run on).
    """

    def __init__(self, ledger: LedgerApplication, open_blob: OpenBlob) -> None:
        self._ledger = ledger
        self._open_blob = open_blob
        self._topics = [f"{cls.__module__}:{cls.__qualname__}" for cls in READ]
        self.position = 0
        self.blobs: set[str] = set()
        self.data: set[str] = set()
        self._versions: dict[uuid.UUID, _Version] = {}
        self._tracked: dict[uuid.UUID, str] = {}
        self._trees: set[str] = set()
        self._marked = False

    def mark(self, now: datetime, deleted_retention: timedelta) -> None:
        """Read every event; a version deleted ``deleted_retention`` before ``now`` no longer
        counts."""
        for event in self._read():
            self._apply(event)
        freed_before = now - deleted_retention
        for version in self._versions.values():
            if version.deleted_at is None or version.deleted_at > freed_before:
                self._add_blobs(version.files)
        self._add_blobs(self._tracked.values())
        self._marked = True

    def advance(self) -> int:
        """Read the events appended since; return how many."""
        count = 0
        for event in self._read():
            self._apply(event)
            count += 1
        return count

    def holds(self, key: str) -> bool:
        """Whether the store key (``sha256/../<digest>`` or ``data/...``) is referenced."""
        if key.startswith("data/"):
            return key in self.data
        return key.rsplit("/", 1)[-1] in self.blobs

    def _read(self) -> Iterator[Any]:
        recorder, mapper = self._ledger.recorder, self._ledger.mapper
        while page := recorder.select_notifications(self.position + 1, PAGE, topics=self._topics):
            for notification in page:
                yield mapper.to_domain_event(notification)
            self.position = page[-1].id

    def _apply(self, event: Any) -> None:
        key = event.originator_id
        if isinstance(event, ModelVersion.Registered):  # RenamedFrom too
            version = _Version([f["sha256"] for f in event.spec["files"]])
            if isinstance(event, ModelVersion.RenamedFrom) and event.status == "deleted":
                old = self._versions.get(model_version_id(event.old_name, event.version))
                version.deleted_at = (old and old.deleted_at) or event.timestamp
            self._versions[key] = version
            if self._marked:
                self._add_blobs(version.files)
        elif isinstance(event, ModelVersion.Deleted):  # Renamed too
            known = self._versions.get(key)
            if known is not None and known.deleted_at is None:
                known.deleted_at = event.timestamp
        elif isinstance(event, TrackedArtifact.Uploaded):
            self._tracked[key] = event.sha256
            if self._marked:
                self._add_blobs([event.sha256])
        elif isinstance(event, TrackedArtifact.Deleted):
            self._tracked.pop(key, None)
        else:
            self._add_lasting(event)

    def _add_lasting(self, event: Any) -> None:
        """References no later event takes back."""
        if isinstance(event, Pipeline.VersionRegistered):
            code = event.content.get("code") or {}
            self._add_blobs(f["sha256"] for f in code.get("files", []))
        elif isinstance(event, DataAsset.VersionRegistered):
            self._add_data(event.content.get("uri", ""))
            self._add_blobs([(event.content.get("profile", {}).get("sketch") or {}).get("digest")])
        elif isinstance(event, DataAsset.VersionProfiled):
            self._add_blobs([event.sketch.get("digest")])
        elif isinstance(event, Job.StepCompleted):
            for output in event.outputs.values():
                if output.startswith(TREE_PREFIX):
                    self._add_tree(output.removeprefix(TREE_PREFIX))
                elif output.startswith(FILE_PREFIX):
                    self._add_blobs([output.removeprefix(FILE_PREFIX)])
        elif isinstance(event, BatchJob.Requested):
            self._add_data(event.input_uri)
        elif isinstance(event, BatchJob.Completed):
            self._add_blobs([event.output_digest])
        elif isinstance(event, Endpoint.GroundTruthRecorded):
            self._add_blobs([event.digest])

    def _add_blobs(self, digests: Iterable[object]) -> None:
        self.blobs.update(d for d in digests if isinstance(d, str) and _DIGEST.fullmatch(d))

    def _add_data(self, uri: object) -> None:
        key = data_key(uri) if isinstance(uri, str) else None
        if key is not None:
            self.data.add(key)

    def _add_tree(self, digest: str) -> None:
        """A directory output: its manifest blob and every file the manifest lists."""
        if not _DIGEST.fullmatch(digest) or digest in self._trees:
            return
        self._trees.add(digest)
        self.blobs.add(digest)
        stream = self._open_blob(digest)
        if stream is None:
            return  # gone already: nothing left to keep
        with stream:
            try:
                entries = json.load(stream)
            except ValueError:
                return
        if isinstance(entries, list):
            self._add_blobs(e.get("sha256") for e in entries if isinstance(e, dict))
