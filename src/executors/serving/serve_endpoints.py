"""Applying the ledger's online endpoints to Ray Serve, and scoring through them.

``apply`` builds an endpoint's Serve application (see ``serve_app``) from its state in the
ledger and runs it: Serve compares it with what runs and changes only what differs. Each
Serve deployment's code version is a digest of what its replicas are started from (the
model's files, the resources, this code), so every process that applies the same state —
the worker, any number of ``ledger serve`` — gets the same application and no replica
starts twice; traffic and mirror are the ingress's ``user_config``, and a deployment's
sampling rate its own ``user_config``: both updated in place, without restarting replicas.
Once the replicas run, their health (and the ONNX Runtime provider in use) is recorded
in the ledger as the deployment's health.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import serve
from ray.exceptions import RayError
from ray.serve.api import RunTarget
from ray.serve.exceptions import RayServeException
from ray.serve.handle import DeploymentHandle

from executors.ray_executor import connect_ray
from executors.runtime_envs import step_environment
from executors.serving.replica import reservable_gpus
from executors.serving.serve_app import (
    INGRESS,
    EndpointIngress,
    ModelServer,
    app_name,
    route_prefix,
)
from ledger.domain.endpoint import Deployment, Endpoint, Resources, sampling_rate_of
from ledger.errors import (
    InvalidInputError,
    LedgerError,
    NotFoundError,
    RuleViolationError,
    ServingUnavailableError,
)
from ledger.ledger import Ledger
from ledger.logging import get_logger

SERVING_ACTOR = "ledger-serving"
REPLICA_START_S = 60.0  # a deployment whose replicas are not up by then is unhealthy
CODE_VERSION = hashlib.sha256(Path(__file__).with_name("serve_app.py").read_bytes()).hexdigest()[
    :16
]
MAX_ONGOING_REQUESTS = 5  # per replica, unless the deployment says (Serve's default)
SERVING = {"HEALTHY", "UPSCALING", "DOWNSCALING"}  # Serve's states of a deployment that serves
ERRORS: dict[int, type[LedgerError]] = {
    400: InvalidInputError,
    404: NotFoundError,
    409: RuleViolationError,
    503: ServingUnavailableError,
}
log = get_logger(__name__)


@dataclass(frozen=True)
class Scored:
    deployment: str
    model: str
    outputs: dict[str, Any]


class ServeEndpoints:
    """The ledger's online endpoints on Ray Serve: applied on demand, scored by handle."""

    def __init__(self, ledger: Ledger, *, refresh_s: float = 0.25, proxy: bool = True) -> None:
        self.ledger = ledger
        self.refresh_s = refresh_s
        self._applied: dict[str, int] = {}  # endpoint -> version this process applied
        self._served: dict[str, str] = {}  # endpoint -> digest of the state it applied
        self._described: dict[tuple[str, str], dict[str, str]] = {}  # a replica's describe()
        self._handles: dict[str, DeploymentHandle[Any]] = {}
        self._checked_at: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        settings = ledger.settings
        connect_ray(settings.ray_address, settings.ray_num_cpus)
        # ``proxy=False`` (a CLI call that scores by handle): no HTTP proxy, so a local
        # Ray of its own does not fight a server's over the port.
        serve.start(
            proxy_location="EveryNode" if proxy else "Disabled",
            http_options={"host": settings.serve_host, "port": settings.serve_port},
        )

    # -- scoring -----------------------------------------------------------------------

    async def score(
        self, endpoint: str, inputs: Any, deployment: str = "", correlation_id: str = ""
    ) -> Scored:
        """Score ``inputs`` through the endpoint's application (applied first if this
        process has not applied its current state); ``correlation_id`` (a new one if not
        given) marks the request's rows if its deployment collects it."""
        await self._ensure_applied(endpoint)
        correlation_id = correlation_id or uuid.uuid4().hex
        try:
            answer = await self.handle(endpoint).route.remote(inputs, deployment, correlation_id)
        except (RayServeException, RayError) as gone:  # the application went away
            self._forget(endpoint)
            raise ServingUnavailableError(
                f"endpoint {endpoint!r} is not serving right now "
                f"({type(gone).__name__}); it is started again: try again"
            ) from None
        if "error" in answer:
            error = ERRORS.get(answer["error"]["status"], ServingUnavailableError)
            raise error(answer["error"]["detail"])
        return Scored(answer["deployment"], answer["model"], answer["outputs"])

    def handle(self, endpoint: str) -> DeploymentHandle[Any]:
        """The handle of the endpoint's ingress (made once: a handle starts a router)."""
        if endpoint not in self._handles:
            self._handles[endpoint] = serve.get_app_handle(app_name(endpoint))
        return self._handles[endpoint]

    def applied_version(self, endpoint: str) -> int:
        """The endpoint version this process applied last (0: none)."""
        return self._applied.get(endpoint, 0)

    async def _ensure_applied(self, endpoint: str) -> None:
        fresh = time.monotonic() - self._checked_at.get(endpoint, 0.0) < self.refresh_s
        lock = self._locks.setdefault(endpoint, asyncio.Lock())
        if endpoint in self._applied and (fresh or lock.locked()):
            return  # while an update is applied, requests go on with the running app
        async with lock:
            current = await asyncio.to_thread(self._current, endpoint)
            if current.kind != "online" or current.deleted:
                what = "deleted" if current.deleted else "a batch endpoint: use invoke"
                raise RuleViolationError(f"endpoint {endpoint!r} is {what}")
            if self._applied.get(endpoint) != current.version:
                await asyncio.to_thread(self.apply, current)
            self._checked_at[endpoint] = time.monotonic()

    def _current(self, endpoint: str) -> Endpoint:
        """The endpoint as the ledger has it; what this process applied is forgotten when
        its application is not running (Serve restarted, or it was deleted by hand)."""
        current = self.ledger.endpoints.get(endpoint)
        if serve.status().applications.get(app_name(endpoint)) is None:
            self._forget(endpoint)
        return current

    def _forget(self, endpoint: str) -> None:
        """Apply ``endpoint`` again on its next request, and make a new handle."""
        for applied in (self._applied, self._served, self._handles, self._checked_at):
            applied.pop(endpoint, None)

    # -- applying ----------------------------------------------------------------------

    def reconcile(self, endpoint: Endpoint) -> None:
        """Bring ``endpoint``'s application to the ledger's state: run it (``apply``), or
        delete it once the endpoint is deleted."""
        if endpoint.deleted:
            if serve.status().applications.get(app_name(endpoint.name)) is not None:
                serve.delete(app_name(endpoint.name))
                log.info("endpoint deleted from Ray Serve", endpoint=endpoint.name)
            self._served.pop(endpoint.name, None)
            self._handles.pop(endpoint.name, None)
            return
        self.apply(endpoint)

    def apply(self, endpoint: Endpoint) -> None:
        """Run ``endpoint``'s application as the ledger has it, unless this process ran
        that very state last (a health report changes the endpoint, not what it serves);
        record each deployment's health once its replicas run (or why they do not)."""
        application, errors, state = self._application(endpoint)
        if self._served.get(endpoint.name) != state:
            target = RunTarget(
                application,
                app_name(endpoint.name),
                route_prefix(endpoint.name),
                # A log line per request costs more than scoring a small model.
                logging_config={"enable_access_log": False, "log_level": "WARNING"},
            )
            serve.run_many([target], wait_for_applications_running=False)
            for key in [key for key in self._described if key[0] == endpoint.name]:
                del self._described[key]  # a deployment may serve another model now
            self._record_health(endpoint, errors)
            self._served[endpoint.name] = state
        self._applied[endpoint.name] = endpoint.version

    def _application(self, endpoint: Endpoint) -> tuple[Any, dict[str, str], str]:
        """The endpoint's application, why deployments cannot serve, and a digest of both."""
        servers, errors, models, versions = {}, {}, {}, {}
        for name, deployment in endpoint.deployments.items():
            models[name] = f"{deployment['model']}:{deployment['version']}"
            try:
                servers[name], versions[name] = self._model_server(endpoint.name, name, deployment)
            except LedgerError as error:
                errors[name] = str(error)
        rates = {name: sampling_rate_of(d) for name, d in endpoint.deployments.items()}
        config = {
            "endpoint": endpoint.name,
            "traffic": dict(endpoint.traffic),
            "mirror": dict(endpoint.mirror),
            "deployments": {n: {"model": m, "error": errors.get(n, "")} for n, m in models.items()},
        }
        ingress = EndpointIngress.options(name=INGRESS, user_config=config)  # type: ignore[attr-defined]
        ingress = ingress.options(version=CODE_VERSION, _internal=True)
        state = json.dumps([config, versions, rates], sort_keys=True)
        return ingress.bind(**servers), errors, state

    def _model_server(self, endpoint: str, name: str, deployment: Deployment) -> tuple[Any, str]:
        """The deployment's Serve deployment, bound, and its code version. Its sampling
        rate is its ``user_config``: a change reaches the running replicas in place."""
        model = f"{deployment['model']}:{deployment['version']}"
        spec = self.ledger.models.get_version(model).spec
        if spec["flavor"] != "onnx":
            raise RuleViolationError(
                f"it serves {model}, a {spec['flavor']} model: convert it with "
                f"`ledger model convert {model} --to onnx` and deploy that"
            )
        resources = deployment["resources"]
        actor_options: dict[str, Any] = {
            "num_cpus": resources["cpus"],
            "num_gpus": reservable_gpus(resources),
        }
        if resources["memory_mb"]:
            actor_options["memory"] = resources["memory_mb"] * 1024 * 1024
        if deployment["environment"]:
            actor_options["runtime_env"] = self._runtime_env(deployment["environment"])
        files = list(spec["files"])
        want_gpu = resources["gpus"] > 0
        collection = {
            "endpoint": endpoint,
            "deployment": name,
            "model": model,
            "flush_s": self.ledger.settings.collect_flush_s,
        }
        artifacts = self.ledger.artifacts.url  # replicas read the store by URL: no shared volume
        started_from = json.dumps(
            [CODE_VERSION, artifacts, files, want_gpu, actor_options, collection], sort_keys=True
        )
        server = ModelServer.options(  # type: ignore[attr-defined]
            name=name,
            ray_actor_options=actor_options,
            user_config={"sampling_rate": sampling_rate_of(deployment)},
            **self._scaling(resources),
        )
        code_version = hashlib.sha256(started_from.encode()).hexdigest()[:16]
        server = server.options(version=code_version, _internal=True)
        return server.bind(artifacts, files, want_gpu, collection), code_version

    def _scaling(self, resources: Resources) -> dict[str, Any]:
        """How many replicas, as Serve options: a fixed number, or, with ``max_replicas``
        above ``replicas``, an autoscaling range. Serve changes these in place (they are
        not part of the code version: replicas do not restart for them)."""
        options: dict[str, Any] = {
            "max_ongoing_requests": resources.get("max_ongoing_requests", MAX_ONGOING_REQUESTS)
        }
        most = resources.get("max_replicas", resources["replicas"])
        if most == resources["replicas"]:
            return options | {"num_replicas": most}
        settings = self.ledger.settings
        options["autoscaling_config"] = {
            "min_replicas": resources["replicas"],
            "max_replicas": most,
            "target_ongoing_requests": resources.get("target_ongoing_requests", 2.0),
            "upscale_delay_s": settings.serve_upscale_delay_s,
            "downscale_delay_s": settings.serve_downscale_delay_s,
            # The load is averaged over the upscale delay (Serve's default window: 30 s).
            "look_back_period_s": min(30.0, max(1.0, settings.serve_upscale_delay_s)),
        }
        return options

    def _runtime_env(self, ref: str) -> dict[str, Any]:
        """The Ray runtime env of environment ``ref``, as a step's is built (its pip lines,
        variables, setup timeout); what Ray cannot build refuses the deployment."""
        content = self.ledger.assets.environment_version(ref)["content"]
        timeout = self.ledger.settings.runtime_env_setup_timeout_s
        environment = step_environment(ref, content, setup_timeout_s=timeout)
        if environment.refused:
            raise RuleViolationError(environment.refused)
        return environment.runtime_env

    def _record_health(self, endpoint: Endpoint, errors: dict[str, str]) -> None:
        for name, error in errors.items():
            self._report(endpoint, name, "unhealthy", error)
        waiting = [name for name in endpoint.deployments if name not in errors]
        deadline = time.monotonic() + REPLICA_START_S
        while waiting:
            status = serve.status().applications.get(app_name(endpoint.name))
            deployments = status.deployments if status is not None else {}
            for name in list(waiting):
                found = deployments.get(name)
                if found is None or found.status == "UPDATING":
                    continue
                waiting.remove(name)
                if found.status in SERVING:
                    detail = self._serving_detail(endpoint, name, _running(found))
                    self._report(endpoint, name, "healthy", detail)
                else:
                    self._report(endpoint, name, "unhealthy", found.message or found.status)
            if waiting and time.monotonic() > deadline:
                for name in waiting:
                    self._report(endpoint, name, "unhealthy", _no_room(endpoint, name))
                return
            if waiting:
                time.sleep(0.1)

    def _serving_detail(self, endpoint: Endpoint, name: str, running: int) -> str:
        """``running`` replicas and the provider they use (asked of one, once)."""
        key = (endpoint.name, name)
        if key not in self._described:
            server = serve.get_deployment_handle(name, app_name(endpoint.name))
            self._described[key] = server.describe.remote().result(timeout_s=REPLICA_START_S)
        described = self._described[key]
        detail = f"{running} replica(s) on {described['provider']}"
        return detail + (f"; {described['note']}" if described["note"] else "")

    def record_replica_counts(self) -> None:
        """Record a deployment's health again when its running replicas changed since
        (autoscaling, or a replica that died and was replaced)."""
        applications = serve.status().applications
        for endpoint_name in list(self._served):
            application = applications.get(app_name(endpoint_name))
            if application is None:
                continue
            endpoint = self.ledger.endpoints.get(endpoint_name)
            for name in endpoint.deployments:
                found = application.deployments.get(name)
                if found is not None and found.status in SERVING:
                    detail = self._serving_detail(endpoint, name, _running(found))
                    self._report(endpoint, name, "healthy", detail)

    def _report(self, endpoint: Endpoint, name: str, status: str, detail: str) -> None:
        deployment = endpoint.deployments[name]
        if (deployment["health"], deployment["health_detail"]) == (status, detail):
            return  # already recorded (by another process, or before a restart)
        try:
            with self.ledger.on_behalf_of(SERVING_ACTOR):
                self.ledger.endpoints.report_health(
                    endpoint.name, name, status, detail, reason="replicas started"
                )
        except LedgerError as error:  # undeployed meanwhile: the next apply drops it
            log.info("health not recorded", endpoint=endpoint.name, deployment=name,
                     error=str(error))  # fmt: skip
        else:
            log.info("deployment health", endpoint=endpoint.name, deployment=name,
                     status=status, detail=detail)  # fmt: skip

    def close(self) -> None:
        """Nothing to stop: the applications belong to the Ray cluster, not this process."""


def _running(found: Any) -> int:
    """Running replicas of a deployment in ``serve.status()``."""
    return int(found.replica_states.get("RUNNING", 0))


def _no_room(endpoint: Endpoint, name: str) -> str:
    resources = endpoint.deployments[name]["resources"]
    return (
        f"its replicas did not start within {REPLICA_START_S:g} s: the Ray cluster lacks room "
        f"for {resources['replicas']} x {resources['cpus']:g} CPU"
        + (f" + {resources['gpus']} GPU" if resources["gpus"] else "")
    )
