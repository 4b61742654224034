"""An export's layout: where each file goes, and the manifest written last.

```
_export.json                                        the manifest (written last, atomically)
events/date=YYYY-MM-DD/part-<first>-<last>.parquet  events, by UTC date and log position
views/<table>/export=<position>/part.parquet        each view table at the views' position
analytics/<dataset>/export=<position>/part.parquet  each analytics dataset, the same
```

The manifest is the commit point: what it names was written in full before it. Event part
files are named by the positions they hold, so a rerun finds what a stopped run wrote.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ledger.errors import InvalidInputError

MANIFEST = "_export.json"
FORMAT = "ledger-export/1"
EVENTS = "events/"
SNAPSHOT_FOLDERS = ("views/", "analytics/")
_EVENT_FILE = re.compile(r"^events/date=(\d{4}-\d{2}-\d{2})/part-(\d+)-(\d+)\.parquet$")
_SNAPSHOT_FILE = re.compile(r"^(?:views|analytics)/[^/]+/export=(\d+)/part\.parquet$")


@dataclass(frozen=True)
class EventFile:
    key: str
    first: int
    last: int


def event_key(date: str, first: int, last: int) -> str:
    return f"{EVENTS}date={date}/part-{first}-{last}.parquet"


def parse_event_key(key: str) -> EventFile | None:
    found = _EVENT_FILE.match(key)
    return EventFile(key, int(found.group(2)), int(found.group(3))) if found else None


def snapshot_key(folder: str, name: str, position: int) -> str:
    """``folder``: ``views`` or ``analytics``."""
    return f"{folder}/{name}/export={position}/part.parquet"


def snapshot_position(key: str) -> int | None:
    found = _SNAPSHOT_FILE.match(key)
    return int(found.group(1)) if found else None


@dataclass
class Manifest:
    """What the last export wrote: events up to ``position``, the views as they were at
    ``views_position``; ``files``: key -> rows, of this export's files (events it wrote or
    found written by a run that stopped, and the snapshots)."""

    position: int
    views_position: int
    exported_at: str
    since: int
    store: str
    files: dict[str, int] = field(default_factory=dict)
    format: str = FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Manifest:
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
            return cls(
                position=int(data["position"]),
                views_position=int(data["views_position"]),
                exported_at=str(data["exported_at"]),
                since=int(data["since"]),
                store=str(data["store"]),
                files={str(k): int(v) for k, v in data["files"].items()},
            )
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise InvalidInputError(
                f"{where} holds an {MANIFEST} that is not a ledger export's manifest ({error})"
            ) from None
