"""An online endpoint as a Ray Serve application.

One application per ledger endpoint (``app_name``), reachable on Serve's HTTP proxy at
``/endpoints/<name>/score`` on every node, and through its handle (the API and the CLI):

- one Serve deployment per ledger deployment (``ModelServer``): replicas holding an ONNX
  Runtime session of the deployed model version;
- an ingress (``EndpointIngress``) that picks a deployment by the traffic weights (or the
  ``X-Ledger-Deployment`` header), copies mirrored shares fire-and-forget, and answers
  errors as the API does (400, 404, 409, 503 with a ``detail``).

Traffic, mirror and the deployments' models reach the ingress as its ``user_config``, and
a deployment's ``sampling_rate`` reaches its replicas as theirs, so a change is a
lightweight update: no replica restarts and no request is dropped. The ingress passes each
request's correlation id (the API's, the ``X-Correlation-ID`` header, or Serve's request
id) to the replica, which marks the request's collected rows with it.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import uuid
from collections import Counter
from typing import Any

from ray import serve
from ray.serve.context import _get_serve_request_context
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse

from executors.monitoring.collector import Collector
from executors.serving.replica import ModelReplica
from ledger import correlation
from ledger.errors import InvalidInputError, LedgerError

INGRESS = "_ingress"  # ledger deployment names start with a letter or digit: no clash
DEPLOYMENT_HEADER = "x-ledger-deployment"
# What an answer's error is, by HTTP status: the API raises the same errors.
NOT_FOUND, CONFLICT, UNAVAILABLE, BAD_INPUT = 404, 409, 503, 400


def app_name(endpoint: str) -> str:
    """The Serve application of ledger endpoint ``endpoint``."""
    return f"ledger-endpoint-{endpoint}"


def route_prefix(endpoint: str) -> str:
    return f"/endpoints/{endpoint}"


@serve.deployment
class ModelServer:
    """Replicas of one ledger deployment, each holding an ONNX Runtime session and
    collecting the share of requests its ``user_config`` says (``sampling_rate``)."""

    def __init__(
        self,
        artifacts_url: str,
        files: list[dict[str, Any]],
        want_gpu: bool,
        collection: dict[str, Any],
    ) -> None:
        """``artifacts_url``: the artifact store (a directory or an object store), where
        the model's files are read from. ``collection``: ``endpoint``, ``deployment``,
        ``model`` (NAME:VERSION) and ``flush_s``, how often sampled requests are written."""
        work_dir = f"{tempfile.gettempdir()}/ledger-serving/{uuid.uuid4().hex}"
        self._replica = ModelReplica(artifacts_url, files, want_gpu, work_dir)
        self._collector = Collector(
            artifacts_url,
            collection["endpoint"],
            collection["deployment"],
            collection["model"],
            serve.get_replica_context().replica_id.unique_id,
            flush_s=collection["flush_s"],
        )

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Take the deployment's ``sampling_rate`` (in place: no restart)."""
        self._collector.rate = float(config.get("sampling_rate", 0.0))

    def describe(self) -> dict[str, str]:
        """The provider in use (and why when not the one asked for), which replica, and
        the share of requests it collects."""
        replica = serve.get_replica_context().replica_id.unique_id
        collecting = {"replica": replica, "sampling_rate": f"{self._collector.rate:g}"}
        return self._replica.describe() | collecting

    def score(self, inputs: Any, correlation_id: str = "") -> dict[str, Any]:
        """Outputs as lists; a bad input raises InvalidInputError. A sampled request is
        kept for collection (written in the background)."""
        fed, outputs = self._replica.score_fed(inputs)
        self._collector.offer(correlation_id, fed, outputs)
        return {name: value.tolist() for name, value in outputs.items()}

    def __del__(self) -> None:
        """Serve stops the replica: write what it sampled since the last flush."""
        collector = getattr(self, "_collector", None)
        if collector is not None:
            collector.close()


