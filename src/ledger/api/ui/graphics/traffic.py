"""Traffic pictures drawn as SVG on the server: an endpoint's split now as one bar, and the
split over time as a stacked bar per change. Every user string is escaped before it goes
into the markup (names in text and attributes, reasons in tooltips)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

# Fill colours, each with white text at 4.5:1 or more; a deployment keeps its colour.
PALETTE = (
    "#1f4fb5", "#17663a", "#a4161a", "#8a5a00", "#6b3fa0", "#0e6377", "#b0185a", "#4a5568",
)  # fmt: skip
BAR_WIDTH = 600
BAR_HEIGHT = 28
CHART_HEIGHT = 160
CHART_TOP = 10
MAX_BARS = 60


def colours(names: Iterable[str]) -> dict[str, str]:
    """A colour per deployment name, in the order given (the same in every picture)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def _segments(split: dict[str, int], palette: dict[str, str]) -> list[tuple[str, int, str]]:
    return [(name, share, palette.get(name, PALETTE[-1])) for name, share in split.items() if share]


def split_bar(split: dict[str, int], palette: dict[str, str], title: str) -> Markup:
    """One horizontal bar: each deployment's share of the traffic, labelled."""
    parts = [
        f'<svg class="split-bar" role="img" viewBox="0 0 {BAR_WIDTH} {BAR_HEIGHT}" '
        f'width="{BAR_WIDTH}" height="{BAR_HEIGHT}" aria-label={quoteattr(title)}>',
        f"<title>{escape(title)}</title>",
        f'<rect width="{BAR_WIDTH}" height="{BAR_HEIGHT}" fill="#f4f6f9" stroke="#d5dae3"/>',
    ]
    x = 0.0
    for name, share, colour in _segments(split, palette):
        width = BAR_WIDTH * share / 100
        label = f"{name} {share}%"
        parts.append(
            f'<g class="share" data-deployment={quoteattr(name)}>'
            f"<title>{escape(label)}</title>"
            f'<rect x="{x:.1f}" width="{width:.1f}" height="{BAR_HEIGHT}" fill="{colour}"/>'
        )
        if width >= 7 * len(label) + 8:  # the label fits inside its segment
            parts.append(
                f'<text x="{x + 6:.1f}" y="{BAR_HEIGHT / 2 + 4:.0f}" fill="#fff">'
                f"{escape(label)}</text>"
            )
        parts.append("</g>")
        x += width
    parts.append("</svg>")
    return Markup("".join(parts))


def traffic_chart(changes: Sequence[dict[str, Any]], palette: dict[str, str]) -> Markup:
    """svg#traffic-chart: a stacked bar per change of the live split (oldest on the left,
    the latest ``MAX_BARS``), each segment a deployment's share, the log position below."""
    shown = list(changes)[-MAX_BARS:]
    step = max(24.0, min(60.0, 720 / max(len(shown), 1)))
    legend_width = sum(24 + 7 * len(name) for name in palette)
    width = int(max(step * len(shown), legend_width)) + 40
    bottom = CHART_TOP + CHART_HEIGHT
    height = bottom + 44
    parts = [
        f'<svg id="traffic-chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-labelledby="traffic-chart-title">',
        '<title id="traffic-chart-title">The live traffic split after each change, '
        "oldest on the left</title>",
        f'<line x1="30" y1="{bottom}" x2="{width}" y2="{bottom}" stroke="#4a5568"/>',
        f'<text x="0" y="{CHART_TOP + 8}">100%</text><text x="14" y="{bottom}">0</text>',
    ]
    for index, change in enumerate(shown):
        x = 34 + index * step
        parts.append(_stacked_bar(change, palette, x, step * 0.7))
    parts.append(_legend(palette, bottom + 30))
    parts.append("</svg>")
    return Markup("".join(parts))


def _stacked_bar(change: dict[str, Any], palette: dict[str, str], x: float, width: float) -> str:
    bottom = CHART_TOP + CHART_HEIGHT
    when = f"#{change['position']} {change['time']} by {change['actor']}"
    why = f": {change['reason']}" if change["reason"] else ""
    parts = [f'<g class="change" data-position="{int(change["position"])}">']
    y = float(bottom)
    for name, share, colour in _segments(change["traffic"], palette):
        height = CHART_HEIGHT * share / 100
        y -= height
        tip = f"{name} {share}% after {when}{why}"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
            f'fill="{colour}"><title>{escape(tip)}</title></rect>'
        )
    parts.append(
        f'<text x="{x:.1f}" y="{bottom + 16}" font-size="10">#{int(change["position"])}</text></g>'
    )
    return "".join(parts)


def _legend(palette: dict[str, str], y: int) -> str:
    parts = ['<g class="legend">']
    x = 34.0
    for name, colour in palette.items():
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14:.1f}" y="{y + 9}">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    parts.append("</g>")
    return "".join(parts)
