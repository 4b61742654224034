"""`ledger monitor ...`: watching online deployments for drift, data quality and
performance; each evaluated window and every alert is an event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ledger.cli.context import (
    AsJson,
    Reason,
    console,
    open_ledger,
    open_views,
    parse_moment,
    print_json,
)
from ledger.domain.monitor import SIGNALS, Threshold, parse_duration
from ledger.errors import InvalidInputError

app = typer.Typer(
    help="Watch online deployments: data drift, prediction drift, data quality, performance.",
    no_args_is_help=True,
)
SPARKS = "▁▂▃▄▅▆▇█"


def parse_thresholds(texts: list[str]) -> dict[str, Threshold]:
    """``column=metric:value``, ``column=metric`` or ``column=value`` per text."""
    thresholds: dict[str, Threshold] = {}
    for text in texts:
        column, sep, setting = text.partition("=")
        metric, _, value = setting.partition(":")
        if not value and _is_number(metric):
            metric, value = "", metric
        if not sep or not column or not setting or (value and not _is_number(value)):
            raise InvalidInputError(
                f"threshold {text!r}: give column=metric:value, column=metric or column=value "
                "(e.g. age=psi:0.2)"
            )
        thresholds[column] = {"metric": metric, "value": float(value) if value else None}
    return thresholds


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


@app.command()
def create(
    name: str,
    endpoint: Annotated[str, typer.Option(help="The online endpoint to watch")],
    reference: Annotated[
        str, typer.Option(help="data:NAME:VERSION, training, or window:P7D (the span before)")
    ],
    deployment: Annotated[str, typer.Option(help="One deployment (default: all)")] = "",
    signals: Annotated[
        str, typer.Option(help=f"Comma-separated, of: {', '.join(SIGNALS)}")
    ] = "data_drift,data_quality",
    every: Annotated[str, typer.Option(help="Window length and schedule: PT1H, P1D...")] = "PT1H",
    threshold: Annotated[
        list[str] | None,
        typer.Option(help="column=metric:value (ks, chi2, wasserstein, jensen_shannon, psi)"),
    ] = None,
    features: Annotated[
        str,
        typer.Option(
            help="The columns watched, comma-separated: the model's inputs in order, as the "
            "reference names them (default: all; the reference's numeric columns in order)"
        ),
    ] = "",
    min_samples: Annotated[int, typer.Option(help="Fewer values: insufficient_data")] = 100,
    drift_share: Annotated[
        float,
        typer.Option(
            help="The window's dataset-level verdict (column *): drift when this share of "
            "columns drifts; any drifting column raises DriftDetected"
        ),
    ] = 0.5,
    reason: Reason = "",
) -> None:
    """Create a monitor; the worker evaluates each window once it has ended."""
    every_s = int(parse_duration(every, "--every").total_seconds())
    with open_ledger() as ledger:
        ledger.monitors.create(
            name,
            endpoint=endpoint,
            deployment=deployment,
            reference=reference,
            signals=comma_list(signals),
            every_s=every_s,
            thresholds=parse_thresholds(threshold or []),
            features=comma_list(features),
            min_samples=min_samples,
            drift_share=drift_share,
            reason=reason,
        )
    console.print(f"Created monitor [bold]{name}[/] of {endpoint}, every {every}")


@app.command("list")
def list_monitors(
    endpoint: Annotated[str, typer.Option(help="Only this endpoint's")] = "",
    as_json: AsJson = False,
) -> None:
    """Monitors, their windows evaluated and their open alerts."""
    with open_views() as views:
        monitors = views.monitors(endpoint)
    if as_json:
        print_json(monitors)
        return
    table = Table("monitor", "endpoint", "reference", "signals", "windows", "last window", "alerts")
    for monitor in monitors:
        table.add_row(
            monitor["name"],
            f"{monitor['endpoint']}/{monitor['deployment'] or '*'}",
            monitor["reference"],
            ", ".join(monitor["signals"]),
            str(monitor["windows"]),
            monitor["last_window_end"] or "-",
            _alerts(monitor["alerts"]),
        )
    console.print(table)


@app.command()
def show(name: str, as_json: AsJson = False) -> None:
    """A monitor's configuration, open alerts and its latest window, column by column."""
    with open_views() as views:
        monitor = views.monitor(name)
        latest = views.monitor_windows(name, limit=1)
    if as_json:
        print_json(monitor | {"latest_window": latest[0] if latest else None})
        return
    console.print(
        f"monitor [bold]{name}[/] of {monitor['endpoint']}/{monitor['deployment'] or '*'}, "
        f"every {monitor['every_s'] // 3600} h, reference {monitor['reference']}"
    )
    console.print(
        f"  signals: {', '.join(monitor['signals'])}; alerts: {_alerts(monitor['alerts'])}"
    )
    if not latest:
        console.print("  no window evaluated yet")
        return
    print_window(latest[0])


