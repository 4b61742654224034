"""A pipeline's DAG as SVG: steps in layers (a step sits one layer right of the last step it
depends on), edges with arrowheads, each step coloured by its state and labelled with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from markupsafe import Markup

from ledger.api.ui.graphics.svg import arrow_marker, attr, shorten

NODE_W, NODE_H = 168, 50
GAP_X, GAP_Y, PAD = 64, 22, 12
NAME_CHARS = 22
Point = tuple[float, float]
# A mark beside each state's name: the state reads without colour too.
MARKS = {
    "pending": "○",
    "running": "▶",
    "succeeded": "✓",
    "failed": "✗",
    "retrying": "↻",
    "cancelled": "■",
    "skipped": "⊘",
}


@dataclass(frozen=True)
class DagStep:
    """One step to draw: its name, the steps it runs after, its state and a short note
    (such as the attempt) shown after the state."""

    name: str
    depends_on: tuple[str, ...]
    state: str
    note: str = ""


def layers(steps: Sequence[DagStep]) -> list[list[str]]:
    """The steps in topological layers; within a layer, ordered near the steps they follow
    (by the mean row of those), else as the spec lists them. Unknown dependencies and
    cycles (which a registered pipeline never has) are ignored."""
    known = {step.name: step for step in steps}
    level: dict[str, int] = {}

    def level_of(name: str, seen: frozenset[str]) -> int:
        if name not in level:
            seen |= {name}
            deps = [d for d in known[name].depends_on if d in known and d not in seen]
            level[name] = 1 + max((level_of(d, seen) for d in deps), default=-1)
        return level[name]

    for step in steps:
        level_of(step.name, frozenset())
    ordered: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    row: dict[str, float] = {}
    spec_order = {step.name: index for index, step in enumerate(steps)}
    for depth, column in enumerate(ordered):
        members = [step.name for step in steps if level[step.name] == depth]

        def place(name: str) -> tuple[float, int]:
            rows = [row[d] for d in known[name].depends_on if d in row]
            return (sum(rows) / len(rows) if rows else -1.0, spec_order[name])

        column.extend(sorted(members, key=place))
        row.update({name: index for index, name in enumerate(column)})
    return ordered


def _node(step: DagStep, x: float, y: float) -> str:
    label = f"{MARKS.get(step.state, '•')} {step.state}" + (f" · {step.note}" if step.note else "")
    title = f"{step.name}: {step.state}" + (f" ({step.note})" if step.note else "")
    name = escape(shorten(step.name, NAME_CHARS))
    return (
        f'<g class="step" data-step={attr(step.name)} data-state={attr(step.state)}>'
        f"<title>{escape(title)}</title>"
        f'<rect x="{x:g}" y="{y:g}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
        f'<text class="step-name" x="{x + 10:g}" y="{y + 20:g}">{name}</text>'
        f'<text class="step-state" x="{x + 10:g}" y="{y + 38:g}">{escape(label)}</text>'
        "</g>"
    )


def _edge(source: DagStep, target: DagStep, start: Point, end: Point) -> str:
    (x1, y1), (x2, y2) = start, end
    bend = (x2 - x1) / 2
    path = f"M{x1:g},{y1:g} C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2 - 2:g},{y2:g}"
    return (
        f'<path class="edge" data-from={attr(source.name)} data-to={attr(target.name)} '
        f'data-state={attr(source.state)} d="{path}" marker-end="url(#job-dag-arrow)"/>'
    )


def dag_svg(steps: Sequence[DagStep], title: str) -> Markup:
    """The DAG of ``steps`` as ``<svg id="job-dag">`` (every user string escaped)."""
    columns = layers(steps)
    tallest = max((len(column) for column in columns), default=0)
    width = PAD * 2 + len(columns) * NODE_W + max(len(columns) - 1, 0) * GAP_X
    height = PAD * 2 + tallest * NODE_H + max(tallest - 1, 0) * GAP_Y
    at: dict[str, tuple[float, float]] = {}
    for index, column in enumerate(columns):
        top = PAD + (height - 2 * PAD - (len(column) * (NODE_H + GAP_Y) - GAP_Y)) / 2
        for row, name in enumerate(column):
            at[name] = (PAD + index * (NODE_W + GAP_X), top + row * (NODE_H + GAP_Y))
    by_name = {step.name: step for step in steps}
    edges = [
        _edge(by_name[dep], step, (at[dep][0] + NODE_W, at[dep][1] + NODE_H / 2),
              (at[step.name][0], at[step.name][1] + NODE_H / 2))
        for step in steps
        for dep in dict.fromkeys(step.depends_on)
        if dep in at and dep != step.name
    ]  # fmt: skip
    nodes = [_node(step, *at[step.name]) for step in steps]
    return Markup(
        f'<svg id="job-dag" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="job-dag-title">'
        f'<title id="job-dag-title">{escape(title)}</title>'
        f"{arrow_marker('job-dag-arrow', tip_x=9, size=8)}"
        f'<g class="edges">{"".join(edges)}</g><g class="steps">{"".join(nodes)}</g></svg>'
    )
