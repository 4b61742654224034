"""`ledger endpoint ...`: endpoints, deployments, traffic and mirroring."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ledger.cli.batch_jobs import follow_batch_job, write_batch_output
from ledger.cli.context import AsJson, Reason, console, open_ledger, open_views, print_json
from ledger.domain.endpoint import ENDPOINT_KINDS, Endpoint, Resources, sampling_rate_of
from ledger.errors import InvalidInputError, NotFoundError, RuleViolationError
from ledger.refs import parse_weights
from projections.views import Views

app = typer.Typer(
    help="Create endpoints, deploy model versions, split traffic.", no_args_is_help=True
)


def print_split(endpoint: Endpoint) -> None:
    """One line: the endpoint's live split, and its mirror if any."""
    live = ", ".join(f"{n}={w}%" for n, w in sorted(endpoint.traffic.items())) or "none"
    line = f"{endpoint.name}: traffic {live}"
    if endpoint.mirror:
        line += "; mirror " + ", ".join(f"{n}={w}%" for n, w in sorted(endpoint.mirror.items()))
    console.print(line)


@app.command()
def create(
    name: str,
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(ENDPOINT_KINDS)}")] = "online",
    description: str = "",
    reason: Reason = "",
) -> None:
    """Create an online or batch endpoint."""
    with open_ledger() as ledger:
        ledger.endpoints.create(name, kind, description=description, reason=reason)
    console.print(f"Created {kind} endpoint [bold]{name}[/]")


@app.command()
def deploy(
    endpoint: str,
    deployment: Annotated[str, typer.Argument(help="Deployment name, e.g. blue")],
    model: Annotated[str, typer.Argument(help="NAME:VERSION, NAME@ALIAS or NAME")],
    environment: Annotated[str, typer.Option("--env", help="Environment NAME[:VERSION]")] = "",
    cpus: Annotated[float, typer.Option(help="CPUs per replica")] = 1.0,
    gpus: Annotated[int, typer.Option(help="GPUs per replica")] = 0,
    memory_mb: Annotated[int, typer.Option(help="Memory per replica (MiB)")] = 1024,
    replicas: Annotated[int, typer.Option(help="Number of replicas (the least, autoscaling)")] = 1,
    max_replicas: Annotated[
        int | None, typer.Option(help="Online: scale up to this many replicas with the load")
    ] = None,
    target_ongoing_requests: Annotated[
        float | None, typer.Option(help="Online, autoscaling: requests each replica keeps")
    ] = None,
    max_ongoing_requests: Annotated[
        int | None, typer.Option(help="Online: requests one replica holds at most")
    ] = None,
    sampling_rate: Annotated[
        float, typer.Option(help="Online: the share of requests collected, 0-1 (0: none)")
    ] = 0.0,
    reason: Reason = "",
) -> None:
    """Deploy a model version; the first deployment of an endpoint takes all traffic."""
    resources: Resources = {
        "cpus": cpus,
        "gpus": gpus,
        "memory_mb": memory_mb,
        "replicas": replicas,
    }
    if max_replicas is not None:
        resources["max_replicas"] = max_replicas
    if target_ongoing_requests is not None:
        resources["target_ongoing_requests"] = target_ongoing_requests
    if max_ongoing_requests is not None:
        resources["max_ongoing_requests"] = max_ongoing_requests
    with open_ledger() as ledger:
        result = ledger.endpoints.deploy(
            endpoint,
            deployment,
            model,
            environment=environment,
            resources=resources,
            sampling_rate=sampling_rate,
            reason=reason,
        )
    console.print(f"Deployed {model} as {endpoint}/{deployment}")
    print_split(result)


@app.command()
def traffic(
    endpoint: str,
    weights: Annotated[list[str], typer.Argument(help="deployment=percent ... (sum 100)")],
    reason: Reason = "",
) -> None:
    """Set the live traffic split; deployments not named get 0%."""
    with open_ledger() as ledger:
        result = ledger.endpoints.set_traffic(endpoint, parse_weights(weights), reason=reason)
    print_split(result)


