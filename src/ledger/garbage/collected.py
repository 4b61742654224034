"""When collected requests expire: ``collected/endpoint=E/deployment=D/hour=H/...`` holds
rows of the hour ``H`` (event time, also for a late flush), so the file is past a
retention once its hour ended before it; a file outside an hour folder is judged by when
it was written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.artifacts.blobs import StoredObject

HOUR_FOLDER = "hour="
HOUR_FORMAT = "%Y-%m-%dT%H"  # as executors.monitoring.collector writes it


def hour_of(key: str) -> datetime | None:
    """The hour a collected file's folder names, if it names one."""
    for part in key.split("/"):
        if part.startswith(HOUR_FOLDER):
            try:
                return datetime.strptime(part[len(HOUR_FOLDER) :], HOUR_FORMAT).replace(tzinfo=UTC)
            except ValueError:
                return None
    return None


def collection_expired(stored: StoredObject, before: datetime) -> bool:
    """Whether a collected file holds only rows older than ``before``."""
    hour = hour_of(stored.key)
    if hour is None:
        return stored.modified < before
    return hour + timedelta(hours=1) <= before
