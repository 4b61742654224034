"""Pictures drawn on the server as SVG: lineage graphs, pipeline DAGs, charts."""
