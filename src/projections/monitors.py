"""The monitors view: each monitor's configuration and open alerts, every evaluated window
with its per-column results, and every alert raised or resolved."""

from __future__ import annotations

from typing import Any

import orjson

from ledger.domain import Endpoint, LedgerAggregate
from ledger.domain.monitor import Monitor
from ledger.errors import NotFoundError
from ledger.storage.database import LedgerDatabase
from ledger.storage.timestamps import iso
from projections.base import Change, Handler, ReadModel
from projections.tables import Table

MONITORS = Table(
    "ledger_view_monitors",
    key={"name": "TEXT"},
    columns={
        "endpoint": "TEXT NOT NULL",
        "deployment": "TEXT NOT NULL",
        "reference": "TEXT NOT NULL",
        "config": "TEXT NOT NULL",  # JSON: signals, every_s, thresholds, features...
        "alerts": "TEXT NOT NULL",  # JSON: signal -> columns in breach
        "windows": "BIGINT NOT NULL",
        "last_window_end": "TEXT NOT NULL",
        "created_by": "TEXT NOT NULL",
        "created_at_us": "BIGINT NOT NULL",
    },
    indexes=(("endpoint",),),
)
WINDOWS = Table(
    "ledger_view_monitor_windows",
    key={"monitor": "TEXT", "position": "BIGINT"},
    columns={
        "window_start": "TEXT NOT NULL",
        "window_end": "TEXT NOT NULL",
        "rows": "BIGINT NOT NULL",
        "results": "TEXT NOT NULL",  # JSON list of ColumnResult
        "drift_shares": "TEXT NOT NULL",
        "evaluated_at_us": "BIGINT NOT NULL",
    },
)
ALERTS = Table(
    "ledger_view_monitor_alerts",
    key={"monitor": "TEXT", "position": "BIGINT"},
    columns={
        "event": "TEXT NOT NULL",  # DriftDetected, DriftResolved...
        "signal": "TEXT NOT NULL",
        "columns": "TEXT NOT NULL",  # JSON list
        "window_end": "TEXT NOT NULL",
        "time_us": "BIGINT NOT NULL",
    },
)
GROUND_TRUTH = Table(
    "ledger_view_ground_truth",
    key={"endpoint": "TEXT", "position": "BIGINT"},
    columns={"digest": "TEXT NOT NULL", "rows": "BIGINT NOT NULL", "time_us": "BIGINT NOT NULL"},
)
_CONFIG = ("signals", "every_s", "thresholds", "features", "min_samples", "drift_share")
_RAISED = (Monitor.DriftDetected, Monitor.DataQualityBreached, Monitor.PerformanceDegraded)
_RESOLVED = (Monitor.DriftResolved, Monitor.DataQualityRestored, Monitor.PerformanceRestored)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class MonitorsProjection(ReadModel):
    """Monitors by name, their windows and alerts: what `ledger monitor list|show|history`
    and GET /monitors print."""

    name = "monitors"
    description = "monitors: configuration, open alerts, evaluated windows, alert history"
    tables = (MONITORS, WINDOWS, ALERTS, GROUND_TRUTH)

    def handlers(self) -> dict[type[LedgerAggregate.Event], Handler]:
        alerts: dict[type[LedgerAggregate.Event], Handler] = {
            event: self._alert for event in (*_RAISED, *_RESOLVED)
        }
        return {
            Monitor.Created: self._created,
            Monitor.WindowEvaluated: self._window,
            Monitor.Deleted: self._deleted,
            Endpoint.GroundTruthRecorded: self._ground_truth,
            **alerts,
        }

    def _created(self, change: Change) -> None:
        event = change.data
        config = {key: event[key] for key in _CONFIG}
        row = (event["endpoint"], event["deployment"], event["reference"], _json(config),
               "{}", 0, "", event["actor"], change.time_us)  # fmt: skip
        self.put(MONITORS.name, (event["name"],), row)

    def _window(self, change: Change) -> None:
        event, name = change.data, change.entity.name
        row = (event["window_start"], event["window_end"], event["rows"],
               _json(event["results"]), _json(event["drift_shares"]), change.time_us)  # fmt: skip
        self.put(WINDOWS.name, (name, change.position), row)
        monitor = self.get(MONITORS.name, (name,))
        if monitor is not None:
            last = monitor[6] if event["on_demand"] else max(monitor[6], event["window_end"])
            alerts = orjson.loads(monitor[4])
            for signal, columns in event["breaches"].items():
                if columns and signal in alerts:  # an open alert: the columns in breach now
                    alerts[signal] = columns
            row = (*monitor[:4], _json(alerts), monitor[5] + 1, last, *monitor[7:])
            self.put(MONITORS.name, (name,), row)

    def _alert(self, change: Change) -> None:
        event, name = change.data, change.entity.name
        kind = change.event_type.rpartition(".")[2]
        columns = event.get("columns", [])
        row = (kind, event["signal"], _json(columns), event["window_end"], change.time_us)
        self.put(ALERTS.name, (name, change.position), row)
        monitor = self.get(MONITORS.name, (name,))
        if monitor is not None:
            alerts = orjson.loads(monitor[4])
            if "columns" in event:
                alerts[event["signal"]] = columns
            else:
                alerts.pop(event["signal"], None)
            self.put(MONITORS.name, (name,), (*monitor[:4], _json(alerts), *monitor[5:]))

    def _deleted(self, change: Change) -> None:
        self.delete(MONITORS.name, (change.entity.name,))

    def _ground_truth(self, change: Change) -> None:
        row = (change.data["digest"], change.data["rows"], change.time_us)
        self.put(GROUND_TRUTH.name, (change.entity.name, change.position), row)


