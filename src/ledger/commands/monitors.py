"""Monitors: creating one for an online endpoint, recording each evaluated window."""

from __future__ import annotations

from ledger.application import LedgerApplication
from ledger.commands.lookups import Lookups
from ledger.domain.monitor import ColumnResult, Monitor, Threshold, monitor_id
from ledger.errors import InvalidInputError, RuleViolationError
from ledger.refs import check_name

DEFAULT_SIGNALS = ("data_drift", "data_quality")
DEFAULT_MIN_SAMPLES = 100


class MonitorCommands:
    """Commands for monitors (reads go through the monitors view)."""

    def __init__(self, application: LedgerApplication, lookups: Lookups) -> None:
        self._app = application
        self._lookups = lookups

    def create(
        self,
        name: str,
        *,
        endpoint: str,
        deployment: str = "",
        reference: str,
        signals: list[str] | None = None,
        every_s: int = 3600,
        thresholds: dict[str, Threshold] | None = None,
        features: list[str] | None = None,
        min_samples: int = DEFAULT_MIN_SAMPLES,
        drift_share: float = 0.5,
        reason: str = "",
    ) -> Monitor:
        """Watch ``endpoint`` (its ``deployment``, or all of them) against ``reference``:
        ``data:NAME:VERSION``, ``training`` (the deployed model's training data, found
        through its lineage) or ``window:P7D`` (the same span just before each window)."""
        check_name(name, "monitor name")

        def command() -> Monitor:
            existing = self._app.find(Monitor, monitor_id(name))
            if existing is not None:
                raise RuleViolationError(
                    f"monitor {name!r} was deleted: its history keeps the name; choose another"
                    if existing.deleted
                    else f"monitor {name!r} already exists"
                )
            watched = self._lookups.endpoint(endpoint)
            if watched.deleted:
                raise RuleViolationError(f"endpoint {endpoint!r} is deleted")
            if watched.kind != "online":
                raise InvalidInputError(
                    f"endpoint {endpoint!r} is a batch endpoint: monitors watch the "
                    "production data online deployments collect"
                )
            if deployment and deployment not in watched.deployments:
                raise InvalidInputError(f"endpoint {endpoint!r} has no deployment {deployment!r}")
            monitor = Monitor.create(
                name,
                endpoint=endpoint,
                deployment=deployment,
                reference=reference,
                signals=list(signals or DEFAULT_SIGNALS),
                every_s=every_s,
                thresholds=thresholds or {},
                features=features or [],
                min_samples=min_samples,
                drift_share=drift_share,
            )
            self._app.save(monitor)
            return monitor

        return self._app.execute(reason, command)

    def get(self, name: str) -> Monitor:
        """The monitor (inside commands and for executors that run it)."""
        check_name(name, "monitor name")
        return self._app.load(Monitor, monitor_id(name), f"monitor {name!r}")

    def record_window(
        self,
        name: str,
        *,
        window_start: str,
        window_end: str,
        rows: int,
        results: list[ColumnResult],
        drift_shares: dict[str, float],
        breaches: dict[str, list[str] | None],
        on_demand: bool = False,
    ) -> Monitor:
        """Record an evaluated window (and the alerts its verdicts raise or resolve);
        ``on_demand``: judged by a user (any window; the schedule goes on as before)."""
        return self._app.change(
            lambda: self.get(name),
            lambda monitor: monitor.record_window(
                window_start, window_end, rows, results, drift_shares, breaches, on_demand=on_demand
            ),
            "",
        )

    def delete(self, name: str, *, reason: str = "") -> Monitor:
        return self._app.change(lambda: self.get(name), Monitor.delete, reason)
