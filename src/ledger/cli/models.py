"""`ledger model ...`: register, inspect, tag, alias, archive, delete and download models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ledger.artifacts.files import hash_file
from ledger.cli.context import (
    AsJson,
    Reason,
    byte_progress,
    console,
    counted,
    open_ledger,
    open_views,
    parse_moment,
    print_json,
)
from ledger.domain.model import FLAVORS, Lineage, StoredFile
from ledger.errors import InvalidInputError
from ledger.refs import parse_pairs
from projections.search import SearchQuery

app = typer.Typer(help="Register and manage models and their versions.", no_args_is_help=True)


def _metrics(items: list[str]) -> dict[str, float]:
    metrics = {}
    for key, value in parse_pairs(items, "metric").items():
        try:
            metrics[key] = float(value)
        except ValueError:
            raise InvalidInputError(f"metric {key}={value!r} is not a number") from None
    return metrics


@app.command()
def register(
    name: Annotated[str, typer.Argument(help="Model name; registering again adds a version")],
    path: Annotated[Path, typer.Argument(help="Model file or directory")],
    tag: Annotated[list[str], typer.Option("--tag", "-t", help="key=value (repeatable)")] = [],  # noqa: B006
    flavor: Annotated[str, typer.Option(help=f"One of: {', '.join(FLAVORS)}")] = "custom",
    description: Annotated[str, typer.Option(help="What this version is")] = "",
    metric: Annotated[list[str], typer.Option("--metric", "-m", help="name=number")] = [],  # noqa: B006
    data: Annotated[list[str], typer.Option(help="Training data NAME:VERSION")] = [],  # noqa: B006
    environment: Annotated[str, typer.Option("--env", help="Environment NAME[:VERSION]")] = "",
    derived_from: Annotated[str, typer.Option(help="Model version it derives from")] = "",
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """Store the files at PATH and register them as the next version of NAME."""
    lineage: Lineage = {}
    if data:
        lineage["data"] = data
    if environment:
        lineage["environment"] = environment
    if derived_from:
        lineage["derived_from"] = derived_from
    with open_ledger() as ledger, byte_progress(f"storing {path.name}") as on_progress:
        version = ledger.models.register_version(
            name,
            path,
            on_progress=on_progress,
            flavor=flavor,
            tags=parse_pairs(tag, "tag"),
            metrics=_metrics(metric),
            description=description,
            lineage=lineage,
            reason=reason,
        )
    if as_json:
        _print_version(version.model_name, version.number)
        return
    files = version.spec["files"]
    size = sum(f["size"] for f in files)
    console.print(
        f"Registered [bold]{version.ref}[/] ({counted(len(files), 'file')}, {size:,} bytes)"
    )


def _print_version(model: str, number: int) -> None:
    """A version just written, as `model show --json` prints it (from the views)."""
    with open_views() as views:
        print_json(views.version_of(model, number))


@app.command("list")
def list_models(as_json: AsJson = False) -> None:
    """List every registered model."""
    with open_views() as views:
        models = views.models()
    if as_json:
        print_json(models)
        return
    table = Table("name", "latest", "live", "aliases", "tags", "created", "by")
    for m in models:
        table.add_row(
            m["name"],
            str(m["latest_version"]),
            str(m["live_versions"]),
            ", ".join(f"{a}→{v}" for a, v in sorted(m["aliases"].items())),
            ", ".join(f"{k}={v}" for k, v in sorted(m["tags"].items())),
            m["created_at"][:19],
            m["created_by"],
        )
    console.print(table)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@ALIAS")],
    as_json: AsJson = False,
) -> None:
    """Show a model version (NAME alone: the latest live version)."""
    with open_views() as views:
        summary = views.version(ref)
    if as_json:
        print_json(summary)
        return
    table = Table.grid(padding=(0, 2))
    for key in ("ref", "status", "flavor", "description", "created_at", "created_by"):
        table.add_row(key, str(summary[key]))
    table.add_row("aliases", ", ".join(summary["aliases"]))
    table.add_row("tags", ", ".join(f"{k}={v}" for k, v in sorted(summary["tags"].items())))
    table.add_row("metrics", ", ".join(f"{k}={v:g}" for k, v in summary["metrics"].items()))
    table.add_row("lineage", ", ".join(f"{k}={v}" for k, v in summary["lineage"].items()))
    table.add_row(
        "deployed",
        ", ".join(f"{d['endpoint']}/{d['deployment']}" for d in summary["deployments"]) or "no",
    )
    for f in summary["files"]:
        table.add_row("file", f"{f['path']}  {f['size']:,} B  sha256:{f['sha256'][:16]}…")
    console.print(table)


@app.command()
def versions(
    name: str,
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first")] = 50,
    include_deleted: Annotated[
        bool, typer.Option("--all", help="Include deleted versions")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """List a model's versions, newest first."""
    with open_views() as views:
        rows = views.versions(name, limit=limit, include_deleted=include_deleted)
    if as_json:
        print_json(rows)
        return
    table = Table("version", "status", "flavor", "aliases", "tags", "deployed", "created")
    for r in rows:
        table.add_row(
            str(r["version"]),
            r["status"],
            r["flavor"],
            ", ".join(r["aliases"]),
            ", ".join(f"{k}={v}" for k, v in sorted(r["tags"].items())),
            ", ".join(f"{d['endpoint']}/{d['deployment']}" for d in r["deployments"]),
            r["created_at"][:19],
        )
    console.print(table)


