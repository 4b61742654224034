"""Monitors: what watches an online deployment's production data, and every verdict.

A monitor compares windows of a deployment's collected inputs and outputs with a
reference (a data asset version, the model's training data, or an earlier window).
Each evaluated window is a ``WindowEvaluated`` event with a result per signal and
column; an alert (``DriftDetected``, ``DataQualityBreached``, ``PerformanceDegraded``)
is raised only when a signal goes from fine to breached, and resolved once when it comes
back, never once per window.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Literal, get_args
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict

from ledger.domain.base import LedgerAggregate, aggregate_id
from ledger.errors import InvalidInputError, RuleViolationError

Signal = Literal["data_drift", "prediction_drift", "data_quality", "performance"]
SIGNALS: tuple[str, ...] = get_args(Signal)
# A column's drift metric ("" chooses one by the column's kind and the window's size).
THRESHOLD_METRICS = ("", "ks", "chi2", "wasserstein", "jensen_shannon", "psi")
MIN_EVERY_S = 3600  # windows are whole hours of event time: collected rows are bucketed so


class Threshold(TypedDict):
    """A column's drift metric and the value from which it counts as drift ("" and
    None: chosen by the column's kind and sample size, at the metric's default)."""

    metric: str
    value: float | None


class ColumnResult(TypedDict):
    """One signal's verdict on one column (or one performance metric) for a window."""

    signal: str
    column: str
    metric: str
    value: float | None
    threshold: float | None
    verdict: str  # "drift" | "no_drift" | "breach" | "ok" | "insufficient_data"
    samples: int


def monitor_id(name: str) -> UUID:
    return aggregate_id("monitor", name)


_DURATION = TypeAdapter(timedelta)


def parse_duration(text: str, what: str = "duration") -> timedelta:
    """An ISO 8601 duration such as ``PT1H`` or ``P7D``; InvalidInputError otherwise."""
    try:
        duration = _DURATION.validate_python(text, strict=False)
    except ValidationError:
        duration = timedelta(0)
    if not text.upper().startswith("P") or duration <= timedelta(0):
        raise InvalidInputError(f"{what} {text!r}: give an ISO 8601 duration such as PT1H or P7D")
    return duration


def iso_duration(duration: timedelta) -> str:
    """``P1D``, ``PT1H``: how durations are written in settings and events."""
    return str(_DURATION.dump_python(duration, mode="json"))


def parse_reference(reference: str) -> tuple[str, str]:
    """``data:NAME:VERSION``, ``training`` or ``window:<ISO 8601 duration>`` as (kind,
    argument); InvalidInputError otherwise."""
    kind, _, argument = reference.partition(":")
    if kind == "training" and not argument:
        return kind, ""
    if kind == "data" and argument.count(":") == 1 and all(argument.split(":")):
        return kind, argument
    if kind == "window" and argument:
        parse_duration(argument, "reference window")
        return kind, argument
    raise InvalidInputError(
        f"reference {reference!r}: give data:NAME:VERSION, training, or window:P7D "
        "(an ISO 8601 duration before each window)"
    )


