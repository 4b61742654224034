"""`ledger webhook ...`: subscriptions that POST the ledger's events, signed, to a URL;
their delivery log, dead letters and redeliveries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ledger.cli.context import (
    AsJson,
    Reason,
    console,
    load_settings,
    open_ledger,
    open_views,
    print_json,
)
from ledger.errors import InvalidInputError
from ledger.storage.webhook_tables import list_deliveries

app = typer.Typer(
    help="Webhooks: the ledger's events POSTed as signed CloudEvents to a URL.",
    no_args_is_help=True,
)
Events = Annotated[
    list[str] | None,
    typer.Option("--events", "-e", help="Subject pattern, e.g. 'ledger.model_version.*' "
                 "(repeatable)"),
]  # fmt: skip
Filter = Annotated[
    str | None,
    typer.Option("--filter", help="Only events for which this holds, e.g. "
                 "\"data.tags.stage in [candidate]\""),
]  # fmt: skip
SecretFile = Annotated[
    Path | None,
    typer.Option("--secret-file", help="A file holding the whsec_ signing secret "
                 "(default: one is generated and printed once)"),
]  # fmt: skip


def read_secret_file(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text().strip()
    except OSError as error:
        raise InvalidInputError(f"cannot read the secret file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"the secret file {path} is not UTF-8 text: it holds the whsec_ secret"
        ) from None


@app.command()
def create(
    name: str,
    url: str,
    events: Events = None,
    filter: Filter = None,
    secret_file: SecretFile = None,
    description: Annotated[str, typer.Option(help="What it is for")] = "",
    reason: Reason = "",
) -> None:
    """Subscribe URL to the events matching --events (and --filter)."""
    with open_ledger() as ledger:
        created = ledger.webhooks.create(
            name,
            url=url,
            events=list(events or []),
            filter=filter or "",
            secret=read_secret_file(secret_file),
            description=description,
            reason=reason,
        )
    console.print(f"Created webhook [bold]{name}[/] -> {escape(url)}")
    if secret_file is None:
        console.print(f"Signing secret (shown once): [bold]{created.secret}[/]")
    console.print("Deliveries start with `ledger automation` running.")


@app.command("list")
def list_webhooks(
    deleted: Annotated[bool, typer.Option("--deleted", help="Deleted ones too")] = False,
    as_json: AsJson = False,
) -> None:
    """Webhook subscriptions."""
    with open_views() as views:
        webhooks = views.webhooks(deleted=deleted)
    if as_json:
        print_json(webhooks)
        return
    table = Table("webhook", "url", "events", "filter", "state", "created by", "secret")
    for webhook in webhooks:
        table.add_row(
            webhook["name"],
            escape(webhook["url"]),
            ", ".join(webhook["events"]),
            escape(webhook["filter"]) or "-",
            _state(webhook),
            webhook["created_by"],
            webhook["secret_fingerprint"],
        )
    console.print(table)


@app.command()
def show(
    name: str,
    limit: Annotated[int, typer.Option(help="Recent deliveries shown")] = 10,
    as_json: AsJson = False,
) -> None:
    """A webhook's settings and its recent deliveries."""
    with open_views() as views:
        webhook = views.webhook(name)
        recent = list_deliveries(views.db, name, limit=limit)
    if as_json:
        print_json(webhook | {"deliveries": recent})
        return
    console.print(f"webhook [bold]{name}[/] -> {escape(webhook['url'])} ({_state(webhook)})")
    console.print(
        f"  events: {', '.join(webhook['events'])}; filter: {escape(webhook['filter']) or '-'}"
    )
    console.print(f"  secret fingerprint {webhook['secret_fingerprint']}; created by "
                  f"{webhook['created_by']} at {webhook['created_at']}")  # fmt: skip
    if webhook["description"]:
        console.print(f"  {escape(webhook['description'])}")
    print_deliveries(recent)


