"""A model version's lineage graph, drawn on the server as SVG.

The nodes are what the lineage view walked upstream and downstream of the version, laid
out in columns by the longest path from a source (data, environments and pipelines on the
left, then jobs, model versions, deployments and endpoints), so every edge points right.
Each node is a link to its page; the picture is a labelled group (an "img" would hide its
links from assistive technology, a serious axe-core violation). Every user string is escaped
before it joins the SVG.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

from ledger.api.ui.graphics.svg import arrow_marker, shorten
from projections.lineage import LineageGraph

# Where a kind of node sits among its neighbours in a column (sources first).
KIND_ORDER = ("data", "environment", "pipeline", "job", "model", "deployment", "endpoint")
KIND_LABELS = {"model": "model version"}
NODE_W, NODE_H = 170, 46
COL_GAP, ROW_GAP, PAD = 64, 18, 14
NAME_CHARS = 23  # what fits on a node; the <title> holds the whole name
WAYPOINT = "\0"  # starts the id of where an edge crosses a column (no node id can)


@dataclass(frozen=True)
class LineageNode:
    """A node of the graph: its id (``kind:name``), its page, and how far it is from the
    version (negative upstream, positive downstream, 0 the version itself)."""

    node: str
    kind: str
    name: str
    distance: int
    href: str

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def where(self) -> str:
        """Where it is from the version, in words."""
        if self.distance == 0:
            return "this version"
        steps = abs(self.distance)
        side = "upstream" if self.distance < 0 else "downstream"
        return f"{side}, {steps} step{'s' if steps > 1 else ''}"


@dataclass(frozen=True)
class LineageEdge:
    src: str
    dst: str
    relation: str


@dataclass(frozen=True)
class LineagePicture:
    """The graph's nodes (column by column) and edges, and its SVG."""

    root: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    svg: Markup


def node_href(node: str) -> str:
    """The UI page of a lineage node ("" for a kind without one)."""
    kind, _, name = node.partition(":")
    if kind == "model":
        model, _, number = name.rpartition(":")
        return f"/ui/models/{quote(model, safe='')}/versions/{quote(number, safe='')}"
    if kind in ("deployment", "endpoint"):
        return f"/ui/endpoints/{quote(name.partition('/')[0], safe='')}"
    if kind == "job":
        return f"/ui/jobs/{quote(name, safe='')}"
    if kind in ("data", "environment", "pipeline"):
        asset = name.rpartition(":")[0] or name
        return f"/ui/audit?entity={quote(f'{kind}:{asset}', safe=':')}"
    return ""


def lineage_picture(
    up: LineageGraph, down: LineageGraph, svg_id: str = "lineage-graph"
) -> LineagePicture:
    """The graph of ``up`` (walked upstream of a node) and ``down`` (downstream of it)."""
    distances = {node: -depth for node, depth in up.nodes.items()}
    distances.update({node: depth for node, depth in down.nodes.items() if node not in distances})
    edges = list(dict.fromkeys(LineageEdge(*edge) for edge in [*up.edges, *down.edges]))
    edges = [edge for edge in edges if edge.src in distances and edge.dst in distances]
    columns, routes = _layout(list(distances), edges)
    nodes = {
        node: LineageNode(node, node.partition(":")[0], node.partition(":")[2],
                          distances[node], node_href(node))
        for column in columns
        for node in column
        if node in distances
    }  # fmt: skip
    svg = _draw(up.root, columns, nodes, routes, svg_id)
    return LineagePicture(up.root, list(nodes.values()), edges, svg)


def _layout(
    nodes: list[str], edges: list[LineageEdge]
) -> tuple[list[list[str]], dict[LineageEdge, list[str]]]:
    """The nodes in columns by their longest path from a source, and each edge's route: a
    waypoint in every column it crosses, so that it passes between the nodes there, not
    behind them. Each column is ordered by where its nodes' predecessors are (fewer
    crossings), then by kind (waypoints last) and name."""
    successors: dict[str, list[str]] = defaultdict(list)
    predecessors: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        if edge.src != edge.dst:
            successors[edge.src].append(edge.dst)
            predecessors[edge.dst].append(edge.src)
    layer = _longest_path_layers(nodes, successors, predecessors)
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for node in nodes:
        columns[layer[node]].append(node)
    before: dict[str, list[str]] = defaultdict(list)  # predecessors, waypoints included
    routes: dict[LineageEdge, list[str]] = {}
    for number, edge in enumerate(edges):
        crossed = range(layer[edge.src] + 1, layer[edge.dst])
        routes[edge] = [f"{WAYPOINT}{number}:{crossing}" for crossing in crossed]
        for crossing, waypoint in zip(crossed, routes[edge], strict=True):
            columns[crossing].append(waypoint)
        hops = [edge.src, *routes[edge], edge.dst]
        for src, dst in pairwise(hops):
            before[dst].append(src)
    row: dict[str, float] = {}
    for column in columns:

        def place(node: str) -> tuple[float, int, str]:
            placed = [row[p] for p in before[node] if p in row]
            centre = sum(placed) / len(placed) if placed else 0.0
            kind = node.partition(":")[0]
            rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
            return centre, rank + node.startswith(WAYPOINT), node

        column.sort(key=place)
        row.update({node: float(index) for index, node in enumerate(column)})
    return columns, routes