def error_answer(status: int, detail: str) -> dict[str, Any]:
    return {"error": {"status": status, "detail": detail}}


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000)
class EndpointIngress:
    """Routes an endpoint's requests by its traffic weights; ``user_config`` holds them."""

    def __init__(self, **model_servers: Any) -> None:
        # The model servers are bound as arguments only so that they are part of the
        # application: the ingress finds them by name (``reconfigure``).
        self._app = serve.get_replica_context().app_name
        self.endpoint = ""
        self.traffic: dict[str, int] = {}
        self.mirror: dict[str, int] = {}
        self.deployments: dict[str, dict[str, str]] = {}  # name -> {"model", "error"}
        self.handles: dict[str, DeploymentHandle[Any]] = {}
        self.served: Counter[str] = Counter()
        self.mirrored: Counter[str] = Counter()
        self.copy_failures: Counter[str] = Counter()
        self.last_copy_failure = ""
        self._copies: set[asyncio.Task[None]] = set()

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Take the endpoint's state: ``endpoint``, ``traffic``, ``mirror`` and
        ``deployments`` (name -> model NAME:VERSION and why it cannot serve, if so)."""
        self.endpoint = config["endpoint"]
        self.traffic, self.mirror = dict(config["traffic"]), dict(config["mirror"])
        self.deployments = {name: dict(d) for name, d in config["deployments"].items()}
        self.handles = {
            name: self.handles.get(name) or serve.get_deployment_handle(name, self._app)
            for name, deployment in self.deployments.items()
            if not deployment["error"]
        }

    async def route(
        self, inputs: Any, target: str = "", correlation_id: str = ""
    ) -> dict[str, Any]:
        """Score ``inputs`` on ``target`` or on a deployment the weights pick: the answer
        (deployment, model, outputs) or ``error`` (status and detail). ``correlation_id``
        goes along to the replicas (it marks the request's collected rows)."""
        if target:
            if target not in self.deployments:
                detail = f"endpoint {self.endpoint!r} has no deployment {target!r}"
                return error_answer(NOT_FOUND, detail)
            name = target
        else:
            live = {n: w for n, w in self.traffic.items() if w > 0}
            if not live:
                return error_answer(
                    CONFLICT, f"endpoint {self.endpoint!r} sends no traffic anywhere"
                )
            name = random.choices(list(live), weights=list(live.values()))[0]
            self._mirror(inputs, correlation_id)
        deployment = self.deployments[name]
        if deployment["error"]:
            return error_answer(
                UNAVAILABLE, f"deployment {name!r} cannot serve: {deployment['error']}"
            )
        try:
            outputs = await self.handles[name].score.remote(inputs, correlation_id)
        except Exception as error:  # each cause becomes the caller's status
            return _failed(name, error)
        self.served[name] += 1
        return {"deployment": name, "model": deployment["model"], "outputs": outputs}

    def _mirror(self, inputs: Any, correlation_id: str) -> None:
        """Copy ``inputs`` to each mirrored deployment, at its share, without waiting."""
        for shadow, percent in self.mirror.items():
            if percent and shadow in self.handles and random.uniform(0, 100) < percent:
                task = asyncio.ensure_future(self._copy(shadow, inputs, correlation_id))
                self._copies.add(task)
                task.add_done_callback(self._copies.discard)

    async def _copy(self, shadow: str, inputs: Any, correlation_id: str) -> None:
        try:
            await self.handles[shadow].score.remote(inputs, correlation_id)
        except Exception as error:  # a copy's failure never reaches the caller
            self.copy_failures[shadow] += 1
            self.last_copy_failure = f"{type(error).__name__}: {error}"[:500]
        else:
            self.mirrored[shadow] += 1

    def counts(self) -> dict[str, Any]:
        """Requests answered, copies scored and copies failed, per deployment, by this
        replica; and the last copy's failure."""
        return {
            "served": dict(self.served),
            "mirrored": dict(self.mirrored),
            "copy_failures": dict(self.copy_failures),
            "last_copy_failure": self.last_copy_failure,
        }

    async def __call__(self, request: Request) -> JSONResponse:
        """``POST /endpoints/<name>/score`` on Serve's proxy: ``{"inputs": ...}``."""
        try:
            body = json.loads(await request.body())
            inputs = body["inputs"]
        except (ValueError, TypeError, KeyError):
            detail = 'send a JSON object such as {"inputs": [[...], ...]}'
            return JSONResponse({"detail": detail}, status_code=BAD_INPUT)
        target = request.headers.get(DEPLOYMENT_HEADER, "")
        correlation_id = _correlation_of(request)
        answer = await self.route(inputs, target, correlation_id)
        if "error" in answer:
            return JSONResponse({"detail": answer["error"]["detail"]}, answer["error"]["status"])
        return JSONResponse(answer, headers={correlation.HEADER: correlation_id})


def _correlation_of(request: Request) -> str:
    """The caller's ``X-Correlation-ID`` when well formed, else Serve's request id."""
    given = request.headers.get(correlation.HEADER, "")
    return given if correlation.well_formed(given) else _get_serve_request_context().request_id


def _failed(name: str, error: Exception) -> dict[str, Any]:
    """The answer for a replica's error: the input's fault (400) or the deployment's (503)."""
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, InvalidInputError):
        return error_answer(BAD_INPUT, str(cause))
    if isinstance(cause, LedgerError):
        return error_answer(UNAVAILABLE, str(cause))
    return error_answer(UNAVAILABLE, f"deployment {name!r} failed: {type(cause).__name__}")
