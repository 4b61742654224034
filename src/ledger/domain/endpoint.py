"""Endpoints, their deployments, and how traffic is split between them."""

from __future__ import annotations

from typing import Literal, NotRequired, get_args
from uuid import UUID

# The API's response models (ledger.shapes) nest these; pydantic wants typing_extensions'.
from typing_extensions import TypedDict

from ledger.domain.base import LedgerAggregate, aggregate_id
from ledger.errors import InvalidInputError, RuleViolationError

EndpointKind = Literal["online", "batch"]
ENDPOINT_KINDS: tuple[str, ...] = get_args(EndpointKind)
HealthState = Literal["pending", "healthy", "degraded", "unhealthy"]
HEALTH_STATES: tuple[str, ...] = get_args(HealthState)


class Resources(TypedDict):
    """Per replica: CPUs, GPUs, memory; and how many replicas (the least, when
    ``max_replicas`` is above it: online replicas then scale with the load, each kept at
    about ``target_ongoing_requests``; ``max_ongoing_requests`` caps what one holds).
    Deployments recorded before autoscaling have none of the three optional keys."""

    cpus: float
    gpus: int
    memory_mb: int
    replicas: int
    max_replicas: NotRequired[int]
    target_ongoing_requests: NotRequired[float]
    max_ongoing_requests: NotRequired[int]


class Deployment(TypedDict):
    """A model version served by an endpoint, with its environment and resources, and the
    share of its requests it collects (``sampling_rate``, 0-1; deployments recorded before
    data collection have none: read it with ``sampling_rate_of``)."""

    model: str
    version: int
    environment: str
    resources: Resources
    health: str
    health_detail: str
    sampling_rate: NotRequired[float]


def sampling_rate_of(deployment: Deployment) -> float:
    """The share of the deployment's requests its replicas collect (0: none)."""
    return float(deployment.get("sampling_rate", 0.0))


