"""The artifact store's garbage collector: one ``Collected`` event per `ledger gc` run.

The event is the run's report (what it removed, emptied from its trash and put back, per
kind, with bytes), so the audit trail says who freed what, when and why.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.domain.base import LedgerAggregate, aggregate_id

COLLECTOR_NAME = "artifacts"


def garbage_collector_id() -> UUID:
    return aggregate_id("gc", COLLECTOR_NAME)


class GarbageCollector(LedgerAggregate):
    """The collector of one ledger's artifact store; its events are its runs."""

    def __init__(self) -> None:
        self.name = ""
        self.runs = 0
        self.last_run: dict[str, Any] = {}

    class Event(LedgerAggregate.Event):
        pass

    class Created(Event, LedgerAggregate.Created):
        name: str

        def apply(self, collector: GarbageCollector) -> None:
            collector.name = self.name

    class Collected(Event):
        """One run: when it started, on which store, the durations it kept things for, and
        per kind (blobs, data, staged, collected) ``{"count": n, "bytes": b}`` removed,
        purged from the trash and restored from it (see ``ledger.garbage.report``)."""

        started_at: str
        store: str
        older_than: str
        deleted_retention: str
        monitor_retention: str
        removed: dict[str, dict[str, int]]
        purged: dict[str, dict[str, int]]
        restored: dict[str, dict[str, int]]
        kept_recent: dict[str, int]
        failed: int
        freed_bytes: int

        def apply(self, collector: GarbageCollector) -> None:
            collector.runs += 1
            collector.last_run = {"started_at": self.started_at, "freed_bytes": self.freed_bytes}

    @classmethod
    def create(cls) -> GarbageCollector:
        return cls._create(cls.Created, id=garbage_collector_id(), name=COLLECTOR_NAME)

    def record_run(self, report: dict[str, Any]) -> None:
        """Record a run (``report``: the fields of ``Collected``)."""
        self.trigger_event(self.Collected, **report)
