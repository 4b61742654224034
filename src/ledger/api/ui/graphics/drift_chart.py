"""A monitor's drift chart for one feature: its metric per window as a line, the threshold
as a dashed line, and the windows judged as drift marked. Drawn as SVG on the server;
every string from the ledger is escaped before it is put in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

from ledger.api.ui.graphics.svg import point_list

WIDTH, HEIGHT = 380, 160
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 26, 30
Scale = Callable[[float], float]


@dataclass(frozen=True)
class DriftPoint:
    """One window's value of the metric (None: too little data), its threshold, and
    whether the window was judged as drift (or a breach)."""

    window_end: str
    value: float | None
    threshold: float | None
    drifted: bool


@dataclass(frozen=True)
class DriftSeries:
    """One feature's metric over windows, the oldest first."""

    signal: str
    column: str
    metric: str
    p_value: bool  # the value is a test's p-value: drift is below the threshold
    points: list[DriftPoint]


def number(value: float | None) -> str:
    """A metric's value, short (three significant digits)."""
    return "-" if value is None else f"{value:.3g}"


def drift_chart(series: DriftSeries, chart_id: str) -> Markup:
    """``series`` as ``<svg class="drift-chart">`` (``chart_id`` makes its ids unique)."""
    chart_id = escape(chart_id, {'"': "&quot;"})
    points = series.points
    top = _top(series)
    step = (WIDTH - LEFT - RIGHT) / max(len(points) - 1, 1)

    def x(index: float) -> float:
        return LEFT + (index * step if len(points) > 1 else (WIDTH - LEFT - RIGHT) / 2)

    def y(value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - min(value, top) / top)

    feature = series.column if series.column != "*" else "dataset"
    kind = "p-value, drift below the threshold" if series.p_value else "drift above the threshold"
    title = f"{feature}: {series.metric} per window ({kind})"
    label = f"{feature} · {series.metric}"
    drifted = sum(point.drifted for point in points)
    summary = f"{len(points)} windows, {drifted} judged as drift"
    parts = [
        f'<svg class="drift-chart" id="{chart_id}" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f"data-signal={quoteattr(series.signal)} data-column={quoteattr(series.column)} "
        f"data-metric={quoteattr(series.metric)}>",
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(summary)}</desc>',
        *_axes(series, top, label),
        *_lines(points, x, y),
        *_marks(points, x, y),
        "</svg>",
    ]
    return Markup("".join(parts))  # every ledger string in it is escaped


def _top(series: DriftSeries) -> float:
    """The value at the top of the chart."""
    if series.p_value:
        return 1.0
    seen = [v for p in series.points for v in (p.value, p.threshold) if v is not None]
    return max(seen, default=0.0) * 1.15 or 1.0


def _axes(series: DriftSeries, top: float, label: str) -> list[str]:
    bottom = HEIGHT - BOTTOM
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{number(top)}</text>',
        f'<text class="tick" x="{LEFT - 4}" y="{bottom}" text-anchor="end">0</text>',
        f'<text class="label" x="{LEFT}" y="{TOP - 10}">{escape(label)}</text>',
    ]
    if series.points:
        first, last = series.points[0].window_end, series.points[-1].window_end
        parts += [
            f'<text class="tick" x="{LEFT}" y="{HEIGHT - 8}">{escape(_short(first))}</text>',
            f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">'
            f"{escape(_short(last))}</text>",
        ]
    return parts


def _lines(points: list[DriftPoint], x: Scale, y: Scale) -> list[str]:
    """The threshold (dashed) and the metric, broken where a window had no value."""
    limits = [(x(i), y(p.threshold)) for i, p in enumerate(points) if p.threshold is not None]
    parts = []
    if limits:
        if len(limits) == 1:
            limits = [(LEFT, limits[0][1]), (WIDTH - RIGHT, limits[0][1])]
        parts.append(
            '<polyline class="threshold" stroke-dasharray="6 4" fill="none" '
            f'points="{point_list(limits)}"/>'
        )
        parts.append(
            f'<text class="tick threshold-label" x="{WIDTH - RIGHT}" y="{limits[-1][1] - 4:.1f}" '
            f'text-anchor="end">threshold {number(points[-1].threshold)}</text>'
        )
    segment: list[tuple[float, float]] = []
    for i, point in enumerate([*points, None]):
        if point is not None and point.value is not None:
            segment.append((x(i), y(point.value)))
            continue
        if len(segment) > 1:
            parts.append(f'<polyline class="score" fill="none" points="{point_list(segment)}"/>')
        segment = []
    return parts


def _marks(points: list[DriftPoint], x: Scale, y: Scale) -> list[str]:
    parts = []
    for i, point in enumerate(points):
        if point.value is None:
            continue
        verdict = "drift" if point.drifted else "ok"
        label = f"window ending {point.window_end}: {number(point.value)}"
        label += f" (threshold {number(point.threshold)}, {verdict})"
        parts.append(
            f'<circle class="point{" over" if point.drifted else ""}" data-verdict="{verdict}" '
            f'cx="{x(i):.1f}" cy="{y(point.value):.1f}" r="{5 if point.drifted else 3}">'
            f"<title>{escape(label)}</title></circle>"
        )
    return parts


def _short(moment: str) -> str:
    """A window's end as month-day hour:minute (its ISO text, shortened)."""
    return moment[5:16].replace("T", " ") if len(moment) >= 16 else moment