@app.command()
def deliveries(
    name: str,
    dead: Annotated[bool, typer.Option("--dead", help="Only dead letters not redelivered")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many")] = 50,
    as_json: AsJson = False,
) -> None:
    """The webhook's delivery log, the latest first: every attempt with its answer."""
    with open_views() as views:
        views.webhook(name)  # NotFoundError for an unknown webhook
        rows = list_deliveries(views.db, name, dead=dead, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_deliveries(rows)


def print_deliveries(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("  no deliveries")
        return
    table = Table("at", "event", "attempt", "status", "latency ms", "outcome", "answer / error")
    for row in rows:
        table.add_row(
            row["at"],
            row["event_id"],
            str(row["attempt"]),
            str(row["status_code"] or "-"),
            f"{row['latency_ms']:.1f}",
            _outcome(row["outcome"]),
            escape((row["error"] or row["response_head"])[:80]),
        )
    console.print(table)


@app.command()
def test(name: str, as_json: AsJson = False) -> None:
    """Send a signed ping (type ledger.webhook.ping) now and show the answer."""
    from executors.webhooks.ping import send_ping  # the CLI's other commands never load it

    with open_views() as views:
        webhook = views.webhook(name)
    attempt = send_ping(load_settings(), webhook)
    if as_json:
        print_json({"status_code": attempt.status_code, "latency_ms": attempt.latency_ms,
                    "outcome": attempt.outcome, "error": attempt.error})  # fmt: skip
    else:
        console.print(
            f"ping {attempt.event_id}: {_outcome(attempt.outcome)}, status "
            f"{attempt.status_code or '-'}, {attempt.latency_ms:.1f} ms"
            + (f" ({escape(attempt.error)})" if attempt.error else "")
        )
    if attempt.outcome != "delivered":
        raise typer.Exit(1)


@app.command()
def update(
    name: str,
    url: Annotated[str | None, typer.Option(help="A new URL")] = None,
    events: Events = None,
    filter: Filter = None,
    secret_file: SecretFile = None,
    description: Annotated[str | None, typer.Option(help="What it is for")] = None,
    reason: Reason = "",
) -> None:
    """Change a webhook's URL, events, filter (\"\" for none), secret or description."""
    with open_ledger() as ledger:
        ledger.webhooks.update(
            name,
            url=url,
            events=list(events) if events else None,
            filter=filter,
            secret=read_secret_file(secret_file) if secret_file else None,
            description=description,
            reason=reason,
        )
    console.print(f"Updated webhook [bold]{name}[/]")


@app.command()
def pause(name: str, reason: Reason = "") -> None:
    """Hold deliveries (events wait; they are sent after resume)."""
    with open_ledger() as ledger:
        ledger.webhooks.pause(name, reason=reason)
    console.print(f"Paused webhook [bold]{name}[/]")


@app.command()
def resume(name: str, reason: Reason = "") -> None:
    """Deliver again, from where deliveries stopped."""
    with open_ledger() as ledger:
        ledger.webhooks.resume(name, reason=reason)
    console.print(f"Resumed webhook [bold]{name}[/]")


@app.command()
def delete(name: str, reason: Reason = "") -> None:
    """End the subscription (its history and delivery log stay; the name is not reused)."""
    with open_ledger() as ledger:
        ledger.webhooks.delete(name, reason=reason)
    console.print(f"Deleted webhook [bold]{name}[/]")


@app.command()
def redeliver(name: str, event_id: str, reason: Reason = "") -> None:
    """Send the ledger event EVENT_ID to the webhook once more (same webhook-id)."""
    with open_ledger() as ledger:
        ledger.webhooks.request_redelivery(name, event_id, reason=reason)
    console.print(f"Redelivery of {event_id} to [bold]{name}[/] requested")


def _state(webhook: dict[str, Any]) -> str:
    state = str(webhook["state"])
    if state == "paused":
        return f"[yellow]paused ({webhook['pause_cause']})[/]"
    return "[green]active[/]" if state == "active" else f"[dim]{state}[/]"


def _outcome(outcome: str) -> str:
    colour = {"delivered": "green", "retrying": "yellow", "dead": "red", "gone": "red"}
    return f"[{colour.get(outcome, 'white')}]{outcome}[/]"
