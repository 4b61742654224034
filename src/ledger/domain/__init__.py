"""Domain aggregates of the ledger; each event records actor, reason and correlation."""

from ledger.domain.approval import Approval
from ledger.domain.base import EventMeta, LedgerAggregate, acting, aggregate_id
from ledger.domain.batch_job import BatchJob
from ledger.domain.data_asset import DataAsset
from ledger.domain.endpoint import Endpoint
from ledger.domain.environment import Environment
from ledger.domain.experiment import Experiment, ExperimentDirectory
from ledger.domain.garbage_collector import GarbageCollector
from ledger.domain.job import Job
from ledger.domain.logged_model import LoggedModel
from ledger.domain.model import Model, ModelVersion
from ledger.domain.monitor import Monitor
from ledger.domain.pipeline import Pipeline
from ledger.domain.rule import Rule
from ledger.domain.run import Run
from ledger.domain.token import ApiToken
from ledger.domain.tracked_artifact import TrackedArtifact
from ledger.domain.webhook import Webhook

__all__ = [
    "ApiToken",
    "Approval",
    "BatchJob",
    "DataAsset",
    "Endpoint",
    "Environment",
    "EventMeta",
    "Experiment",
    "ExperimentDirectory",
    "GarbageCollector",
    "Job",
    "LedgerAggregate",
    "LoggedModel",
    "Model",
    "ModelVersion",
    "Monitor",
    "Pipeline",
    "Rule",
    "Run",
    "TrackedArtifact",
    "Webhook",
    "acting",
    "aggregate_id",
]
