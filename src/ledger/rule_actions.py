"""A rule's actions as data: planned from its rendered ``do`` block, summarized in a line.
(They run in ``executors.rules.actions``.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.errors import InvalidInputError
from ledger.rule_spec import ACTIONS

Action = dict[str, Any]


def plan_actions(do: Mapping[str, Any], context: Mapping[str, Any]) -> list[Action]:
    """The actions of a rendered ``do`` block, each a dict naming its ``action``.
    ``traffic`` acts on the endpoint the rule deploys to, else on the event's endpoint."""
    actions: list[Action] = []
    for kind in ACTIONS:  # the order actions run in, whatever order the file lists them
        value = do.get(kind)
        if value is None:
            continue
        if kind == "run_pipeline":
            actions.append({"action": kind, "pipeline": value, "params": do.get("params") or {}})
        elif kind == "traffic":
            endpoint = (do.get("deploy") or {}).get("endpoint") or _event_endpoint(context)
            actions.append({"action": kind, "endpoint": endpoint, "weights": dict(value)})
        elif kind == "webhook":
            actions.append({"action": kind, "name": value})
        else:
            actions.append(_versioned({"action": kind, **dict(value)}))
    return actions


def _versioned(action: Action) -> Action:
    """The action with its rendered ``version`` (if any) as a number; refused if not one."""
    version = action.get("version")
    if version is None or (version == "" and action["action"] != "set_alias"):
        return action
    whole = isinstance(version, int) or (isinstance(version, str) and version.strip().isdigit())
    if isinstance(version, bool) or not whole or int(version) < 1:
        raise InvalidInputError(f"{action['action']}: version {version!r} is not a version number")
    number = int(version)
    return {**action, "version": number}


def _event_endpoint(context: Mapping[str, Any]) -> str:
    endpoint = context.get("endpoint")
    if isinstance(endpoint, Mapping) and endpoint.get("name"):
        return str(endpoint["name"])
    raise InvalidInputError(
        "traffic needs an endpoint: deploy to one in the same rule, or react to an endpoint event"
    )


def model_ref(action: Action) -> str:
    version = action.get("version")
    return f"{action['model']}:{version}" if version not in (None, "") else str(action["model"])


def summary(action: Action) -> str:
    """One line saying what the action does, for firings and approvals."""
    kind = action["action"]
    if kind == "run_pipeline":
        params = ", ".join(f"{k}={v}" for k, v in action["params"].items())
        return f"run_pipeline {action['pipeline']}" + (f" ({params})" if params else "")
    if kind == "set_alias":
        return f"set_alias {action['model']}@{action['alias']} -> {action['version']}"
    if kind == "remove_alias":
        return f"remove_alias {action['model']}@{action['alias']}"
    if kind == "set_tag":
        return f"set_tag {model_ref(action)} {action['key']}={action['value']}"
    if kind == "remove_tag":
        return f"remove_tag {model_ref(action)} {action['key']}"
    if kind == "deploy":
        return f"deploy {action['model']} to {action['endpoint']}/{action['deployment']}"
    if kind == "traffic":
        weights = ", ".join(f"{k}={v}" for k, v in action["weights"].items())
        return f"traffic {action['endpoint']}: {weights}"
    return f"webhook {action['name']}"
