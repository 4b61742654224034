"""Analytics: the ledger's events and views for BI tools and notebooks.

``ledger export`` writes the events and every view as Parquet datasets to any artifact
store URL, or into a DuckDB file (``parquet_export``, ``duckdb_export``); on PostgreSQL,
``ledger analytics init`` creates a schema of stable SQL views over the ledger's tables
(``pg_views``). Both offer the same six analytics datasets (``catalog``).
"""
