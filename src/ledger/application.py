"""The Ledger application: every lifecycle command, its rules, and atomic saves.

Commands load aggregates, let them decide (raising on broken rules, before
anything is written), and save every changed aggregate in one atomic
transaction. A write conflict with a concurrent writer re-runs the command on
fresh state (see ``LedgerCore._execute``).
"""

from __future__ import annotations

from ledger.commands.endpoints import EndpointCommands


class Ledger(EndpointCommands):
    """Models, environments, data, pipelines, jobs and endpoints, as one event log."""

    name = "Ledger"