@app.command()
def search(
    prefix: Annotated[str, typer.Option(help="Model name starts with this")] = "",
    tags: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE on the version or its model")
    ] = None,
    alias: Annotated[str, typer.Option(help="Versions this alias points at")] = "",
    flavor: Annotated[str, typer.Option(help=f"One of: {', '.join(FLAVORS)}")] = "",
    since: Annotated[str, typer.Option(help="Registered at or after (ISO 8601)")] = "",
    until: Annotated[str, typer.Option(help="Registered before (ISO 8601)")] = "",
    include_deleted: Annotated[
        bool, typer.Option("--all", help="Include deleted versions")
    ] = False,
    limit: Annotated[int, typer.Option(help="Versions per page")] = 50,
    page_token: Annotated[str, typer.Option("--page", help="next_token of the last page")] = "",
    as_json: AsJson = False,
) -> None:
    """Find model versions: every criterion given must hold; newest first, paged."""
    if flavor and flavor not in FLAVORS:
        raise InvalidInputError(f"unknown flavor {flavor!r}; expected one of {', '.join(FLAVORS)}")
    query = SearchQuery(
        name_prefix=prefix,
        tags=parse_pairs(tags or [], "tag"),
        alias=alias,
        flavor=flavor,
        created_after=parse_moment(since, "--since") if since else None,
        created_before=parse_moment(until, "--until") if until else None,
        include_deleted=include_deleted,
        limit=limit,
        page_token=page_token,
    )
    with open_views() as views:
        page = views.search(query)
    if as_json:
        print_json(page.to_dict())
        return
    table = Table("version", "status", "flavor", "aliases", "tags", "created", "by")
    for r in page.items:
        table.add_row(
            r["ref"],
            r["status"],
            r["flavor"],
            ", ".join(r["aliases"]),
            ", ".join(f"{k}={v}" for k, v in sorted(r["tags"].items())),
            r["created_at"][:19],
            r["created_by"],
        )
    console.print(table)
    if page.next_token:
        console.print(f"more: --page {page.next_token}", highlight=False)


@app.command()
def tag(
    ref: Annotated[str, typer.Argument(help="NAME (model tag) or NAME:VERSION / NAME@ALIAS")],
    tags: Annotated[list[str], typer.Argument(help="key=value ...")],
    reason: Reason = "",
) -> None:
    """Set tags on a model or on one of its versions."""
    with open_ledger() as ledger:
        ledger.models.set_tags(ref, parse_pairs(tags, "tag"), reason=reason)
    console.print(f"Tagged {ref}")


@app.command()
def untag(
    ref: Annotated[str, typer.Argument(help="NAME or NAME:VERSION / NAME@ALIAS")],
    keys: Annotated[list[str], typer.Argument(help="Tag keys to remove")],
    reason: Reason = "",
) -> None:
    """Remove tags from a model or one of its versions."""
    with open_ledger() as ledger:
        ledger.models.remove_tags(ref, keys, reason=reason)
    console.print(f"Removed {', '.join(keys)} from {ref}")


