"""What the UI's SVG pictures share: attribute escaping, shortened labels, point lists and
arrowheads. Text content is escaped with ``xml.sax.saxutils.escape`` where it is written."""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import escape


def attr(value: str) -> str:
    """``value`` as a double-quoted, escaped attribute value."""
    return '"' + escape(value, {'"': "&quot;"}) + '"'


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (a <title> holds it whole)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def point_list(points: Iterable[tuple[float, float]]) -> str:
    """Points as a polyline's ``points`` attribute value: ``x,y x,y ...``."""
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def arrow_marker(marker_id: str, *, tip_x: int, size: int) -> str:
    """``<defs>`` with an arrowhead marker for edges' ``marker-end="url(#marker_id)"``."""
    return (
        f'<defs><marker id={attr(marker_id)} viewBox="0 0 10 10" refX="{tip_x}" refY="5" '
        f'markerWidth="{size}" markerHeight="{size}" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z"/></marker></defs>'
    )