@app.command()
def mirror(
    endpoint: str,
    weights: Annotated[list[str], typer.Argument(help="deployment=percent ... (0 clears)")],
    reason: Reason = "",
) -> None:
    """Copy a share of requests to deployments with no live traffic (shadow testing)."""
    with open_ledger() as ledger:
        result = ledger.endpoints.set_mirror(
            endpoint, parse_weights(weights, "mirror"), reason=reason
        )
    print_split(result)


@app.command()
def collect(
    endpoint: str,
    deployment: str,
    sampling_rate: Annotated[
        float, typer.Option(help="The share of requests collected, 0-1 (0 stops)")
    ],
    reason: Reason = "",
) -> None:
    """Collect a share of a deployment's requests (inputs and outputs, as Parquet under the
    artifact store's collected/); its replicas take the new rate without restarting."""
    with open_ledger() as ledger:
        ledger.endpoints.set_sampling_rate(endpoint, deployment, sampling_rate, reason=reason)
    what = (
        f"collects {sampling_rate * 100:g}% of its requests"
        if sampling_rate
        else "collects nothing"
    )
    console.print(f"{endpoint}/{deployment} {what}")


@app.command()
def undeploy(endpoint: str, deployment: str, reason: Reason = "") -> None:
    """Remove a deployment that receives no traffic."""
    with open_ledger() as ledger:
        ledger.endpoints.undeploy(endpoint, deployment, reason=reason)
    console.print(f"Removed {endpoint}/{deployment}")


@app.command()
def delete(endpoint: str, reason: Reason = "") -> None:
    """Delete an endpoint that has no deployments left."""
    with open_ledger() as ledger:
        ledger.endpoints.delete(endpoint, reason=reason)
    console.print(f"Deleted endpoint {endpoint}")


@app.command()
def show(endpoint: str, as_json: AsJson = False) -> None:
    """Show an endpoint's deployments, resources, traffic and health."""
    with open_views() as views:
        summary = views.endpoint(endpoint)
    if as_json:
        print_json(summary)
        return
    state = " (deleted)" if summary["deleted"] else ""
    console.print(f"[bold]{summary['name']}[/] {summary['kind']} endpoint{state}")
    table = Table(
        "deployment",
        "model",
        "env",
        "cpus",
        "gpus",
        "mem MiB",
        "replicas",
        "traffic",
        "mirror",
        "collect",
        "health",
    )
    for name, d in sorted(summary["deployments"].items()):
        r = d["resources"]
        table.add_row(
            name,
            f"{d['model']}:{d['version']}",
            d["environment"] or "-",
            f"{r['cpus']:g}",
            str(r["gpus"]),
            str(r["memory_mb"]),
            _replicas(r),
            f"{d['traffic']}%",
            f"{d['mirror']}%" if d["mirror"] else "-",
            f"{sampling_rate_of(d):.4g}" if sampling_rate_of(d) else "-",
            d["health"],
        )
    console.print(table)


@app.command("list")
def list_endpoints(as_json: AsJson = False) -> None:
    """List every endpoint with its live traffic split."""
    with open_views() as views:
        endpoints = views.endpoints()
    if as_json:
        print_json(endpoints)
        return
    table = Table("name", "kind", "deployments", "traffic", "mirror", "created")
    for e in endpoints:
        table.add_row(
            e["name"] + (" (deleted)" if e["deleted"] else ""),
            e["kind"],
            str(len(e["deployments"])),
            ", ".join(f"{n}={w}%" for n, w in sorted(e["traffic"].items())) or "-",
            ", ".join(f"{n}={w}%" for n, w in sorted(e["mirror"].items())) or "-",
            e["created_at"][:19],
        )
    console.print(table)