def _longest_path_layers(
    nodes: list[str], successors: dict[str, list[str]], predecessors: dict[str, list[str]]
) -> dict[str, int]:
    """Each node's column: one past its furthest predecessor (topological order; a node
    on a cycle, which provenance never makes, goes where its placed predecessors say)."""
    waiting = {node: len(set(predecessors[node])) for node in nodes}
    layer = dict.fromkeys(nodes, 0)
    ready = [node for node in nodes if waiting[node] == 0]
    done: set[str] = set()
    while len(done) < len(nodes):
        if not ready:  # a cycle: release the first node still waiting
            ready = [next(node for node in nodes if node not in done)]
        node = ready.pop()
        if node in done:
            continue
        done.add(node)
        for after in set(successors[node]):
            if after in layer and after not in done:
                layer[after] = max(layer[after], layer[node] + 1)
                waiting[after] -= 1
                if waiting[after] == 0:
                    ready.append(after)
    return layer


def _draw(
    root: str,
    columns: list[list[str]],
    nodes: dict[str, LineageNode],
    routes: dict[LineageEdge, list[str]],
    svg_id: str,
) -> Markup:
    tallest = max((len(column) for column in columns), default=1)
    width = 2 * PAD + len(columns) * NODE_W + max(len(columns) - 1, 0) * COL_GAP
    height = 2 * PAD + tallest * NODE_H + (tallest - 1) * ROW_GAP
    at: dict[str, tuple[int, int]] = {}
    for index, column in enumerate(columns):
        top = PAD + (tallest - len(column)) * (NODE_H + ROW_GAP) // 2
        for row, node in enumerate(column):
            at[node] = (PAD + index * (NODE_W + COL_GAP), top + row * (NODE_H + ROW_GAP))
    arrow = f"{svg_id}-arrow"
    label = f"Lineage of {root}: {len(nodes)} nodes, {len(routes)} edges"
    parts = [
        f'<svg id={quoteattr(svg_id)} class="lineage" role="group" aria-label={quoteattr(label)} '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        arrow_marker(arrow, tip_x=10, size=7),
    ]
    parts += [_edge(edge, [at[hop] for hop in route], at, arrow) for edge, route in routes.items()]
    parts += [_node(node, *at[node.node], current=node.node == root) for node in nodes.values()]
    parts.append("</svg>")
    return Markup("".join(parts))


def _edge(
    edge: LineageEdge, waypoints: list[tuple[int, int]], at: dict[str, tuple[int, int]], arrow: str
) -> str:
    """An edge from the right of its source to the left of its target, straight through
    each waypoint and curved between them."""
    (x1, y1), (x2, y2) = at[edge.src], at[edge.dst]
    points = [(x1 + NODE_W, y1)]
    for x, y in waypoints:
        points += [(x, y), (x + NODE_W, y)]
    points.append((x2, y2))
    path = [f"M{points[0][0]},{points[0][1] + NODE_H // 2}"]
    for (xa, ya), (xb, yb) in pairwise(points):
        ya, yb = ya + NODE_H // 2, yb + NODE_H // 2
        if len(path) % 2:  # from a node's (or waypoint's) right to the next one's left
            bend = max((xb - xa) // 2, COL_GAP // 2)
            path.append(f"C{xa + bend},{ya} {xb - bend},{yb} {xb},{yb}")
        else:
            path.append(f"L{xb},{yb}")
    title = f"{edge.src} → {edge.dst}: {edge.relation}"
    return (
        f'<g class="edge" data-from={quoteattr(edge.src)} data-to={quoteattr(edge.dst)} '
        f"data-relation={quoteattr(edge.relation)}><title>{escape(title)}</title>"
        f'<path d="{" ".join(path)}" marker-end="url(#{escape(arrow)})"/></g>'
    )


def _node(node: LineageNode, x: int, y: int, *, current: bool) -> str:
    classes = f"node kind-{node.kind}" + (" current" if current else "")
    title = f"{node.kind_label} {node.name}" + (" (this version)" if current else "")
    name = escape(shorten(node.name, NAME_CHARS))
    shape = (
        f"<g class={quoteattr(classes)} data-node={quoteattr(node.node)}>"
        f"<title>{escape(title)}</title>"
        f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
        f'<text class="kind" x="{x + 10}" y="{y + 17}">{escape(node.kind_label)}</text>'
        f'<text class="name" x="{x + 10}" y="{y + 35}">{name}</text></g>'
    )
    if not node.href:
        return shape
    here = ' aria-current="page"' if current else ""
    return f"<a href={quoteattr(node.href)}{here}>{shape}</a>"
