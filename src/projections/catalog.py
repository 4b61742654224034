"""Every read model the ledger has, and a digest of each one's table definitions."""

from __future__ import annotations

import hashlib

from projections.assets import AssetsProjection
from projections.audit import AuditProjection
from projections.base import ReadModel
from projections.endpoints import EndpointsProjection
from projections.jobs import JobsProjection
from projections.lineage import LineageProjection
from projections.mlflow_tracking import MlflowProjection
from projections.monitors import MonitorsProjection
from projections.registry import RegistryProjection
from projections.rules import RulesProjection
from projections.tokens import TokensProjection
from projections.tracked_artifacts import TrackedArtifactsProjection
from projections.webhooks import WebhooksProjection


def all_read_models() -> list[ReadModel]:
    """One instance of every read model the ledger has."""
    return [
        RegistryProjection(),
        EndpointsProjection(),
        LineageProjection(),
        AuditProjection(),
        TokensProjection(),
        JobsProjection(),
        AssetsProjection(),
        MonitorsProjection(),
        WebhooksProjection(),
        RulesProjection(),
        TrackedArtifactsProjection(),
        MlflowProjection(),
    ]


def schema_fingerprint(read_model: ReadModel) -> str:
    """A digest of the read model's table definitions: it changes when they do."""
    statements = [
        statement
        for table in read_model.tables
        for statement in (table.create_table_statement(), *table.index_statements())
    ]
    return hashlib.sha256("\n".join(statements).encode()).hexdigest()[:16]