# -- queries -----------------------------------------------------------------------------

_MONITOR_COLUMNS = ("name", *MONITORS.columns)


def list_monitors(db: LedgerDatabase, endpoint: str = "") -> list[dict[str, Any]]:
    """Every live monitor (of ``endpoint``), by name."""
    clause, params = ("WHERE endpoint = ?", (endpoint,)) if endpoint else ("", ())
    rows = db.execute(
        f"SELECT {', '.join(_MONITOR_COLUMNS)} FROM {MONITORS.name} {clause} ORDER BY name",
        params,
    )
    return [_monitor(row) for row in rows]


def read_monitor(db: LedgerDatabase, name: str) -> dict[str, Any]:
    rows = db.execute(
        f"SELECT {', '.join(_MONITOR_COLUMNS)} FROM {MONITORS.name} WHERE name = ?", (name,)
    )
    if not rows:
        raise NotFoundError(f"monitor {name!r} does not exist")
    return _monitor(rows[0])


def _monitor(row: tuple[Any, ...]) -> dict[str, Any]:
    item = dict(zip(_MONITOR_COLUMNS, row, strict=True))
    item |= orjson.loads(item.pop("config"))
    item["alerts"] = orjson.loads(item["alerts"])
    item["created_at"] = iso(item.pop("created_at_us"))
    return item


def monitor_windows(db: LedgerDatabase, name: str, limit: int = 50) -> list[dict[str, Any]]:
    """The monitor's evaluated windows, the latest evaluation first (a deleted monitor's
    too: its history stays)."""
    rows = db.execute(
        "SELECT position, window_start, window_end, rows, results, drift_shares, "
        f"evaluated_at_us FROM {WINDOWS.name} WHERE monitor = ? ORDER BY position DESC LIMIT ?",
        (name, limit),
    )
    if not rows:
        read_monitor(db, name)  # NotFoundError for an unknown monitor
    return [
        {
            "position": position,
            "window_start": start,
            "window_end": end,
            "rows": count,
            "results": orjson.loads(results),
            "drift_shares": orjson.loads(shares),
            "evaluated_at": iso(at),
        }
        for position, start, end, count, results, shares, at in rows
    ]


def monitor_alerts(db: LedgerDatabase, name: str, limit: int = 50) -> list[dict[str, Any]]:
    """Alerts the monitor raised and resolved, the latest first."""
    rows = db.execute(
        f"SELECT position, event, signal, columns, window_end, time_us FROM {ALERTS.name} "
        "WHERE monitor = ? ORDER BY position DESC LIMIT ?",
        (name, limit),
    )
    return [
        {
            "position": position,
            "event": event,
            "signal": signal,
            "columns": orjson.loads(columns),
            "window_end": window_end,
            "time": iso(time_us),
        }
        for position, event, signal, columns, window_end, time_us in rows
    ]


def ground_truth(db: LedgerDatabase, endpoint: str) -> list[str]:
    """The digests of the endpoint's labels files, oldest first."""
    rows = db.execute(
        f"SELECT digest FROM {GROUND_TRUTH.name} WHERE endpoint = ? ORDER BY position",
        (endpoint,),
    )
    return [str(digest) for (digest,) in rows]


def latest_windows(db: LedgerDatabase) -> list[dict[str, Any]]:
    """Each live monitor's open alerts and its latest evaluated window's results."""
    rows = db.execute(
        f"SELECT m.name, m.alerts, w.results, w.drift_shares FROM {MONITORS.name} m "
        f"LEFT JOIN (SELECT monitor, MAX(position) AS position FROM {WINDOWS.name} "
        "GROUP BY monitor) last ON last.monitor = m.name "
        f"LEFT JOIN {WINDOWS.name} w ON w.monitor = last.monitor AND w.position = last.position "
        "ORDER BY m.name"
    )
    return [
        {
            "name": name,
            "alerts": orjson.loads(alerts),
            "results": orjson.loads(results) if results else [],
            "drift_shares": orjson.loads(shares) if shares else {},
        }
        for name, alerts, results, shares in rows
    ]
