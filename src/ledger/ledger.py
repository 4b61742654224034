"""The Ledger: the application with its command groups, the one object users construct.

ledger = Ledger(settings)
ledger.models.register_version("iris", path)
ledger.endpoints.deploy("shop", "blue", "iris:1")
ledger.jobs.submit("train:1")
"""

from __future__ import annotations

from typing import Any, ClassVar

from ledger.application import LedgerApplication
from ledger.commands.approvals import ApprovalCommands
from ledger.commands.assets import AssetCommands
from ledger.commands.batch_jobs import BatchJobCommands
from ledger.commands.endpoints import EndpointCommands
from ledger.commands.experiments import ExperimentCommands
from ledger.commands.gc import GcCommands
from ledger.commands.job_runs import JobRunCommands
from ledger.commands.jobs import JobCommands
from ledger.commands.logged_models import LoggedModelCommands
from ledger.commands.lookups import Lookups
from ledger.commands.models import ModelCommands
from ledger.commands.monitors import MonitorCommands
from ledger.commands.rules import RuleCommands
from ledger.commands.runs import RunCommands
from ledger.commands.tokens import TokenCommands
from ledger.commands.tracked_artifacts import TrackedArtifactCommands
from ledger.commands.webhooks import WebhookCommands
from ledger.domain import (
    ApiToken,
    Approval,
    BatchJob,
    DataAsset,
    Endpoint,
    Environment,
    Experiment,
    ExperimentDirectory,
    GarbageCollector,
    Job,
    LoggedModel,
    Model,
    ModelVersion,
    Monitor,
    Pipeline,
    Rule,
    Run,
    TrackedArtifact,
    Webhook,
)
from ledger.settings import Settings


class Ledger(LedgerApplication):
    """Models, environments, data, pipelines, jobs, endpoints, API tokens and MLflow tracking
    (experiments, runs, logged models), as one event log."""

    # Loading an aggregate never replays more than this many events.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = dict.fromkeys(
        (
            Model,
            ModelVersion,
            Endpoint,
            Environment,
            DataAsset,
            Pipeline,
            Job,
            BatchJob,
            ApiToken,
            Monitor,
            Webhook,
            Rule,
            Approval,
            TrackedArtifact,
            Experiment,
            ExperimentDirectory,
            Run,
            LoggedModel,
            GarbageCollector,
        ),
        100,
    )

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        lookups = Lookups(self)
        self.models = ModelCommands(self, lookups)
        self.endpoints = EndpointCommands(self, lookups)
        self.assets = AssetCommands(self, lookups)
        self.jobs = JobCommands(self, lookups)
        self.job_runs = JobRunCommands(self, lookups)
        self.batch_jobs = BatchJobCommands(self, lookups)
        self.monitors = MonitorCommands(self, lookups)
        self.tokens = TokenCommands(self)
        self.webhooks = WebhookCommands(self)
        self.rules = RuleCommands(self)
        self.approvals = ApprovalCommands(self)
        self.tracked_artifacts = TrackedArtifactCommands(self)
        self.experiments = ExperimentCommands(self)
        self.runs = RunCommands(self)
        self.logged_models = LoggedModelCommands(self)
        self.gc = GcCommands(self)
