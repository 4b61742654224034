"""Charts drawn on the server as SVG (no script): a metric across a model's versions.

Every string from users (metric names, links) is escaped here; the result is safe to put
in a page as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

from ledger.api.ui.graphics.svg import point_list

# Each version's point is drawn (a circle with its value as a tooltip, linked to its page)
# up to this many versions; beyond it the line alone, which stays small at thousands.
MAX_MARKED_POINTS = 400


@dataclass(frozen=True)
class Frame:
    """The drawing area inside the SVG's margins, and the ranges it maps from."""

    width: int = 760
    height: int = 260
    left: int = 64
    right: int = 16
    top: int = 16
    bottom: int = 40

    def x(self, value: float, low: float, high: float) -> float:
        span = self.width - self.left - self.right
        return self.left + (span * (value - low) / (high - low) if high > low else span / 2)

    def y(self, value: float, low: float, high: float) -> float:
        span = self.height - self.top - self.bottom
        return (
            self.height
            - self.bottom
            - (span * (value - low) / (high - low) if high > low else span / 2)
        )


def number(value: float) -> str:
    """A value as a person reads it on an axis or in a tooltip."""
    return f"{value:.4g}"


def metric_chart(
    points: Sequence[tuple[int, float]],
    metric: str,
    *,
    link: Callable[[int], str] | None = None,
    element_id: str = "metric-chart",
    frame: Frame = Frame(),
) -> Markup:
    """A line chart of ``metric`` (y) over version numbers (x), one point per version in
    ``points`` (version, value), with axes labelled by the extremes; ``link(version)``:
    where a point leads."""
    title = f"{metric} across versions" if metric else "No metric recorded"
    # A group, not an image: its points are links, and an image would hide them.
    head = (
        f'<svg id={quoteattr(element_id)} class="chart" role="group" '
        f'viewBox="0 0 {frame.width} {frame.height}" aria-labelledby="{element_id}-title" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="{element_id}-title">'
        f"{escape(title)}</title>"
    )
    if not points:
        note = "No version has recorded this metric." if metric else "No version has metrics."
        middle = (frame.width // 2, frame.height // 2)
        return Markup(
            f'{head}<text class="chart-empty" x="{middle[0]}" y="{middle[1]}" '
            f'text-anchor="middle">{escape(note)}</text></svg>'
        )
    parts = [head, _axes(points, metric, frame), _line(points, frame)]
    if len(points) <= MAX_MARKED_POINTS:
        parts.append(_marks(points, metric, link, frame))
    parts.append("</svg>")
    return Markup("".join(parts))


def _ranges(points: Sequence[tuple[int, float]]) -> tuple[float, float, float, float]:
    versions = [v for v, _ in points]
    values = [value for _, value in points]
    return min(versions), max(versions), min(values), max(values)


def _axes(points: Sequence[tuple[int, float]], metric: str, frame: Frame) -> str:
    x_low, x_high, y_low, y_high = _ranges(points)
    bottom, left = frame.height - frame.bottom, frame.left
    right = frame.width - frame.right
    labels = [
        f'<text class="tick" x="{left - 6}" y="{frame.y(y_high, y_low, y_high) + 4:.1f}" '
        f'text-anchor="end">{number(y_high)}</text>',
        f'<text class="tick" x="{left - 6}" y="{frame.y(y_low, y_low, y_high) + 4:.1f}" '
        f'text-anchor="end">{number(y_low)}</text>',
        f'<text class="tick" x="{frame.x(x_low, x_low, x_high):.1f}" y="{bottom + 16}" '
        f'text-anchor="middle">v{x_low}</text>',
    ]
    if x_high != x_low:
        labels.append(
            f'<text class="tick" x="{frame.x(x_high, x_low, x_high):.1f}" y="{bottom + 16}" '
            f'text-anchor="middle">v{x_high}</text>'
        )
    return (
        f'<g class="axes"><line x1="{left}" y1="{frame.top}" x2="{left}" y2="{bottom}"/>'
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/></g>'
        + "".join(labels)
        + f'<text class="axis-label" x="{(left + right) // 2}" y="{frame.height - 4}" '
        f'text-anchor="middle">version</text>'
        f'<text class="axis-label" x="{-(frame.top + bottom) / 2:.1f}" y="14" '
        f'transform="rotate(-90)" text-anchor="middle">{escape(metric)}</text>'
    )


def _line(points: Sequence[tuple[int, float]], frame: Frame) -> str:
    x_low, x_high, y_low, y_high = _ranges(points)
    coordinates = point_list(
        (frame.x(v, x_low, x_high), frame.y(value, y_low, y_high)) for v, value in points
    )
    return f'<polyline class="series" fill="none" points="{coordinates}"/>'


def _marks(
    points: Sequence[tuple[int, float]],
    metric: str,
    link: Callable[[int], str] | None,
    frame: Frame,
) -> str:
    x_low, x_high, y_low, y_high = _ranges(points)
    marks = []
    for version, value in points:
        x, y = frame.x(version, x_low, x_high), frame.y(value, y_low, y_high)
        label = escape(f"version {version}: {metric} = {number(value)}")
        mark = (
            f'<circle class="point" data-version="{version}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
            f"<title>{label}</title></circle>"
        )
        marks.append(f"<a href={quoteattr(link(version))}>{mark}</a>" if link else mark)
    return '<g class="points">' + "".join(marks) + "</g>"
