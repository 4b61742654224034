"""The Ledger application: every lifecycle command, its rules, and atomic saves.

Commands load aggregates, let them decide (raising on broken rules, before
anything is written), and save every changed aggregate in one atomic
transaction. A write conflict with a concurrent writer re-runs the command on
fresh state (see ``LedgerCore._execute``).
"""

from __future__ import annotations

from ledger.commands.batch_jobs import BatchJobCommands
from ledger.commands.job_runs import JobRunCommands
from ledger.commands.tokens import TokenCommands


class Ledger(BatchJobCommands, JobRunCommands, TokenCommands):
    """Models, environments, data, pipelines, jobs, endpoints and API tokens, as one event log."""

    name = "Ledger"