@app.command()
def alias(
    name: str,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS")],
    version: Annotated[int | None, typer.Argument(help="Version to point at")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias")] = False,
    reason: Reason = "",
) -> None:
    """Point NAME@ALIAS at VERSION (or --delete it)."""
    with open_ledger() as ledger:
        if delete:
            ledger.models.remove_alias(name, alias_name, reason=reason)
            console.print(f"Removed alias {name}@{alias_name}")
            return
        if version is None:
            raise InvalidInputError("give the VERSION the alias should point at, or --delete")
        ledger.models.set_alias(name, alias_name, version, reason=reason)
    console.print(f"{name}@{alias_name} → {name}:{version}")


@app.command()
def archive(ref: str, reason: Reason = "") -> None:
    """Archive a version (refused while it is deployed)."""
    with open_ledger() as ledger:
        ledger.models.archive_version(ref, reason=reason)
    console.print(f"Archived {ref}")


@app.command()
def restore(ref: str, reason: Reason = "") -> None:
    """Bring an archived version back."""
    with open_ledger() as ledger:
        version = ledger.models.get_version(ref)
        if version.status == "ready":
            console.print(f"{version.ref} is not archived: nothing to restore")
            return
        ledger.models.restore_version(ref, reason=reason)
    console.print(f"Restored {version.ref}")


@app.command()
def download(
    ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@ALIAS")],
    dest: Annotated[Path, typer.Argument(help="Directory to write the files into")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace files under DEST that differ")
    ] = False,
) -> None:
    """Write a version's files, byte-identical, under DEST (digests are checked)."""
    with open_ledger() as ledger:
        if not force:
            _refuse_overwrites(ledger.models.get_version(ref).spec["files"], dest)
        written = ledger.models.download_version(ref, dest)
    console.print(f"Wrote {counted(len(written), 'file')} to {dest}")


def _refuse_overwrites(files: list[StoredFile], dest: Path) -> None:
    """Refuse to replace a file under ``dest`` whose content differs from the version's."""
    different = []
    for entry in files:
        target = dest / entry["path"]
        exists = target.is_symlink() or target.exists()
        if exists and (not target.is_file() or hash_file(target)[0] != entry["sha256"]):
            different.append(entry["path"])
    if different:
        listed = ", ".join(different[:5]) + (", ..." if len(different) > 5 else "")
        raise InvalidInputError(
            f"{counted(len(different), 'file')} under {dest} differ from the version's "
            f"({listed}): pass --force to replace them"
        )


@app.command()
def convert(
    ref: Annotated[str, typer.Argument(help="The scikit-learn model version: NAME[:VERSION]")],
    to: Annotated[str, typer.Option("--to", help="Target format")] = "onnx",
    sample: Annotated[
        Path | None,
        typer.Option(help="CSV/Parquet rows to check parity on (default: its training data)"),
    ] = None,
    rows: Annotated[int, typer.Option(min=1, max=1_000_000, help="Rows to check")] = 500,
    tolerance: Annotated[
        float, typer.Option(min=0.0, help="Largest relative difference allowed")
    ] = 1e-4,
    opset: Annotated[int | None, typer.Option(min=7, help="ONNX opset (default: latest)")] = None,
    name: Annotated[str, typer.Option(help="Register under this model (default: the same)")] = "",
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """Convert to ONNX, check that it answers like the original, register it as a version."""
    if to != "onnx":
        raise InvalidInputError(f"cannot convert to {to!r}: the supported format is onnx")
    from executors.onnx_conversion import convert_model_version  # loads onnx and skl2onnx

    with open_ledger() as ledger:
        version, conversion = convert_model_version(
            ledger,
            ref,
            sample=sample,
            rows=rows,
            tolerance=tolerance,
            opset=opset,
            name=name,
            reason=reason,
        )
    if as_json:
        _print_version(version.model_name, version.number)
        return
    console.print(
        f"Registered [bold]{version.ref}[/] (ONNX opset {conversion.signature['opset']}), "
        f"derived from {version.spec['lineage']['derived_from']}: same answers on "
        f"{conversion.rows_checked} rows (largest difference {conversion.max_difference:.2g})"
    )


@app.command()
def package(
    ref: Annotated[str, typer.Argument(help="ONNX model version: NAME[:VERSION] or NAME@ALIAS")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New (or empty) directory")],
) -> None:
    """Write a build context: Dockerfile, requirements, scoring server and model files.
    It also runs without Docker: `python OUT/serve.py`."""
    from executors.packaging import package_model_version

    with open_ledger() as ledger:
        manifest = package_model_version(ledger, ref, out)
    console.print(f"Packaged {manifest['model']} in {out}")
    console.print(f"  run it here:   python {out / 'serve.py'} --port 8080")
    console.print(f"  or in Docker:  docker build -t model {out} && docker run -p 8080:8080 model")
