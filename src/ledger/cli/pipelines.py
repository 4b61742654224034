"""`ledger pipeline ...`: register, clone and inspect pipelines."""

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
from ledger.errors import InvalidInputError
from ledger.specs import read_named_spec

pipeline_app = typer.Typer(help="Register, clone and inspect pipelines.", no_args_is_help=True)


@pipeline_app.command("register")
def register_pipeline(
    file: Annotated[Path, typer.Argument(help="YAML/JSON pipeline spec (see the README)")],
    name: Annotated[str, typer.Option(help="Name (default: the spec's `name`)")] = "",
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """Register a pipeline spec and its code; an identical one keeps its version."""
    pipeline_name, spec = read_named_spec(file, name)
    code = spec.pop("code", None)
    if code is not None and not isinstance(code, str):
        raise InvalidInputError(f"{file}: `code` must be a directory path")
    code_dir = (file.parent / code).resolve() if code else None
    with open_ledger() as ledger:
        result = ledger.assets.register_pipeline(
            pipeline_name, spec, code_dir=code_dir, reason=reason
        )
    report_registered("pipeline", result, as_json)


@pipeline_app.command("clone")
def clone_pipeline(
    source: Annotated[str, typer.Argument(help="Pipeline NAME[:VERSION] to copy")],
    new_name: Annotated[str, typer.Argument(help="Name of the new pipeline")],
    reason: Reason = "",
) -> None:
    """Start a new pipeline from a version of another; the source is untouched."""
    with open_ledger() as ledger:
        result = ledger.assets.clone_pipeline(source, new_name, reason=reason)
    console.print(f"Cloned {source} into pipeline [bold]{result.ref}[/]")


@pipeline_app.command("show")
def show_pipeline(name: str, as_json: AsJson = False) -> None:
    """Show a pipeline's versions and the steps of the latest."""
    with open_views() as views:
        summary = views.asset("pipeline", name)
    if as_json:
        print_json(summary)
        return
    origin = f" (cloned from {summary['origin']})" if summary["origin"] else ""
    console.print(f"pipeline [bold]{name}[/]{origin}")
    versions = Table("version", "digest", "code", "steps")
    for v in summary["versions"]:
        code = v["content"].get("code") or {}
        versions.add_row(
            str(v["version"]),
            v["digest"][:16],
            (code.get("git_commit") or code.get("digest", "")[:16]) if code else "",
            " ".join(step["name"] for step in v["content"]["steps"]),
        )
    console.print(versions)
    steps = Table("step", "runs", "inputs", "outputs", "after", "cpus", "gpus", "retries")
    for step in summary["versions"][-1]["content"]["steps"]:
        command = step["command"]
        steps.add_row(
            step["name"],
            step["run"] or (command if isinstance(command, str) else " ".join(command)),
            ", ".join(f"{k}={v}" for k, v in step["inputs"].items()),
            ", ".join(step["outputs"]),
            ", ".join(step["depends_on"]),
            f"{step['resources']['cpus']:g}",
            f"{step['resources']['gpus']:g}",
            str(step["retries"]),
        )
    console.print(steps)