def print_window(window: dict[str, Any]) -> None:
    """A window's rows, then each signal's result per column."""
    console.print(
        f"  window {window['window_start']} to {window['window_end']}: {window['rows']:,} rows"
    )
    table = Table("signal", "column", "metric", "value", "threshold", "verdict", "samples")
    for result in window["results"]:
        table.add_row(
            result["signal"],
            result["column"],
            result["metric"],
            _number(result["value"]),
            _number(result["threshold"]),
            _verdict(result["verdict"]),
            f"{result['samples']:,}",
        )
    console.print(table)


@app.command()
def run(
    name: str,
    window_end: Annotated[
        str, typer.Option(help="Judge the window ending then (ISO 8601); default: the latest")
    ] = "",
    current: Annotated[
        bool, typer.Option("--current", help="Judge the window in progress, as it is so far")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Judge a window now (even one judged before, or the one in progress), record it, and
    show the verdicts; the schedule still judges each window once it ends."""
    from executors.monitoring.runner import MonitorRunner  # imports pyarrow, scipy
    from executors.monitoring.windows import last_ended_window, window_of

    if current and window_end:
        raise InvalidInputError("give --current or --window-end, not both")
    with open_ledger() as ledger, open_views() as views:
        monitor = views.monitor(name)
        every = timedelta(seconds=monitor["every_s"])
        now = datetime.now(UTC)
        if current:
            start, end = window_of(now, monitor["every_s"])
        elif window_end:
            end = parse_moment(window_end, "--window-end")
            start = end - every
            if window_of(start, monitor["every_s"]) != (start, end):
                raise InvalidInputError(
                    f"--window-end {window_end!r}: windows of this monitor end on multiples "
                    f"of {monitor['every_s'] // 3600} h since 1970-01-01T00:00Z"
                )
        else:
            start, end = last_ended_window(monitor["every_s"], now)
        MonitorRunner(ledger, views).evaluate(monitor, start, end, on_demand=True)
        views.updater.catch_up()
        window = views.monitor_windows(name, limit=1)[0]
        alerts = views.monitor(name)["alerts"]
    if as_json:
        print_json(window | {"alerts": alerts})
        return
    print_window(window)
    console.print(f"  alerts now: {_alerts(alerts)}")


@app.command()
def history(
    name: str,
    limit: Annotated[int, typer.Option(help="Windows to show, the latest last")] = 24,
    as_json: AsJson = False,
) -> None:
    """Each column's metric over the latest windows (a sparkline), and the alerts."""
    with open_views() as views:
        windows = views.monitor_windows(name, limit=limit)[::-1]
        alerts = views.monitor_alerts(name, limit=limit)[::-1]
    if as_json:
        print_json({"windows": windows, "alerts": alerts})
        return
    series: dict[tuple[str, str, str], list[float | None]] = {}
    verdicts: dict[tuple[str, str, str], str] = {}
    for index, window in enumerate(windows):
        for result in window["results"]:
            key = (result["signal"], result["column"], result["metric"])
            values = series.setdefault(key, [None] * len(windows))
            values[index] = result["value"]
            verdicts[key] = result["verdict"] if index == len(windows) - 1 else "-"
    table = Table("signal", "column", "metric", f"last {len(windows)} windows", "now")
    for (signal, column, metric), values in series.items():
        table.add_row(
            signal, column, metric, sparkline(values), _verdict(verdicts[(signal, column, metric)])
        )
    console.print(table)
    for alert in alerts:
        columns = f" {', '.join(alert['columns'])}" if alert["columns"] else ""
        console.print(
            f"{alert['time']}  [bold]{alert['event']}[/] {alert['signal']}{columns} "
            f"(window ending {alert['window_end']})"
        )


@app.command()
def labels(
    endpoint: str,
    input: Annotated[
        Path, typer.Option("--input", help="CSV/Parquet: correlation_id, the label, [row]")
    ],
    label_column: Annotated[str, typer.Option(help="The column holding the true label")] = "label",
    reason: Reason = "",
) -> None:
    """Record the true labels of an online endpoint's requests (by the correlation id each
    answer carried): performance monitors join them with the collected predictions."""
    with open_ledger() as ledger:
        _, count = ledger.endpoints.record_ground_truth(
            endpoint, input, label_column=label_column, reason=reason
        )
    console.print(f"Recorded {count:,} labels for endpoint {endpoint}")


@app.command()
def delete(name: str, reason: Reason = "") -> None:
    """Stop a monitor; its windows and alerts stay in the history."""
    with open_ledger() as ledger:
        ledger.monitors.delete(name, reason=reason)
    console.print(f"Deleted monitor {name}")


def sparkline(values: list[float | None]) -> str:
    """One character per value, scaled between the values' minimum and maximum; a space
    for a window without a value."""
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    return "".join(
        " " if v is None else SPARKS[round((v - low) / span * (len(SPARKS) - 1))] for v in values
    )


def _alerts(alerts: dict[str, list[str]]) -> str:
    if not alerts:
        return "none"
    return "; ".join(
        f"[red]{signal}[/] ({', '.join(columns)})" for signal, columns in alerts.items()
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _verdict(verdict: str) -> str:
    colour = {"drift": "red", "breach": "red", "insufficient_data": "yellow"}.get(verdict, "green")
    return f"[{colour}]{verdict}[/]"
