"""Which data a model version was trained on, found through the lineage view."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.lineage import node_id

if TYPE_CHECKING:
    from projections.views import Views

LINEAGE_DEPTH = 8
"""How far upstream of a model version its training data is looked for (a model made by
a job that read the data is two edges away; a derived model, a few more)."""


def training_data(views: Views, model_ref: str) -> str | None:
    """The data asset version (``NAME:VERSION``) model version ``model_ref`` (``name``,
    ``name:3`` or ``name@alias``) was trained on: the nearest data node upstream of it in
    the lineage graph, the first recorded among equally near ones; None when it has none.
    """
    version = views.version(model_ref)
    graph = views.lineage(
        node_id("model", version["ref"]), direction="upstream", depth=LINEAGE_DEPTH
    )
    data = [(depth, node) for node, depth in graph.nodes.items() if node.startswith("data:")]
    if not data:
        return None
    nearest = min(depth for depth, _ in data)
    return next(node for depth, node in data if depth == nearest).removeprefix("data:")
