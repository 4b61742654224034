"""`ledger rule ...` and `ledger approval ...`, `ledger approve`, `ledger reject`: declarative
rules reacting to the ledger's events, and the approvals they ask for."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from ledger.cli.context import AsJson, Reason, console, open_ledger, open_views, print_json
from ledger.errors import InvalidInputError
from ledger.rule_actions import summary
from ledger.rule_spec import parse_rules
from ledger.storage.database import LedgerDatabase

rule_app = typer.Typer(
    help="Rules: react to the ledger's events with actions.", no_args_is_help=True
)
approval_app = typer.Typer(help="Approvals rules ask for before acting.", no_args_is_help=True)
CLI_ROLE = "admin"  # the command line acts as the store's local administrator


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"cannot read rules file {path}: {error}") from None


@rule_app.command()
def apply(file: Path, reason: Reason = "") -> None:
    """Apply a rules file: each changed rule gets a new version, the others stay as they are."""
    specs = parse_rules(_read(file))
    with open_ledger() as ledger:
        result = ledger.rules.apply(specs, reason=reason)
    for spec in specs:  # in the file's order
        label = (
            "created"
            if spec.name in result.created
            else ("updated" if spec.name in result.updated else "unchanged")
        )
        console.print(f"{label:9} {spec.name}")


@rule_app.command("list")
def list_rules(as_json: AsJson = False) -> None:
    """Rules with their version, state and how often they fired or skipped."""
    with open_views() as views:
        rules = views.rules()
    if as_json:
        print_json(rules)
        return
    table = Table("rule", "version", "on", "enabled", "fired", "skipped", "last fired")
    for rule in rules:
        table.add_row(rule["name"], str(rule["version"]), rule["spec"]["on"],
                      "yes" if rule["enabled"] else "no", str(rule["fired"]),
                      str(rule["skipped"]), rule["last_fired_at"] or "-")  # fmt: skip
    console.print(table)


@rule_app.command()
def failed(as_json: AsJson = False) -> None:
    """Events the rule engine failed to judge and tries again (after its last attempt, each
    rule concerned records a skip with the error: see ``ledger rule history``)."""
    from executors.rules.inbox import failing  # the engine's side table

    with open_ledger() as ledger:
        db = LedgerDatabase(ledger.settings)
        try:
            events = failing(db)
        finally:
            db.close()
    if as_json:
        print_json(events)
        return
    if not events:
        console.print("No event is failing.")
        return
    table = Table("event", "attempts", "last error")
    for event in events:
        table.add_row(str(event["event_id"]), str(event["attempts"]), str(event["error"]))
    console.print(table)


@rule_app.command()
def show(name: str, as_json: AsJson = False) -> None:
    """A rule's spec (as YAML) and its recent firings."""
    with open_views() as views:
        rule = views.rule(name)
        firings = views.rule_firings(name, limit=10)
    if as_json:
        print_json(rule | {"firings": firings})
        return
    state = "enabled" if rule["enabled"] else "disabled"
    console.print(f"rule [bold]{name}[/] version {rule['version']}, {state}; "
                  f"fired {rule['fired']}, skipped {rule['skipped']}")  # fmt: skip
    console.print(yaml.safe_dump([_compact(rule["spec"])], sort_keys=False).rstrip(), markup=False)
    _print_firings(firings)


@rule_app.command()
def history(name: str, limit: int = 50, as_json: AsJson = False) -> None:
    """Every event the rule fired on or skipped, with the reason, the latest first."""
    with open_views() as views:
        firings = views.rule_firings(name, limit=limit)
    if as_json:
        print_json(firings)
        return
    _print_firings(firings)


def _compact(value: Any) -> Any:
    """The spec without what was left unset (None, empty), as one would write it."""
    if isinstance(value, dict):
        kept = {k: _compact(v) for k, v in value.items() if k != "cooldown_s" or v}
        return {k: v for k, v in kept.items() if v is not None and v != {} and v != ""}
    return value


def _print_firings(firings: list[dict[str, Any]]) -> None:
    if not firings:
        console.print("no firings yet")
        return
    table = Table("time", "event", "outcome", "actions / reason", "approval")
    for firing in firings:
        said = "; ".join(firing["actions"]) if firing["outcome"] == "fired" else firing["reason"]
        table.add_row(firing["time"], f"{firing['subject']} {firing['event_id']}",
                      firing["outcome"], said, firing["approval_id"] or "-")  # fmt: skip
    console.print(table)


@rule_app.command()
def disable(name: str, reason: Reason = "") -> None:
    """Stop a rule from acting (its history stays)."""
    with open_ledger() as ledger:
        ledger.rules.disable(name, reason=reason)
    console.print(f"Disabled rule [bold]{name}[/]")


@rule_app.command()
def enable(name: str, reason: Reason = "") -> None:
    """Let a disabled rule act again (on events from now on)."""
    with open_ledger() as ledger:
        ledger.rules.enable(name, reason=reason)
    console.print(f"Enabled rule [bold]{name}[/]")


@approval_app.command("list")
def list_approvals(
    show_all: Annotated[bool, typer.Option("--all", help="Decided ones too")] = False,
    as_json: AsJson = False,
) -> None:
    """Pending approvals (with --all: approved, rejected and expired ones too)."""
    with open_views() as views:
        approvals = views.approvals("" if show_all else "pending")
    if as_json:
        print_json(approvals)
        return
    table = Table("id", "rule", "role", "state", "actions", "expires", "decided by")
    for approval in approvals:
        table.add_row(approval["short_id"], approval["rule"], approval["role"],
                      approval["state"], _actions(approval), approval["expires_at"],
                      approval["decided_by"] or "-")  # fmt: skip
    console.print(table)


def _actions(approval: dict[str, Any]) -> str:
    return "; ".join(summary(action) for action in approval["actions"])


@approval_app.command("show")
def show_approval(approval_id: str, as_json: AsJson = False) -> None:
    """One approval: the rule, the event, the held actions and the decision."""
    with open_views() as views:
        approval = views.approval(approval_id)
    if as_json:
        print_json(approval)
        return
    console.print(f"approval [bold]{approval['short_id']}[/] ({approval['state']}) of rule "
                  f"{approval['rule']} v{approval['rule_version']}, for event "
                  f"{approval['event_id']}; needs a {approval['role']}")  # fmt: skip
    console.print(f"  actions: {_actions(approval)}")
    console.print(f"  expires: {approval['expires_at']}")
    if approval["decided_by"]:
        console.print(f"  {approval['state']} by {approval['decided_by']}: {approval['reason']}")


def _decide(approval_id: str, reason: str, *, approve: bool) -> None:
    with open_views() as views:
        approval = views.approval(approval_id)
    full = str(uuid.UUID(str(approval["id"])))
    with open_ledger() as ledger:
        if approve:
            ledger.approvals.approve(full, role=CLI_ROLE, reason=reason)
        else:
            ledger.approvals.reject(full, role=CLI_ROLE, reason=reason)
    verb = "Approved" if approve else "Rejected"
    console.print(f"{verb} [bold]{approval['short_id']}[/] of rule {approval['rule']}")


def approve(
    approval_id: str,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded)")],
) -> None:
    """Approve a pending approval: the rule engine then runs its actions."""
    _decide(approval_id, reason, approve=True)


def reject(
    approval_id: str,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded)")],
) -> None:
    """Reject a pending approval: its actions never run."""
    _decide(approval_id, reason, approve=False)
