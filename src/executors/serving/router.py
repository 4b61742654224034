"""Routing score requests to deployments by the endpoint's traffic weights.

For each online endpoint the router keeps a routing table: a pool of replica
actors per deployment, the traffic weights and the mirror percentages. The
table is checked against the endpoint (in the ledger) at most every
``refresh_s``; when the endpoint changed, a new table is built beside the old
one (new replicas started and ready first) and swapped in, and replicas no
longer used are stopped a grace period later. So a traffic change or a
blue -> green switch drops no request.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from executors.ray_executor import connect_ray
from executors.serving.replica import replica_actor
from ledger.domain.endpoint import Deployment, Endpoint
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
log = get_logger(__name__)


@dataclass
class DeploymentPool:
    """The replicas of one deployment (or why there are none)."""

    name: str
    model: str  # NAME:VERSION
    key: tuple[Any, ...]  # what the replicas were started for
    replicas: list[Any] = field(default_factory=list)
    provider: str = ""
    error: str = ""
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def pick(self) -> Any:
        if self.error:
            raise ServingUnavailableError(f"deployment {self.name!r} cannot serve: {self.error}")
        return self.replicas[next(self._turn) % len(self.replicas)]


@dataclass(frozen=True)
class RoutingTable:
    version: int  # of the endpoint aggregate it was built from
    pools: dict[str, DeploymentPool]
    traffic: dict[str, int]
    mirror: dict[str, int]


@dataclass(frozen=True)
class Scored:
    deployment: str
    model: str
    outputs: dict[str, Any]


class EndpointRouter:
    """Scores requests on the replicas of online endpoints' deployments."""

    def __init__(
        self, ledger: Ledger, *, refresh_s: float = 0.25, retire_after_s: float = 30.0
    ) -> None:
        self.ledger = ledger
        self.refresh_s = refresh_s
        self.retire_after_s = retire_after_s
        self.served: Counter[tuple[str, str]] = Counter()
        self.mirrored: Counter[tuple[str, str]] = Counter()
        self._tables: dict[str, RoutingTable] = {}
        self._checked_at: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        connect_ray(ledger.settings.ray_address, ledger.settings.ray_num_cpus)

    async def score(self, endpoint: str, inputs: Any, deployment: str = "") -> Scored:
        """Score ``inputs`` on the deployment the traffic weights pick (or ``deployment``);
        mirrored deployments get a copy whose answer is dropped."""
        table = await self._table(endpoint)
        if deployment:
            if deployment not in table.pools:
                raise NotFoundError(f"endpoint {endpoint!r} has no deployment {deployment!r}")
            name = deployment
        else:
            live = {n: w for n, w in table.traffic.items() if w > 0}
            if not live:
                raise RuleViolationError(f"endpoint {endpoint!r} sends no traffic anywhere")
            name = random.choices(list(live), weights=list(live.values()))[0]
            for shadow, percent in table.mirror.items():
                if percent and random.uniform(0, 100) < percent:
                    self._copy_to(endpoint, table.pools[shadow], inputs)
        pool = table.pools[name]
        outputs = await _call(pool.pick().score.remote(inputs), pool.name)
        self.served[endpoint, name] += 1
        return Scored(name, pool.model, outputs)

    def _copy_to(self, endpoint: str, pool: DeploymentPool, inputs: Any) -> None:
        async def shadow() -> None:
            try:
                await _call(pool.pick().score.remote(inputs), pool.name)
                self.mirrored[endpoint, pool.name] += 1
            except InvalidInputError as error:  # the live request failed the same way
                log.debug("mirrored request refused", deployment=pool.name, error=str(error))
            except LedgerError as error:
                log.warning("mirrored request failed", deployment=pool.name, error=str(error))

        task = asyncio.ensure_future(shadow())
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    # -- routing tables -------------------------------------------------------------------

    def routed_version(self, endpoint: str) -> int:
        """The version of ``endpoint`` requests are routed by now (0: none routed yet); a
        change reaches the router on the first request after ``refresh_s``."""
        table = self._tables.get(endpoint)
        return table.version if table is not None else 0

    async def _table(self, endpoint: str) -> RoutingTable:
        table = self._tables.get(endpoint)
        fresh = time.monotonic() - self._checked_at.get(endpoint, 0.0) < self.refresh_s
        lock = self._locks.setdefault(endpoint, asyncio.Lock())
        if table is not None and (fresh or lock.locked()):
            return table  # while a new table is built, requests go on with the current one
        async with lock:
            table = self._tables.get(endpoint)
            current = await asyncio.to_thread(self.ledger.endpoints.get, endpoint)
            if current.kind != "online" or current.deleted:
                what = "deleted" if current.deleted else "a batch endpoint: use invoke"
                raise RuleViolationError(f"endpoint {endpoint!r} is {what}")
            if table is None or table.version != current.version:
                table = await self._build(current, table)
                self._tables[endpoint] = table
            self._checked_at[endpoint] = time.monotonic()
            return table

    async def _build(self, endpoint: Endpoint, old: RoutingTable | None) -> RoutingTable:
        pools: dict[str, DeploymentPool] = {}
        for name, deployment in endpoint.deployments.items():
            previous = old.pools.get(name) if old else None
            key = _pool_key(deployment)
            if previous is not None and previous.key == key:
                pools[name] = previous
            else:
                pools[name] = await self._start(endpoint.name, name, deployment)
        if old is not None:
            retired = [p for p in old.pools.values() if pools.get(p.name) is not p]
            if retired:
                asyncio.get_running_loop().call_later(self.retire_after_s, _stop, retired)
        return RoutingTable(endpoint.version, pools, dict(endpoint.traffic), dict(endpoint.mirror))

    async def _start(self, endpoint: str, name: str, deployment: Deployment) -> DeploymentPool:
        """Start the deployment's replicas and record its health (with the provider used)."""
        model = f"{deployment['model']}:{deployment['version']}"
        pool = DeploymentPool(name, model, _pool_key(deployment))
        resources = deployment["resources"]
        try:
            version = await asyncio.to_thread(self.ledger.models.get_version, model)
            if version.spec["flavor"] != "onnx":
                raise RuleViolationError(
                    f"it serves {model}, a {version.spec['flavor']} model: convert it with "
                    f"`ledger model convert {model} --to onnx` and deploy that"
                )
            actor = replica_actor(resources)
            pool.replicas = [
                actor.remote(
                    str(self.ledger.artifacts.root.resolve()),
                    list(version.spec["files"]),
                    resources["gpus"] > 0,
                    f"{tempfile.gettempdir()}/ledger-serving/{uuid.uuid4().hex}",
                )
                for _ in range(resources["replicas"])
            ]
            described = await asyncio.wait_for(
                asyncio.gather(*(r.describe.remote() for r in pool.replicas)), REPLICA_START_S
            )
        except TimeoutError:
            pool.error = (
                f"its replicas did not start within {REPLICA_START_S:g} s: the Ray cluster "
                f"lacks room for {resources['replicas']} x {resources['cpus']:g} CPU"
                + (f" + {resources['gpus']} GPU" if resources["gpus"] else "")
            )
            _stop([pool])
            await self._report(endpoint, name, deployment, "unhealthy", pool.error)
            return pool
        except (LedgerError, RayActorError, RayTaskError) as error:
            pool.error = str(error.cause) if isinstance(error, RayTaskError) else str(error)
            _stop([pool])
            await self._report(endpoint, name, deployment, "unhealthy", pool.error)
            return pool
        pool.provider = described[0]["provider"]
        detail = f"{resources['replicas']} replica(s) on {pool.provider}"
        if described[0]["note"]:
            detail += f"; {described[0]['note']}"
        await self._report(endpoint, name, deployment, "healthy", detail)
        log.info("deployment serving", endpoint=endpoint, deployment=name, detail=detail)
        return pool

    async def _report(
        self, endpoint: str, name: str, deployment: Deployment, status: str, detail: str
    ) -> None:
        if (deployment["health"], deployment["health_detail"]) == (status, detail):
            return  # already recorded (e.g. by this server before a restart)

        def report() -> None:
            with self.ledger.on_behalf_of(SERVING_ACTOR):
                self.ledger.endpoints.report_health(
                    endpoint, name, status, detail, reason="replicas started"
                )

        try:
            await asyncio.to_thread(report)
        except LedgerError as error:  # undeployed meanwhile: the next refresh drops it
            log.info("health not recorded", endpoint=endpoint, deployment=name, error=str(error))

    def close(self) -> None:
        for table in self._tables.values():
            _stop(list(table.pools.values()))
        self._tables.clear()


def _pool_key(deployment: Deployment) -> tuple[Any, ...]:
    resources = deployment["resources"]
    return (
        deployment["model"],
        deployment["version"],
        resources["cpus"],
        resources["gpus"],
        resources["replicas"],
    )


async def _call(ref: Any, deployment: str) -> dict[str, Any]:
    try:
        result: dict[str, Any] = await ref
    except RayTaskError as error:
        if isinstance(error.cause, LedgerError):
            raise error.cause from None
        raise ServingUnavailableError(f"deployment {deployment!r} failed: {error.cause}") from None
    except RayActorError:
        raise ServingUnavailableError(f"a replica of deployment {deployment!r} died") from None
    return result


def _stop(pools: list[DeploymentPool]) -> None:
    for pool in pools:
        for replica in pool.replicas:
            ray.kill(replica)
