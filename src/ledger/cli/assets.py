"""`ledger env ...` and `ledger data ...`: environments and data assets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ledger.cli.context import (
    AsJson,
    Reason,
    console,
    open_ledger,
    open_views,
    print_json,
    report_registered,
)
from ledger.specs import parse_environment_spec, read_named_spec

env_app = typer.Typer(help="Register and inspect environments.", no_args_is_help=True)
data_app = typer.Typer(help="Register and inspect data assets.", no_args_is_help=True)


@env_app.command("register")
def register_environment(
    file: Annotated[
        Path, typer.Argument(help="YAML/JSON spec: name, python, pip, conda, base_image")
    ],
    name: Annotated[str, typer.Option(help="Name (default: the spec's `name`)")] = "",
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """Register an environment spec; an identical spec keeps its existing version."""
    env_name, data = read_named_spec(file, name)
    spec = parse_environment_spec(data)
    with open_ledger() as ledger:
        result = ledger.assets.register_environment(env_name, spec, reason=reason)
    report_registered("environment", result, as_json)


@env_app.command("show")
def show_environment(name: str, as_json: AsJson = False) -> None:
    """Show an environment's versions."""
    with open_views() as views:
        summary = views.asset("environment", name)
    if as_json:
        print_json(summary)
        return
    table = Table("version", "python", "base image", "pip", "digest")
    for v in summary["versions"]:
        spec = v["content"]
        table.add_row(
            str(v["version"]),
            spec["python"],
            spec["base_image"],
            ", ".join(spec["pip"]),
            v["digest"][:16],
        )
    console.print(f"environment [bold]{name}[/]")
    console.print(table)


@data_app.command("register")
def register_data(
    name: str,
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH_OR_URL",
            help="CSV or Parquet file, a directory of them, or an object's URL "
            "(s3://bucket/key.parquet, az://container/key.csv, gs://...)",
        ),
    ],
    description: Annotated[str, typer.Option(help="What this data is")] = "",
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """Profile the data (rows, column types, nulls, ranges, top values) and register it.

    An object in a store is read as it streams and stays where it is: the version's URI
    is its URL."""
    with open_ledger() as ledger:
        result = ledger.assets.register_data(name, path, description=description, reason=reason)
    report_registered("data asset", result, as_json)


@data_app.command("profile")
def profile_data(
    ref: Annotated[str, typer.Argument(metavar="NAME:VERSION", help="The data asset version")],
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """Give a version registered before sketches were kept its sketch (read from its URI)."""
    with open_ledger() as ledger:
        result = ledger.assets.profile_data(ref, reason=reason)
    sketch = result.sketch
    if as_json:
        print_json({"ref": result.ref, "sketch": sketch, "created": result.created})
    elif result.created:
        console.print(
            f"Profiled data asset [bold]{result.ref}[/]: sketch sha256:{sketch['digest'][:16]}… "
            f"({sketch['bytes']:,} bytes)"
        )
    else:
        console.print(
            f"Unchanged: data asset [bold]{result.ref}[/] already has a sketch "
            f"(sha256:{sketch['digest'][:16]}…)"
        )


@data_app.command("show")
def show_data(name: str, as_json: AsJson = False) -> None:
    """Show a data asset's versions and the latest profile."""
    with open_views() as views:
        summary = views.asset("data", name)
    if as_json:
        print_json(summary)
        return
    table = Table("version", "rows", "uri", "digest")
    for v in summary["versions"]:
        content = v["content"]
        table.add_row(
            str(v["version"]), f"{content['profile']['rows']:,}", content["uri"], v["digest"][:16]
        )
    console.print(f"data asset [bold]{name}[/]")
    console.print(table)
    columns = Table("column", "type", "nulls", "min", "max", "mean / top")
    for column, stats in summary["versions"][-1]["content"]["profile"]["columns"].items():
        top = stats.get("top")
        columns.add_row(
            column,
            stats["type"],
            str(stats["nulls"]),
            str(stats.get("min", "")),
            str(stats.get("max", "")),
            f"{stats['mean']:.4g}"
            if stats.get("mean") is not None
            else ", ".join(f"{value} ({count})" for value, count in top or []),
        )
    console.print(columns)