class Monitor(LedgerAggregate):
    """A monitor of one endpoint (one deployment of it, or all): its configuration, the
    signals now in alert, and how many windows it evaluated."""

    def __init__(self) -> None:
        self.name = ""
        self.endpoint = ""
        self.deployment = ""
        self.reference = ""
        self.signals: list[str] = []
        self.every_s = 0
        self.thresholds: dict[str, Threshold] = {}
        self.features: list[str] = []
        self.min_samples = 0
        self.drift_share = 0.5
        self.alerts: dict[str, list[str]] = {}  # signal -> the columns (metrics) in breach
        self.windows = 0
        self.last_window_end = ""  # ISO 8601, UTC
        self.deleted = False

    class Event(LedgerAggregate.Event):
        pass

    class Created(Event, LedgerAggregate.Created):
        name: str
        endpoint: str
        deployment: str
        reference: str
        signals: list[str]
        every_s: int
        thresholds: dict[str, Threshold]
        features: list[str]
        min_samples: int
        drift_share: float

        def apply(self, monitor: Monitor) -> None:
            monitor.name = self.name
            monitor.endpoint = self.endpoint
            monitor.deployment = self.deployment
            monitor.reference = self.reference
            monitor.signals = list(self.signals)
            monitor.every_s = self.every_s
            monitor.thresholds = dict(self.thresholds)
            monitor.features = list(self.features)
            monitor.min_samples = self.min_samples
            monitor.drift_share = self.drift_share

    class WindowEvaluated(Event):
        window_start: str
        window_end: str
        rows: int
        results: list[ColumnResult]
        drift_shares: dict[str, float]  # drift signal -> share of columns drifting
        breaches: dict[str, list[str] | None]  # signal -> columns in breach (None: no verdict)
        on_demand: bool  # judged by a user: the schedule still judges the window in turn

        def apply(self, monitor: Monitor) -> None:
            monitor.windows += 1
            if not self.on_demand:
                monitor.last_window_end = max(monitor.last_window_end, self.window_end)
            for signal, columns in self.breaches.items():
                if columns and signal in monitor.alerts:  # an open alert: its columns now
                    monitor.alerts[signal] = list(columns)

    class AlertRaised(Event):
        """Base of the alerts: ``signal`` breached on ``columns`` in the window ending at
        ``window_end``."""

        signal: str
        columns: list[str]
        window_end: str

        def apply(self, monitor: Monitor) -> None:
            monitor.alerts[self.signal] = list(self.columns)

    class AlertResolved(Event):
        signal: str
        window_end: str

        def apply(self, monitor: Monitor) -> None:
            monitor.alerts.pop(self.signal, None)

    class DriftDetected(AlertRaised):
        pass

    class DriftResolved(AlertResolved):
        pass

    class DataQualityBreached(AlertRaised):
        pass

    class DataQualityRestored(AlertResolved):
        pass

    class PerformanceDegraded(AlertRaised):
        pass

    class PerformanceRestored(AlertResolved):
        pass

    class Deleted(Event):
        def apply(self, monitor: Monitor) -> None:
            monitor.deleted = True

    @classmethod
    def create(
        cls,
        name: str,
        *,
        endpoint: str,
        deployment: str,
        reference: str,
        signals: list[str],
        every_s: int,
        thresholds: dict[str, Threshold],
        features: list[str],
        min_samples: int,
        drift_share: float,
    ) -> Monitor:
        parse_reference(reference)
        unknown = sorted(set(signals) - set(SIGNALS))
        if not signals or unknown:
            raise InvalidInputError(
                f"signals must be some of {', '.join(SIGNALS)}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        if every_s < MIN_EVERY_S or every_s % MIN_EVERY_S:
            raise InvalidInputError(
                "--every must be a whole number of hours (PT1H, PT6H, P1D...): collected "
                "rows are kept by the hour of their event time"
            )
        for column, threshold in thresholds.items():
            if threshold["metric"] not in THRESHOLD_METRICS:
                raise InvalidInputError(
                    f"threshold for {column!r}: metric {threshold['metric']!r} is not one of "
                    f"{', '.join(m for m in THRESHOLD_METRICS if m)}"
                )
            value = threshold["value"]
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InvalidInputError(f"threshold for {column!r} must be a number >= 0")
        if min_samples < 1:
            raise InvalidInputError("min_samples must be at least 1")
        if not 0 < drift_share <= 1:
            raise InvalidInputError("drift_share must be above 0 and at most 1")
        return cls._create(
            cls.Created,
            id=monitor_id(name),
            name=name,
            endpoint=endpoint,
            deployment=deployment,
            reference=reference,
            signals=list(dict.fromkeys(signals)),
            every_s=every_s,
            thresholds=thresholds,
            features=features,
            min_samples=min_samples,
            drift_share=drift_share,
        )

    def record_window(
        self,
        window_start: str,
        window_end: str,
        rows: int,
        results: list[ColumnResult],
        drift_shares: dict[str, float],
        breaches: dict[str, list[str] | None],
        *,
        on_demand: bool = False,
    ) -> None:
        """Record a window's results; raise or resolve each signal's alert when its state
        changes. ``breaches``: per signal, the columns in breach ([] when none; None when
        the window had too little data for a verdict: the alert state stays). The
        schedule judges each window once, in order; a user may judge any window
        ``on_demand`` (one judged before, or the one in progress)."""
        self._require_live()
        if not on_demand and window_end <= self.last_window_end:
            raise RuleViolationError(
                f"monitor {self.name!r} already judged the window ending {window_end}"
            )
        self.trigger_event(
            self.WindowEvaluated,
            window_start=window_start,
            window_end=window_end,
            rows=rows,
            results=results,
            drift_shares=drift_shares,
            breaches=breaches,
            on_demand=on_demand,
        )
        for signal, columns in breaches.items():
            if columns is None:
                continue
            raised, resolved = _ALERTS[signal]
            if columns and signal not in self.alerts:
                self.trigger_event(raised, signal=signal, columns=columns, window_end=window_end)
            elif not columns and signal in self.alerts:
                self.trigger_event(resolved, signal=signal, window_end=window_end)

    def delete(self) -> None:
        self._require_live()
        self.trigger_event(self.Deleted)

    def _require_live(self) -> None:
        if self.deleted:
            raise RuleViolationError(f"monitor {self.name!r} is deleted")


_ALERTS: dict[str, tuple[type[Monitor.AlertRaised], type[Monitor.AlertResolved]]] = {
    "data_drift": (Monitor.DriftDetected, Monitor.DriftResolved),
    "prediction_drift": (Monitor.DriftDetected, Monitor.DriftResolved),
    "data_quality": (Monitor.DataQualityBreached, Monitor.DataQualityRestored),
    "performance": (Monitor.PerformanceDegraded, Monitor.PerformanceRestored),
}
