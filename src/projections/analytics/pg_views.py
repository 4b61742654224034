"""The ``analytics`` schema on PostgreSQL: stable, documented SQL views for BI tools.

Each view (``catalog.DATASETS``: names, columns, ``COMMENT``s) selects from a SQL function
whose body names the ledger's tables as text. PostgreSQL records no dependency on tables
named inside a function's text, so the ledger may still drop and rebuild its view tables
(``ledger projections rebuild``, a release that changes a view): the analytics views
read the new tables. ``create_analytics_schema`` is idempotent: it replaces them all.
"""

from __future__ import annotations

import re

from ledger.errors import InvalidInputError
from ledger.storage.database import LedgerDatabase
from projections.analytics import catalog
from projections.analytics.deployments_over_time import DEPLOYMENT_FIELDS
from projections.analytics.derived import SPLIT_CHANGES
from projections.tables import OPEN

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TIME = "{a}._time"  # microseconds since the epoch -> timestamptz

_SPLITS = " ".join(f"WHEN '{t}' THEN '{kind}'" for t, (kind, _) in SPLIT_CHANGES.items())
_FIELDS = " ".join(f"WHEN '{t}' THEN '{field}'" for t, (_, field) in SPLIT_CHANGES.items())
_STATE = ", ".join(
    f"(r ->> {index}){'::bigint' if name in ('version', 'traffic', 'mirror') else ''} AS {name}"
    for name, index in DEPLOYMENT_FIELDS.items()
)
_CHANGED = " AND ".join(
    f"lag({name}) OVER w = {name}" for name in ("model", "version", "traffic", "mirror")
)

BODIES = {
    "models": f"""
SELECT m.name, m.description, m.latest_version, {_TIME}(m.created_at_us), m.created_by,
  {_TIME}(m.updated_at_us),
  coalesce((SELECT jsonb_object_agg(t.key, t.value) FROM {{s}}.ledger_view_model_tags t
            WHERE t.model = m.name), '{{}}'::jsonb),
  coalesce((SELECT jsonb_object_agg(a.alias, a.version) FROM {{s}}.ledger_view_aliases a
            WHERE a.model = m.name), '{{}}'::jsonb)
FROM {{s}}.ledger_view_models m""",
    "model_versions": f"""
SELECT v.model, v.version, v.flavor, v.status, sp.description, {_TIME}(v.created_at_us),
  v.created_by, v.created_position, coalesce(sp.spec::jsonb -> 'metrics', '{{}}'::jsonb),
  coalesce((SELECT jsonb_object_agg(t.key, t.value) FROM {{s}}.ledger_view_version_tags t
            WHERE t.model = v.model AND t.version = v.version), '{{}}'::jsonb),
  sp.run_id, sp.source
FROM {{s}}.ledger_view_versions v
LEFT JOIN {{s}}.ledger_view_version_specs sp ON sp.model = v.model AND sp.version = v.version""",
    # Consecutive states of a deployment's row that agree on what it served and its shares
    # (they differ in health or sampling) are one stretch: gaps and islands.
    "deployments_over_time": f"""
WITH states AS (
  SELECT {_STATE}, h.valid_from, h.valid_to
  FROM {{s}}.ledger_view_history h CROSS JOIN LATERAL (SELECT h.row::jsonb AS r) parsed
  WHERE h.tbl = 'ledger_view_deployments'
), marked AS (
  SELECT *, CASE WHEN lag(valid_to) OVER w = valid_from AND {_CHANGED} THEN 0 ELSE 1 END AS starts
  FROM states WINDOW w AS (PARTITION BY endpoint, deployment ORDER BY valid_from)
), numbered AS (
  SELECT *, sum(starts) OVER (PARTITION BY endpoint, deployment ORDER BY valid_from) AS stretch
  FROM marked
), merged AS (
  SELECT endpoint, deployment, model, version, traffic, mirror,
    min(valid_from) AS from_position, max(valid_to) AS to_position
  FROM numbered GROUP BY endpoint, deployment, stretch, model, version, traffic, mirror
)
SELECT m.endpoint, m.deployment, m.model, m.version, m.traffic, m.mirror,
  {_TIME}(f.time_us), {_TIME}(t.time_us), m.from_position, nullif(m.to_position, {OPEN})
FROM merged m
LEFT JOIN {{s}}.ledger_view_audit f ON f.position = m.from_position
LEFT JOIN {{s}}.ledger_view_audit t ON t.position = m.to_position""",
    # The split is read from the stored event (as stored: a later schema version of these
    # events would need its upcast here too).
    "traffic_changes": f"""
SELECT a.position, {_TIME}(a.time_us), a.name, CASE a.event_type {_SPLITS} END,
  convert_from(e.state, 'UTF8')::jsonb -> (CASE a.event_type {_FIELDS} END),
  a.actor, a.reason, a.correlation_id
FROM {{s}}.ledger_view_audit a JOIN {{s}}.ledger_events e ON e.notification_id = a.position
WHERE a.event_type IN ({", ".join(f"'{t}'" for t in SPLIT_CHANGES)})""",
    "jobs": f"""
SELECT j.id, CASE WHEN b.id IS NULL THEN 'pipeline' ELSE 'batch' END, j.pipeline, j.status,
  j.executor, j.worker, j.steps_total, j.steps_done, j.error, j.rerun_of, j.submitted_by,
  {_TIME}(j.submitted_at_us), {_TIME}(j.updated_at_us)
FROM {{s}}.ledger_view_jobs j LEFT JOIN {{s}}.ledger_view_batch_jobs b ON b.id = j.id""",
    "monitor_runs": f"""
SELECT w.monitor, w.position, m.endpoint, m.deployment, w.window_start, w.window_end, w.rows,
  w.drift_shares::jsonb, w.results::jsonb, {_TIME}(w.evaluated_at_us)
FROM {{s}}.ledger_view_monitor_windows w
LEFT JOIN {{s}}.ledger_view_monitors m ON m.name = w.monitor""",
}