def validate_sampling_rate(rate: float) -> float:
    """``rate`` as a float if it is a share between 0 and 1, else InvalidInputError."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
        raise InvalidInputError(f"sampling rate must be between 0 and 1, got {rate!r}")
    return float(rate)


def endpoint_id(name: str) -> UUID:
    return aggregate_id("endpoint", name)


def validate_resources(resources: Resources) -> None:
    if resources["cpus"] <= 0:
        raise InvalidInputError("resources: cpus must be positive")
    if resources["gpus"] < 0:
        raise InvalidInputError("resources: gpus must not be negative")
    if resources["memory_mb"] <= 0:
        raise InvalidInputError("resources: memory_mb must be positive")
    if resources["replicas"] < 1:
        raise InvalidInputError("resources: replicas must be at least 1")
    if resources.get("max_replicas", resources["replicas"]) < resources["replicas"]:
        raise InvalidInputError("resources: max_replicas must be at least replicas")
    if resources.get("target_ongoing_requests", 1.0) <= 0:
        raise InvalidInputError("resources: target_ongoing_requests must be positive")
    if resources.get("max_ongoing_requests", 1) < 1:
        raise InvalidInputError("resources: max_ongoing_requests must be at least 1")


def _check_percentages(kind: str, weights: dict[str, int]) -> None:
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise InvalidInputError(f"{kind} for {name!r} must be a whole percentage")
        if not 0 <= weight <= 100:
            raise InvalidInputError(f"{kind} for {name!r} must be between 0 and 100, got {weight}")


class Endpoint(LedgerAggregate):
    """An online or batch endpoint holding deployments and the traffic split."""

    def __init__(self) -> None:
        self.name = ""
        self.kind: EndpointKind = "online"
        self.description = ""
        self.deployments: dict[str, Deployment] = {}
        self.traffic: dict[str, int] = {}
        self.mirror: dict[str, int] = {}
        self.deleted = False

    class Event(LedgerAggregate.Event):
        pass

    class Created(Event, LedgerAggregate.Created):
        name: str
        kind: str
        description: str

        def apply(self, endpoint: Endpoint) -> None:
            endpoint.name = self.name
            endpoint.kind = "batch" if self.kind == "batch" else "online"
            endpoint.description = self.description

    class DeploymentCreated(Event):
        deployment: str
        model: str
        version: int
        environment: str
        resources: Resources

        def apply(self, endpoint: Endpoint) -> None:
            endpoint.deployments[self.deployment] = {
                "model": self.model,
                "version": self.version,
                "environment": self.environment,
                "resources": self.resources,
                "health": "pending",
                "health_detail": "",
            }

    class TrafficChanged(Event):
        weights: dict[str, int]

        def apply(self, endpoint: Endpoint) -> None:
            endpoint.traffic = {k: v for k, v in self.weights.items() if v}

    class MirrorChanged(Event):
        mirror: dict[str, int]

        def apply(self, endpoint: Endpoint) -> None:
            endpoint.mirror = {k: v for k, v in self.mirror.items() if v}

    class DataCollectionChanged(Event):
        deployment: str
        sampling_rate: float

        def apply(self, endpoint: Endpoint) -> None:
            endpoint.deployments[self.deployment]["sampling_rate"] = self.sampling_rate

    class GroundTruthRecorded(Event):
        """True labels of requests (a normalized Parquet file in the artifact store)."""

        digest: str
        rows: int

        def apply(self, endpoint: Endpoint) -> None:
            pass  # read by the monitors view; the endpoint's state does not change

    class HealthReported(Event):
        deployment: str
        status: str
        detail: str

        def apply(self, endpoint: Endpoint) -> None:
            deployment = endpoint.deployments[self.deployment]
            deployment["health"] = self.status
            deployment["health_detail"] = self.detail

    class DeploymentDeleted(Event):
        deployment: str

        def apply(self, endpoint: Endpoint) -> None:
            del endpoint.deployments[self.deployment]
            endpoint.traffic.pop(self.deployment, None)  # the last one may take its share along

    class Deleted(Event):
        def apply(self, endpoint: Endpoint) -> None:
            endpoint.deleted = True

    @classmethod
    def create(cls, name: str, kind: str, description: str = "") -> Endpoint:
        if kind not in ENDPOINT_KINDS:
            raise InvalidInputError(f"endpoint kind must be one of {', '.join(ENDPOINT_KINDS)}")
        return cls._create(
            cls.Created, id=endpoint_id(name), name=name, kind=kind, description=description
        )

    def add_deployment(
        self,
        deployment: str,
        model: str,
        version: int,
        environment: str,
        resources: Resources,
        sampling_rate: float = 0.0,
    ) -> None:
        """Add a deployment; the first one of an endpoint takes all live traffic. With a
        ``sampling_rate`` above 0 it collects that share of its requests from the start."""
        self._require_live()
        if deployment in self.deployments:
            raise RuleViolationError(
                f"endpoint {self.name!r} already has a deployment {deployment!r}"
            )
        validate_resources(resources)
        rate = validate_sampling_rate(sampling_rate)
        if rate and self.kind == "batch":
            raise InvalidInputError("batch endpoints do not collect requests")
        self.trigger_event(
            self.DeploymentCreated,
            deployment=deployment,
            model=model,
            version=version,
            environment=environment,
            resources=resources,
        )
        if rate:
            self.trigger_event(
                self.DataCollectionChanged, deployment=deployment, sampling_rate=rate
            )
        if len(self.deployments) == 1:
            self.trigger_event(self.TrafficChanged, weights={deployment: 100})

    def set_sampling_rate(self, deployment: str, sampling_rate: float) -> None:
        """Collect this share (0-1) of the deployment's requests from now on (0: stop)."""
        self._require_live()
        if self.kind == "batch":
            raise InvalidInputError("batch endpoints do not collect requests")
        self._require_known("collect", {deployment: 0})
        rate = validate_sampling_rate(sampling_rate)
        if rate != sampling_rate_of(self.deployments[deployment]):
            self.trigger_event(
                self.DataCollectionChanged, deployment=deployment, sampling_rate=rate
            )

    def require_live_online(self, what: str) -> None:
        """Refuse ``what`` on a deleted or batch endpoint."""
        self._require_live()
        if self.kind == "batch":
            raise InvalidInputError(f"{what} is for online endpoints only")

    def record_ground_truth(self, digest: str, rows: int) -> None:
        """Record the true labels of ``rows`` requests (stored under ``digest``)."""
        self.require_live_online("ground truth")
        self.trigger_event(self.GroundTruthRecorded, digest=digest, rows=rows)

    def set_traffic(self, weights: dict[str, int]) -> None:
        """Replace the live split; deployments not named get 0."""
        self._require_live()
        self._require_known("traffic", weights)
        _check_percentages("traffic", weights)
        total = sum(weights.values())
        if self.deployments and total != 100:
            raise InvalidInputError(f"traffic weights must sum to 100, got {total}")
        if self.kind == "batch" and self.deployments and sorted(weights.values()) != [100]:
            raise InvalidInputError(
                "a batch endpoint sends all traffic to one default deployment (name=100)"
            )
        for name, weight in weights.items():
            if weight and self.mirror.get(name):
                raise RuleViolationError(
                    f"deployment {name!r} receives mirrored traffic; "
                    "clear its mirror before giving it live traffic"
                )
        live = {name: weight for name, weight in weights.items() if weight}
        if live != self.traffic:
            self.trigger_event(self.TrafficChanged, weights=live)

    def set_mirror(self, mirror: dict[str, int]) -> None:
        """Replace the shadow split: copies of requests to deployments with no live share."""
        self._require_live()
        if self.kind == "batch":
            raise InvalidInputError("batch endpoints do not mirror traffic")
        self._require_known("mirror", mirror)
        _check_percentages("mirror", mirror)
        for name, percent in mirror.items():
            if percent and self.traffic.get(name):
                raise RuleViolationError(
                    f"cannot mirror to deployment {name!r}: it has "
                    f"{self.traffic[name]}% live traffic"
                )
        shadow = {name: percent for name, percent in mirror.items() if percent}
        if shadow != self.mirror:
            self.trigger_event(self.MirrorChanged, mirror=shadow)

    def report_health(self, deployment: str, status: str, detail: str = "") -> None:
        """Record what an executor observed of a deployment (e.g. the provider in use)."""
        if status not in HEALTH_STATES:
            raise InvalidInputError(f"health must be one of {', '.join(HEALTH_STATES)}")
        self._require_known("health", {deployment: 0})
        self.trigger_event(self.HealthReported, deployment=deployment, status=status, detail=detail)

    def remove_deployment(self, deployment: str) -> Deployment:
        self._require_live()
        self._require_known("undeploy", {deployment: 0})
        receiving = []
        # The only deployment holds all live traffic, with nowhere to shift it: it may go.
        if self.traffic.get(deployment) and len(self.deployments) > 1:
            receiving.append(f"{self.traffic[deployment]}% live traffic")
        if self.mirror.get(deployment):
            receiving.append(f"{self.mirror[deployment]}% mirrored traffic")
        if receiving:
            raise RuleViolationError(
                f"cannot undeploy {deployment!r} from endpoint {self.name!r}: it still "
                f"receives {' and '.join(receiving)}; shift its traffic first"
            )
        removed = self.deployments[deployment]
        self.trigger_event(self.DeploymentDeleted, deployment=deployment)
        return removed

    def delete(self) -> None:
        self._require_live()
        if self.deployments:
            raise RuleViolationError(
                f"cannot delete endpoint {self.name!r}: it still has deployments "
                f"{', '.join(sorted(self.deployments))}; undeploy them first"
            )
        self.trigger_event(self.Deleted)

    def _require_live(self) -> None:
        if self.deleted:
            raise RuleViolationError(f"endpoint {self.name!r} is deleted")

    def _require_known(self, what: str, names: dict[str, int]) -> None:
        unknown = sorted(set(names) - set(self.deployments))
        if unknown:
            known = ", ".join(sorted(self.deployments)) or "none"
            raise InvalidInputError(
                f"{what}: endpoint {self.name!r} has no deployment "
                f"{', '.join(map(repr, unknown))} (deployments: {known})"
            )
