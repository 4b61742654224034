"""A rule's actions, run through the ledger's commands."""

from __future__ import annotations

from ledger.ledger import Ledger
from ledger.rule_actions import Action, model_ref, summary


def perform(ledger: Ledger, action: Action, event_id: str) -> str:
    """Run one action through the ledger's commands; what it did, in one line."""
    kind = action["action"]
    if kind == "run_pipeline":
        job = ledger.jobs.submit(str(action["pipeline"]), parameters=dict(action["params"]))
        return f"{summary(action)}: job {job.id}"
    if kind == "set_alias":
        ledger.models.set_alias(str(action["model"]), str(action["alias"]), int(action["version"]))
    elif kind == "remove_alias":
        ledger.models.remove_alias(str(action["model"]), str(action["alias"]))
    elif kind == "set_tag":
        ledger.models.set_tags(model_ref(action), {str(action["key"]): str(action["value"])})
    elif kind == "remove_tag":
        ledger.models.remove_tags(model_ref(action), [str(action["key"])])
    elif kind == "deploy":
        ledger.endpoints.deploy(
            str(action["endpoint"]),
            str(action["deployment"]),
            str(action["model"]),
            environment=str(action.get("environment") or ""),
        )
    elif kind == "traffic":
        weights = {str(name): int(share) for name, share in action["weights"].items()}
        ledger.endpoints.set_traffic(str(action["endpoint"]), weights)
    else:
        ledger.webhooks.request_redelivery(str(action["name"]), event_id)
    return summary(action)