def check_schema_name(schema: str, ledger_schema: str) -> None:
    if not _IDENTIFIER.match(schema):
        raise InvalidInputError(f"schema name {schema!r} must be a plain SQL identifier")
    if schema.lower() == ledger_schema.lower():
        raise InvalidInputError(
            f"the analytics schema must not be the ledger's own schema ({ledger_schema!r})"
        )


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def schema_statements(schema: str, ledger_schema: str) -> list[str]:
    """The statements that (re)create the analytics schema ``schema`` over the ledger's
    tables in ``ledger_schema``."""
    a, s = schema, ledger_schema
    statements = [
        f"CREATE SCHEMA IF NOT EXISTS {a}",
        f"COMMENT ON SCHEMA {a} IS "
        + _quoted("Lifecycle Ledger analytics: stable views for BI tools (ledger analytics init)"),
        f"CREATE OR REPLACE FUNCTION {a}._time(us bigint) RETURNS timestamptz LANGUAGE sql "
        "IMMUTABLE AS $$ SELECT timestamptz 'epoch' + us * interval '1 microsecond' $$",
    ]
    for dataset in catalog.DATASETS:
        view, function = f"{a}.{dataset.name}", f"{a}._{dataset.name}"
        columns = ", ".join(f'"{c.name}" {c.pg_type}' for c in dataset.columns)
        body = BODIES[dataset.name].replace("{a}", a).replace("{s}", s)
        statements += [
            f"DROP VIEW IF EXISTS {view}",
            f"DROP FUNCTION IF EXISTS {function}()",
            f"CREATE FUNCTION {function}() RETURNS TABLE ({columns}) LANGUAGE sql STABLE "
            f"AS $body${body}\n$body$",
            f"CREATE VIEW {view} AS SELECT * FROM {function}()",
            f"COMMENT ON VIEW {view} IS {_quoted(dataset.description)}",
            *(
                f'COMMENT ON COLUMN {view}."{c.name}" IS {_quoted(c.description)}'
                for c in dataset.columns
            ),
        ]
    return statements


def create_analytics_schema(db: LedgerDatabase, schema: str, ledger_schema: str) -> list[str]:
    """Create or replace the analytics views in ``schema`` (one transaction; processes
    doing it at once take turns); the names of the views."""
    if db.kind != "postgres":
        raise InvalidInputError(
            "the analytics schema is for PostgreSQL stores; on SQLite use `ledger export`"
        )
    check_schema_name(schema, ledger_schema)
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(hashtext('ledger-analytics'))")
        # One round trip, and no parameters: the text is sent as it is.
        db.execute_script(";\n".join(schema_statements(schema, ledger_schema)))
    return [dataset.name for dataset in catalog.DATASETS]