@app.command()
def score(
    name: Annotated[str, typer.Argument(help="Online endpoint")],
    inputs: Annotated[
        str,
        typer.Option(
            "--input", "-i", help='JSON rows, e.g. "[[5.1, 3.5, 1.4, 0.2]]", or @FILE holding them'
        ),
    ],
    deployment: Annotated[
        str, typer.Option(help="Score on this deployment instead of the traffic split")
    ] = "",
    as_json: AsJson = False,
) -> None:
    """Score as `POST /endpoints/NAME/score` does, through the endpoint's Ray Serve
    application (applied first if it is not running as the ledger has it)."""
    text = Path(inputs[1:]).read_text() if inputs.startswith("@") else inputs
    try:
        rows = json.loads(text)
    except ValueError as error:
        raise InvalidInputError(f"--input is not JSON: {error}") from None
    with open_views() as views:
        _check_servable(views, name, deployment)
    with open_ledger() as ledger:
        import ray
        from ray import serve

        from executors.serving.serve_endpoints import ServeEndpoints

        # A local Ray started for this command ends with it: Serve is then stopped
        # gracefully, so that replicas write the requests they sampled first.
        owns_ray = not ledger.settings.shared_ray and not ray.is_initialized()
        router = ServeEndpoints(ledger, proxy=False)
        try:
            scored = asyncio.run(router.score(name, rows, deployment))
        finally:
            router.close()
            if owns_ray:
                serve.shutdown()  # type: ignore[no-untyped-call]
    result = {"deployment": scored.deployment, "model": scored.model, "outputs": scored.outputs}
    if as_json:
        print_json(result)
        return
    console.print(f"answered by [bold]{scored.deployment}[/] ({scored.model})")
    for output, values in scored.outputs.items():
        console.print(f"{output}: {json.dumps(values)}")


def _replicas(resources: Resources) -> str:
    """``N``, or ``N-M`` for a deployment that autoscales between N and M replicas."""
    most = resources.get("max_replicas", resources["replicas"])
    return str(most) if most == resources["replicas"] else f"{resources['replicas']}-{most}"


def _check_servable(views: Views, name: str, deployment: str) -> None:
    """Refuse what the router would refuse only after starting Ray: an endpoint that is
    not online, or a call that may land on a deployment of a model that is not ONNX."""
    endpoint = views.endpoint(name)
    if endpoint["kind"] != "online" or endpoint["deleted"]:
        what = "deleted" if endpoint["deleted"] else "a batch endpoint: use invoke"
        raise RuleViolationError(f"endpoint {name!r} is {what}")
    if deployment and deployment not in endpoint["deployments"]:
        raise NotFoundError(f"endpoint {name!r} has no deployment {deployment!r}")
    for target in [deployment] if deployment else list(endpoint["traffic"]):
        served = endpoint["deployments"][target]
        model = f"{served['model']}:{served['version']}"
        flavor = views.version_of(served["model"], served["version"])["flavor"]
        if flavor != "onnx":
            raise RuleViolationError(
                f"deployment {target!r} cannot serve: it serves {model}, a {flavor} model: "
                f"convert it with `ledger model convert {model} --to onnx` and deploy that"
            )


@app.command()
def invoke(
    name: Annotated[str, typer.Argument(help="Batch endpoint")],
    input_path: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="CSV or Parquet file, a directory of them, or an object's URL (s3://, az://)",
        ),
    ],
    deployment: Annotated[
        str, typer.Option(help="Deployment to score with (default: the one taking traffic)")
    ] = "",
    mini_batch_size: Annotated[int, typer.Option(min=1, help="Rows per mini-batch")] = 10_000,
    max_retries: Annotated[
        int, typer.Option(min=0, max=10, help="Attempts again for a failed mini-batch")
    ] = 2,
    wait: Annotated[bool, typer.Option(help="Follow the job until it ends")] = False,
    out: Annotated[
        Path | None, typer.Option(help="With --wait: write the predictions (Parquet) here")
    ] = None,
    reason: Reason = "",
) -> None:
    """Score every row of the input on a batch endpoint; a worker runs it on Ray."""
    if out is not None and not wait:
        raise InvalidInputError("--out needs --wait (or use `ledger job output JOB FILE` later)")
    with open_ledger() as ledger:
        job = ledger.batch_jobs.invoke(
            name,
            input_path,
            deployment=deployment,
            mini_batch_size=mini_batch_size,
            max_retries=max_retries,
            reason=reason,
        )
        console.print(
            f"Submitted batch job [bold]{job.id}[/]: {job.rows:,} rows on {name}/{job.deployment}"
            f" ({job.model})"
        )
    if wait:
        with open_views() as views:
            finished = follow_batch_job(views, str(job.id))
        if out is not None:
            write_batch_output(ledger.artifacts, finished, out)
