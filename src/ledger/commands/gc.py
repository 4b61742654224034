"""`ledger gc`: collect the artifact store's garbage and record the run as an event."""

from __future__ import annotations

from datetime import timedelta

from ledger.application import LedgerApplication
from ledger.domain.garbage_collector import GarbageCollector, garbage_collector_id
from ledger.domain.monitor import iso_duration
from ledger.garbage.collector import Collection, GcPolicy, Progress
from ledger.garbage.report import GcReport


class GcCommands:
    """Runs of the artifact store's garbage collector."""

    def __init__(self, application: LedgerApplication) -> None:
        self._app = application

    def policy(self, older_than: timedelta | None = None) -> GcPolicy:
        """The settings' policy, with ``older_than`` for the grace when given."""
        settings = self._app.settings
        return GcPolicy(
            older_than=settings.gc_grace if older_than is None else older_than,
            deleted_retention=settings.gc_deleted_retention,
            monitor_retention=settings.monitor_retention,
        )

    def collect(
        self,
        *,
        older_than: timedelta | None = None,
        dry_run: bool = False,
        on_progress: Progress | None = None,
        reason: str = "",
    ) -> GcReport:
        """Remove what no live event references (see ``ledger.garbage.collector``); record
        the run as ``GarbageCollector.Collected``. A dry run changes and records nothing."""
        policy = self.policy(older_than)
        report = Collection(self._app, policy, dry_run=dry_run, on_progress=on_progress).run()
        if dry_run:
            return report
        fields = report.to_dict()
        del fields["dry_run"]
        fields |= {
            "store": self._app.artifacts.url,
            "older_than": iso_duration(policy.older_than),
            "deleted_retention": iso_duration(policy.deleted_retention),
            "monitor_retention": iso_duration(policy.monitor_retention),
        }

        def command() -> None:
            collector = (
                self._app.find(GarbageCollector, garbage_collector_id(), for_update=True)
                or GarbageCollector.create()
            )
            collector.record_run(fields)
            self._app.save(collector)

        self._app.execute(reason, command)
        return report
