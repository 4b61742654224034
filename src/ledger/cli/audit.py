"""`ledger history|audit|lineage|as-of`: reading the whole history from the views."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ledger.cli.context import AsJson, console, open_views, parse_moment, print_events, print_json
from ledger.errors import InvalidInputError, NotFoundError
from projections.audit import ENTITY_KINDS, AuditQuery, check_entity_kind, parse_entity_filter
from projections.lineage import NODE_KINDS
from projections.views import PointInTime, Views


def history(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(ENTITY_KINDS)}")],
    name: Annotated[
        str,
        typer.Argument(help="Entity name (model version: NAME:N; job: its id, pipeline or batch)"),
    ],
    as_json: AsJson = False,
) -> None:
    """Every event of an entity (a model: with its versions), in log order."""
    check_entity_kind(kind)
    with open_views() as views:
        rows = _all_pages(views, AuditQuery(kind=kind, name=name, limit=1000))
    if not rows:
        raise NotFoundError(f"no events for {kind} {name!r}")
    if as_json:
        print_json(rows)
    else:
        print_events(rows)


def audit(
    actor: Annotated[str, typer.Option(help="Who acted")] = "",
    event_type: Annotated[
        str, typer.Option("--type", help="Event type: Registered, or ModelVersion.Registered")
    ] = "",
    entity: Annotated[
        str, typer.Option(help="KIND or KIND:NAME, e.g. endpoint:shop (model:NAME: with versions)")
    ] = "",
    correlation: Annotated[str, typer.Option(help="Correlation id of one request")] = "",
    since: Annotated[str, typer.Option(help="At or after this time (ISO 8601)")] = "",
    until: Annotated[str, typer.Option(help="Before this time (ISO 8601)")] = "",
    after: Annotated[int, typer.Option(help="Only events after this log position")] = 0,
    limit: Annotated[int, typer.Option(help="Events per page")] = 100,
    page_token: Annotated[str, typer.Option("--page", help="next_token of the last page")] = "",
    as_json: AsJson = False,
) -> None:
    """Who did what, when and why: events matching every filter given, in log order."""
    kind, name = parse_entity_filter(entity)
    query = AuditQuery(
        actor=actor,
        event_type=event_type,
        kind=kind,
        name=name,
        correlation_id=correlation,
        since=parse_moment(since, "--since") if since else None,
        until=parse_moment(until, "--until") if until else None,
        after_position=after,
        limit=limit,
        page_token=page_token,
    )
    with open_views() as views:
        page = views.audit(query)
    if as_json:
        print_json(page.to_dict())
        return
    print_events(page.items)
    if page.next_token:
        console.print(f"more: --page {page.next_token}", highlight=False)


def lineage(
    node: Annotated[
        str, typer.Argument(help=f"KIND:NAME[:VERSION], kind one of {', '.join(NODE_KINDS)}")
    ],
    downstream: Annotated[
        bool, typer.Option("--downstream", help="What came of it (default: where it came from)")
    ] = False,
    depth: Annotated[int, typer.Option(help="Edges to follow at most")] = 3,
    as_json: AsJson = False,
) -> None:
    """Where a node came from (upstream) or what came of it (downstream)."""
    direction = "downstream" if downstream else "upstream"
    with open_views() as views:
        graph = views.lineage(node, direction=direction, depth=depth)
    if as_json:
        print_json(graph.to_dict())
        return
    table = Table("depth", "node", "relation", title=f"{direction} of {node}")
    reached_by: dict[str, str] = {}  # how each node was first reached
    for src, dst, relation in graph.edges:
        if downstream:
            reached_by.setdefault(dst, f"{src} -{relation}->")
        else:
            reached_by.setdefault(src, f"-{relation}-> {dst}")
    for name, level in graph.nodes.items():
        table.add_row(str(level), name, reached_by.get(name, "") if level else "")
    console.print(table)


def as_of(
    moment: Annotated[str, typer.Argument(help="ISO 8601 time, or a log position (a number)")],
    model: Annotated[str, typer.Option(help="Only this model")] = "",
    endpoint: Annotated[str, typer.Option(help="Only this endpoint")] = "",
    as_json: AsJson = False,
) -> None:
    """The registry (or one model or endpoint) as it was at a past time or log position."""
    if model and endpoint:
        raise InvalidInputError("give --model or --endpoint, not both")
    with open_views() as views:
        at = _point(views, moment)
        if model:
            state: dict[str, Any] = views.model_as_of(model, at)
        elif endpoint:
            state = views.endpoint_as_of(endpoint, at)
        else:
            state = views.registry(at)
    if as_json:
        print_json(state)
        return
    console.print(f"as of log position {at.position} ({at.time or 'before any event'})")
    if model:
        _print_models({model: state})
    elif endpoint:
        _print_endpoints({endpoint: state})
    else:
        _print_models(state["models"])
        _print_endpoints(state["endpoints"])


def _point(views: Views, text: str) -> PointInTime:
    if text.isdigit():
        return views.point_at(position=int(text))
    return views.point_at(parse_moment(text))


def _print_models(models: dict[str, Any]) -> None:
    table = Table("model", "version", "status", "flavor", "aliases", "tags", title="models")
    for name, m in models.items():
        aliases_of: dict[int, list[str]] = {}
        for alias, number in m["aliases"].items():
            aliases_of.setdefault(number, []).append(alias)
        model_tags = ", ".join(f"{k}={v}" for k, v in m["tags"].items())
        table.add_row(name, "", "", "", "", model_tags)
        for number, v in m["versions"].items():
            table.add_row(
                "",
                str(number),
                v["status"],
                v["flavor"],
                ", ".join(aliases_of.get(number, [])),
                ", ".join(f"{k}={val}" for k, val in v["tags"].items()),
            )
    console.print(table)


def _print_endpoints(endpoints: dict[str, Any]) -> None:
    table = Table("endpoint", "deployment", "model", "traffic", "mirror", "health",
                  title="endpoints")  # fmt: skip
    for name, e in endpoints.items():
        table.add_row(f"{name} ({e['kind']}, {e['status']})", "", "", "", "", "")
        for deployment, d in e["deployments"].items():
            table.add_row(
                "",
                deployment,
                f"{d['model']}:{d['version']}",
                f"{e['traffic'].get(deployment, 0)}%",
                f"{e['mirror'][deployment]}%" if deployment in e["mirror"] else "-",
                d["health"],
            )
    console.print(table)


def _all_pages(views: Views, query: AuditQuery) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = views.audit(query)
        rows.extend(page.items)
        if not page.next_token:
            return rows
        query = AuditQuery(**{**vars(query), "page_token": page.next_token})
